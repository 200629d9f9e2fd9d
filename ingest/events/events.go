// Package events receives records of canonical entities over HTTP
// (POST /api/v1/events/{entity}, NDJSON or a JSON array) and loads them
// through the same ingest path as files.
//
// Writes are group-committed: the records of concurrent requests are
// buffered per entity and flushed when FlushRows are waiting or FlushEvery
// has passed; each request is answered after the flush that holds its
// records, so a 2xx means they are in the store. A record that fails
// validation is quarantined like a bad file line and reported in the
// response with its index; the others are loaded. Every entity's stream is
// one ingest run, rotated every RunEvery so runs stay bounded.
package events

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/warehouse"
)

// Config bounds and tunes the endpoint; zero values mean the defaults.
type Config struct {
	MaxBodyBytes   int64         // request body, as sent and (gzip) decompressed; default 16 MiB
	MaxRecordBytes int           // one record of a body; a longer one is rejected (too_long); default 1 MiB
	MaxRecords     int           // per request; default 10,000
	FlushRows      int           // default 5,000
	FlushEvery     time.Duration // default 250 ms
	RunEvery       time.Duration // default 15 min
	RunRecords     int64         // a run also ends after this many records (bounds its memory); default 1,000,000
	Source         string        // source written to the facts; default "events"
}

func (c *Config) defaults() {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 16 << 20
	}
	if c.MaxRecordBytes <= 0 {
		c.MaxRecordBytes = 1 << 20
	}
	if c.MaxRecords <= 0 {
		c.MaxRecords = 10_000
	}
	if c.FlushRows <= 0 {
		c.FlushRows = 5_000
	}
	if c.FlushEvery <= 0 {
		c.FlushEvery = 250 * time.Millisecond
	}
	if c.RunEvery <= 0 {
		c.RunEvery = 15 * time.Minute
	}
	if c.RunRecords <= 0 {
		c.RunRecords = 1_000_000
	}
	if c.Source == "" {
		c.Source = "events"
	}
}

// Service is the events endpoint.
type Service struct {
	st     *warehouse.Store
	tokens *Tokens
	cfg    Config
	log    *slog.Logger

	mu     sync.Mutex
	ents   map[string]*stream
	closed bool
	// OnData, when set, is called after each successful flush (live dashboards).
	OnData func(entity string)
	// OnRecords, when set, is told the records each stored batch settled, by outcome
	// (monitoring; see ingest.Options.OnWritten). Set it before the first request.
	OnRecords func(entity string, c ingest.Counts)
}

// New returns the service; call Close at shutdown to flush what is buffered.
func New(st *warehouse.Store, tokens *Tokens, cfg Config, log *slog.Logger) *Service {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{st: st, tokens: tokens, cfg: cfg, log: log, ents: map[string]*stream{}}
}

// stream is one entity's buffered run.
type stream struct {
	mu       sync.Mutex
	entity   string
	loader   *ingest.Loader
	started  time.Time
	line     int64
	pending  int
	waiters  []chan error
	timer    *time.Timer
	rejects  map[int64]ingest.Reject // by line, for the records being added
	flushing sync.Mutex
}

// RecordError is one rejected record of a request.
type RecordError struct {
	Index  int    `json:"index"` // position in the request, from 0
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// Response is the body of a successful request.
type Response struct {
	Entity   string        `json:"entity"`
	Received int           `json:"received"`
	Accepted int           `json:"accepted"`
	Rejected int           `json:"rejected"`
	Errors   []RecordError `json:"errors,omitempty"`
	// Warnings are about records that were accepted: fields the entity does
	// not have, which were ignored (?unknown=reject rejects such records).
	Warnings []string `json:"warnings,omitempty"`
}

type apiError struct {
	status  int
	Message string `json:"error"`
}

func (e *apiError) Error() string { return e.Message }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ServeHTTP handles POST /api/v1/events/{entity}; the entity is the last
// path element.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	resp, err := s.handle(r)
	if err != nil {
		var ae *apiError
		switch {
		case errors.As(err, &ae):
		case warehouse.DiskFull(err):
			s.log.ErrorContext(r.Context(), "events: the store's disk is full", "err", err)
			ae = &apiError{status: http.StatusInsufficientStorage, Message: "the store's disk is full; nothing was acknowledged: free space in the data directory and send the records again" + logRef}
		default:
			s.log.ErrorContext(r.Context(), "events: the store did not take the records", "err", err)
			ae = &apiError{status: http.StatusServiceUnavailable, Message: "the store did not take the records; nothing was acknowledged, send them again" + logRef}
		}
		if ae.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="converge events"`)
		}
		writeJSON(w, ae.status, ae)
		return
	}
	status := http.StatusOK
	if resp.Rejected > 0 && resp.Accepted == 0 {
		status = http.StatusUnprocessableEntity
	} else if resp.Rejected > 0 {
		status = http.StatusMultiStatus
	}
	writeJSON(w, status, resp)
}

// logRef ends a message for a store error: the error itself (engine messages, the store's
// address) is for the log only.
const logRef = " (the cause is in the server's log, with this response's X-Request-Id)"

// bearerToken is the token of an Authorization header of the Bearer scheme, whose name is
// case-insensitive (RFC 9110 11.1, RFC 6750 2.1); "" for another scheme.
func bearerToken(h string) string {
	h = strings.Trim(h, " \t")
	i := strings.IndexAny(h, " \t")
	if i < 0 || !strings.EqualFold(h[:i], "Bearer") {
		return ""
	}
	return strings.TrimLeft(h[i:], " \t")
}

func (s *Service) handle(r *http.Request) (*Response, error) {
	if r.Method != http.MethodPost {
		return nil, &apiError{http.StatusMethodNotAllowed, "use POST"}
	}
	tok := bearerToken(r.Header.Get("Authorization"))
	if _, err := s.tokens.Verify(r.Context(), tok, ScopeIngest); err != nil {
		if errors.Is(err, ErrUnauthorized) {
			return nil, &apiError{http.StatusUnauthorized, "an API token with scope ingest is required: Authorization: Bearer cvg_… (converge token create --scope ingest)"}
		}
		return nil, err
	}
	entity := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	if _, err := ingest.LookupEntity(entity); err != nil {
		return nil, &apiError{http.StatusNotFound, fmt.Sprintf("unknown entity %q; one of %s", entity, strings.Join(ingest.EntityNames(), ", "))}
	}
	unknown := r.URL.Query().Get("unknown")
	switch unknown {
	case "", "warn", "reject":
	default:
		return nil, &apiError{http.StatusBadRequest, fmt.Sprintf("unknown=%q: one of warn (default: fields the entity does not have are ignored and reported as warnings) or reject (records with such fields are rejected)", unknown)}
	}
	body, err := s.body(r)
	if err != nil {
		return nil, err
	}
	d, err := decode(body, limits{records: s.cfg.MaxRecords, recordBytes: s.cfg.MaxRecordBytes})
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &apiError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes; send smaller batches", s.cfg.MaxBodyBytes)}
		}
		if errors.Is(err, errInflatedTooLarge) {
			return nil, &apiError{http.StatusRequestEntityTooLarge, fmt.Sprintf("gzip body larger than %d bytes once decompressed; send smaller batches", s.cfg.MaxBodyBytes)}
		}
		var ae *apiError
		if errors.As(err, &ae) {
			return nil, ae
		}
		return nil, &apiError{http.StatusBadRequest, "reading the body: " + err.Error()}
	}
	if len(d.recs) == 0 && len(d.bad) == 0 {
		return nil, &apiError{http.StatusBadRequest, "no records: send NDJSON (one JSON object per line) or a JSON array of objects"}
	}
	warnings := unknownFields(entity, d, unknown == "reject")
	resp, err := s.add(r.Context(), entity, d)
	if err != nil {
		return nil, err
	}
	if unknown != "reject" {
		resp.Warnings = warnings
	}
	return resp, nil
}

// body is the request body, bounded: at most MaxBodyBytes as sent and, for
// Content-Encoding: gzip, as decompressed (a small body that inflates to
// gigabytes is refused at the limit, while it is read).
func (s *Service) body(r *http.Request) (io.Reader, error) {
	body := io.Reader(http.MaxBytesReader(nil, r.Body, s.cfg.MaxBodyBytes))
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return body, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, &apiError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes; send smaller batches", s.cfg.MaxBodyBytes)}
			}
			return nil, &apiError{http.StatusBadRequest, "Content-Encoding: gzip, but the body is not gzip: " + err.Error()}
		}
		return &inflateLimit{r: zr, left: s.cfg.MaxBodyBytes}, nil
	default:
		return nil, &apiError{http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Encoding %q is not supported: send the body as is or gzip", enc)}
	}
}

// errInflatedTooLarge: a gzip body decompresses to more than MaxBodyBytes.
var errInflatedTooLarge = errors.New("decompressed body too large")

// inflateLimit fails with errInflatedTooLarge once more than left bytes came out.
type inflateLimit struct {
	r    io.Reader
	left int64
}

func (l *inflateLimit) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// one byte more tells a body of exactly the limit from a larger one
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			return 0, errInflatedTooLarge
		}
		return l.r.Read(p)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// limits bound one request's records.
type limits struct {
	records     int // records in the request
	recordBytes int // bytes of one record
}

// badRecord is a record of a request that could not be decoded.
type badRecord struct {
	code, reason string
}

// decoded is a request's records in order: recs[i] is nil for a record that
// could not be decoded (bad[i] says why); raws[i] is each one's text as sent
// (cut, for one that was too long).
type decoded struct {
	recs []map[string]string
	raws []string
	bad  map[int]badRecord
}

// decode reads NDJSON or a JSON array. Records that are not JSON objects, or
// are longer than lim.recordBytes, are kept as bad records by index, with
// their raw text (a too-long NDJSON line is read past, not held), so they can
// be quarantined.
func decode(r io.Reader, lim limits) (decoded, error) {
	d := decoded{bad: map[int]badRecord{}}
	br := bufio.NewReaderSize(r, 64<<10)
	var first byte
	for {
		b, err := br.ReadByte()
		if err == io.EOF {
			return d, nil
		}
		if err != nil {
			return d, err
		}
		if b != ' ' && b != '\t' && b != '\r' && b != '\n' {
			first = b
			_ = br.UnreadByte()
			break
		}
	}
	full := func() error {
		if len(d.recs) >= lim.records {
			return &apiError{http.StatusRequestEntityTooLarge, fmt.Sprintf("more than %d records in one request; send smaller batches", lim.records)}
		}
		return nil
	}
	addBad := func(code, reason string, raw []byte) {
		d.bad[len(d.recs)] = badRecord{code: code, reason: reason} // recs holds a nil for it: indexes are the request's
		d.recs = append(d.recs, nil)
		d.raws = append(d.raws, string(raw))
	}
	tooLong := func(raw []byte) {
		cut := string(raw[:min(len(raw), maxRawBytes, lim.recordBytes)]) + fmt.Sprintf("…(truncated: the record is longer than %d bytes)", lim.recordBytes)
		addBad("too_long", fmt.Sprintf("record longer than %d bytes", lim.recordBytes), []byte(cut))
	}
	addRaw := func(raw []byte) error {
		if err := full(); err != nil {
			return err
		}
		if len(raw) > lim.recordBytes {
			tooLong(raw)
			return nil
		}
		obj, err := object(raw)
		if err != nil {
			addBad("malformed_json", "not a JSON object", raw)
			return nil
		}
		d.recs = append(d.recs, obj)
		d.raws = append(d.raws, string(raw))
		return nil
	}
	if first == '[' {
		// an element is held whole by the JSON decoder: the body's bound is its bound
		dec := json.NewDecoder(br)
		if _, err := dec.Token(); err != nil {
			return d, err
		}
		for dec.More() {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) || errors.Is(err, errInflatedTooLarge) {
					return d, err
				}
				return d, &apiError{http.StatusBadRequest, fmt.Sprintf("record %d: the JSON array is malformed: %v", len(d.recs), err)}
			}
			if err := addRaw(raw); err != nil {
				return d, err
			}
		}
		if _, err := dec.Token(); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) || errors.Is(err, errInflatedTooLarge) {
				return d, err
			}
			return d, &apiError{http.StatusBadRequest, "the JSON array is not closed"}
		}
		return d, nil
	}
	for {
		line, long, err := readLine(br, lim.recordBytes)
		if t := bytes.TrimSpace(line); len(t) > 0 || long {
			if long {
				if ferr := full(); ferr != nil {
					return d, ferr
				}
				tooLong(t)
			} else if aerr := addRaw(t); aerr != nil {
				return d, aerr
			}
		}
		if err == io.EOF {
			return d, nil
		}
		if err != nil {
			return d, err
		}
	}
}

// maxRawBytes bounds the text of a too-long record kept in quarantine.
const maxRawBytes = 64 << 10

// readLine reads one line of at most limit bytes; of a longer one only the
// first maxRawBytes are kept (long is true), the rest is read and thrown away.
func readLine(r *bufio.Reader, limit int) (line []byte, long bool, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		switch {
		case long:
		case len(line)+len(chunk) > limit:
			long = true
			line = append(line, chunk...)[:min(len(line)+len(chunk), maxRawBytes)]
		default:
			line = append(line, chunk...)
		}
		if err != bufio.ErrBufferFull {
			return line, long, err
		}
	}
}

// unknownFields names, per request, the fields of its records that entity
// does not have. With reject, each record carrying one becomes a bad record
// (unknown_field) instead; otherwise they are returned as the warning.
func unknownFields(entity string, d decoded, reject bool) []string {
	e, err := ingest.LookupEntity(entity)
	if err != nil {
		return nil
	}
	known := map[string]bool{}
	for _, n := range e.FieldNames() {
		known[n] = true
	}
	seen := map[string]bool{}
	var names []string
	for i, rec := range d.recs {
		var mine []string
		for k := range rec {
			if !known[k] {
				mine = append(mine, k)
				if !seen[k] {
					seen[k] = true
					names = append(names, k)
				}
			}
		}
		if reject && len(mine) > 0 {
			sort.Strings(mine)
			d.recs[i] = nil
			d.bad[i] = badRecord{code: "unknown_field", reason: fmt.Sprintf("fields not in %s: %s (unknown=reject)", entity, strings.Join(mine, ", "))}
		}
	}
	if len(names) == 0 || reject {
		return nil
	}
	sort.Strings(names)
	return []string{fmt.Sprintf("fields not in %s: %s (ignored)", entity, strings.Join(names, ", "))}
}

// object decodes one JSON object into field → text (numbers as written,
// booleans true/false, null as empty, nested values as JSON text).
func object(raw []byte) (map[string]string, error) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, errors.New("not a JSON object")
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		t := bytes.TrimSpace(v)
		switch {
		case len(t) == 0 || string(t) == "null":
			out[k] = ""
		case t[0] == '"':
			var s string
			if err := json.Unmarshal(t, &s); err != nil {
				return nil, err
			}
			out[k] = s
		default:
			out[k] = string(t)
		}
	}
	return out, nil
}

func (s *Service) stream(ctx context.Context, entity string) (*stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, &apiError{http.StatusServiceUnavailable, "shutting down"}
	}
	st := s.ents[entity]
	if st == nil {
		st = &stream{entity: entity}
		s.ents[entity] = st
	}
	return st, nil
}

// add buffers a request's records and waits for the flush that holds them.
func (s *Service) add(ctx context.Context, entity string, d decoded) (*Response, error) {
	st, err := s.stream(ctx, entity)
	if err != nil {
		return nil, err
	}
	resp := &Response{Entity: entity, Received: len(d.recs)}
	done := make(chan error, 1)

	st.mu.Lock()
	if err := s.ensureLoader(ctx, st); err != nil {
		st.mu.Unlock()
		return nil, err
	}
	st.rejects = map[int64]ingest.Reject{}
	resp.Errors, err = addRecords(ctx, st.loader, &st.line, st.rejects, d)
	st.rejects = nil
	if err != nil {
		st.mu.Unlock()
		return nil, err
	}
	resp.Rejected = len(resp.Errors)
	resp.Accepted = resp.Received - resp.Rejected
	st.waiters = append(st.waiters, done)
	st.pending += len(d.recs)
	if st.pending >= s.cfg.FlushRows {
		s.flushLocked(ctx, st)
	} else if st.timer == nil {
		st.timer = time.AfterFunc(s.cfg.FlushEvery, func() {
			st.mu.Lock()
			defer st.mu.Unlock()
			s.flushLocked(context.Background(), st)
		})
	}
	st.mu.Unlock()

	select {
	case err := <-done:
		if err != nil {
			return nil, err
		}
		return resp, nil
	case <-ctx.Done():
		return nil, &apiError{http.StatusServiceUnavailable, "request ended before the records were stored: " + ctx.Err().Error()}
	}
}

// addRecords adds a request's records to l as the lines after *line (which it advances):
// the bad ones to quarantine, the others through validation. rejects is where l's
// OnReject puts the records it rejects, by line. It returns the request's rejected records,
// in order; an error means the store failed.
func addRecords(ctx context.Context, l *ingest.Loader, line *int64, rejects map[int64]ingest.Reject, d decoded) ([]RecordError, error) {
	lines := make([]int64, len(d.recs))
	for i, rec := range d.recs {
		*line++
		lines[i] = *line
		if b, bad := d.bad[i]; bad {
			if err := l.Quarantine(ctx, *line, "", b.code, b.reason, d.raws[i]); err != nil {
				return nil, err
			}
			continue
		}
		if err := l.Add(ctx, ingest.Record{Line: *line, Fields: rec, Raw: d.raws[i]}); err != nil {
			return nil, err
		}
	}
	var errs []RecordError
	for i, ln := range lines {
		if rj, ok := rejects[ln]; ok {
			errs = append(errs, RecordError{Index: i, Field: rj.Field, Reason: rj.Reason})
		} else if b, bad := d.bad[i]; bad {
			errs = append(errs, RecordError{Index: i, Reason: b.reason})
		}
	}
	return errs, nil
}

func (s *Service) ensureLoader(ctx context.Context, st *stream) error {
	if st.loader != nil && time.Since(st.started) < s.cfg.RunEvery && st.line < s.cfg.RunRecords {
		return nil
	}
	if st.loader != nil {
		s.closeRun(ctx, st)
	}
	l, err := ingest.NewLoader(context.WithoutCancel(ctx), s.st, ingest.Options{
		Entity: st.entity, Source: s.cfg.Source, Log: s.log,
		Commit: ingest.CommitBatch, // a 2xx means stored: each flush is committed as it is written
		OnReject: func(r ingest.Reject) {
			if st.rejects != nil {
				st.rejects[r.Line] = r
			}
		},
		OnWritten: func(c ingest.Counts) {
			if s.OnRecords != nil {
				s.OnRecords(st.entity, c)
			}
		},
	}, "events")
	if err != nil {
		return err
	}
	st.loader, st.started, st.line = l, time.Now(), 0
	return nil
}

// flushLocked writes what is buffered and answers the waiting requests.
func (s *Service) flushLocked(ctx context.Context, st *stream) {
	if st.timer != nil {
		st.timer.Stop()
		st.timer = nil
	}
	if len(st.waiters) == 0 {
		return
	}
	err := st.loader.Flush(context.WithoutCancel(ctx))
	for _, w := range st.waiters {
		w <- err
	}
	st.waiters, st.pending = nil, 0
	if err != nil {
		// A failed write leaves the run unusable (its writers keep the error): end it as
		// failed, so that the next request starts a new run once the store takes writes
		// again. The failed records were not acknowledged; their senders send them again
		// and ids deduplicate whatever part of them did reach the store.
		if sum, cerr := st.loader.Close(context.WithoutCancel(ctx), err); cerr != nil {
			s.log.Error("events: run failed", "entity", st.entity, "run", sum.RunID, "err", err)
		}
		st.loader = nil
		return
	}
	if s.OnData != nil {
		s.OnData(st.entity)
	}
}

func (s *Service) closeRun(ctx context.Context, st *stream) {
	sum, err := st.loader.Close(context.WithoutCancel(ctx), nil)
	if err != nil {
		s.log.Error("events: close run", "entity", st.entity, "err", err)
	} else {
		s.log.Info("events run", "entity", st.entity, "run", sum.RunID, "read", sum.Read, "loaded", sum.Loaded,
			"rejected", sum.Rejected, "duplicates", sum.Duplicates)
	}
	st.loader = nil
}

// Close flushes every buffer, answers waiting requests and finishes the runs.
func (s *Service) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	ents := s.ents
	s.mu.Unlock()
	for _, st := range ents {
		st.mu.Lock()
		if st.loader != nil {
			s.flushLocked(ctx, st)
		}
		if st.loader != nil {
			s.closeRun(ctx, st)
		}
		st.mu.Unlock()
	}
	return nil
}
