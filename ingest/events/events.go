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
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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
