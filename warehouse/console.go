package warehouse

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
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
// Limits (each configurable, see the fields): max_execution_time (Timeout, also the
// context's deadline), max_memory_usage (MaxMemory), max_bytes_to_read (MaxBytesToRead),
// MaxRows rows (a longer result is cut at MaxRows and says so, Limited, never silently), and
// the bytes of the result Go holds (MaxResultBytes for Run, BlockBytes per block for Open;
// a *ResultTooLargeError past them, see result.go). Console queries yield to the
// application's: they run at a lower engine priority (Priority; the application's are at
// embedded.DefaultPriority) with few threads (MaxThreads), so a heavy analyst slows the
// dashboards little. How many run at once is the caller's to bound (export.Gate).
type Console struct {
	MaxRows   int           // rows returned; 0 means DefaultConsoleRows, NoRowLimit none (streaming only)
	Timeout   time.Duration // time limit of the query; 0 means DefaultConsoleTimeout
	MaxMemory int64         // bytes the query may use in the engine; 0 means DefaultConsoleMemory
	// BlockRows, when positive, is the engine's block size for the query (max_block_size):
	// smaller blocks bound the engine's working set while many rows stream out (exports).
	BlockRows int
	// MaxResultBytes bounds the result Run holds: the engine's result (max_result_bytes), each
	// block read, and the values kept; 0 means DefaultConsoleResultBytes.
	MaxResultBytes int64
	// BlockBytes bounds one block of a result streamed by Open; 0 means
	// DefaultConsoleBlockBytes. A first block over it is asked for again in blocks of fewer
	// rows (once); a later one ends the rows with a *ResultTooLargeError.
	BlockBytes int64
	// MaxThreads is the engine's threads for the query (max_threads); 0 means
	// DefaultConsoleThreads().
	MaxThreads int
	// Priority is the engine's priority of the query (a larger number is a lower priority;
	// the application's queries run at 1); 0 means DefaultConsolePriority.
	Priority int
	// MaxBytesToRead bounds the bytes the query reads from tables, uncompressed
	// (max_bytes_to_read: the engine refuses a query whose estimate is over it before
	// reading, and stops one that gets there); 0: no bound.
	MaxBytesToRead int64
}

// Console defaults and bounds.
const (
	DefaultConsoleRows    = 1000
	MaxConsoleRows        = 100_000 // Run holds the rows in memory: at most this many
	DefaultConsoleTimeout = 30 * time.Second
	DefaultConsoleMemory  = 1 << 30
	NoRowLimit            = -1
	// DefaultConsoleResultBytes is what the console page holds of a result: its HTML is about
	// twice that, and a browser still lays out a table of it.
	DefaultConsoleResultBytes = 16 << 20
	// DefaultConsoleBlockBytes is the largest block of a streamed result: a download holds
	// one or two at a time (one decoded, one being written).
	DefaultConsoleBlockBytes = 64 << 20
	// DefaultConsolePriority is the engine priority of console queries: lower than the
	// application's (embedded.DefaultPriority), so they pause while a dashboard's run.
	DefaultConsolePriority = 10
)

// DefaultConsoleThreads is the engine threads of a console query by default: half the
// machine's cores, at least one.
func DefaultConsoleThreads() int { return max(1, runtime.NumCPU()/2) }

// ConsoleLimitError is a query the engine stopped at one of the console's
// limits (time, memory or bytes read).
type ConsoleLimitError struct {
	Limit string // "time (30s)", "memory (1024 MiB)", "bytes read (10 GiB)"
	Err   error
}

func (e *ConsoleLimitError) Error() string {
	return "read-only console: the query exceeded the " + e.Limit + " limit: " + e.Err.Error()
}

func (e *ConsoleLimitError) Unwrap() error { return e.Err }

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
	// Totals is the statement's WITH TOTALS row (nil without one); TotalsError says why it
	// could not be read, if so (the rows are complete all the same).
	Totals      []any         `json:"totals,omitempty"`
	TotalsError string        `json:"totals_error,omitempty"`
	Limited     bool          `json:"limited"`  // the result had more rows than MaxRows; Rows holds the first MaxRows
	MaxRows     int           `json:"max_rows"` // the row limit in force
	Bytes       int64         `json:"bytes"`    // the memory its values take (about), at most the limit
	Elapsed     time.Duration `json:"elapsed"`
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

// WithDefaults is c with every zero limit at its default.
func (c Console) WithDefaults() Console {
	if c.MaxRows == 0 {
		c.MaxRows = DefaultConsoleRows
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultConsoleTimeout
	}
	if c.MaxMemory <= 0 {
		c.MaxMemory = DefaultConsoleMemory
	}
	if c.MaxResultBytes <= 0 {
		c.MaxResultBytes = DefaultConsoleResultBytes
	}
	if c.BlockBytes <= 0 {
		c.BlockBytes = DefaultConsoleBlockBytes
	}
	if c.MaxThreads <= 0 {
		c.MaxThreads = DefaultConsoleThreads()
	}
	if c.Priority <= 0 {
		c.Priority = DefaultConsolePriority
	}
	return c
}

// Run checks sql and runs it, holding at most MaxRows rows (capped at MaxConsoleRows) of at
// most MaxResultBytes: a larger result is a *ResultTooLargeError, not cut (the caller says to
// download it or add a LIMIT). A statement WITH TOTALS also gets its totals row.
func (c Console) Run(ctx context.Context, st *Store, sql string) (*ConsoleResult, error) {
	c = c.WithDefaults()
	if c.MaxRows < 0 || c.MaxRows > MaxConsoleRows {
		c.MaxRows = MaxConsoleRows
	}
	stmt, err := CheckReadOnly(sql)
	if err != nil {
		return nil, err
	}
	if err := c.checkBoundary(ctx, st, stmt); err != nil {
		return nil, err
	}
	start := time.Now()
	rows, err := c.open(ctx, st, stmt, true)
	if err != nil {
		return nil, held(err, c.MaxResultBytes)
	}
	defer rows.Close()
	res := &ConsoleResult{Statement: rows.Statement, Columns: rows.Columns, Rows: [][]any{}, MaxRows: c.MaxRows}
	for rows.Next() {
		v := rows.Values()
		res.Bytes += rowBytes(v)
		if res.Bytes > c.MaxResultBytes {
			return nil, &ResultTooLargeError{Limit: c.MaxResultBytes}
		}
		res.Rows = append(res.Rows, v)
	}
	if err := rows.Err(); err != nil {
		return nil, held(err, c.MaxResultBytes)
	}
	res.Limited = rows.Limited()
	if t, err := rows.Totals(); err != nil {
		res.TotalsError = err.Error()
	} else if t != nil {
		res.Totals = valuesOf(t)
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// held is err for a caller that holds the whole result: a block over the limit (which is
// the whole result's, then) is the result over it.
func held(err error, limit int64) error {
	var tl *ResultTooLargeError
	if errors.As(err, &tl) && tl.Block {
		return &ResultTooLargeError{Limit: limit}
	}
	return err
}

// Open checks sql and starts it, for streaming its rows (a CSV download):
// ConsoleRows stops after MaxRows rows and then reports whether there were
// more. No block of it is larger than BlockBytes.
func (c Console) Open(ctx context.Context, st *Store, sql string) (*ConsoleRows, error) {
	stmt, err := CheckReadOnly(sql)
	if err != nil {
		return nil, err
	}
	if err := c.checkBoundary(ctx, st, stmt); err != nil {
		return nil, err
	}
	return c.open(ctx, st, stmt, false)
}

// settings are the engine settings of a console query; hold: for Run, which holds the
// result (max_result_bytes, refused rather than cut).
func (c Console) settings(ctx context.Context, hold bool) clickhouse.Settings {
	limit := c.Timeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < limit {
		limit = time.Until(d)
	}
	s := clickhouse.Settings{
		"readonly":           1,
		"max_execution_time": max(1, int(math.Ceil(limit.Seconds()))),
		"max_memory_usage":   c.MaxMemory,
		"max_threads":        c.MaxThreads,
		"priority":           c.Priority,
	}
	if c.BlockRows > 0 {
		s["max_block_size"] = c.BlockRows
	}
	if c.MaxRows > 0 {
		// The engine sends the row that shows there are more, and stops (the setting limit
		// caps the outermost SELECT's LIMIT: a sort keeps only the top rows).
		s["limit"] = c.MaxRows + 1
	}
	if c.MaxBytesToRead > 0 {
		s["max_bytes_to_read"] = c.MaxBytesToRead
	}
	if hold {
		s["max_result_bytes"] = c.MaxResultBytes
		s["result_overflow_mode"] = "throw"
	}
	return s
}

// open runs stmt read-only with the console's limits, unchecked. hold: for Run (see
// settings; each block at most MaxResultBytes), else streamed (each block at most
// BlockBytes; a first block over it is asked for again, once, in blocks of fewer rows).
func (c Console) open(ctx context.Context, st *Store, stmt string, hold bool) (*ConsoleRows, error) {
	c = c.WithDefaults()
	r, err := c.start(ctx, st, stmt, hold)
	var tl *ResultTooLargeError
	if hold || !errors.As(err, &tl) || !tl.Block {
		return r, err
	}
	// Rows too wide for blocks of this many rows: ask for blocks that fit in half the limit.
	rows := int64(c.BlockRows)
	if rows <= 0 {
		rows = 65536
	}
	if tl.Rows > 0 && tl.Bytes > 0 {
		rows = min(rows, tl.Rows) * c.BlockBytes / 2 / tl.Bytes
	} else {
		rows /= 16
	}
	// Not below minRetryRows: a block of a row or two makes a long export crawl.
	rows = max(rows, minRetryRows)
	if c.BlockRows > 0 && int(rows) >= c.BlockRows {
		return nil, err
	}
	c.BlockRows = int(rows)
	return c.start(ctx, st, stmt, hold)
}

// minRetryRows is the fewest rows a block is asked for in when a first block was too large.
const minRetryRows = 16

// consoleTrailer ends every console statement sent: the client refuses a statement that
// seems to end in a FORMAT clause (even in a comment); the console has refused real ones.
const consoleTrailer = "\n/* converge console */"

func (c Console) start(ctx context.Context, st *Store, stmt string, hold bool) (*ConsoleRows, error) {
	block := c.BlockBytes
	if hold {
		block = c.MaxResultBytes
	}
	// clickhouse-go replaces max_execution_time by the context's deadline +
	// 5 s when there is one: the query gets a context that is cancelled at
	// the limit (and with ctx) but reports no deadline.
	qctx, cancel := context.WithTimeout(ctx, c.Timeout+2*time.Second)
	settings := c.settings(ctx, hold)
	r := &ConsoleRows{Statement: stmt, limit: c.MaxRows, cancel: cancel, c: c, st: st, parent: ctx, hold: hold}
	var src rowSource
	bs, cols, err := openBlocks(WithResultLimit(noDeadline{qctx}, ResultLimit{Block: block}), st, stmt+consoleTrailer, settings, block, 0)
	if err == nil {
		src = bs
	}
	if errors.Is(err, clickhouse.ErrFormatNativeUnsupported) {
		var dr *driverRows
		dr, cols, err = openDriverRows(clickhouse.Context(noDeadline{qctx}, clickhouse.WithSettings(settings)), st, stmt)
		src = dr
	}
	if err != nil {
		cancel()
		return nil, c.queryError(err)
	}
	r.src, r.Columns = src, cols
	r.dest = src.dest()
	return r, nil
}

// noDeadline is a context that is cancelled with its parent but reports no
// deadline.
type noDeadline struct{ context.Context }

func (noDeadline) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c Console) queryError(err error) error {
	if tl, ok := AsResultTooLarge(err, c.MaxResultBytes); ok {
		return tl
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		switch ex.Code {
		case 159: // TIMEOUT_EXCEEDED
			return &ConsoleLimitError{Limit: "time (" + c.Timeout.String() + ")", Err: err}
		case 241: // MEMORY_LIMIT_EXCEEDED
			return &ConsoleLimitError{Limit: "memory (" + strconv.FormatInt(c.MaxMemory>>20, 10) + " MiB)", Err: err}
		case 307: // TOO_MANY_BYTES
			return &ConsoleLimitError{Limit: "bytes read (" + FormatBytes(c.MaxBytesToRead) + ")", Err: err}
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &ConsoleLimitError{Limit: "time (" + c.Timeout.String() + ")", Err: err}
	}
	return fmt.Errorf("read-only console: %w", err)
}
