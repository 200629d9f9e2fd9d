package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/ingest/events"
	"github.com/converge-dev/converge/metrics"
)

// streamSource is the source the stream step's events are stored under; they are deleted
// from the store when the step ends.
const streamSource = "bench-stream"

const (
	streamTick     = 100 * time.Millisecond // one batch of each entity per tick
	streamOrderPct = 20                     // share of the events that are orders
	streamProbe    = 100 * time.Millisecond // how often the orders answer is asked
	streamSettle   = 30 * time.Second       // how long, after the stream, the last orders are waited for
)

// streamOverview: the rollup loop runs (RunRollups, kicked after each flush, as serve does)
// while events stream through the events API at cfg.StreamRate for cfg.StreamFor
// (touchpoints and orders, posted in-process on loopback as the events step posts), and the
// overview as it opens is loaded again and again on one server whose registry has its
// result cache, as serve's: the page's median and p95 beside the same page with no stream,
// the event rate achieved, and how long after its acknowledgement an order is in the
// answers of that registry (the orders metric, asked every streamProbe).
//
// The events go into the store (the page must show the demo's data) as source
// bench-stream, anonymous, on the data's last day; they are deleted when the step ends and
// the rollups fold the deletion in.
func streamOverview(ctx context.Context, cfg *Config) (res []Result, err error) {
	last, err := lastOrder(ctx, cfg)
	if err != nil {
		return nil, err
	}
	day := time.Date(last.Year(), last.Month(), last.Day(), 0, 0, 0, 0, time.UTC)
	srv, reg, err := pageServer(ctx, cfg, 0, func() time.Time { return last })
	if err != nil {
		return nil, err
	}
	if up, err := reg.UpkeepRollups(ctx); err != nil { // catch up before the stream: not timed
		cfg.Log.Warn("bench: rollup upkeep before the stream", "failed", up.Failed, "err", err)
	}
	var quiet []float64
	for range 5 {
		d, _, err := loadPage(ctx, srv, "/")
		if err != nil {
			return nil, err
		}
		quiet = append(quiet, msOf(d))
	}
	defer func() {
		if cerr := removeSource(context.WithoutCancel(ctx), cfg, reg); cerr != nil && err == nil {
			res, err = nil, cerr
		}
	}()

	// The events API, authenticated as a client is.
	tokens := events.NewTokens(cfg.Store, time.Minute)
	expires := time.Now().Add(cfg.StreamFor + time.Hour)
	tok, info, err := tokens.Create(ctx, "bench-stream", events.ScopeIngest, "bench", &expires)
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = cfg.Store.Conn.Exec(context.WithoutCancel(ctx), "ALTER TABLE "+cfg.Store.MutationTarget("api_tokens")+
			" DELETE WHERE token_id = {id:String} SETTINGS mutations_sync = 2", clickhouse.Named("id", info.ID))
	}()
	svc := events.New(cfg.Store, tokens, events.Config{Source: streamSource}, nil)
	svc.OnData = func(string) { reg.KickRollups() }
	mux := http.NewServeMux()
	mux.Handle("/api/v1/events/", svc)
	api := httptest.NewServer(mux)
	defer func() {
		api.Close()
		_ = svc.Close(context.WithoutCancel(ctx))
	}()

	loopCtx, stopLoop := context.WithCancel(ctx)
	var loops sync.WaitGroup
	defer func() { stopLoop(); loops.Wait() }()
	loops.Go(func() { reg.RunRollups(loopCtx, time.Second, nil) })

	s := &stream{cfg: cfg, url: api.URL, token: tok, day: day}
	p, err := reg.ParseParams("orders", map[string][]string{"from": {day.Format(time.DateOnly)}, "to": {day.Format(time.DateOnly)},
		"grain": {"day"}, "filter": {"source=" + streamSource}})
	if err != nil {
		return nil, err
	}
	explain, err := reg.Explain(ctx, "orders", p)
	if err != nil {
		return nil, err
	}
	probeCtx, stopProbe := context.WithCancel(ctx)
	probeDone := make(chan error, 1)
	go func() { probeDone <- s.probe(probeCtx, reg, p) }()

	// Pages loaded one after another while the stream runs.
	streaming := make(chan struct{})
	var pages []float64
	var pageErr error
	var pageWG sync.WaitGroup
	pageWG.Go(func() {
		for {
			select {
			case <-streaming:
				return
			default:
			}
			d, _, err := loadPage(ctx, srv, "/")
			if err != nil {
				pageErr = err
				return
			}
			pages = append(pages, msOf(d))
		}
	})
	elapsed := s.run(ctx)
	close(streaming)
	pageWG.Wait()
	// The last orders acknowledged are waited for (the lag of each is measured).
	for settle := time.Now(); time.Since(settle) < streamSettle && !s.allSeen(); {
		time.Sleep(streamProbe)
	}
	stopProbe()
	if perr := <-probeDone; perr != nil && probeCtx.Err() == nil {
		return nil, fmt.Errorf("orders answer during the stream: %w", perr)
	}
	if pageErr != nil {
		return nil, fmt.Errorf("overview during the stream: %w", pageErr)
	}
	if len(s.errs) > 0 {
		return nil, fmt.Errorf("%d posts failed, first: %w", len(s.errs), s.errs[0])
	}
	if len(pages) == 0 {
		return nil, fmt.Errorf("no overview load finished during the %s stream", cfg.StreamFor)
	}

	pm, pp := quantiles(pages)
	qm, _ := quantiles(quiet)
	rate := float64(s.acked) / elapsed.Seconds()
	lm, lp, lmax, seen := s.lags()
	ackM, ackP := quantiles(s.ackMs)
	path, how := explainPath(explain)
	fm, fp := quantiles(s.freshLag)
	out := []Result{
		{Group: "stream", Name: "overview while events stream", Unit: "ms", Median: pm, P95: pp, Direct: qm, Ratio: pm / qm, N: len(pages),
			Note: fmt.Sprintf("as opened (last 30 days to %s), one server with its result cache; vs %d loads with no stream; target p95 ≤ 1 s",
				day.Format(time.DateOnly), len(quiet))},
		{Group: "stream", Name: "events streamed", Unit: "events/s", Median: rate, N: s.acked,
			Note: fmt.Sprintf("aimed at %d/s for %s, %d %% orders; ack latency median %.0f ms, p95 %.0f ms", cfg.StreamRate, cfg.StreamFor, streamOrderPct, ackM, ackP)},
		{Group: "stream", Name: "data-as-of lag of an order", Unit: "s", Median: lm, P95: lp, N: seen, Path: path,
			Note: fmt.Sprintf("ack → in the orders answer: max %.2f s; %d of %d order batches seen; answers' Freshness behind the clock median %.2f s, p95 %.2f s; orders read: %s; target ≤ 5 s",
				lmax, seen, len(s.batches), fm, fp, how)},
	}
	return out, nil
}

// stream posts the events and remembers what was acknowledged when.
type stream struct {
	cfg        *Config
	url, token string
	day        time.Time

	mu      sync.Mutex
	batches []orderBatch // in the order sent
	acked   int          // events acknowledged
	ackMs   []float64
	errs    []error
	seen    []time.Time // when the orders answer first counted at least cum of batch i
	// freshLag is how far each probe's answer's Freshness was behind the clock, in seconds.
	freshLag []float64
}

type orderBatch struct {
	cum   int // orders sent up to and including this batch
	acked time.Time
}

// run posts a batch of touchpoints and one of orders every streamTick until cfg.StreamFor
// has gone by and every post is answered; it returns the time from the first post to the last
// answer.
func (s *stream) run(ctx context.Context) time.Duration {
	perTick := max(s.cfg.StreamRate*int(streamTick/time.Millisecond)/1000, 2)
	orders := max(perTick*streamOrderPct/100, 1)
	touches := perTick - orders
	t := time.NewTicker(streamTick)
	defer t.Stop()
	var wg sync.WaitGroup
	start := time.Now()
	cum, n := 0, 0
	for tick := 0; time.Since(start) < s.cfg.StreamFor; tick++ {
		var tb, ob strings.Builder
		for range touches {
			at := s.day.Add(time.Duration(n%86400) * time.Second).Format(time.RFC3339)
			fmt.Fprintf(&tb, `{"event_id":"s%d","anonymous_id":"a%d","occurred_at":"%s","channel":"email","campaign":"stream","kind":"open"}`+"\n", n, n%5000, at)
			n++
		}
		for range orders {
			at := s.day.Add(time.Duration(n%86400) * time.Second).Format(time.RFC3339)
			fmt.Fprintf(&ob, `{"order_id":"s%d","ordered_at":"%s","revenue":%d.50,"currency":"EUR","channel":"email","country":"DE"}`+"\n", n, at, 5+n%200)
			n++
		}
		cum += orders
		s.mu.Lock()
		s.batches = append(s.batches, orderBatch{cum: cum})
		i := len(s.batches) - 1
		s.mu.Unlock()
		wg.Go(func() { s.post(ctx, "touchpoints", tb.String(), touches, -1) })
		wg.Go(func() { s.post(ctx, "orders", ob.String(), orders, i) })
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	wg.Wait()
	return time.Since(start)
}

// post sends one NDJSON body of n records; batch i of orders (-1: touchpoints) is stamped
// with the time of its acknowledgement.
func (s *stream) post(ctx context.Context, entity, body string, n, i int) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/api/v1/events/"+entity, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/x-ndjson")
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	at := time.Now()
	if resp != nil {
		resp.Body.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil:
		s.errs = append(s.errs, fmt.Errorf("%s: %w", entity, err))
	case resp.StatusCode != http.StatusOK:
		s.errs = append(s.errs, fmt.Errorf("%s: status %d", entity, resp.StatusCode))
	default:
		s.acked += n
		s.ackMs = append(s.ackMs, msOf(at.Sub(t0)))
		if i >= 0 {
			s.batches[i].acked = at
		}
	}
}

// probe asks the registry for the stream's orders until ctx ends: a batch is seen once an
// answer counts as many orders as were sent up to it (one entity's records are stored in the
// order they arrive, so a count covers a prefix of the batches).
func (s *stream) probe(ctx context.Context, reg *metrics.Registry, p metrics.Params) error {
	t := time.NewTicker(streamProbe)
	defer t.Stop()
	for {
		res, err := reg.Query(ctx, "orders", p)
		if err != nil {
			return err
		}
		now := time.Now()
		count := 0
		if len(res.Series) > 0 && res.Series[0].Total != nil {
			count = int(*res.Series[0].Total)
		}
		s.mu.Lock()
		for i := len(s.seen); i < len(s.batches) && s.batches[i].cum <= count; i++ {
			s.seen = append(s.seen, now)
		}
		if !res.Freshness.IsZero() {
			s.freshLag = append(s.freshLag, now.Sub(res.Freshness).Seconds())
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// allSeen says whether every batch sent is in an answer.
func (s *stream) allSeen() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen) == len(s.batches)
}

// lags are the median, p95 and max seconds from an order batch's acknowledgement to the
// first answer counting it, and how many batches were seen. An answer may count a batch
// before its acknowledgement reaches the client: that lag is 0.
func (s *stream) lags() (med, p95, maxLag float64, seen int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ls []float64
	for i, at := range s.seen {
		if s.batches[i].acked.IsZero() {
			continue
		}
		ls = append(ls, max(at.Sub(s.batches[i].acked).Seconds(), 0))
	}
	if len(ls) == 0 {
		return 0, 0, 0, 0
	}
	med, p95 = quantiles(ls)
	return med, p95, slices.Max(ls), len(ls)
}

// removeSource deletes the stream's rows from every table that records a source, and lets
// the rollups fold the deletion in.
func removeSource(ctx context.Context, cfg *Config, reg *metrics.Registry) error {
	rows, err := cfg.Store.Conn.Query(ctx, "SELECT DISTINCT c.table FROM system.columns AS c INNER JOIN system.tables AS t ON t.database = c.database AND t.name = c.table "+
		"WHERE c.database = currentDatabase() AND c.name = 'source' AND t.engine LIKE '%MergeTree' ORDER BY c.table")
	if err != nil {
		return fmt.Errorf("tables with a source: %w", err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, t := range tables {
		if err := cfg.Store.Conn.Exec(ctx, "ALTER TABLE "+cfg.Store.MutationTarget(t)+" DELETE WHERE source = {source:String} SETTINGS mutations_sync = 2",
			clickhouse.Named("source", streamSource)); err != nil {
			return fmt.Errorf("delete the stream's rows from %s: %w", t, err)
		}
	}
	if _, err := reg.UpkeepRollups(ctx); err != nil {
		return fmt.Errorf("rollups after deleting the stream's rows: %w", err)
	}
	return nil
}
