package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/embedded"
)

// BenchmarkOverview reports the server time of the overview page on a store
// made by `converge demo` (one year to the data's last full month, month
// grain): cold (a fresh metrics registry, no cached answer) and warm
// (cached), median and p95, the ratio of the cold time to the raw SQL
// statements it ran replayed one after another, and the page's bytes:
//
//	CONVERGE_BENCH_DATA_DIR=./data go test ./server -run '^$' -bench Overview -benchtime 1x -timeout 2h
//
// CONVERGE_BENCH_COLD (default 5) and CONVERGE_BENCH_WARM (default 50) set the
// number of loads.
func BenchmarkOverview(b *testing.B) {
	dir := os.Getenv("CONVERGE_BENCH_DATA_DIR")
	if dir == "" {
		b.Skip("set CONVERGE_BENCH_DATA_DIR to a data directory made by `converge demo`")
	}
	nCold, nWarm := envInt("CONVERGE_BENCH_COLD", 5), envInt("CONVERGE_BENCH_WARM", 50)
	ctx := context.Background()
	st, err := warehouse.Open(ctx, warehouse.Config{DataDir: dir, EngineLib: embedded.DefaultLibPath()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var last time.Time
	if err := st.Conn.QueryRow(ctx, "SELECT max(ordered_at) FROM orders").Scan(&last); err != nil {
		b.Fatal(err)
	}
	to := time.Date(last.Year(), last.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
	target := "/?range=custom&grain=month&from=" + to.AddDate(-1, 0, 1).Format(time.DateOnly) + "&to=" + to.Format(time.DateOnly)

	newServer := func(cacheTTL time.Duration) *Server {
		reg, err := metrics.New(ctx, metrics.Options{Store: st, CacheTTL: cacheTTL})
		if err != nil {
			b.Fatal(err)
		}
		m := NewRegistryMetrics(reg, RegistryConfig{Currency: "EUR", WeekStart: time.Monday})
		if _, err := m.Catalog(ctx); err != nil { // definition checks, not timed
			b.Fatal(err)
		}
		return New(Config{TZ: "UTC", WeekStart: time.Monday, TileTimeout: time.Hour}, Deps{Store: fakeStore{}, Metrics: m})
	}
	load := func(srv *Server, rctx context.Context) (time.Duration, int) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(rctx, http.MethodGet, target, nil)
		t0 := time.Now()
		srv.Handler().ServeHTTP(rec, req)
		d := time.Since(t0)
		if rec.Code != http.StatusOK {
			b.Fatalf("overview: %d", rec.Code)
		}
		return d, rec.Body.Len()
	}
	var cold, raw []time.Duration
	var stmts []metrics.Statement
	var mu sync.Mutex
	var bytes int
	for range nCold {
		srv := newServer(-1)
		stmts = stmts[:0]
		d, n := load(srv, metrics.WithTrace(ctx, func(s metrics.Statement) { mu.Lock(); stmts = append(stmts, s); mu.Unlock() }))
		cold, bytes = append(cold, d), n
		t0 := time.Now()
		for _, s := range stmts {
			rows, err := st.Conn.Query(clickhouse.Context(ctx, clickhouse.WithParameters(s.Args)), s.SQL)
			if err != nil {
				b.Fatal(err)
			}
			for rows.Next() {
			}
			rows.Close()
		}
		raw = append(raw, time.Since(t0))
	}
	srv := newServer(time.Hour)
	load(srv, ctx)
	var warm []time.Duration
	for range nWarm {
		d, _ := load(srv, ctx)
		warm = append(warm, d)
	}
	med, p95 := quantiles(cold)
	rmed, _ := quantiles(raw)
	wmed, wp95 := quantiles(warm)
	b.Logf("overview cold: median %.0f ms, p95 %.0f ms (%d loads); raw statements one after another: median %.0f ms (%d statements); ratio %.2f",
		ms(med), ms(p95), nCold, ms(rmed), len(stmts), float64(med)/float64(rmed))
	b.Logf("overview warm: median %.1f ms, p95 %.1f ms (%d loads); HTML %d bytes", ms(wmed), ms(wp95), nWarm, bytes)
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// quantiles returns the median and the 95th percentile (nearest rank).
func quantiles(ds []time.Duration) (time.Duration, time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	i95 := (len(s)*95+99)/100 - 1
	return s[len(s)/2], s[max(i95, 0)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
