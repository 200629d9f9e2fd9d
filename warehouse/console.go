package warehouse

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Console runs analysts' SQL read-only: the statement behind the SQL console
// page, `converge sql --read-only` and `converge export sql`. Each statement
// is checked three times:
//
//  1. By the console, on tokens (strings, quoted identifiers, heredocs and
//     nested comments are lexed as the engine lexes them, so neither can hide
//     or fake a keyword): exactly one statement (a trailing semicolon is
//     fine) starting with SELECT, WITH, SHOW, DESCRIBE/DESC or EXPLAIN (of a
//     query); no SETTINGS clause anywhere (also not in a subquery); no INTO
//     OUTFILE (chDB writes the file even with readonly=1); no FORMAT clause
//     (the console chooses the format); and no function that reaches files,
//     URLs or other servers (see blockedFunction), called by a bare or quoted
//     name. A column or a string named like one of them is fine.
//  2. By the engine: the query runs with readonly=1, which refuses every write,
//     DDL, SET and SETTINGS change, and the file/url/remote table functions.
//     readonly=2 does not do: it lets a query change settings (and in chDB run
//     file() and remote()). The bridge applies the request's settings in one SET
//     statement, whose constraints are checked against the session before it,
//     so readonly=1 and the limits below arrive together; a ClickHouse server
//     does the same with the settings of an HTTP request.
//  3. By the boundary (CheckBoundary, boundary.go), before it runs: it reads
//     nothing of converge's own tables (the app database), other databases,
//     or system tables that hold other sessions' queries; on a server it
//     also runs as the console's own user (Config.ConsoleUser), if one is set.
//
// Limits: max_execution_time (Timeout, also the context's deadline),
// max_memory_usage (MaxMemory), and MaxRows rows: a longer result is cut at
// MaxRows and says so (Limited), never silently.
type Console struct {
	MaxRows   int           // rows returned; 0 means DefaultConsoleRows, NoRowLimit none (streaming only)
	Timeout   time.Duration // time limit of the query; 0 means DefaultConsoleTimeout
	MaxMemory int64         // bytes the query may use; 0 means DefaultConsoleMemory
	// BlockRows, when positive, is the engine's block size for the query (max_block_size):
	// smaller blocks bound the engine's working set while many rows stream out (exports).
	BlockRows int
}

// Console defaults and bounds.
const (
	DefaultConsoleRows    = 1000
	MaxConsoleRows        = 100_000 // Run holds the rows in memory: at most this many
	DefaultConsoleTimeout = 30 * time.Second
	DefaultConsoleMemory  = 1 << 30
	NoRowLimit            = -1
)

// RefusedError is a statement the console does not run. Reason names the
// offending statement, function, setting, clause or table.
type RefusedError struct {
	Reason string
	// Table is set when the statement reads outside the boundary (see
	// CheckBoundary): the table (database.name) or table function. Offset
	// is where the statement names it (or the view it is read through), in
	// bytes, or -1 when only the engine's analysis found it.
	Table  string
	Offset int
}

func (e *RefusedError) Error() string { return "read-only console: " + e.Reason }

func refuse(format string, args ...any) error {
	return &RefusedError{Reason: fmt.Sprintf(format, args...)}
}

// ConsoleLimitError is a query the engine stopped at one of the console's
// limits (time or memory).
type ConsoleLimitError struct {
	Limit string // "time" or "memory"
	Err   error
}

func (e *ConsoleLimitError) Error() string {
	return "read-only console: the query exceeded the " + e.Limit + " limit: " + e.Err.Error()
}

func (e *ConsoleLimitError) Unwrap() error { return e.Err }

var allowedStatements = []string{"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN"}

// CheckReadOnly checks sql as the console does before running it and returns
// the statement to run (without a trailing semicolon), or a *RefusedError.
func CheckReadOnly(sql string) (string, error) { return checkReadOnly(sql, false) }

// checkReadOnly is CheckReadOnly; allowFormat lets the statement end with a
// FORMAT clause (the endpoint's analyst user: tools choose their format).
func checkReadOnly(sql string, allowFormat bool) (string, error) {
	toks, err := tokenize(sql)
	if err != nil {
		return "", refuse("cannot read the statement: %v", err)
	}
	end := slices.IndexFunc(toks, func(t sqlToken) bool { return t.is(";") })
	stmt := strings.TrimSpace(sql)
	if end >= 0 {
		if i := slices.IndexFunc(toks[end:], func(t sqlToken) bool { return !t.is(";") }); i >= 0 {
			second := toks[end+i]
			return "", refuse("one statement at a time: a second statement starts at offset %d (%s…)", second.pos, snippet(sql[second.pos:]))
		}
		stmt = strings.TrimSpace(sql[:toks[end].pos])
		toks = toks[:end]
	}
	if len(toks) == 0 {
		return "", refuse("empty statement")
	}
	if err := checkKind(toks); err != nil {
		return "", err
	}
	for i, t := range toks {
		next := func(k int) (sqlToken, bool) {
			if i+k < len(toks) {
				return toks[i+k], true
			}
			return sqlToken{}, false
		}
		n1, ok1 := next(1)
		n2, ok2 := next(2)
		switch {
		case (t.kind == tokWord || t.kind == tokIdent) && ok1 && n1.is("("):
			if why := blockedFunction(t.name()); why != "" {
				return "", refuse("function %s() is not allowed: %s", t.name(), why)
			}
		case t.is("SETTINGS") && ok1 && (n1.kind == tokWord || n1.kind == tokIdent) && ok2 && n2.is("="):
			return "", refuse("SETTINGS clause (%s = …) is not allowed: the console's settings and limits cannot be overridden", n1.name())
		case t.is("INTO") && ok1 && n1.is("OUTFILE"):
			return "", refuse("INTO OUTFILE is not allowed: the console writes no files")
		case !allowFormat && t.is("FORMAT") && ok1 && n1.kind == tokWord && !slices.ContainsFunc([]string{"ASC", "DESC", "ASCENDING", "DESCENDING"}, n1.is) &&
			(!ok2 || n2.is(")")):
			return "", refuse("FORMAT %s is not allowed: the console chooses the output format", n1.text)
		}
	}
	return stmt, nil
}

// checkKind allows SELECT, WITH, SHOW, DESCRIBE/DESC and EXPLAIN of a query.
func checkKind(toks []sqlToken) error {
	i := 0
	for i < len(toks) && toks[i].is("(") {
		i++
	}
	if i == len(toks) || toks[i].kind != tokWord {
		return refuse("the statement must start with one of %s", strings.Join(allowedStatements, ", "))
	}
	kind := strings.ToUpper(toks[i].text)
	if !slices.Contains(allowedStatements, kind) || i > 0 && kind != "SELECT" && kind != "WITH" {
		return refuse("%s statements are not allowed: the console runs %s only", kind, strings.Join(allowedStatements, ", "))
	}
	if kind != "EXPLAIN" {
		return nil
	}
	j := explainedQuery(toks, i)
	if j >= len(toks) || !toks[j].is("SELECT") && !toks[j].is("WITH") {
		what := "nothing"
		if j < len(toks) {
			what = strings.ToUpper(toks[j].text)
		}
		return refuse("EXPLAIN %s is not allowed: only queries (SELECT, WITH) can be explained", what)
	}
	return nil
}

// explainedQuery is the index of the token that starts what the EXPLAIN at
// toks[i] explains: EXPLAIN [AST|SYNTAX|QUERY TREE|PLAN|PIPELINE|ESTIMATE|TABLE
// OVERRIDE] [name = value, …] query.
func explainedQuery(toks []sqlToken, i int) int {
	explainWords := []string{"AST", "SYNTAX", "QUERY", "TREE", "PLAN", "PIPELINE", "ESTIMATE", "TABLE", "OVERRIDE"}
	j := i + 1
	for skip := true; skip && j < len(toks); {
		switch {
		case slices.ContainsFunc(explainWords, toks[j].is), toks[j].is(","), toks[j].is("("):
			j++
		case toks[j].kind == tokWord && j+1 < len(toks) && toks[j+1].is("="):
			j += 3 // name = value
		default:
			skip = false
		}
	}
	return j
}

// blockedFunction says why a function (or table function) may not be called
// from the console, or "" when it may: those that read or write files, URLs,
// object stores, other databases or servers, or run programs. Names are
// compared case-insensitively (the engine's own lookups are case-sensitive,
// so this only refuses more): file, fileCluster, url, urlCluster, input,
// catboostEvaluate, and everything starting with remote (remoteSecure),
// cluster (clusterAllReplicas), s3, gcs, oss, cosn, hdfs, azureBlobStorage,
// iceberg, deltaLake, hudi, paimon, mysql, postgres, mongo, redis, sqlite,
// jdbc, odbc, executable, arrowFlight, ytsaurus.
func blockedFunction(name string) string {
	n := strings.ToLower(name)
	switch n {
	case "file", "filecluster":
		return "it reads files of the server"
	case "url", "urlcluster":
		return "it reads URLs"
	case "input":
		return "it reads inserted data"
	case "catboostevaluate":
		return "it loads a model file"
	}
	for _, p := range []string{"remote", "cluster"} {
		if strings.HasPrefix(n, p) {
			return "it queries other servers"
		}
	}
	for _, p := range []string{"s3", "gcs", "oss", "cosn", "hdfs", "azureblobstorage", "iceberg", "deltalake", "hudi", "paimon"} {
		if strings.HasPrefix(n, p) {
			return "it reads object storage or a data lake"
		}
	}
	for _, p := range []string{"mysql", "postgres", "mongo", "redis", "sqlite", "jdbc", "odbc", "arrowflight", "ytsaurus"} {
		if strings.HasPrefix(n, p) {
			return "it queries another database"
		}
	}
	if strings.HasPrefix(n, "executable") {
		return "it runs programs"
	}
	return ""
}

func snippet(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 30 {
		return string(r[:30])
	}
	return s
}

// ConsoleColumn is a result column: its name and ClickHouse type.
type ConsoleColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// ConsoleResult is a checked statement's result, at most MaxRows rows.
// Values are nil (NULL), string, bool, int64, uint64, float64, time.Time, or
// the client's type for others (decimal.Decimal, *big.Int, uuid.UUID, slices,
// maps).
type ConsoleResult struct {
	Statement string          `json:"statement"`
	Columns   []ConsoleColumn `json:"columns"`
	Rows      [][]any         `json:"rows"`
	Limited   bool            `json:"limited"`  // the result had more rows than MaxRows; Rows holds the first MaxRows
	MaxRows   int             `json:"max_rows"` // the row limit in force
	Elapsed   time.Duration   `json:"elapsed"`
}

// Summary states how many rows the result holds: "3 rows", or "first 1,000
// rows of more (row limit 1,000)".
func (r *ConsoleResult) Summary() string {
	if r.Limited {
		return fmt.Sprintf("first %s rows of more (row limit %s)", groupDigits(len(r.Rows)), groupDigits(r.MaxRows))
	}
	if len(r.Rows) == 1 {
		return "1 row"
	}
	return groupDigits(len(r.Rows)) + " rows"
}

func groupDigits(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func (c Console) withDefaults() Console {
	if c.MaxRows == 0 {
		c.MaxRows = DefaultConsoleRows
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultConsoleTimeout
	}
	if c.MaxMemory <= 0 {
		c.MaxMemory = DefaultConsoleMemory
	}
	return c
}

// Run checks sql and runs it, holding at most MaxRows rows (capped at
// MaxConsoleRows).
func (c Console) Run(ctx context.Context, st *Store, sql string) (*ConsoleResult, error) {
	c = c.withDefaults()
	if c.MaxRows < 0 || c.MaxRows > MaxConsoleRows {
		c.MaxRows = MaxConsoleRows
	}
	start := time.Now()
	rows, err := c.Open(ctx, st, sql)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	res := &ConsoleResult{Statement: rows.Statement, Columns: rows.Columns, Rows: [][]any{}, MaxRows: c.MaxRows}
	for rows.Next() {
		res.Rows = append(res.Rows, rows.Values())
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	res.Limited = rows.Limited()
	res.Elapsed = time.Since(start)
	return res, nil
}

// Open checks sql and starts it, for streaming its rows (a CSV download):
// ConsoleRows stops after MaxRows rows and then reports whether there were
// more.
func (c Console) Open(ctx context.Context, st *Store, sql string) (*ConsoleRows, error) {
	stmt, err := CheckReadOnly(sql)
	if err != nil {
		return nil, err
	}
	if err := c.checkBoundary(ctx, st, stmt); err != nil {
		return nil, err
	}
	return c.open(ctx, st, stmt)
}

// open runs stmt read-only with the console's limits, unchecked.
func (c Console) open(ctx context.Context, st *Store, stmt string) (*ConsoleRows, error) {
	c = c.withDefaults()
	limit := c.Timeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < limit {
		limit = time.Until(d)
	}
	settings := clickhouse.Settings{
		"readonly":           1,
		"max_execution_time": max(1, int(math.Ceil(limit.Seconds()))),
		"max_memory_usage":   c.MaxMemory,
	}
	if c.BlockRows > 0 {
		settings["max_block_size"] = c.BlockRows
	}
	if c.MaxRows > 0 {
		// The engine stops soon after the row that shows there are more.
		settings["max_result_rows"] = c.MaxRows + 1
		settings["result_overflow_mode"] = "break"
	}
	// clickhouse-go replaces max_execution_time by the context's deadline +
	// 5 s when there is one: the query gets a context that is cancelled at
	// the limit (and with ctx) but reports no deadline.
	ctx, cancel := context.WithTimeout(ctx, c.Timeout+2*time.Second)
	rows, err := st.console.Query(clickhouse.Context(noDeadline{ctx}, clickhouse.WithSettings(settings)), stmt)
	if err != nil {
		cancel()
		return nil, c.queryError(err)
	}
	r := &ConsoleRows{Statement: stmt, rows: rows, limit: c.MaxRows, cancel: cancel, c: c}
	for _, ct := range rows.ColumnTypes() {
		r.Columns = append(r.Columns, ConsoleColumn{Name: ct.Name(), Type: ct.DatabaseTypeName()})
		r.dest = append(r.dest, reflect.New(ct.ScanType()).Interface())
	}
	return r, nil
}

// noDeadline is a context that is cancelled with its parent but reports no
// deadline.
type noDeadline struct{ context.Context }

func (noDeadline) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c Console) queryError(err error) error {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		switch ex.Code {
		case 159: // TIMEOUT_EXCEEDED
			return &ConsoleLimitError{Limit: "time (" + c.Timeout.String() + ")", Err: err}
		case 241: // MEMORY_LIMIT_EXCEEDED
			return &ConsoleLimitError{Limit: "memory (" + strconv.FormatInt(c.MaxMemory>>20, 10) + " MiB)", Err: err}
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &ConsoleLimitError{Limit: "time (" + c.Timeout.String() + ")", Err: err}
	}
	return fmt.Errorf("read-only console: %w", err)
}

// ConsoleRows streams a console query's rows. Next stops after the row
// limit; Limited then says whether the result had more rows.
type ConsoleRows struct {
	Statement string
	Columns   []ConsoleColumn

	rows    driver.Rows
	dest    []any
	limit   int
	n       int
	limited bool
	err     error
	cancel  context.CancelFunc
	c       Console
	closed  bool
}

// Next advances to the next row within the limit.
func (r *ConsoleRows) Next() bool {
	if r.err != nil || r.limit > 0 && r.n >= r.limit {
		if r.err == nil && !r.limited && r.rows.Next() {
			r.limited = true
		}
		return false
	}
	if !r.rows.Next() {
		return false
	}
	if err := r.rows.Scan(r.dest...); err != nil {
		r.err = fmt.Errorf("read-only console: row %d: %w", r.n+1, err)
		return false
	}
	r.n++
	return true
}

// Scan returns pointers to the current row's values (*T, or **T for a
// Nullable column, nil when NULL). They are reused by the next row.
func (r *ConsoleRows) Scan() []any { return r.dest }

// Values returns a copy of the current row (see ConsoleResult for the types).
func (r *ConsoleRows) Values() []any {
	out := make([]any, len(r.dest))
	for i, d := range r.dest {
		out[i] = plainValue(reflect.ValueOf(d).Elem())
	}
	return out
}

func plainValue(v reflect.Value) any {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint()
	case reflect.Float32, reflect.Float64:
		return v.Float()
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return v.Bool()
	}
	return v.Interface()
}

// Count is the number of rows read so far.
func (r *ConsoleRows) Count() int { return r.n }

// Limited reports whether the result had more rows than the limit (valid
// once Next returned false).
func (r *ConsoleRows) Limited() bool { return r.limited }

// Limit is the row limit in force (NoRowLimit for none).
func (r *ConsoleRows) Limit() int { return r.limit }

// Err is the error that ended the rows, if any.
func (r *ConsoleRows) Err() error {
	if r.err != nil {
		return r.err
	}
	if err := r.rows.Err(); err != nil {
		return r.c.queryError(err)
	}
	return nil
}

// Close ends the query (cancelling it if rows are left).
func (r *ConsoleRows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.rows.Close()
	r.cancel()
	return err
}

// TableRefs lists the tables sql names after FROM and JOIN, in database db
// (unqualified names, or qualified with db), sorted and without repeats.
// Table functions and subqueries are not tables; a name that is a CTE is
// listed too (the caller keeps the names that exist).
func TableRefs(sql, db string) []string {
	toks, err := tokenize(sql)
	if err != nil {
		return nil
	}
	var out []string
	for i := 0; i+1 < len(toks); i++ {
		if !toks[i].is("FROM") && !toks[i].is("JOIN") {
			continue
		}
		t := toks[i+1]
		if t.kind != tokWord && t.kind != tokIdent {
			continue
		}
		name, j := t.name(), i+2
		if j+1 < len(toks) && toks[j].is(".") && (toks[j+1].kind == tokWord || toks[j+1].kind == tokIdent) {
			if t.name() != db {
				continue
			}
			name, j = toks[j+1].name(), j+2
		}
		if j < len(toks) && toks[j].is("(") {
			continue
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
