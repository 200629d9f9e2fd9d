package embedded

import (
	"net/http"
	"regexp"
	"strconv"
)

// Error codes the bridge raises itself (numbers as in ClickHouse's ErrorCodes).
const (
	codeSyntaxError       = 62
	codeBadArguments      = 36
	codeUnknownSetting    = 115
	codeQueryWasCancelled = 394
	codeNotImplemented    = 48
	codeTooLarge          = 306 // QUERY_IS_TOO_LARGE
	codeNetworkError      = 210
)

// Exception is a ClickHouse-shaped error: a numeric code, its name and the
// message, as the HTTP interface reports them.
type Exception struct {
	Code    int
	Name    string
	Message string // the full "Code: N. DB::Exception: ... (NAME)" text
}

func (e *Exception) Error() string { return e.Message }

var codeRe = regexp.MustCompile(`^Code: (\d+)\.`)
var nameRe = regexp.MustCompile(`\(([A-Z][A-Z0-9_]+)\)\s*(\(version [^)]*\)\)?)?\s*$`)

// parseException turns chDB's error text into an Exception.
func parseException(msg string) *Exception {
	e := &Exception{Code: 1001, Name: "STD_EXCEPTION", Message: msg}
	if m := codeRe.FindStringSubmatch(msg); m != nil {
		e.Code, _ = strconv.Atoi(m[1])
	}
	if m := nameRe.FindStringSubmatch(msg); m != nil {
		e.Name = m[1]
	}
	return e
}

// NewException is an Exception with ClickHouse's message layout, for a hook
// of the bridge (Analyst.Check) that reports an engine error it met.
func NewException(code int, name, text string) *Exception { return newException(code, name, text) }

func newException(code int, name, text string) *Exception {
	return &Exception{Code: code, Name: name, Message: "Code: " + strconv.Itoa(code) + ". DB::Exception: " + text + ". (" + name + ")"}
}

// statusByCode maps error codes to the status ClickHouse's HTTP handler uses
// for them (exceptionCodeToHTTPStatus in ClickHouse's HTTPHandler.cpp);
// anything else is 500.
var statusByCode = map[int]int{
	// authentication and access
	192: http.StatusForbidden, 193: http.StatusForbidden, 194: http.StatusForbidden,
	195: http.StatusForbidden, 516: http.StatusForbidden, 497: http.StatusForbidden,
	164: http.StatusForbidden, // READONLY
	// malformed input: CANNOT_PARSE_*, SYNTAX_ERROR, BAD_ARGUMENTS, TYPE_MISMATCH, ...
	6: http.StatusBadRequest, 26: http.StatusBadRequest, 27: http.StatusBadRequest,
	38: http.StatusBadRequest, 41: http.StatusBadRequest, 72: http.StatusBadRequest,
	441: http.StatusBadRequest, 467: http.StatusBadRequest, 471: http.StatusBadRequest,
	53: http.StatusBadRequest, 69: http.StatusBadRequest, 117: http.StatusBadRequest,
	167: http.StatusBadRequest, 168: http.StatusBadRequest, 169: http.StatusBadRequest,
	36: http.StatusBadRequest, 62: http.StatusBadRequest, 43: http.StatusBadRequest,
	42: http.StatusBadRequest,
	// unknown things: UNKNOWN_TABLE, UNKNOWN_DATABASE, UNKNOWN_FUNCTION, UNKNOWN_IDENTIFIER,
	// UNKNOWN_TYPE, UNKNOWN_STORAGE, UNKNOWN_FORMAT, UNKNOWN_SETTING, UNKNOWN_AGGREGATE_FUNCTION
	60: http.StatusNotFound, 81: http.StatusNotFound, 46: http.StatusNotFound,
	47: http.StatusNotFound, 50: http.StatusNotFound, 56: http.StatusNotFound,
	73: http.StatusNotFound, 115: http.StatusNotFound, 63: http.StatusNotFound,
	306: http.StatusRequestEntityTooLarge,
	48:  http.StatusNotImplemented,
}

func httpStatus(code int) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}
