package ingest_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/warehouse/whtest"
)

const benchRows = 500_000

var benchBatch = 0

func writeOrdersCSV(b testing.TB, path string, n int) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "order_id,customer_id,ordered_at,revenue,currency,status,channel,country")
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	channels := []string{"search", "social", "email", "direct"}
	for i := range n {
		fmt.Fprintf(w, "o%07d,c%06d,%s,%d.%02d,EUR,completed,%s,DE\n", i, i%50000, base.Add(time.Duration(i)*37*time.Second).Format("2006-01-02 15:04:05"), 5+i%300, i%100, channels[i%4])
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
}

// BenchmarkOrdersCSV: rows/s of a canonical orders CSV end to end (parse,
// validate, ids, dedup, quarantine, runs, batch writes) beside the engine
// loading the same file itself with INSERT ... FROM INFILE ... FORMAT
// CSVWithNames. Reports both and their ratio (target >= 0.5).
func BenchmarkOrdersCSV(b *testing.B) {
	path := filepath.Join(b.TempDir(), "orders.csv")
	writeOrdersCSV(b, path, benchRows)
	ctx := context.Background()
	var ingestDur, infileDur time.Duration
	for range b.N {
		b.StopTimer()
		st := whtest.Store(b)
		b.StartTimer()
		t0 := time.Now()
		sum, err := ingest.LoadFile(ctx, st, path, ingest.Options{Entity: "orders", Source: "bench", BatchRows: benchBatch}, nil)
		if err != nil || sum.Loaded != benchRows {
			b.Fatalf("%v %+v", err, sum)
		}
		ingestDur += time.Since(t0)

		b.StopTimer()
		st2 := whtest.Store(b)
		b.StartTimer()
		t0 = time.Now()
		q := "INSERT INTO " + st2.Database + ".orders (order_id, customer_id, ordered_at, revenue, currency, status, channel, country) FROM INFILE '" +
			strings.ReplaceAll(path, "'", "\\'") + "' FORMAT CSVWithNames"
		if _, err := st2.Engine.Query(ctx, q, "TabSeparated"); err != nil {
			b.Fatal(err)
		}
		infileDur += time.Since(t0)
		var n uint64
		if err := st2.Conn.QueryRow(ctx, "SELECT count() FROM orders").Scan(&n); err != nil || n != benchRows {
			b.Fatalf("infile loaded %d: %v", n, err)
		}
	}
	ing := float64(benchRows*b.N) / ingestDur.Seconds()
	inf := float64(benchRows*b.N) / infileDur.Seconds()
	b.ReportMetric(ing, "ingest_rows/s")
	b.ReportMetric(inf, "infile_rows/s")
	b.ReportMetric(ing/inf, "ratio")
}

func init() {
	if v := os.Getenv("INGEST_BENCH_BATCH"); v != "" {
		fmt.Sscan(v, &benchBatch)
	}
}
