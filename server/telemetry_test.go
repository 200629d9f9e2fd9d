package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/ingest/events"
	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// scrape reads /metrics through h and parses the Prometheus text format.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, metricsPath, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: Content-Type %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// sample is the value of the series of family name with labels (a histogram's count, a
// counter's or gauge's value); ok is false when there is no such series.
func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for k, v := range labels {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k {
					if lp.GetValue() != v {
						continue next
					}
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// The series move with what the server does: requests by route template and status, metric
// queries by metric with cache hits and misses, event records by outcome, the quarantine
// size read at scrape time, the store's ping, and the runtime collectors.
func TestTelemetrySeriesMove(t *testing.T) {
	ctx := context.Background()
	evStore := whtest.Store(t)
	tokens := events.NewTokens(evStore, time.Minute)
	tok, _, err := tokens.Create(ctx, "telemetry", events.ScopeIngest, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	tel := NewTelemetry(TelemetryConfig{Quarantine: ingest.NewCatalog(evStore), Store: okStore()})
	evs := events.New(evStore, tokens, events.Config{FlushEvery: 10 * time.Millisecond}, nil)
	evs.OnRecords = tel.ObserveIngest
	t.Cleanup(func() { evs.Close(context.Background()) })
	reg, err := metrics.New(ctx, metrics.Options{Store: demoStore(t), OnQuery: tel.ObserveQuery})
	if err != nil {
		t.Fatal(err)
	}
	srv := demoServer(t, Deps{Telemetry: tel, Events: evs,
		Metrics: NewRegistryMetrics(reg, RegistryConfig{Currency: "EUR", WeekStart: time.Monday})})
	h := srv.Handler()

	before := scrape(t, h)
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "converge_store_up"} {
		if _, ok := sample(before, name, nil); !ok {
			t.Errorf("no %s series", name)
		}
	}
	if up, _ := sample(before, "converge_store_up", nil); up != 1 {
		t.Errorf("converge_store_up %v, want 1", up)
	}
	if _, ok := sample(before, "converge_quarantine_records", nil); ok {
		t.Errorf("a quarantine series before anything was rejected")
	}

	for range 2 {
		if rec := get(t, srv, "/kpi/revenue_gross?range=last_year&compare=none"); rec.Code != http.StatusOK {
			t.Fatalf("KPI page: %d", rec.Code)
		}
	}
	if rec := get(t, srv, "/no/such/page/123"); rec.Code != http.StatusNotFound {
		t.Fatalf("unknown page: %d", rec.Code)
	}
	body := strings.Join([]string{
		`{"event_id":"t1","customer_id":"C1","occurred_at":"2026-03-01T10:00:00Z","channel":"email","kind":"open"}`,
		`{"event_id":"t1","customer_id":"C1","occurred_at":"2026-03-01T10:00:00Z","channel":"email","kind":"open"}`,
		`{"event_id":"t2","customer_id":"C2","occurred_at":"2026-03-01T11:00:00Z","channel":"email"}`, // no kind: rejected
	}, "\n")
	req := httptest.NewRequest(http.MethodPost, "/api/v1/events/touchpoints", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMultiStatus {
		t.Fatalf("events: %d %s, want 207 (one record rejected)", rec.Code, rec.Body.String())
	}

	after := scrape(t, h)
	moved := func(name string, labels map[string]string, want float64) {
		t.Helper()
		b, _ := sample(before, name, labels)
		a, ok := sample(after, name, labels)
		if !ok || a-b != want {
			t.Errorf("%s%v moved by %v (present %v), want %v", name, labels, a-b, ok, want)
		}
	}
	moved("converge_http_request_duration_seconds", map[string]string{"method": "GET", "route": "/kpi/:name", "status": "200"}, 2)
	moved("converge_http_request_duration_seconds", map[string]string{"method": "GET", "route": "unmatched", "status": "404"}, 1)
	moved("converge_http_request_duration_seconds", map[string]string{"method": "POST", "route": "/api/v1/events/:entity", "status": "207"}, 1)
	moved("converge_http_request_duration_seconds", map[string]string{"method": "GET", "route": metricsPath, "status": "200"}, 1) // the first scrape
	moved("converge_ingest_records_total", map[string]string{"entity": "touchpoints", "outcome": "loaded"}, 1)
	moved("converge_ingest_records_total", map[string]string{"entity": "touchpoints", "outcome": "duplicate"}, 1)
	moved("converge_ingest_records_total", map[string]string{"entity": "touchpoints", "outcome": "rejected"}, 1)
	if q, _ := sample(after, "converge_quarantine_records", map[string]string{"entity": "touchpoints"}); q != 1 {
		t.Errorf("converge_quarantine_records{entity=touchpoints} = %v, want 1", q)
	}
	// The KPI page asks revenue_gross for its headline and its chart: the first visit computes
	// (misses), the second is answered from the cache.
	q, _ := sample(after, "converge_metric_query_duration_seconds", map[string]string{"metric": "revenue_gross", "outcome": "ok"})
	hits, _ := sample(after, "converge_metric_cache_requests_total", map[string]string{"result": "hit"})
	misses, _ := sample(after, "converge_metric_cache_requests_total", map[string]string{"result": "miss"})
	if q < 2 || hits < 1 || misses < 1 || hits+misses < q {
		t.Errorf("revenue_gross queries %v, cache hits %v misses %v: want ≥ 2 queries, ≥ 1 hit and ≥ 1 miss, one lookup per query", q, hits, misses)
	}
	// No label holds a raw path.
	for _, m := range after["converge_http_request_duration_seconds"].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "route" && strings.Contains(lp.GetValue(), "123") {
				t.Errorf("route label %q is a raw path", lp.GetValue())
			}
		}
	}
}

// slowStore answers Ping only when ctx ends.
type slowStore struct{ fakeStore }

func (slowStore) Ping(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }

// failingQuarantine cannot count.
type failingQuarantine struct{}

func (failingQuarantine) QuarantineSize(ctx context.Context) (map[string]int64, error) {
	return nil, errors.New("store unreachable")
}

// A store that does not answer makes a scrape report it within the scrape timeout.
func TestTelemetryScrapeBounded(t *testing.T) {
	tel := NewTelemetry(TelemetryConfig{Store: slowStore{}, Quarantine: failingQuarantine{}, ScrapeTimeout: 100 * time.Millisecond})
	start := time.Now()
	fams := scrape(t, tel.Handler())
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("scrape took %v with a 100 ms timeout", d)
	}
	if up, ok := sample(fams, "converge_store_up", nil); !ok || up != 0 {
		t.Errorf("converge_store_up = %v (present %v), want 0", up, ok)
	}
	for _, part := range []string{"store", "quarantine"} {
		if n, _ := sample(fams, "converge_scrape_errors_total", map[string]string{"part": part}); n != 1 {
			t.Errorf("scrape errors of %s = %v, want 1", part, n)
		}
	}
}

// Who may scrape /metrics on the main router: an admin session or a token of scope metrics
// (or admin); a scraper without either gets 401 JSON, not the sign-in page. The
// server.metrics_addr listener needs nothing.
func TestMetricsAccess(t *testing.T) {
	env := newAccessEnv(t, Config{}, access.Config{}, Deps{Tokens: fakeTokens{"m": "metrics", "r": "read", "a": "admin", "i": "ingest"}})
	ctx := context.Background()
	admin, exec := env.session(t, access.RoleAdmin), env.session(t, access.RoleExecutive)
	for _, tc := range []struct {
		name  string
		token string
		sess  *access.Session
		want  int
	}{
		{"nothing", "", nil, http.StatusUnauthorized},
		{"metrics token", "m", nil, http.StatusOK},
		{"admin token", "a", nil, http.StatusOK},
		{"read token", "r", nil, http.StatusUnauthorized},
		{"ingest token", "i", nil, http.StatusUnauthorized},
		{"admin session", "", &admin, http.StatusOK},
		{"executive session", "", &exec, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.token != "" {
				h.Set("Authorization", "Bearer "+tc.token)
			}
			rec := env.send(t, ctx, http.MethodGet, metricsPath, tc.sess, nil, h)
			if rec.Code != tc.want {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body.String(), tc.want)
			}
			switch {
			case tc.want == http.StatusOK && !strings.Contains(rec.Body.String(), "converge_http_request_duration_seconds"):
				t.Errorf("the body has no converge series:\n%.300s", rec.Body.String())
			case tc.want != http.StatusOK && !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json"):
				t.Errorf("refusal is %q, want JSON", rec.Header().Get("Content-Type"))
			}
		})
	}
	// A metrics token opens nothing else.
	rec := env.send(t, ctx, http.MethodGet, "/api/v1/metrics", nil, nil, http.Header{"Authorization": {"Bearer m"}})
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("a metrics token on the API: %d, want 401", rec.Code)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- env.srv.ServeMetrics(sctx, ln) }()
	for path, want := range map[string]int{metricsPath: http.StatusOK, "/": http.StatusNotFound, "/readyz": http.StatusNotFound} {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == http.StatusOK && !strings.Contains(string(b), "go_goroutines")) {
			t.Errorf("metrics listener %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeMetrics: %v", err)
	}
}
