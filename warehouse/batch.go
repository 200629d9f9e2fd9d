package warehouse

import (
	"context"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// BatchWriter appends rows to one table and sends them in batches of
// MaxRows. clickhouse-go holds a whole batch in memory until Send (Flush is a
// no-op over HTTP), so MaxRows bounds the writer's memory.
type BatchWriter struct {
	s       *Store
	table   string
	columns []string
	maxRows int
	batch   driver.Batch
	pending int
	sent    int64
}

// DefaultBatchRows is the batch size when none is given.
const DefaultBatchRows = 100_000

// NewBatchWriter writes to table (a validated identifier) with the given
// columns in that order; maxRows <= 0 means DefaultBatchRows.
func (s *Store) NewBatchWriter(table string, columns []string, maxRows int) (*BatchWriter, error) {
	if !identRe.MatchString(table) {
		return nil, fmt.Errorf("batch writer: invalid table name %q", table)
	}
	for _, c := range columns {
		if !identRe.MatchString(c) {
			return nil, fmt.Errorf("batch writer: %s: invalid column name %q", table, c)
		}
	}
	if maxRows <= 0 {
		maxRows = DefaultBatchRows
	}
	return &BatchWriter{s: s, table: table, columns: columns, maxRows: maxRows}, nil
}

// Append adds one row (values in column order) and sends the batch when full.
func (w *BatchWriter) Append(ctx context.Context, values ...any) error {
	if w.batch == nil {
		q := "INSERT INTO " + quoteIdent(w.table)
		if len(w.columns) > 0 {
			q += " (" + strings.Join(w.columns, ", ") + ")"
		}
		b, err := w.s.Conn.PrepareBatch(ctx, q)
		if err != nil {
			return fmt.Errorf("insert into %s: prepare: %w", w.table, err)
		}
		w.batch = b
	}
	if err := w.batch.Append(values...); err != nil {
		return fmt.Errorf("insert into %s: row %d: %w", w.table, w.sent+int64(w.pending)+1, err)
	}
	w.pending++
	if w.pending >= w.maxRows {
		return w.Flush()
	}
	return nil
}

// Flush sends the rows appended so far. Once Flush returns nil they are in the store.
func (w *BatchWriter) Flush() error {
	if w.batch == nil || w.pending == 0 {
		return nil
	}
	err := w.batch.Send()
	w.batch = nil
	if err != nil {
		return fmt.Errorf("insert into %s: send %d rows: %w", w.table, w.pending, err)
	}
	w.sent += int64(w.pending)
	w.pending = 0
	return nil
}

// Sent is the number of rows sent so far.
func (w *BatchWriter) Sent() int64 { return w.sent }

// Abort drops the rows not yet sent.
func (w *BatchWriter) Abort() {
	if w.batch != nil {
		_ = w.batch.Abort()
		w.batch = nil
		w.pending = 0
	}
}
