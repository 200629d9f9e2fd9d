package ingest_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// OnWritten reports every source record once, by outcome, as its batch is stored: summed over a
// run the counts are the summary's, in small batches too; a second load of the same file reports
// duplicates only.
func TestOnWritten(t *testing.T) {
	st := whtest.Store(t)
	path := filepath.Join(t.TempDir(), "orders.csv")
	// o1 twice (identical: an in-run duplicate), o3 without revenue (rejected), o4 once.
	body := "order_id,customer_id,ordered_at,revenue,currency\n" +
		"o1,c1,2026-01-02 10:00:00,10,EUR\n" +
		"o2,c2,2026-01-03 10:00:00,20,EUR\n" +
		"o1,c1,2026-01-02 10:00:00,10,EUR\n" +
		"o3,c3,2026-01-04 10:00:00,,EUR\n" +
		"o4,c4,2026-01-05 10:00:00,40,EUR\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		batch int
		want  ingest.Counts
	}{
		{"first load, batches of 2", 2, ingest.Counts{Loaded: 3, Rejected: 1, Duplicates: 1}},
		{"the same file again", 0, ingest.Counts{Loaded: 0, Rejected: 1, Duplicates: 4}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var sum ingest.Counts
			calls := 0
			s := load(t, st, path, ingest.Options{Entity: "orders", BatchRows: c.batch, OnWritten: func(n ingest.Counts) {
				calls++
				sum.Loaded += n.Loaded
				sum.Rejected += n.Rejected
				sum.Duplicates += n.Duplicates
			}})
			if sum != c.want {
				t.Errorf("reported %+v, want %+v", sum, c.want)
			}
			if got := (ingest.Counts{Loaded: s.Loaded, Rejected: s.Rejected, Duplicates: s.Duplicates}); got != sum {
				t.Errorf("summary %+v, reported %+v", got, sum)
			}
			if c.batch == 2 && calls < 2 {
				t.Errorf("%d reports for batches of 2 records, want one per batch", calls)
			}
		})
	}
}
