package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/converge-dev/converge/export"
	"github.com/converge-dev/converge/ingest/demo"
	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// demoStore is the small demo company (seed whtest.DemoSeed, data to whtest.DemoEnd), loaded
// once per test binary through the real ingest path, with the predictive CLV fitted on it
// (calibration end whtest.DemoEnd, the defaults otherwise), as `converge demo` does. Tests only
// read it.
func demoStore(t testing.TB) *warehouse.Store {
	t.Helper()
	return whtest.Demo(t, func(ctx context.Context, st *warehouse.Store) error {
		if _, err := demo.Load(ctx, st, demo.Config{Size: demo.Small, Seed: whtest.DemoSeed, End: whtest.DemoEnd}, demo.LoadOptions{}); err != nil {
			return err
		}
		_, err := metrics.FitCLV(ctx, st, metrics.CLVOptions{CalibrationEnd: whtest.DemoEnd, Write: true})
		return err
	})
}

// demoMetrics is the real metrics layer over demoStore, as serve wires it (EUR, Monday weeks).
func demoMetrics(t testing.TB) Metrics {
	t.Helper()
	st := demoStore(t)
	reg, err := metrics.New(context.Background(), metrics.Options{Store: st, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	m := NewRegistryMetrics(reg, RegistryConfig{Currency: "EUR", WeekStart: time.Monday})
	// Check the definitions against the store before the first request, as serve does: a
	// page's catalog read must not pay for it (catalogTimeout) on a loaded machine.
	if errs := reg.Check(context.Background()); len(errs) > 0 {
		t.Fatal(errs)
	}
	return m
}

// demoServer is a server over the demo store; its "today" is the day after whtest.DemoEnd, so
// the range presets cover the demo's data. deps.Store, deps.Metrics and deps.Exports default to
// the demo's.
func demoServer(t testing.TB, deps Deps) *Server {
	t.Helper()
	if deps.Store == nil {
		deps.Store = fakeStore{}
	}
	if deps.Metrics == nil {
		deps.Metrics = demoMetrics(t)
	}
	if deps.Exports == nil {
		st := demoStore(t)
		reg, err := metrics.New(context.Background(), metrics.Options{Store: st, CacheTTL: -1})
		if err != nil {
			t.Fatal(err)
		}
		deps.Exports = &export.Service{Store: st, Registry: reg}
	}
	srv := asAdmin(New(Config{TZ: "UTC", WeekStart: time.Monday, TileTimeout: 60 * time.Second}, deps))
	srv.now = func() time.Time { return whtest.DemoEnd.Add(36 * time.Hour) }
	return srv
}

// get serves one GET request and returns the recorder.
func get(t testing.TB, srv *Server, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec
}

// The demo store answers the real metrics layer: the overview of last year has values.
func TestDemoOverview(t *testing.T) {
	srv := demoServer(t, Deps{})
	rec := get(t, srv, "/?range=last_year")
	if rec.Code != http.StatusOK {
		t.Fatalf("overview: %d", rec.Code)
	}
	body := rec.Body.String()
	for _, want := range []string{"Gross revenue", "New customers", "Net Promoter Score"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if strings.Contains(body, "tile-error") {
		t.Errorf("overview has an error tile")
	}
}

// One overview load computes each metric once, however many tiles read it: a derived tile
// takes its inputs' values from the tiles that computed them (metrics.WithSharedValues), so
// no statement runs twice, and there are fewer statements than when each tile computes alone.
func TestOverviewSharesValues(t *testing.T) {
	srv := demoServer(t, Deps{})
	var mu sync.Mutex
	seen := map[string]int{}
	ctx := metrics.WithTrace(context.Background(), func(s metrics.Statement) {
		mu.Lock()
		defer mu.Unlock()
		seen[s.SQL+fmt.Sprint(s.Args)]++
	})
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/?range=last_year&compare=previous", nil))
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "tile-error") {
		t.Fatalf("overview: %d, error tile: %v", rec.Code, strings.Contains(rec.Body.String(), "tile-error"))
	}
	shared := 0
	for q, n := range seen {
		shared += n
		if n > 1 {
			t.Errorf("ran %d times in one load: %.200s", n, q)
		}
	}
	// Each tile alone (a context of its own per tile) runs more.
	alone := 0
	cat, err := srv.catalog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range cat {
		if !m.Valid {
			continue
		}
		mctx := metrics.WithTrace(context.Background(), func(metrics.Statement) { mu.Lock(); alone++; mu.Unlock() })
		r := httptest.NewRecorder()
		srv.Handler().ServeHTTP(r, httptest.NewRequestWithContext(mctx, http.MethodGet, "/tiles/"+m.Name+"?range=last_year&compare=previous", nil))
		if r.Code != http.StatusOK {
			t.Fatalf("tile %s: %d", m.Name, r.Code)
		}
	}
	if shared == 0 || shared >= alone {
		t.Errorf("one overview load ran %d statements, its tiles one by one %d: want fewer, and more than none", shared, alone)
	}
	t.Logf("one overview load: %d statements; its tiles one by one: %d", shared, alone)
}
