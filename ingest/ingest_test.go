package ingest_test

import (
	"context"
	"os"
	"testing"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

func TestMain(m *testing.M) { os.Exit(whtest.Main(m)) }

func preset(t testing.TB, name string) *ingest.Mapping {
	t.Helper()
	m, err := ingest.Preset(name, "")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func load(t testing.TB, st *warehouse.Store, path string, opts ingest.Options) ingest.Summary {
	t.Helper()
	sum, err := ingest.LoadFile(context.Background(), st, path, opts, nil)
	if err != nil {
		t.Fatalf("load %s: %v (summary %+v)", path, err, sum)
	}
	if sum.Read != sum.Loaded+sum.Rejected+sum.Duplicates {
		t.Fatalf("read %d != loaded %d + rejected %d + duplicates %d", sum.Read, sum.Loaded, sum.Rejected, sum.Duplicates)
	}
	return sum
}

func queryString(t testing.TB, st *warehouse.Store, q string) string {
	t.Helper()
	var s string
	if err := st.Conn.QueryRow(context.Background(), "SELECT toString(("+q+"))").Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s
}

// TestSmallBatches: many flushes in flight give the same result as one.
func TestSmallBatches(t *testing.T) {
	var want []string
	for _, rows := range []int{0, 7} {
		st := whtest.Store(t)
		sum := load(t, st, "testdata/online_retail.csv", ingest.Options{Mapping: preset(t, "online_retail"), BatchRows: rows})
		if sum.Loaded != 86 {
			t.Fatalf("batch %d: loaded %d", rows, sum.Loaded)
		}
		got := totals(t, st)
		if want == nil {
			want = got
			continue
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("batch %d: %s = %s, want %s", rows, totalsQueries[i], got[i], want[i])
			}
		}
	}
}
