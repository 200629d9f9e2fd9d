package metrics

import (
	"context"
	"net/url"
	"sync/atomic"
	"testing"
)

// TestSharedValues: under WithSharedValues, queries that read the same
// metric over the same parameters compute it once, and answer as without.
// revenue_gross, then revenue_net (revenue_gross − refunds), then
// gross_margin (revenue_gross − cogs − refunds): 2 statements each for a
// simple metric (buckets and total); alone 2 + 4 + 6 = 12, shared 2 + 2 + 2.
func TestSharedValues(t *testing.T) {
	st := fixture(t)
	r, err := New(context.Background(), Options{Store: st, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.ParseParams("revenue_net", url.Values{"from": {"2026-01-01"}, "to": {"2026-03-31"}, "grain": {"month"}, "tz": {"Europe/Berlin"}})
	if err != nil {
		t.Fatal(err)
	}
	totals := func(ctx context.Context) ([]float64, int64) {
		var n atomic.Int64
		ctx = WithTrace(ctx, func(Statement) { n.Add(1) })
		var out []float64
		for _, name := range []string{"revenue_gross", "revenue_net", "gross_margin"} {
			res, err := r.Query(ctx, name, p)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, *res.Series[0].Total)
		}
		return out, n.Load()
	}
	alone, n1 := totals(context.Background())
	shared, n2 := totals(WithSharedValues(context.Background()))
	// One statement per simple metric (its buckets and total in one pass): revenue_gross 1,
	// revenue_net 2 (gross, refunds), gross_margin 3 (gross, cogs, refunds).
	if n1 != 6 || n2 != 3 {
		t.Errorf("statements: %d alone, %d shared; want 6 and 3", n1, n2)
	}
	for i := range alone {
		if alone[i] != shared[i] {
			t.Errorf("totals alone %v, shared %v", alone, shared)
		}
	}
	// revenue 850 (o7 cancelled); refunds 50 + 30 = 80.
	if alone[0] != 850 || alone[1] != 770 {
		t.Errorf("revenue gross %v, net %v; want 850 and 770", alone[0], alone[1])
	}
}

// A value whose computation stopped with its caller (a widget over its time budget) is not
// handed, as that error, to a caller that still has time: it computes the value again.
func TestSharedValueAfterTimeout(t *testing.T) {
	st := fixture(t)
	r, err := New(context.Background(), Options{Store: st, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.ParseParams("revenue_gross", url.Values{"from": {"2026-01-01"}, "to": {"2026-03-31"}, "grain": {"month"}, "tz": {"Europe/Berlin"}})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := r.Get("revenue_gross")
	m := &memo{calls: map[string]*memoCall{}}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.computeWith(gone, m, d, p); err == nil {
		t.Fatal("a cancelled caller computed the value")
	}
	v, err := r.computeWith(context.Background(), m, d, p)
	if err != nil {
		t.Fatalf("the caller with time left got: %v", err)
	}
	if got := v.total(""); got == nil || *got != 850 {
		t.Errorf("total %v, want 850", got)
	}
}
