package embedded

import (
	"bufio"
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// helloQuery is what clickhouse-go/v2 asks an HTTP server at connect; it
// decodes the answer at its own protocol revision and every later Native
// result at the revision() the server reports. The bridge answers it itself
// with revision 0, which is the layout chDB's Native output always has.
const helloQuery = "SELECT displayName(), version(), revision(), timezone()"

// DisplayName is what the bridge reports as the server's display name.
const DisplayName = "converge-embedded"

// URL parameters that are not settings.
var reservedParams = map[string]bool{
	"query": true, "database": true, "default_format": true, "query_id": true,
	"client_protocol_version": true, "user": true, "password": true, "compress": true,
	"decompress": true, "session_id": true, "session_timeout": true, "session_check": true,
	"quota_key": true, "buffer_size": true, "wait_end_of_query": true, "role": true,
	"stacktrace": true, "enable_http_compression": true, "http_response_buffer_size": true,
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
var queryIDRe = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

// maxQueryText bounds a query read from a request body (data of an INSERT is
// spooled, not held, and has no such bound).
const maxQueryText = 64 << 20

// Handler serves the ClickHouse HTTP interface over the engine. password, when
// not empty, is required (basic auth, X-ClickHouse-Key or the password
// parameter, as ClickHouse accepts it).
func (e *Engine) Handler(password string) http.Handler {
	return e.HandlerFor(Access{Password: password})
}

// Access is who may use an endpoint of the engine.
type Access struct {
	// Password of the full-access user (any user name but the analyst's);
	// "" requires none (the in-process transport).
	Password string
	// Analyst, when set, is a second, read-only user.
	Analyst *Analyst
}

// Analyst is an endpoint's read-only user, for analysts' own tools. Its
// requests run with readonly=1 (and the settings that decide how a query is
// parsed and analysed at the engine's defaults, whatever the request asks),
// in Database only, no INSERT is read, and each statement is first passed to
// Check, which may refuse it: the bridge knows no tables, so the caller
// (package warehouse) says what the analyst may read.
type Analyst struct {
	User, Password string
	Database       string // the database its requests run in; a request for another is refused
	// Check is called with each statement and its query parameters (name →
	// value) before it runs; an error refuses it: an *Exception is answered
	// as it is, any other error as ACCESS_DENIED with its text.
	Check func(ctx context.Context, sql string, params map[string]string) error
}

// HandlerFor serves the ClickHouse HTTP interface over the engine to the
// users of a.
func (e *Engine) HandlerFor(a Access) http.Handler {
	return &bridge{e: e, password: a.Password, analyst: a.Analyst}
}

type bridge struct {
	e        *Engine
	password string
	analyst  *Analyst
}

// analystSettings are forced on the analyst's requests: read-only, and
// parsed and analysed as the analyst's Check analysed them (the ClickHouse
// dialect, the analyzer, no query cache shared with converge's own queries).
var analystSettings = map[string]string{
	"readonly": "1", "dialect": "clickhouse", "enable_analyzer": "1", "use_query_cache": "0",
}

// analystOverrides are request settings dropped for the analyst: aliases of
// analystSettings.
var analystOverrides = []string{"allow_experimental_analyzer"}

func (b *bridge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/ping":
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		io.WriteString(w, "Ok.\n")
		return
	case "", "/", "/query":
	default:
		writeException(w, newException(codeBadArguments, "BAD_ARGUMENTS", "there is no handler for "+r.URL.Path))
		return
	}
	analyst := b.analyst != nil && b.namesAnalyst(r)
	switch {
	case analyst && !b.authorised(r, b.analyst.Password):
		writeException(w, newException(516, "AUTHENTICATION_FAILED", b.analyst.User+": Authentication failed: password is incorrect, or there is no user with such name"))
		return
	case !analyst && b.password != "" && !b.authorised(r, b.password):
		writeException(w, newException(516, "AUTHENTICATION_FAILED", "default: Authentication failed: password is incorrect, or there is no user with such name"))
		return
	}
	if r.Method == http.MethodGet && r.URL.Query().Get("query") == "" {
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		io.WriteString(w, "Ok.\n")
		return
	}
	var a *Analyst
	if analyst {
		a = b.analyst
	}
	req, err := b.e.parseRequest(r, a)
	if req != nil && req.spool != "" {
		defer os.Remove(req.spool)
	}
	if err != nil {
		writeException(w, asException(err))
		return
	}
	if a != nil && a.Check != nil {
		params := make(map[string]string, len(req.params))
		for _, p := range req.params {
			params[p.name] = p.value
		}
		if err := a.Check(r.Context(), req.sql, params); err != nil {
			ex := &Exception{}
			if !errors.As(err, &ex) {
				ex = newException(497, "ACCESS_DENIED", a.User+": "+err.Error())
			}
			writeException(w, ex)
			return
		}
	}
	b.e.serve(r.Context(), req, w, b.e.blockLimit(r))
}

// namesAnalyst reports whether any of the ways a request names its user
// (basic auth, X-ClickHouse-User, the user parameter) names the analyst: a
// request that claims the analyst is one, whatever else it says, so that
// claiming it can only take rights away.
func (b *bridge) namesAnalyst(r *http.Request) bool {
	u, _, _ := r.BasicAuth()
	for _, name := range []string{u, r.Header.Get("X-ClickHouse-User"), r.URL.Query().Get("user")} {
		if name == b.analyst.User {
			return true
		}
	}
	return false
}

func (b *bridge) authorised(r *http.Request, password string) bool {
	got := r.Header.Get("X-ClickHouse-Key")
	if _, p, ok := r.BasicAuth(); ok {
		got = p
	}
	if p := r.URL.Query().Get("password"); p != "" {
		got = p
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(password)) == 1
}

// request is one parsed HTTP query.
type request struct {
	sql       string
	st        statement
	format    string
	database  string
	settings  map[string]string
	params    []param
	tag       string
	spool     string // INSERT data spooled to this file
	waitToEnd bool
	native    bool // client speaks Native at client_protocol_version (clickhouse-go)
}

func asException(err error) *Exception {
	var ex *Exception
	if errors.As(err, &ex) {
		return ex
	}
	var ee *engineError
	if errors.As(err, &ee) {
		return parseException(ee.msg)
	}
	return newException(1001, "STD_EXCEPTION", err.Error())
}

// parseRequest reads a request; for the analyst (a non-nil), in its
// database, with analystSettings, and refusing INSERT before its data is read.
func (e *Engine) parseRequest(r *http.Request, a *Analyst) (*request, error) {
	q := r.URL.Query()
	req := &request{
		format:   q.Get("default_format"),
		database: q.Get("database"),
		settings: map[string]string{},
		tag:      q.Get("query_id"),
	}
	if v := r.Header.Get("X-ClickHouse-Database"); req.database == "" && v != "" {
		req.database = v
	}
	if v := r.Header.Get("X-ClickHouse-Format"); req.format == "" && v != "" {
		req.format = v
	}
	if req.format == "" {
		req.format = "TabSeparated"
	}
	if req.database != "" && !identRe.MatchString(req.database) {
		return req, newException(codeBadArguments, "BAD_ARGUMENTS", fmt.Sprintf("invalid database name %q", req.database))
	}
	if a != nil {
		if req.database != "" && req.database != a.Database {
			return req, newException(497, "ACCESS_DENIED", fmt.Sprintf("%s: database %s is not open to this user, which reads database %s", a.User, req.database, a.Database))
		}
		req.database = a.Database
	}
	if req.tag == "" {
		req.tag = randomTag()
	} else if !queryIDRe.MatchString(req.tag) {
		return req, newException(codeBadArguments, "BAD_ARGUMENTS", fmt.Sprintf("invalid query_id %q", req.tag))
	}
	req.waitToEnd = q.Get("wait_end_of_query") == "1"
	req.native = q.Get("client_protocol_version") != ""
	if q.Get("decompress") == "1" || q.Get("compress") == "1" {
		return req, newException(codeNotImplemented, "NOT_IMPLEMENTED", "ClickHouse native compression (compress/decompress=1) is not supported by the embedded bridge; use Content-Encoding gzip")
	}
	for k, vs := range q {
		switch {
		case strings.HasPrefix(k, "param_"):
			req.params = append(req.params, param{name: strings.TrimPrefix(k, "param_"), value: vs[0]})
		case reservedParams[k]:
		default:
			if !identRe.MatchString(k) {
				return req, newException(codeUnknownSetting, "UNKNOWN_SETTING", fmt.Sprintf("invalid setting name %q", k))
			}
			req.settings[k] = vs[0]
		}
	}

	if a != nil {
		for _, k := range analystOverrides {
			delete(req.settings, k)
		}
		for k, v := range analystSettings {
			req.settings[k] = v
		}
	}

	body, err := requestBody(r)
	if err != nil {
		return req, err
	}
	defer body.Close()
	br := bufio.NewReaderSize(body, 1<<20)
	text := q.Get("query")
	var dataFollows bool // the body (or its remainder) is INSERT data
	if text != "" {
		st := scanSQL(text)
		if st.kind == "INSERT" && st.formatEnd >= 0 && strings.TrimSpace(text[st.formatEnd:]) == "" {
			dataFollows = true
		} else if rest, err := readLimited(br); err != nil {
			return req, err
		} else if len(rest) > 0 {
			text += "\n" + string(rest)
		}
	} else {
		head, _ := br.Peek(1 << 20)
		st := scanSQL(string(head))
		if st.kind == "INSERT" && st.formatEnd >= 0 {
			// Query and data share the body: the data starts after the format
			// name, past blanks and one line break.
			cut := st.formatEnd
			for cut < len(head) && (head[cut] == ' ' || head[cut] == '\t') {
				cut++
			}
			if cut < len(head) && head[cut] == '\r' {
				cut++
			}
			if cut < len(head) && head[cut] == '\n' {
				cut++
			}
			text = string(head[:st.formatEnd])
			br.Discard(cut)
			dataFollows = true
		} else {
			all, err := readLimited(br)
			if err != nil {
				return req, err
			}
			text = string(all)
		}
	}
	req.sql = strings.TrimRight(strings.TrimSpace(text), ";")
	req.st = scanSQL(req.sql)
	if req.sql == "" {
		return req, newException(codeSyntaxError, "SYNTAX_ERROR", "Empty query")
	}
	if req.st.multi {
		return req, newException(codeSyntaxError, "SYNTAX_ERROR", "Multi-statements are not allowed")
	}
	if req.st.kind == "INSERT" && req.st.format != "" && !identRe.MatchString(req.st.format) {
		return req, newException(codeSyntaxError, "SYNTAX_ERROR", "invalid format name "+strconv.Quote(req.st.format))
	}
	if a != nil && (dataFollows || req.st.kind == "INSERT") {
		return req, newException(164, "READONLY", a.User+": Cannot execute query in readonly mode")
	}
	if dataFollows {
		if err := e.spoolInsert(req, br); err != nil {
			return req, err
		}
	}
	return req, nil
}

// spoolInsert writes the INSERT's data to a file and rewrites the statement to
// read it with FROM INFILE. chDB drops leading whitespace bytes of inline
// INSERT data, which corrupts Native blocks whose first byte is 10, 13 or 32
// (engine-notes.md defect 3).
func (e *Engine) spoolInsert(req *request, data io.Reader) error {
	f, err := os.CreateTemp(e.cfg.SpoolDir, "converge-insert-*")
	if err != nil {
		return fmt.Errorf("spool insert data: %w", err)
	}
	req.spool = f.Name()
	if _, err := io.Copy(f, data); err != nil {
		f.Close()
		return fmt.Errorf("spool insert data to %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("spool insert data to %s: %w", f.Name(), err)
	}
	st := req.st
	if e.cfg.disable.infile {
		b, err := os.ReadFile(req.spool)
		if err != nil {
			return err
		}
		req.sql = req.sql[:st.formatEnd] + "\n" + string(b)
		req.st = scanSQL(req.sql)
		return nil
	}
	at := st.formatAt
	if st.settingAt >= 0 && st.settingAt < at {
		at = st.settingAt
	}
	req.sql = req.sql[:at] + "FROM INFILE " + quoteString(req.spool) + " " + req.sql[at:]
	req.st = scanSQL(req.sql)
	return nil
}

func requestBody(r *http.Request) (io.ReadCloser, error) {
	if r.Body == nil {
		return io.NopCloser(strings.NewReader("")), nil
	}
	switch enc := strings.ToLower(r.Header.Get("Content-Encoding")); enc {
	case "", "identity":
		return r.Body, nil
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, newException(codeBadArguments, "BAD_ARGUMENTS", "request body is not valid gzip: "+err.Error())
		}
		return zr, nil
	case "deflate":
		zr, err := zlib.NewReader(r.Body)
		if err != nil {
			return nil, newException(codeBadArguments, "BAD_ARGUMENTS", "request body is not valid deflate: "+err.Error())
		}
		return zr, nil
	default:
		return nil, newException(codeNotImplemented, "NOT_IMPLEMENTED", "Content-Encoding "+enc+" is not supported by the embedded bridge (use gzip or deflate)")
	}
}

func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxQueryText+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxQueryText {
		return nil, newException(codeTooLarge, "QUERY_IS_TOO_LARGE", fmt.Sprintf("query text is larger than %d bytes", maxQueryText))
	}
	return b, nil
}

var contentTypes = map[string]string{
	"TabSeparated": "text/tab-separated-values; charset=UTF-8", "TSV": "text/tab-separated-values; charset=UTF-8",
	"TabSeparatedWithNames": "text/tab-separated-values; charset=UTF-8", "TSVWithNames": "text/tab-separated-values; charset=UTF-8",
	"CSV": "text/csv; charset=UTF-8; header=absent", "CSVWithNames": "text/csv; charset=UTF-8; header=present",
	"JSON": "application/json; charset=UTF-8", "JSONCompact": "application/json; charset=UTF-8",
	"JSONEachRow": "application/x-ndjson; charset=UTF-8", "Pretty": "text/plain; charset=UTF-8",
	"PrettyCompact": "text/plain; charset=UTF-8",
}

func contentType(format string) string {
	if ct, ok := contentTypes[format]; ok {
		return ct
	}
	if strings.HasPrefix(format, "JSON") {
		return "application/json; charset=UTF-8"
	}
	return "application/octet-stream"
}

// serve runs req on a pooled connection and writes the response; no block of it (or its
// whole output, when materialised) may be larger than limit bytes (see streamOut).
func (e *Engine) serve(ctx context.Context, req *request, w http.ResponseWriter, limit int64) {
	outFormat := req.format
	if req.st.format != "" && req.st.kind != "INSERT" {
		outFormat = req.st.format
	}
	h := w.Header()
	h.Set("X-ClickHouse-Query-Id", req.tag)
	h.Set("X-ClickHouse-Format", outFormat)
	h.Set("X-ClickHouse-Timezone", e.tz)
	h.Set("X-ClickHouse-Server-Display-Name", DisplayName)
	h.Set("Content-Type", contentType(outFormat))

	if req.native && outFormat == "Native" && req.sql == helloQuery {
		w.WriteHeader(http.StatusOK)
		w.Write(e.helloBlock())
		return
	}

	c, err := e.acquire(ctx)
	if err != nil {
		writeException(w, asException(err))
		return
	}
	failed := false
	defer func() {
		if failed {
			e.drain(c)
		}
		if req.st.mutatesSession() {
			c.dirty = true
		}
		e.release(c)
	}()

	if err := e.prepare(c, req); err != nil {
		failed = true
		writeException(w, asException(err))
		return
	}
	if len(req.settings) > 0 {
		defer e.resetSettings(c, req.settings)
	}

	defer e.writing(req.st)()
	sql := "/*cvg:" + req.tag + "*/ " + req.sql
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			e.kill(req.tag)
		case <-done:
		}
	}()

	if !req.st.streams() || req.waitToEnd {
		out, err := c.execLimit(sql, req.format, req.params, limit)
		if err != nil {
			failed = true
			writeException(w, asException(err))
			return
		}
		w.WriteHeader(http.StatusOK)
		w.Write(out)
		return
	}

	s, err := c.stream(sql, req.format, req.params)
	if err != nil {
		failed = true
		writeException(w, asException(err))
		return
	}
	defer s.free()
	failed = e.streamOut(ctx, req, s, w, limit)
}

// prepare brings the connection's session to the request's database and settings.
func (e *Engine) prepare(c *conn, req *request) error {
	db := req.database
	if db == "" {
		db = "default"
	}
	if c.db != db {
		if _, err := c.exec("USE `"+db+"`", "TabSeparated", nil); err != nil {
			return err
		}
		c.db = db
	}
	if len(req.settings) > 0 {
		if _, err := c.exec("SET "+settingsList(req.settings), "TabSeparated", nil); err != nil {
			return err
		}
	}
	return nil
}

// resetSettings returns the changed settings to the engine's baseline; a
// connection that refuses (readonly was set) is replaced.
func (e *Engine) resetSettings(c *conn, changed map[string]string) {
	if _, ro := changed["readonly"]; ro {
		c.dirty = true
		return
	}
	var parts []string
	for k := range changed {
		if v, ok := e.base[k]; ok {
			parts = append(parts, k+" = "+quoteString(v))
		} else {
			parts = append(parts, k+" = DEFAULT")
		}
	}
	if _, err := c.exec("SET "+strings.Join(parts, ", "), "TabSeparated", nil); err != nil {
		e.drain(c)
		c.dirty = true
	}
}

func writeException(w http.ResponseWriter, ex *Exception) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("X-ClickHouse-Exception-Code", strconv.Itoa(ex.Code))
	h.Set("X-ClickHouse-Exception-Name", ex.Name)
	h.Del("X-ClickHouse-Format")
	w.WriteHeader(httpStatus(ex.Code))
	io.WriteString(w, ex.Message+"\n")
}

// writeStreamException frames an error that happened after a 200 was sent,
// as ClickHouse 25.x+ does.
func writeStreamException(w io.Writer, tag string, ex *Exception) {
	msg := ex.Message
	fmt.Fprintf(w, "\r\n__exception__\r\n%s\r\n%s\n%d %s\r\n__exception__\r\n", tag, msg, len(msg)+1, tag)
}

// helloBlock encodes the answer to helloQuery as one Native block at protocol
// revision 54460 (with BlockInfo and custom-serialization flags), reporting
// revision 0.
func (e *Engine) helloBlock() []byte {
	var b []byte
	uv := func(v uint64) { b = binary.AppendUvarint(b, v) }
	str := func(s string) { uv(uint64(len(s))); b = append(b, s...) }
	// BlockInfo: field 1 is_overflows=false, field 2 bucket_num=-1, end.
	uv(1)
	b = append(b, 0)
	uv(2)
	b = binary.LittleEndian.AppendUint32(b, 0xFFFFFFFF)
	uv(0)
	uv(4) // columns
	uv(1) // rows
	col := func(name, typ string, data func()) {
		str(name)
		str(typ)
		b = append(b, 0) // no custom serialization
		data()
	}
	col("displayName()", "String", func() { str(DisplayName) })
	col("version()", "String", func() { str(e.version) })
	col("revision()", "UInt32", func() { b = binary.LittleEndian.AppendUint32(b, 0) })
	col("timezone()", "String", func() { str(e.tz) })
	return b
}
