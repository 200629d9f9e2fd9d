package ingest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/shopspring/decimal"
)

// Flush writes everything buffered and waits for every earlier write: when
// it returns nil, every record added so far is in the store (CommitBatch:
// the events API acknowledges after Flush) or staged (CommitRun: visible
// when Close commits the run).
func (l *Loader) Flush(ctx context.Context) error {
	if err := l.startFlush(ctx); err != nil {
		return err
	}
	return l.wait()
}

// batch is one flush: the rows of every table and the quarantine rows,
// written by a goroutine while the next batch is read.
type batch struct {
	rows    map[*tableState][]pendingRow
	quar    [][]any
	written map[*tableState]int64
	dups    map[*tableState]int64
	runDups int64 // in-run duplicates settled with this batch (counted in the summary already)
	// keys of the rows written, for ingest_keys
	keyEnt []string
	keys   []string
	hashes []uint64
}

type inflight struct {
	done chan error
	b    *batch
}

// maxInFlight is how many batches are written while the next is read.
const maxInFlight = 2

// startFlush hands the buffered rows to a writer goroutine (reading and
// writing overlap; at most maxInFlight batches are being written).
func (l *Loader) startFlush(ctx context.Context) error {
	b := &batch{rows: map[*tableState][]pendingRow{}, quar: l.pendingQuar, runDups: l.pendingDups,
		written: map[*tableState]int64{}, dups: map[*tableState]int64{}}
	l.pendingDups = 0
	for _, ts := range l.tables {
		if len(ts.rows) > 0 {
			b.rows[ts] = ts.rows
			ts.rows = make([]pendingRow, 0, cap(ts.rows))
		}
	}
	l.pendingQuar = nil
	l.pending = 0
	if l.st == nil {
		// a dry run: what would be written counts as written
		for ts, rows := range b.rows {
			ts.count.Written += int64(len(rows))
			if ts.isSource {
				l.sum.Loaded += int64(len(rows))
			}
		}
		if l.opts.AfterFlush != nil {
			l.opts.AfterFlush(l.sum.Loaded)
		}
		return nil
	}
	for len(l.inflight) >= maxInFlight {
		if err := l.waitOldest(); err != nil {
			return err
		}
	}
	if l.werr != nil {
		return l.werr
	}
	if l.sum.Commit == CommitRun && len(b.rows) > 0 {
		if err := l.stageTables(ctx, b.rows); err != nil {
			return err
		}
	}
	done := make(chan error, 1)
	l.inflight = append(l.inflight, inflight{done: done, b: b})
	go func() { done <- l.writeBatch(context.WithoutCancel(ctx), b) }()
	return nil
}

// wait waits for every batch in flight.
func (l *Loader) wait() error {
	for len(l.inflight) > 0 {
		_ = l.waitOldest()
	}
	return l.werr
}

// waitOldest waits for the oldest batch in flight and adds its counts to the summary.
func (l *Loader) waitOldest() error {
	if len(l.inflight) == 0 {
		return l.werr
	}
	f := l.inflight[0]
	l.inflight = l.inflight[1:]
	err := <-f.done
	b := f.b
	if err != nil {
		if l.werr == nil {
			l.werr = err
		}
		return l.werr
	}
	c := Counts{Rejected: int64(len(b.quar)), Duplicates: b.runDups}
	for ts, n := range b.written {
		ts.count.Written += n
		if ts.isSource {
			l.sum.Loaded += n
			c.Loaded += n
		}
	}
	for ts, n := range b.dups {
		ts.count.Duplicates += n
		if ts.isSource {
			l.sum.Duplicates += n
			c.Duplicates += n
		}
	}
	if l.opts.OnWritten != nil && c != (Counts{}) {
		l.opts.OnWritten(c)
	}
	if l.opts.AfterFlush != nil {
		l.opts.AfterFlush(l.sum.Loaded)
	}
	return l.werr
}

// writeBatch writes facts (table by table), then their keys, then quarantine.
// Each batch has its own writers, so batches are written concurrently.
func (l *Loader) writeBatch(ctx context.Context, b *batch) error {
	quar, err := l.st.NewBatchWriter("quarantine", []string{"run_id", "entity", "source", "file", "line", "field", "code", "reason", "raw"}, 0)
	if err != nil {
		return err
	}
	tss := make([]*tableState, 0, len(b.rows))
	for ts := range b.rows {
		tss = append(tss, ts)
	}
	sort.Slice(tss, func(i, j int) bool { return tss[i].ent.Name < tss[j].ent.Name })
	for _, ts := range tss {
		if err := l.flushTable(ctx, ts, b.rows[ts], b); err != nil {
			return err
		}
	}
	if err := l.insertKeys(ctx, b); err != nil {
		return err
	}
	for _, q := range b.quar {
		if err := quar.Append(ctx, q...); err != nil {
			return err
		}
	}
	return quar.Flush()
}

const keyLookupChunk = 5000

func (l *Loader) flushTable(ctx context.Context, ts *tableState, rows []pendingRow, b *batch) error {
	if len(rows) == 0 {
		return nil
	}
	var stored map[string]uint64
	if ts.hasKeys {
		stored = map[string]uint64{}
		for i := 0; i < len(rows); i += keyLookupChunk {
			chunk := rows[i:min(i+keyLookupChunk, len(rows))]
			keys := make([]string, len(chunk))
			for j, r := range chunk {
				keys[j] = r.key
			}
			rs, err := l.st.Conn.Query(ctx, "SELECT key, argMax(hash, loaded_at) FROM ingest_keys WHERE entity = {e:String} AND source = {s:String} AND key IN {k:Array(String)} GROUP BY key",
				clickhouse.Named("e", ts.ent.Name), clickhouse.Named("s", l.source), clickhouse.Named("k", keys))
			if err != nil {
				return fmt.Errorf("ingest_keys lookup: %w", err)
			}
			for rs.Next() {
				var k string
				var h uint64
				if err := rs.Scan(&k, &h); err != nil {
					rs.Close()
					return err
				}
				stored[k] = h
			}
			rs.Close()
			if err := rs.Err(); err != nil {
				return err
			}
		}
	}
	var written, dups int64
	kept := rows[:0:0]
	for _, r := range rows {
		if h, ok := stored[r.key]; ok && h == r.hash {
			dups++
			continue
		}
		kept = append(kept, r)
		written++
	}
	if err := l.insertColumns(ctx, ts, kept); err != nil {
		return err
	}
	for _, r := range kept {
		b.keyEnt = append(b.keyEnt, ts.ent.Name)
		b.keys = append(b.keys, r.key)
		b.hashes = append(b.hashes, r.hash)
	}
	b.written[ts] += written
	b.dups[ts] += dups
	return nil
}

// omittable: the column's default in the store is the field's zero value
// (not a version column, not a string with another default such as status).
func omittable(f Field) bool {
	return !f.Version && !f.Required && (f.Kind != KString || f.Default == "")
}

func allZero(rows []pendingRow, j int, isString bool) bool {
	for _, r := range rows {
		if isString {
			if r.strs[j] != "" {
				return false
			}
			continue
		}
		switch v := r.vals[j].(type) {
		case nil:
		case string:
			if v != "" {
				return false
			}
		case decimal.Decimal:
			if !v.IsZero() {
				return false
			}
		case *uint8:
			if v != nil {
				return false
			}
		case uint64:
			if v != 0 {
				return false
			}
		case float64:
			if v != 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// insertKeys records the keys and content hashes of the rows a batch wrote.
func (l *Loader) insertKeys(ctx context.Context, b *batch) error {
	n := len(b.keys)
	if n == 0 {
		return nil
	}
	bt, err := l.st.Conn.PrepareBatch(ctx, "INSERT INTO `"+l.keysTarget+"` (entity, source, key, hash, ingest_run_id)")
	if err != nil {
		return fmt.Errorf("insert into ingest_keys: prepare: %w", err)
	}
	src, run := make([]string, n), make([]string, n)
	for i := range src {
		src[i], run[i] = l.source, l.sum.RunID
	}
	for j, col := range []any{b.keyEnt, src, b.keys, b.hashes, run} {
		if err := bt.Column(j).Append(col); err != nil {
			_ = bt.Abort()
			return fmt.Errorf("insert into ingest_keys: %w", err)
		}
	}
	if err := bt.Send(); err != nil {
		return fmt.Errorf("insert into ingest_keys: send %d rows: %w", n, err)
	}
	return nil
}

// insertColumns writes rows to the table column by column (one typed slice
// per column: far cheaper than appending row by row).
func (l *Loader) insertColumns(ctx context.Context, ts *tableState, rows []pendingRow) error {
	if len(rows) == 0 {
		return nil
	}
	// Columns that are zero in every row (fields the source does not have)
	// are left out: the store fills its default, which is that zero value.
	var cols []string
	var fields []int
	for j, f := range ts.ent.Fields {
		if omittable(f) && allZero(rows, j, f.Kind == KString) {
			continue
		}
		cols = append(cols, f.Name)
		fields = append(fields, j)
	}
	cols = append(cols, "source", "ingest_run_id")
	q := "INSERT INTO `" + ts.target + "` (" + strings.Join(cols, ", ") + ")"
	bt, err := l.st.Conn.PrepareBatch(ctx, q)
	if err != nil {
		return fmt.Errorf("insert into %s: prepare: %w", ts.ent.Table, err)
	}
	n := len(rows)
	for ci, j := range fields {
		f := ts.ent.Fields[j]
		var col any
		switch {
		case f.Kind == KString:
			c := make([]string, n)
			for i, r := range rows {
				c[i] = r.strs[j]
			}
			col = c
		case (f.Kind == KTime || f.Kind == KDate) && f.Nullable:
			c := make([]*time.Time, n)
			for i, r := range rows {
				if v, ok := r.vals[j].(time.Time); ok {
					c[i] = &v
				}
			}
			col = c
		case f.Kind == KTime || f.Kind == KDate:
			c := make([]time.Time, n)
			for i, r := range rows {
				c[i] = r.vals[j].(time.Time)
			}
			col = c
		case f.Kind == KDecimal && f.Nullable:
			c := make([]*decimal.Decimal, n)
			for i, r := range rows {
				if v, ok := r.vals[j].(decimal.Decimal); ok {
					c[i] = &v
				}
			}
			col = c
		case f.Kind == KDecimal:
			c := make([]decimal.Decimal, n)
			for i, r := range rows {
				c[i] = r.vals[j].(decimal.Decimal)
			}
			col = c
		case f.Kind == KInt && f.Bits == 16:
			c := make([]int16, n)
			for i, r := range rows {
				c[i] = r.vals[j].(int16)
			}
			col = c
		case f.Kind == KInt:
			c := make([]int64, n)
			for i, r := range rows {
				c[i] = r.vals[j].(int64)
			}
			col = c
		case f.Kind == KUInt && f.Bits == 8:
			c := make([]*uint8, n)
			for i, r := range rows {
				c[i], _ = r.vals[j].(*uint8)
			}
			col = c
		case f.Kind == KUInt && f.Bits == 32:
			c := make([]uint32, n)
			for i, r := range rows {
				c[i] = r.vals[j].(uint32)
			}
			col = c
		case f.Kind == KUInt:
			c := make([]uint64, n)
			for i, r := range rows {
				c[i] = r.vals[j].(uint64)
			}
			col = c
		case f.Kind == KFloat:
			c := make([]float64, n)
			for i, r := range rows {
				c[i] = r.vals[j].(float64)
			}
			col = c
		case f.Kind == KBool:
			c := make([]bool, n)
			for i, r := range rows {
				c[i] = r.vals[j].(bool)
			}
			col = c
		}
		if err := bt.Column(ci).Append(col); err != nil {
			_ = bt.Abort()
			return fmt.Errorf("insert into %s: column %s: %w", ts.ent.Table, f.Name, err)
		}
	}
	src, run := make([]string, n), make([]string, n)
	for i := range src {
		src[i], run[i] = l.source, l.sum.RunID
	}
	nf := len(fields)
	if err := bt.Column(nf).Append(src); err != nil {
		_ = bt.Abort()
		return err
	}
	if err := bt.Column(nf + 1).Append(run); err != nil {
		_ = bt.Abort()
		return err
	}
	if err := bt.Send(); err != nil {
		return fmt.Errorf("insert into %s: send %d rows: %w", ts.ent.Table, n, err)
	}
	return nil
}
