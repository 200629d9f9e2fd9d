package metrics

import (
	"context"
	"net/url"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/embedded"
)

// BenchmarkBuiltins reports, for every built-in over the year before the
// data's last order at month grain, the median latency of Query (uncached)
// and of the raw SQL it plans (simple metrics), on a store made by
// `converge demo`:
//
//	CONVERGE_BENCH_DATA_DIR=./data go test ./metrics -run '^$' -bench Builtins -benchtime 1x
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
	r, err := New(ctx, Options{Store: st, CacheTTL: -1})
	if err != nil {
		b.Fatal(err)
	}
	var last time.Time
	if err := st.Conn.QueryRow(ctx, "SELECT max(ordered_at) FROM orders").Scan(&last); err != nil {
		b.Fatal(err)
	}
	to := time.Date(last.Year(), last.Month(), 1, 0, 0, 0, 0, time.UTC)
	v := url.Values{"from": {to.AddDate(-1, 0, 0).Format(time.DateOnly)}, "to": {to.Format(time.DateOnly)}, "grain": {"month"}}
	median := func(f func() error) time.Duration {
		var ds []time.Duration
		for range 7 {
			t0 := time.Now()
			if err := f(); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(t0))
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	for range b.N {
		for _, d := range r.List() {
			p, err := r.ParseParams(d.Name, v)
			if err != nil {
				b.Fatal(err)
			}
			q := median(func() error { _, err := r.Query(ctx, d.Name, p); return err })
			if d.Kind != Simple {
				b.Logf("%-22s %-7s query %7.1f ms", d.Name, d.Kind, ms(q))
				continue
			}
			sh, _ := r.checkStore(ctx, d, nil)
			raw := median(func() error {
				for _, total := range []bool{false, true} {
					sql, args := planSimple(d, sh, p, total)
					if err := r.scan(warehouse.Materialized(ctx), sql, args, func(row) {}); err != nil {
						return err
					}
				}
				return nil
			})
			b.Logf("%-22s %-7s query %7.1f ms  raw SQL %7.1f ms  ratio %.2f", d.Name, d.Kind, ms(q), ms(raw), float64(q)/float64(raw))
		}
		cached, _ := New(ctx, Options{Store: st})
		p, _ := cached.ParseParams("revenue_net", v)
		_, _ = cached.Query(ctx, "revenue_net", p)
		c := median(func() error { _, err := cached.Query(ctx, "revenue_net", p); return err })
		b.Logf("cached revenue_net %.2f ms", ms(c))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
