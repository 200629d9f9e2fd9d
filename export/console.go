package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/metrics"
	convsql "github.com/converge-dev/converge/sql"
	"github.com/converge-dev/converge/warehouse"
)

// The read-only console's types, for callers of Service that do not import warehouse (the
// server).
type (
	// Console is the console's limits (rows, time, memory).
	Console = warehouse.Console
	// ConsoleResult is a console query's result.
	ConsoleResult = warehouse.ConsoleResult
	// ConsoleColumn is a result column.
	ConsoleColumn = warehouse.ConsoleColumn
	// RefusedError is a statement the console does not run.
	RefusedError = warehouse.RefusedError
	// ConsoleLimitError is a query stopped at a time or memory limit.
	ConsoleLimitError = warehouse.ConsoleLimitError
	// ResultTooLargeError is a result larger than its caller may hold.
	ResultTooLargeError = warehouse.ResultTooLargeError
)

// WithResultLimit bounds the results of the queries run with ctx to limit bytes, whole and
// per block (warehouse.WithResultLimit): for callers that hold a result, such as the metric
// API's answers.
func WithResultLimit(ctx context.Context, limit int64) context.Context {
	return warehouse.WithResultLimit(ctx, warehouse.ResultLimit{Total: limit, Block: limit})
}

// AsResultTooLarge finds the *ResultTooLargeError in err, if the result was too large.
func AsResultTooLarge(err error) (*ResultTooLargeError, bool) {
	return warehouse.AsResultTooLarge(err, 0)
}

// Service is the server's door to exports and to the SQL console: the store, the metrics
// registry, the console's limits, and each user's console history (table console_history).
type Service struct {
	Store    *warehouse.Store
	Registry *metrics.Registry // nil: Metric answers an error
	// Console limits the console's runs (all its limits) and downloads (all but MaxRows and
	// MaxResultBytes: a download's rows are limited by its Options.MaxRows, its blocks by
	// BlockBytes).
	Console Console
	// Gate bounds how many console runs and downloads run at once, per person and in all;
	// nil: no bound.
	Gate *Gate
	// Margin is report.default_margin: the gross margin assumed where an order's cost is
	// unknown, for metric exports whose Params set none.
	Margin float64
	// Now is the clock of history entries; nil: time.Now.
	Now func() time.Time
}

// Limits are the console's limits, with their defaults filled in.
func (s *Service) Limits() Console {
	c := s.Console.WithDefaults()
	if c.MaxRows < 0 || c.MaxRows > warehouse.MaxConsoleRows {
		c.MaxRows = warehouse.MaxConsoleRows
	}
	return c
}

// Metric exports a metric (see Metric).
func (s *Service) Metric(ctx context.Context, name string, p metrics.Params, w io.Writer, o Options) (*Manifest, error) {
	if s.Registry == nil {
		return nil, errors.New("export: no metrics registry")
	}
	if p.Margin == 0 {
		p.Margin = s.Margin
	}
	return Metric(ctx, s.Registry, s.Store, name, p, w, o)
}

// SQL exports a read-only query's rows under the console's limits (see SQL), as one of
// user's console queries (Gate: a *BusyError when too many run).
func (s *Service) SQL(ctx context.Context, user, query string, w io.Writer, o Options) (*Manifest, error) {
	if _, err := warehouse.CheckReadOnly(query); err != nil {
		return nil, err // refused before it counts
	}
	release, err := s.Gate.Enter(user)
	if err != nil {
		return nil, err
	}
	defer release()
	return SQL(ctx, s.Store, s.Limits(), query, w, o)
}

// Run runs a read-only query in the console, holding at most Limits().MaxRows rows and
// MaxResultBytes bytes, as one of user's console queries (Gate: a *BusyError when too many
// run).
func (s *Service) Run(ctx context.Context, user, query string) (*ConsoleResult, error) {
	if _, err := warehouse.CheckReadOnly(query); err != nil {
		return nil, err
	}
	release, err := s.Gate.Enter(user)
	if err != nil {
		return nil, err
	}
	defer release()
	return s.Limits().Run(ctx, s.Store, query)
}

// ConsoleGate is the gate of console queries (nil: none).
func (s *Service) ConsoleGate() *Gate { return s.Gate }

// HistoryEntry is one query a user ran or downloaded in the console.
type HistoryEntry struct {
	ID       string // a UUID, set by the store
	User     string
	At       time.Time // UTC, when it started
	Query    string    // as submitted
	Kind     string    // "run", or the download's format: "csv", "xlsx", "zip"
	Duration time.Duration
	Rows     int  // rows returned (shown or written)
	Limited  bool // the result had more rows than the limit
	OK       bool
	Error    string // why it did not run (OK false)
}

// MaxHistory is the most entries History returns.
const MaxHistory = 1000

// Record appends e to its user's history. A zero At is the service's clock.
func (s *Service) Record(ctx context.Context, e HistoryEntry) error {
	if e.User == "" {
		return errors.New("console history: no user")
	}
	if e.At.IsZero() {
		e.At = s.now()
	}
	if e.Kind == "" {
		e.Kind = "run"
	}
	ms := min(max(e.Duration.Milliseconds(), 0), int64(^uint32(0)))
	err := s.Store.App.Exec(ctx, convsql.ConsoleQuery("history_insert"),
		clickhouse.Named("user", e.User), clickhouse.Named("at", e.At.UTC().Format("2006-01-02 15:04:05.000")),
		clickhouse.Named("query", e.Query), clickhouse.Named("kind", e.Kind),
		clickhouse.Named("duration_ms", fmt.Sprint(ms)), clickhouse.Named("rows", fmt.Sprint(max(e.Rows, 0))),
		clickhouse.Named("limited", fmt.Sprint(e.Limited)), clickhouse.Named("ok", fmt.Sprint(e.OK)),
		clickhouse.Named("error", e.Error))
	if err != nil {
		return fmt.Errorf("console history: record: %w", err)
	}
	return nil
}

// History returns user's latest limit entries (at most MaxHistory), newest first.
func (s *Service) History(ctx context.Context, user string, limit int) ([]HistoryEntry, error) {
	limit = min(max(limit, 1), MaxHistory)
	rows, err := s.Store.App.Query(ctx, convsql.ConsoleQuery("history_list"),
		clickhouse.Named("user", user), clickhouse.Named("limit", fmt.Sprint(limit)))
	if err != nil {
		return nil, fmt.Errorf("console history: %w", err)
	}
	defer rows.Close()
	out := []HistoryEntry{}
	for rows.Next() {
		e, err := scanHistory(rows, user)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("console history: %w", err)
	}
	return out, nil
}

// ErrNoEntry is Entry's answer for an id that is not one of the user's entries.
var ErrNoEntry = errors.New("console history: no such entry")

// Entry returns the user's history entry id, or ErrNoEntry (also for another user's entry).
func (s *Service) Entry(ctx context.Context, user, id string) (HistoryEntry, error) {
	rows, err := s.Store.App.Query(ctx, convsql.ConsoleQuery("history_get"),
		clickhouse.Named("user", user), clickhouse.Named("id", id))
	if err != nil {
		return HistoryEntry{}, fmt.Errorf("console history: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return HistoryEntry{}, fmt.Errorf("console history: %w", err)
		}
		return HistoryEntry{}, ErrNoEntry
	}
	return scanHistory(rows, user)
}

func scanHistory(rows interface{ Scan(...any) error }, user string) (HistoryEntry, error) {
	e := HistoryEntry{User: user}
	var ms uint32
	var n uint64
	if err := rows.Scan(&e.ID, &e.At, &e.Query, &e.Kind, &ms, &n, &e.Limited, &e.OK, &e.Error); err != nil {
		return e, fmt.Errorf("console history: %w", err)
	}
	e.At, e.Duration, e.Rows = e.At.UTC(), time.Duration(ms)*time.Millisecond, int(n)
	return e, nil
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// QueryError reports whether err is about the query itself, which its author can fix: the
// console refused it, the engine rejected it (syntax, an unknown table or column, types…) or
// stopped it at a limit, or its result is larger than the console holds. Other errors are
// the store's (it did not answer, …).
func QueryError(err error) bool {
	var ex *clickhouse.Exception
	var lim *ConsoleLimitError
	var ref *RefusedError
	var big *ResultTooLargeError
	var tot *warehouse.TotalsError
	return errors.As(err, &ex) || errors.As(err, &lim) || errors.As(err, &ref) || errors.As(err, &big) || errors.As(err, &tot)
}
