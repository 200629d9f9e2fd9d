// Package ingest loads the records of canonical entities into the warehouse:
// files (CSV, TSV, NDJSON, gzip) through mappings and presets, and records
// pushed from Go (the HTTP events endpoint, the demo generator) through the
// same Loader, so validation, deterministic ids, deduplication, quarantine and
// run bookkeeping are the same for every path.
//
// Contract of a run: every record read is either loaded, rejected into
// quarantine (file, line, field, reason, raw record) or counted as a
// duplicate (its id was seen earlier in the run with the same content, or it
// is already in the store with identical content), so Read = Loaded +
// Rejected + Duplicates. Ids are deterministic (the source's id, or a hash of
// source and natural key), tables are ReplacingMergeTree keyed by them, so
// loading a file twice or re-running after a crash leaves every total as if
// it had been loaded once, for queries that read with FINAL or argMax.
//
// A run is visible whole or not at all (CommitRun, the default: its rows are
// staged and attached to the tables when it succeeds, see stage.go); a run
// that fails stores nothing (Loaded 0; NotStored counts its valid records)
// but keeps its rejects in quarantine. The events API commits per flush
// instead (CommitBatch). A process that ends in the middle of a run leaves
// it for the next start to fail or finish (Recover).
package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/cespare/xxhash/v2"
	"github.com/google/uuid"

	"github.com/converge-dev/converge/warehouse"
)

// Loader is one ingest run into one entity. Use LoadFile for a file, or
// NewLoader, Add/AddRecord, Flush and Close for records pushed from Go.
// A Loader is not safe for concurrent use.
type Loader struct {
	st     *warehouse.Store
	opts   Options
	m      *Mapping
	ent    *Entity
	source string
	file   string
	sum    Summary
	Stats  Stats
	log    *slog.Logger

	cols    *columns
	conv    *converter
	lineCnv *converter // lines mode: order_lines
	lines   bool
	tables  map[string]*tableState
	main    *tableState
	pending int

	orders    map[string]*orderAgg
	orderSeq  []string
	identical int64
	version   uint64
	closed    bool

	kd          *xxhash.Digest
	pendingQuar [][]any
	pendingDups int64      // in-run duplicates of source records since the last batch
	inflight    []inflight // oldest first
	werr        error

	unknown    string   // warn or reject
	staged     []staged // CommitRun: the run's staging tables
	keysTarget string   // where ingest_keys rows go (its staging table in CommitRun mode)
	leaseStop  chan struct{}
	leaseDone  chan struct{}
}

type seenKey struct {
	hash uint64
	line int64
}

// tableState buffers the rows of one table until a flush.
type tableState struct {
	ent      *Entity
	target   string   // table the rows are written to: the entity's, or its staging table
	cols     []string // table columns in write order
	rows     []pendingRow
	hasKeys  bool // the store holds keys of this entity and source
	count    *TableCount
	isSource bool                  // rows correspond to source records (counted in Loaded/Duplicates)
	seen     map[[2]uint64]seenKey // 128-bit hashes of the keys of the run so far (no pointers: cheap for the GC)
}

type pendingRow struct {
	vals []any    // typed values of the non-string fields
	strs []string // values of the string fields (and canonical or raw text of the others)
	key  string
	hash uint64
	line int64
}

// NewLoader starts a run: it writes the 'running' row to ingest_runs and
// takes the run's lease (in CommitRun mode its first flush to a table creates
// that table's staging table). file
// is the file name recorded with the run and in quarantine (may be empty).
// The first run of a store in a process first recovers the runs of
// processes that ended in the middle of theirs (Recover).
func NewLoader(ctx context.Context, st *warehouse.Store, opts Options, file string) (*Loader, error) {
	if st == nil {
		return nil, errors.New("ingest: no store (use NewDryRun to check records without one)")
	}
	l, err := newLoader(st, opts, file)
	if err != nil {
		return nil, err
	}
	recoverOnce(ctx, st, l.log)
	if err := l.writeRun(ctx); err != nil {
		return nil, err
	}
	if err := l.open(ctx); err != nil {
		return nil, l.abort(ctx, err)
	}
	return l, nil
}

// open prepares a run whose row is written: its lease, and whether the
// store holds keys of its tables.
func (l *Loader) open(ctx context.Context) error {
	if err := l.startLease(ctx); err != nil {
		return err
	}
	for _, ts := range l.tables {
		if err := l.lookupKeys(ctx, ts); err != nil {
			return err
		}
	}
	return nil
}

// abort ends a run that could not start: recorded failed with err, nothing staged kept.
func (l *Loader) abort(ctx context.Context, err error) error {
	l.closed = true
	ctx = context.WithoutCancel(ctx)
	if derr := dropStaged(ctx, l.st, l.staged); derr != nil {
		l.log.Warn("ingest: staging tables not dropped (the next start drops them)", "run", l.sum.RunID, "err", derr)
	}
	l.stopLease()
	l.sum.Status, l.sum.Error = StatusFailed, err.Error()
	l.sum.FinishedAt = time.Now().UTC()
	l.bumpVersion()
	_ = l.writeRun(ctx)
	return err
}

// NewDryRun is a Loader that writes nothing and needs no store: records are
// read, validated, converted and checked for duplicates within the run
// exactly as by NewLoader's, and its Summary tells what a run would do:
// Loaded counts the records that would be written, Rejected those that
// would be quarantined (with their reasons in Rejects), Duplicates the
// repeats within the run. Duplicates of records already in a store are not
// known, so Loaded may count records a real run would find unchanged.
func NewDryRun(opts Options, file string) (*Loader, error) {
	return newLoader(nil, opts, file)
}

// newLoader builds a run without touching the store (st is nil for a dry run).
func newLoader(st *warehouse.Store, opts Options, file string) (*Loader, error) {
	m := opts.Mapping
	if m == nil {
		m = &Mapping{Entity: opts.Entity}
	}
	entName := opts.Entity
	if entName == "" {
		entName = m.Entity
	}
	if m.Entity != "" && m.Entity != entName {
		return nil, fmt.Errorf("entity %s: the mapping %s is for %s", entName, m.Name, m.Entity)
	}
	ent, err := LookupEntity(entName)
	if err != nil {
		return nil, err
	}
	source := opts.Source
	if source == "" {
		source = m.Source
	}
	if source == "" {
		source = m.Name
	}
	if source == "" {
		source = "file"
	}
	if opts.BatchRows <= 0 {
		opts.BatchRows = DefaultBatchRows
	}
	if opts.MaxFieldBytes <= 0 {
		opts.MaxFieldBytes = DefaultMaxFieldBytes
	}
	if opts.MaxRecordBytes <= 0 {
		opts.MaxRecordBytes = max(DefaultMaxRecordBytes, 4*opts.MaxFieldBytes)
	}
	switch opts.Commit {
	case "":
		opts.Commit = CommitRun
	case CommitRun, CommitBatch:
	default:
		return nil, fmt.Errorf("ingest: commit mode %q is not %s or %s", opts.Commit, CommitRun, CommitBatch)
	}
	unknown := opts.Unknown
	if unknown == "" {
		unknown = m.Unknown
	}
	switch unknown {
	case "":
		unknown = UnknownWarn
	case UnknownWarn, UnknownReject:
	default:
		return nil, fmt.Errorf("ingest: unknown %q is not %s or %s", unknown, UnknownWarn, UnknownReject)
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := time.Now().UTC()
	l := &Loader{st: st, opts: opts, m: m, ent: ent, source: source, file: file, log: log,
		tables: map[string]*tableState{}, lines: m.Lines != nil,
		version: uint64(now.UnixNano()), unknown: unknown, keysTarget: keysTable}
	l.sum = Summary{RunID: uuid.NewString(), Entity: ent.Name, Source: source, Preset: opts.Preset, File: file,
		Status: StatusRunning, Commit: opts.Commit, Tables: map[string]*TableCount{}, StartedAt: now}
	if l.lines {
		l.orders = map[string]*orderAgg{}
		for _, n := range []string{"order_lines", "orders", "refunds"} {
			if _, err := l.table(entities[n], n == "order_lines"); err != nil {
				return nil, err
			}
		}
		l.main = l.tables["order_lines"]
	} else {
		if l.main, err = l.table(ent, true); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (l *Loader) table(e *Entity, isSource bool) (*tableState, error) {
	cols := append(e.FieldNames(), "source", "ingest_run_id")
	if _, err := l.st.NewBatchWriter(e.Table, cols, 1); err != nil { // validates the names
		return nil, err
	}
	ts := &tableState{ent: e, target: e.Table, cols: cols, count: &TableCount{}, isSource: isSource, seen: map[[2]uint64]seenKey{}}
	l.tables[e.Name] = ts
	l.sum.Tables[e.Name] = ts.count
	return ts, nil
}

// lookupKeys tells whether the store holds keys of ts's entity from this source
// (else no record of the run can be a duplicate of a stored one).
func (l *Loader) lookupKeys(ctx context.Context, ts *tableState) error {
	var one uint8
	if err := l.st.Conn.QueryRow(ctx, "SELECT count() > 0 FROM (SELECT 1 FROM ingest_keys WHERE entity = {e:String} AND source = {s:String} LIMIT 1)",
		clickhouse.Named("e", ts.ent.Name), clickhouse.Named("s", l.source)).Scan(&one); err != nil {
		return fmt.Errorf("ingest_keys: %w", err)
	}
	ts.hasKeys = one == 1
	return nil
}

// Summary returns the run's counts so far (final after Close).
func (l *Loader) Summary() Summary { return l.sum }

// setColumns compiles the mapping against the source's columns.
func (l *Loader) setColumns(cols *columns) error {
	l.cols = cols
	var err error
	if l.lines {
		oe := *entities["orders"]
		oe.Fields = append([]Field(nil), oe.Fields...)
		for i := range oe.Fields {
			if oe.Fields[i].Name == "revenue" {
				oe.Fields[i].Required = l.m.Fields["revenue"].Column != "" || l.m.Fields["revenue"].Template != ""
			}
		}
		if l.conv, err = compile(l.m, &oe, cols, l.opts.TZ); err != nil {
			return err
		}
		le := *entities["order_lines"]
		le.Fields = append([]Field(nil), le.Fields...)
		for i := range le.Fields {
			switch le.Fields[i].Name {
			case "line_no", "currency", "ordered_at", "customer_id":
				le.Fields[i].Required = false // position, or inherited from the order
			}
		}
		le.index = entities["order_lines"].index
		l.lineCnv, err = compile(l.m, &le, cols, l.opts.TZ)
		return err
	}
	l.conv, err = compile(l.m, l.ent, cols, l.opts.TZ)
	return err
}

// Add loads one record pushed from Go. A record that fails validation is
// quarantined (Add returns nil); an error means the store failed.
func (l *Loader) Add(ctx context.Context, r Record) error {
	if l.cols == nil {
		if err := l.setColumns(newColumns(nil, false)); err != nil {
			return err
		}
	}
	rec := make([]string, len(l.cols.names), len(l.cols.names)+len(r.Fields))
	keys := make([]string, 0, len(r.Fields))
	for k := range r.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		i := l.cols.add(k)
		for len(rec) <= i {
			rec = append(rec, "")
		}
		rec[i] = r.Fields[k]
	}
	raw := r.Raw
	if raw == "" {
		b, _ := json.Marshal(r.Fields)
		raw = string(b)
	}
	line := r.Line
	if line == 0 {
		line = l.sum.Read + 1
	}
	return l.addRecord(ctx, rec, line, rawString(raw))
}

// Quarantine counts a record that could not even be split into fields (a
// malformed JSON object, say) as read and rejected, and quarantines it with
// its raw text, so that callers keep read = loaded + rejected + duplicates.
func (l *Loader) Quarantine(ctx context.Context, line int64, field, code, reason, raw string) error {
	l.sum.Read++
	l.Stats.Read.Add(1)
	if line == 0 {
		line = l.sum.Read
	}
	return l.reject(line, field, code, reason, rawString(raw))
}

// addRecord validates, converts and buffers one source record.
func (l *Loader) addRecord(ctx context.Context, rec []string, line int64, raw fmt.Stringer) error {
	l.sum.Read++
	l.Stats.Read.Add(1)
	if i := checkUTF8(rec); i >= 0 {
		return l.reject(line, l.colName(i), "bad_encoding", fmt.Sprintf("column %s is not valid UTF-8 (the file must be UTF-8)", l.colName(i)), raw)
	}
	for i, v := range rec {
		if len(v) > l.opts.MaxFieldBytes {
			return l.reject(line, l.colName(i), "too_long", fmt.Sprintf("column %s has %d bytes, more than %d", l.colName(i), len(v), l.opts.MaxFieldBytes), raw)
		}
	}
	if l.cols.fixed && len(rec) != len(l.cols.names) {
		return l.reject(line, "", "field_count", fmt.Sprintf("record has %d fields, the header has %d", len(rec), len(l.cols.names)), raw)
	}
	if l.unknown == UnknownReject && !l.cols.fixed {
		if names := l.unknownIn(rec); len(names) > 0 {
			return l.reject(line, names[0], "unknown_field", fmt.Sprintf("fields not in %s: %s (unknown: reject)", l.readsWhat(), strings.Join(names, ", ")), raw)
		}
	}
	if l.lines {
		return l.addLine(ctx, rec, line, raw)
	}
	vals, strs, fe := l.convert(l.conv, rec)
	if fe != nil {
		return l.reject(line, fe.Field, fe.Code, fe.Reason, raw)
	}
	if fe := l.finish(l.ent, vals, strs); fe != nil {
		return l.reject(line, fe.Field, fe.Code, fe.Reason, raw)
	}
	return l.push(ctx, l.main, vals, strs, line, raw)
}

func (l *Loader) colName(i int) string {
	if i >= 0 && i < len(l.cols.names) {
		return l.cols.names[i]
	}
	return fmt.Sprintf("column %d", i+1)
}

// convert runs a converter over a record.
func (l *Loader) convert(c *converter, rec []string) ([]any, []string, *FieldError) {
	vals := make([]any, len(c.specs))
	strs := make([]string, len(c.specs))
	for i, sp := range c.specs {
		v, fe := c.raw(sp, rec)
		if fe != nil {
			return nil, nil, fe
		}
		val, str, fe := c.value(sp, v)
		if fe != nil {
			return nil, nil, fe
		}
		vals[i], strs[i] = val, str
	}
	return vals, strs, nil
}

// finish applies entity rules after conversion: derived ids, versions,
// ranges. vals and strs are in e.Fields order.
func (l *Loader) finish(e *Entity, vals []any, strs []string) *FieldError {
	for i, f := range e.Fields {
		if f.Kind == KTime && vals[i] == nil && !f.Nullable {
			vals[i] = l.sum.StartedAt // version (updated_at) defaults to the run's start; not hashed
		}
	}
	switch e.Name {
	case "orders":
		_, ci, _ := e.field("customer_id")
		_, si, _ := e.field("source_customer_id")
		if strs[si] == "" {
			vals[si], strs[si] = vals[ci], strs[ci]
		}
	case "survey_responses":
		_, ki, _ := e.field("kind")
		_, si, _ := e.field("score")
		lo, hi := int16(0), int16(10)
		switch strs[ki] {
		case "nps":
		case "csat":
			lo, hi = 1, 5
		case "ces":
			lo, hi = 1, 7
		default:
			return ferr("kind", "bad_value", "%q is not nps, csat or ces", strs[ki])
		}
		if v := vals[si].(int16); v < lo || v > hi {
			return ferr("score", "out_of_range", "%d is outside %d-%d for %s", v, lo, hi, strs[ki])
		}
	case "tickets":
		_, ci, _ := e.field("csat")
		if p, ok := vals[ci].(*uint8); ok && p != nil && *p < 1 {
			return ferr("csat", "out_of_range", "%d is outside 1-5", *p)
		}
	}
	if e.ID != "" {
		_, idi, _ := e.field(e.ID)
		if strs[idi] == "" {
			key := l.m.Key
			if len(key) == 0 {
				key = e.Key
			}
			h := sha256.New()
			h.Write([]byte(l.source))
			empty := true
			for _, k := range key {
				_, ki, _ := e.field(k)
				h.Write([]byte{0})
				h.Write([]byte(strs[ki]))
				if strs[ki] != "" {
					empty = false
				}
			}
			if empty {
				return ferr(e.ID, "missing_field", "no %s and the natural key (%s) is empty", e.ID, strings.Join(key, ", "))
			}
			id := hex.EncodeToString(h.Sum(nil)[:16])
			vals[idi], strs[idi] = id, id
		}
	}
	return nil
}

func recordKey(e *Entity, strs []string) string {
	if e.ID != "" {
		_, i, _ := e.field(e.ID)
		return strs[i]
	}
	if len(e.Key) == 1 {
		_, i, _ := e.field(e.Key[0])
		return strs[i]
	}
	parts := make([]string, len(e.Key))
	for j, k := range e.Key {
		_, i, _ := e.field(k)
		parts[j] = strs[i]
	}
	return strings.Join(parts, "\x1f")
}

// keyHash is a 128-bit hash of a record key (two seeded xxhash64).
func (l *Loader) keyHash(key string) [2]uint64 {
	if l.kd == nil {
		l.kd = xxhash.New()
	}
	l.kd.ResetWithSeed(0x9E3779B97F4A7C15)
	_, _ = l.kd.WriteString(key)
	a := l.kd.Sum64()
	return [2]uint64{xxhash.Sum64String(key), a}
}

func contentHash(strs []string) uint64 {
	d := xxhash.New()
	var sep = []byte{0}
	for _, s := range strs {
		_, _ = d.WriteString(s)
		_, _ = d.Write(sep)
	}
	return d.Sum64()
}

// push buffers a converted row for its table, after the in-run duplicate check.
func (l *Loader) push(ctx context.Context, ts *tableState, vals []any, strs []string, line int64, raw fmt.Stringer) error {
	key := recordKey(ts.ent, strs)
	h := contentHash(strs)
	kh := l.keyHash(key)
	if prev, ok := ts.seen[kh]; ok {
		if prev.hash == h {
			if ts.isSource {
				l.sum.Duplicates++
				l.pendingDups++
			}
			ts.count.Duplicates++
			return nil
		}
		if ts.isSource {
			field := ts.ent.ID
			if field == "" {
				field = strings.Join(ts.ent.Key, ",") // the natural key identifies it
			}
			return l.reject(line, field, "conflicting_duplicate",
				fmt.Sprintf("same key %q as line %d with different content", strings.ReplaceAll(key, "\x1f", "|"), prev.line), raw)
		}
	}
	ts.seen[kh] = seenKey{hash: h, line: line}
	ts.rows = append(ts.rows, pendingRow{vals: vals, strs: strs, key: key, hash: h, line: line})
	if ts.isSource {
		l.pending++
		if l.pending >= l.opts.BatchRows {
			return l.startFlush(ctx)
		}
	}
	return nil
}

func (l *Loader) reject(line int64, field, code, reason string, rawRec fmt.Stringer) error {
	l.sum.Rejected++
	raw := ""
	if rawRec != nil {
		raw = rawRec.String()
	}
	if len(raw) > maxRawBytes {
		raw = raw[:maxRawBytes] + fmt.Sprintf("…(truncated, %d bytes)", len(raw))
	}
	r := Reject{File: l.file, Line: line, Field: field, Code: code, Reason: reason}
	if len(l.sum.Rejects) < maxSummaryRejects {
		l.sum.Rejects = append(l.sum.Rejects, r)
	}
	if l.opts.OnReject != nil {
		l.opts.OnReject(r)
	}
	l.pendingQuar = append(l.pendingQuar, []any{l.sum.RunID, l.ent.Name, l.source, l.file, uint64(max(line, 0)), field, code, reason, raw})
	if len(l.pendingQuar) >= 10_000 {
		return l.startFlush(context.Background())
	}
	return nil
}
