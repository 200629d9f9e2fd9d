package warehouse_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// BenchmarkBatchInsert1M: one million 8-column rows through the warehouse
// batch writer (clickhouse-go → bridge → chDB). Reports rows/s.
func BenchmarkBatchInsert1M(b *testing.B) {
	s := whtest.Store(b)
	ctx := context.Background()
	if err := s.Conn.Exec(ctx, `CREATE TABLE bench_insert (id UInt64, customer String, at DateTime64(3, 'UTC'),
		amount Decimal(18, 4), qty Int32, channel LowCardinality(String), score Float64, ok Bool) ENGINE = MergeTree ORDER BY id`); err != nil {
		b.Fatal(err)
	}
	const n = 1_000_000
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	channels := []string{"search", "social", "email", "direct"}
	customers := make([]string, 1000)
	for i := range customers {
		customers[i] = fmt.Sprintf("c%06d", i)
	}
	b.ResetTimer()
	for range b.N {
		w, err := s.NewBatchWriter("bench_insert", nil, n)
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			if err := w.Append(ctx, uint64(i), customers[i%1000], base.Add(time.Duration(i)*time.Second), "12.3400", int32(i%7), channels[i%4], float64(i)/3, i%2 == 0); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkGroupBy10M: GROUP BY over 10M rows (100k groups), result scanned
// into Go through the warehouse, against the same query straight into chDB
// (Native output, no bridge). Reports both medians and their ratio.
func BenchmarkGroupBy10M(b *testing.B) {
	s := whtest.Store(b)
	ctx := context.Background()
	if err := s.Conn.Exec(ctx, "CREATE TABLE bench_g (k UInt32, v Float64) ENGINE = MergeTree ORDER BY tuple()"); err != nil {
		b.Fatal(err)
	}
	if err := s.Conn.Exec(ctx, "INSERT INTO bench_g SELECT number % 100000, number / 7 FROM numbers(10000000)"); err != nil {
		b.Fatal(err)
	}
	q := "SELECT k, sum(v), count() FROM bench_g GROUP BY k"
	direct := "SELECT k, sum(v), count() FROM " + s.Database + ".bench_g GROUP BY k"
	for _, mode := range []string{"streamed", "materialized"} {
		b.Run(mode, func(b *testing.B) {
			qctx := ctx
			if mode == "materialized" {
				qctx = warehouse.Materialized(ctx)
			}
			groupBy(b, s, qctx, q, direct)
		})
	}
}

func groupBy(b *testing.B, s *warehouse.Store, qctx context.Context, q, direct string) {
	ctx := context.Background()
	viaWarehouse := func() {
		rows, err := s.Conn.Query(qctx, q)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var k uint32
			var sum float64
			var c uint64
			if err := rows.Scan(&k, &sum, &c); err != nil {
				b.Fatal(err)
			}
			n++
		}
		rows.Close()
		if n != 100000 {
			b.Fatalf("%d groups", n)
		}
	}
	viaEngine := func() {
		if _, err := s.Engine.Query(ctx, direct, "Native"); err != nil {
			b.Fatal(err)
		}
	}
	viaWarehouse()
	viaEngine()
	compare(b, viaWarehouse, viaEngine, "ms")
}

// BenchmarkQueryOverhead: SELECT 1 through the warehouse against straight
// into chDB; the difference of the medians is the hop's per-query cost.
func BenchmarkQueryOverhead(b *testing.B) {
	s := whtest.Store(b)
	ctx := context.Background()
	viaWarehouse := func() {
		var v uint8
		if err := s.Conn.QueryRow(ctx, "SELECT 1").Scan(&v); err != nil {
			b.Fatal(err)
		}
	}
	viaEngine := func() {
		if _, err := s.Engine.Query(ctx, "SELECT 1", "Native"); err != nil {
			b.Fatal(err)
		}
	}
	for range 20 {
		viaWarehouse()
		viaEngine()
	}
	compare(b, viaWarehouse, viaEngine, "µs")
}

// compare runs a and base alternately (so both see the same machine load)
// and reports their medians, the ratio and the difference.
func compare(b *testing.B, a, base func(), unit string) {
	b.Helper()
	rounds := max(b.N, 1)
	if unit == "µs" {
		rounds = max(b.N, 200)
	}
	var ta, tb []time.Duration
	b.ResetTimer()
	for range rounds {
		t0 := time.Now()
		a()
		ta = append(ta, time.Since(t0))
		t0 = time.Now()
		base()
		tb = append(tb, time.Since(t0))
	}
	ma, mb := median(ta), median(tb)
	scale := map[string]float64{"ms": 1e6, "µs": 1e3}[unit]
	b.ReportMetric(float64(ma)/scale, "warehouse_median_"+unit)
	b.ReportMetric(float64(mb)/scale, "engine_median_"+unit)
	b.ReportMetric(float64(ma)/float64(mb), "ratio")
	b.ReportMetric(float64(ma-mb)/1e3, "overhead_µs")
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// BenchmarkConsoleBoundary: what the boundary check adds to a console
// query, by the shape of what it reads (a table; a view over views; the
// attribution parameterized view), next to the query run unchecked.
func BenchmarkConsoleBoundary(b *testing.B) {
	s := whtest.Store(b)
	ctx := context.Background()
	for _, q := range []struct{ name, sql string }{
		{"table", "SELECT count() FROM orders"},
		{"views", "SELECT count() FROM orders_resolved"},
		{"attribution", "SELECT count() FROM attribution(from = toDateTime64('2026-01-01', 3, 'UTC'), to = toDateTime64('2026-02-01', 3, 'UTC'), tz = 'UTC', grain = 'month', " +
			"week_mode = 1, fy_shift = 0, default_margin = 0.3, model = 'last_touch', level = 'channel', lookback_days = 30, half_life_days = 7)"},
	} {
		b.Run(q.name+"/check", func(b *testing.B) {
			for range b.N {
				if err := s.CheckBoundary(ctx, q.sql, nil, "the console"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(q.name+"/query", func(b *testing.B) {
			for range b.N {
				rows, err := warehouse.Console{}.OpenUnchecked(ctx, s, q.sql)
				if err != nil {
					b.Fatal(err)
				}
				for rows.Next() {
				}
				rows.Close()
			}
		})
	}
}
