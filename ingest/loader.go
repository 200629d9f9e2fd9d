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
package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/cespare/xxhash/v2"
	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/converge-dev/converge/warehouse"
)

// DefaultBatchRows is how many records are buffered before a flush.
const DefaultBatchRows = 50_000

// Options configure a run.
type Options struct {
	// Entity is the canonical entity; it may be empty when Mapping names one.
	Entity string
	// Mapping converts source records; nil means canonical field names.
	Mapping *Mapping
	// Preset is recorded in ingest_runs (the name the mapping was chosen by).
	Preset string
	// Source is the source name written to the facts (it scopes ids); default
	// the mapping's source, else its name, else "file".
	Source string
	// Format is csv, tsv or ndjson; default the mapping's, else from the file name.
	Format string
	// TZ is the zone of times without one; it overrides the mapping's.
	TZ *time.Location
	// BatchRows is the flush size (records); 0 means DefaultBatchRows.
	BatchRows int
	// MaxFieldBytes bounds a field; 0 means DefaultMaxFieldBytes.
	MaxFieldBytes int
	// Host is recorded in ingest_runs.
	Host string
	// Log receives warnings; nil discards them.
	Log *slog.Logger
	// AfterFlush, when set, is called after each flush with the records
	// loaded so far (tests use it to stop a run at a known point).
	AfterFlush func(loaded int64)
	// OnReject, when set, is called for each rejected record, synchronously
	// from Add (or the file reader), before the reject is written to quarantine.
	OnReject func(Reject)
	// OnWritten, when set, is called after each batch is in the store with the
	// source records it settled (monitoring): loaded, rejected into quarantine,
	// and duplicates (in the run or already in the store). Summed over a run
	// they are the Summary's counts. It is called from the goroutine that
	// calls Add, Flush or Close.
	OnWritten func(Counts)
}

// Counts are source records by outcome.
type Counts struct {
	Loaded, Rejected, Duplicates int64
}

// Summary is the outcome of a run.
type Summary struct {
	RunID      string                 `json:"run_id"`
	Entity     string                 `json:"entity"`
	Source     string                 `json:"source"`
	Preset     string                 `json:"preset,omitempty"`
	File       string                 `json:"file,omitempty"`
	Status     string                 `json:"status"`
	Read       int64                  `json:"read"`
	Loaded     int64                  `json:"loaded"`
	Rejected   int64                  `json:"rejected"`
	Duplicates int64                  `json:"duplicates"`
	Bytes      int64                  `json:"bytes"`
	Checksum   string                 `json:"checksum,omitempty"`
	Tables     map[string]*TableCount `json:"tables"`
	Warnings   []string               `json:"warnings,omitempty"`
	Rejects    []Reject               `json:"rejects,omitempty"`
	Error      string                 `json:"error,omitempty"`
	StartedAt  time.Time              `json:"started_at"`
	FinishedAt time.Time              `json:"finished_at"`
	Seconds    float64                `json:"seconds"`
}

// TableCount is what a run wrote to one table: rows written and rows left
// out because the store already held them with identical content.
type TableCount struct {
	Written    int64 `json:"written"`
	Duplicates int64 `json:"duplicates"`
}

// Reject is a rejected record (the first few are kept in the Summary; all are in quarantine).
type Reject struct {
	File   string `json:"file,omitempty"`
	Line   int64  `json:"line"`
	Field  string `json:"field,omitempty"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

func (r Reject) String() string {
	var b strings.Builder
	if r.File != "" {
		b.WriteString(r.File + " ")
	}
	fmt.Fprintf(&b, "line %d", r.Line)
	if r.Field != "" {
		b.WriteString(" field " + r.Field)
	}
	b.WriteString(": " + r.Reason)
	return b.String()
}

// maxSummaryRejects is how many rejects a Summary lists.
const maxSummaryRejects = 20

// Record is one record pushed from Go (events API, demo data): source field
// names to values (canonical names when the Loader has no mapping) and its
// position in the source (from 1).
type Record struct {
	Line   int64
	Fields map[string]string
	Raw    string // as received; built from Fields when empty
}

// Stats are a running load's counters, safe to read from another goroutine.
type Stats struct {
	Read  atomic.Int64
	Bytes atomic.Int64 // bytes of the file read so far (compressed size for gzip)
}

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
}

type seenKey struct {
	hash uint64
	line int64
}

// tableState buffers the rows of one table until a flush.
type tableState struct {
	ent      *Entity
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

// NewLoader starts a run: it writes the 'running' row to ingest_runs. file
// is the file name recorded with the run and in quarantine (may be empty).
func NewLoader(ctx context.Context, st *warehouse.Store, opts Options, file string) (*Loader, error) {
	if st == nil {
		return nil, errors.New("ingest: no store (use NewDryRun to check records without one)")
	}
	l, err := newLoader(st, opts, file)
	if err != nil {
		return nil, err
	}
	if err := l.writeRun(ctx); err != nil {
		return nil, err
	}
	for _, ts := range l.tables {
		if err := l.lookupKeys(ctx, ts); err != nil {
			return nil, err
		}
	}
	return l, nil
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
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := time.Now().UTC()
	l := &Loader{st: st, opts: opts, m: m, ent: ent, source: source, file: file, log: log,
		tables: map[string]*tableState{}, lines: m.Lines != nil,
		version: uint64(now.UnixNano())}
	l.sum = Summary{RunID: uuid.NewString(), Entity: ent.Name, Source: source, Preset: opts.Preset, File: file,
		Status: "running", Tables: map[string]*TableCount{}, StartedAt: now}
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
	ts := &tableState{ent: e, cols: cols, count: &TableCount{}, isSource: isSource, seen: map[[2]uint64]seenKey{}}
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

// Flush writes everything buffered and waits for every earlier write: when
// it returns nil, every record added so far is in the store (the events API
// acknowledges after Flush).
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
	bt, err := l.st.Conn.PrepareBatch(ctx, "INSERT INTO ingest_keys (entity, source, key, hash, ingest_run_id)")
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
	q := "INSERT INTO `" + ts.ent.Table + "` (" + strings.Join(cols, ", ") + ")"
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

// Close finishes the run: flushes (unless runErr), writes the final
// ingest_runs row and returns the summary. runErr is a failure of the
// caller's source (recorded as the run's error).
func (l *Loader) Close(ctx context.Context, runErr error) (Summary, error) {
	if l.closed {
		return l.sum, errors.New("ingest: loader already closed")
	}
	l.closed = true
	err := runErr
	if err == nil && l.lines {
		err = l.finishOrders(ctx)
	}
	if err == nil {
		err = l.Flush(ctx)
	} else if werr := l.wait(); werr != nil && werr != err {
		err = fmt.Errorf("%w (and writing: %v)", err, werr)
	}
	if l.identical > 0 {
		l.warn(fmt.Sprintf("%d rows repeat an earlier line of the same order exactly; kept as separate order lines (line_no = position within the order)", l.identical))
	}
	if err == nil && l.sum.Read == 0 && l.cols != nil && l.cols.fixed {
		l.warn("no records: the file has a header only")
	}
	l.sum.FinishedAt = time.Now().UTC()
	l.sum.Seconds = l.sum.FinishedAt.Sub(l.sum.StartedAt).Seconds()
	l.sum.Bytes = l.Stats.Bytes.Load()
	l.sum.Status = "succeeded"
	if err != nil {
		l.sum.Status = "failed"
		l.sum.Error = err.Error()
	} else if got := l.sum.Loaded + l.sum.Rejected + l.sum.Duplicates; got != l.sum.Read {
		l.sum.Status = "failed"
		l.sum.Error = fmt.Sprintf("internal: read %d != loaded %d + rejected %d + duplicates %d", l.sum.Read, l.sum.Loaded, l.sum.Rejected, l.sum.Duplicates)
		err = errors.New(l.sum.Error)
	}
	l.version = max(l.version+1, uint64(time.Now().UnixNano()))
	if werr := l.writeRun(context.WithoutCancel(ctx)); werr != nil && err == nil {
		err = werr
	}
	return l.sum, err
}

func (l *Loader) warn(msg string) {
	l.sum.Warnings = append(l.sum.Warnings, msg)
	l.log.Warn("ingest: "+msg, "file", l.file, "entity", l.ent.Name, "run", l.sum.RunID)
}

func (l *Loader) writeRun(ctx context.Context) error {
	if l.st == nil {
		return nil // a dry run records nothing
	}
	var fin *time.Time
	if !l.sum.FinishedAt.IsZero() {
		t := l.sum.FinishedAt
		fin = &t
	}
	src := l.file
	if src == "" {
		src = l.source
	}
	err := l.st.Conn.Exec(ctx, `INSERT INTO ingest_runs (run_id, entity, source, record_source, preset, started_at, finished_at, status,
		rows_read, rows_loaded, rows_rejected, rows_duplicate, bytes, checksum, error, host, version)
		VALUES ({id:String}, {entity:String}, {source:String}, {record_source:String}, {preset:String}, {started:DateTime64(3)}, {finished:Nullable(DateTime64(3))}, {status:String},
		{read:UInt64}, {loaded:UInt64}, {rejected:UInt64}, {dup:UInt64}, {bytes:UInt64}, {checksum:String}, {error:String}, {host:String}, {version:UInt64})`,
		clickhouse.Named("id", l.sum.RunID), clickhouse.Named("entity", l.ent.Name), clickhouse.Named("source", src),
		clickhouse.Named("record_source", l.source), clickhouse.Named("preset", l.opts.Preset), clickhouse.Named("started", l.sum.StartedAt), clickhouse.Named("finished", fin),
		clickhouse.Named("status", l.sum.Status), clickhouse.Named("read", uint64(l.sum.Read)), clickhouse.Named("loaded", uint64(l.sum.Loaded)),
		clickhouse.Named("rejected", uint64(l.sum.Rejected)), clickhouse.Named("dup", uint64(l.sum.Duplicates)),
		clickhouse.Named("bytes", uint64(l.Stats.Bytes.Load())), clickhouse.Named("checksum", l.sum.Checksum),
		clickhouse.Named("error", l.sum.Error), clickhouse.Named("host", l.opts.Host), clickhouse.Named("version", l.version))
	if err != nil {
		return fmt.Errorf("ingest_runs: %w", err)
	}
	return nil
}

// LoadFile loads one file as one run. The returned summary is complete even
// when err is not nil (err is then also in Summary.Error).
func LoadFile(ctx context.Context, st *warehouse.Store, path string, opts Options, stats func(*Stats)) (Summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return Summary{File: path, Status: "failed", Error: err.Error()}, err
	}
	defer f.Close()
	l, err := NewLoader(ctx, st, opts, path)
	if err != nil {
		return Summary{File: path, Status: "failed", Error: err.Error()}, err
	}
	if stats != nil {
		stats(&l.Stats)
	}
	runErr := l.readAll(ctx, f, path)
	if runErr != nil {
		runErr = fmt.Errorf("ingest %s: %w", path, runErr)
	}
	return l.Close(ctx, runErr)
}

// Load reads a whole stream (CSV, TSV or NDJSON, gzip or not) into the run.
func (l *Loader) Load(ctx context.Context, r io.Reader, name string) error {
	return l.readAll(ctx, r, name)
}

func (l *Loader) readAll(ctx context.Context, r io.Reader, name string) error {
	in, h, counted, err := openInput(r, &l.Stats.Bytes)
	if err != nil {
		return err
	}
	format := l.opts.Format
	if format == "" {
		format = l.m.Format
	}
	if format == "" {
		format = formatFromName(name)
	}
	var src source
	switch format {
	case "csv", "tsv":
		cs, err := newCSVSource(in, l.m, format)
		if err != nil {
			return err
		}
		src = cs
	case "ndjson":
		src = newNDJSONSource(in, l.opts.MaxFieldBytes)
	default:
		return fmt.Errorf("format %q is not csv, tsv or ndjson", format)
	}
	if err := l.setColumns(src.columns()); err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, line, raw, err := src.next()
		if err == io.EOF {
			break
		}
		var re *recordError
		if errors.As(err, &re) {
			l.sum.Read++
			l.Stats.Read.Add(1)
			if err := l.reject(re.line, re.field, re.code, re.reason, re.raw); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if err := l.addRecord(ctx, rec, line, raw); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
	_, _ = io.Copy(io.Discard, counted) // hash the rest (anything after the gzip stream)
	l.sum.Checksum = hex.EncodeToString(h.Sum(nil))
	return nil
}

func formatFromName(name string) string {
	n := strings.ToLower(strings.TrimSuffix(strings.ToLower(name), ".gz"))
	switch filepath.Ext(n) {
	case ".tsv", ".tab":
		return "tsv"
	case ".ndjson", ".jsonl", ".json":
		return "ndjson"
	}
	return "csv"
}
