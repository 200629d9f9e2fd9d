package metrics

import (
	"context"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/embedded"
)

// BenchmarkBuiltins reports, for every built-in over the year before the
// data's last order at month grain: the median of 3 cold answers of Query
// (no result cache), the median of 3 replays of the raw SQL statements that
// answer ran (traced, run one after another, every row read), their ratio, and
// the median of 5 cached answers; on a store made by `converge demo`:
//
//	CONVERGE_BENCH_DATA_DIR=./data go test ./metrics -run '^$' -bench Builtins -benchtime 1x -timeout 2h
//
// CONVERGE_BENCH_METRICS=a,b limits it to some metrics.
func BenchmarkBuiltins(b *testing.B) {
	dir := os.Getenv("CONVERGE_BENCH_DATA_DIR")
	if dir == "" {
		b.Skip("set CONVERGE_BENCH_DATA_DIR to a data directory made by `converge demo`")
	}
	ctx := context.Background()
	st, err := warehouse.Open(ctx, warehouse.Config{DataDir: dir, EngineLib: embedded.DefaultLibPath()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	cold, err := New(ctx, Options{Store: st, CacheTTL: -1})
	if err != nil {
		b.Fatal(err)
	}
	cached, err := New(ctx, Options{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	var last time.Time
	if err := st.Conn.QueryRow(ctx, "SELECT max(ordered_at) FROM orders").Scan(&last); err != nil {
		b.Fatal(err)
	}
	to := time.Date(last.Year(), last.Month(), 1, 0, 0, 0, 0, time.UTC)
	v := url.Values{"from": {to.AddDate(-1, 0, 0).Format(time.DateOnly)}, "to": {to.Format(time.DateOnly)}, "grain": {"month"}}
	median := func(n int, f func() error) time.Duration {
		var ds []time.Duration
		for range n {
			t0 := time.Now()
			if err := f(); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(t0))
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	only := map[string]bool{}
	for _, n := range strings.Split(os.Getenv("CONVERGE_BENCH_METRICS"), ",") {
		if n != "" {
			only[n] = true
		}
	}
	var ratios []float64
	for range b.N {
		b.Logf("%-22s %-7s %10s %10s %6s %9s %5s", "metric", "kind", "query ms", "raw ms", "ratio", "cached ms", "stmts")
		for _, d := range cold.List() {
			if len(only) > 0 && !only[d.Name] {
				continue
			}
			p, err := cold.ParseParams(d.Name, v)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := cold.Query(ctx, d.Name, p); err != nil { // definition checks, not timed
				b.Fatalf("%s: %v", d.Name, err)
			}
			var mu sync.Mutex
			var stmts []Statement
			q := median(3, func() error {
				mu.Lock()
				stmts = stmts[:0]
				mu.Unlock()
				_, err := cold.Query(WithTrace(ctx, func(s Statement) { mu.Lock(); stmts = append(stmts, s); mu.Unlock() }), d.Name, p)
				return err
			})
			raw := median(3, func() error {
				for _, s := range stmts {
					rows, err := st.Conn.Query(clickhouse.Context(ctx, clickhouse.WithParameters(s.Args)), s.SQL)
					if err != nil {
						return err
					}
					for rows.Next() {
					}
					rows.Close()
					if err := rows.Err(); err != nil {
						return err
					}
				}
				return nil
			})
			_, _ = cached.Query(ctx, d.Name, p)
			c := median(5, func() error { _, err := cached.Query(ctx, d.Name, p); return err })
			ratio := float64(q) / float64(raw)
			ratios = append(ratios, ratio)
			b.Logf("%-22s %-7s %10.1f %10.1f %6.2f %9.2f %5d", d.Name, d.Kind, ms(q), ms(raw), ratio, ms(c), len(stmts))
		}
	}
	slices.Sort(ratios)
	if len(ratios) > 0 {
		b.Logf("ratio converge/raw over %d metrics: median %.2f, max %.2f", len(ratios), ratios[len(ratios)/2], ratios[len(ratios)-1])
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
