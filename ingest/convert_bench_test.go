package ingest_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/converge-dev/converge/ingest"
)

// BenchmarkConvertOrders: rows/s of reading, converting and checking a canonical orders CSV
// without a store (a dry run): the cost of the checks at the door, apart from the writes.
func BenchmarkConvertOrders(b *testing.B) {
	path := filepath.Join(b.TempDir(), "orders.csv")
	const rows = 200_000
	writeOrdersCSV(b, path, rows)
	ctx := context.Background()
	for range b.N {
		l, err := ingest.NewDryRun(ingest.Options{Entity: "orders", Source: "bench"}, path)
		if err != nil {
			b.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		err = l.Load(ctx, f, path)
		f.Close()
		sum, cerr := l.Close(ctx, err)
		if err != nil || cerr != nil || sum.Loaded != rows {
			b.Fatalf("%v %v %+v", err, cerr, sum.Rejects)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
