package metrics

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"testing"

	"github.com/converge-dev/converge/warehouse/whtest"
)

// OnQuery is told about every query of a defined metric: a computed answer is a cache miss,
// the same query again a hit, a failing query carries its error; with the cache disabled
// nothing is a hit or a miss.
func TestOnQuery(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	if err := loadFixture(ctx, st); err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		got []QueryStats
	)
	observe := func(s QueryStats) { mu.Lock(); got = append(got, s); mu.Unlock() }
	r, err := New(ctx, Options{Store: st, OnQuery: observe})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := url.ParseQuery("from=2026-01-01&to=2026-03-31&grain=month")
	p, err := r.ParseParams("revenue_gross", v)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := r.Query(ctx, "revenue_gross", p); err != nil {
			t.Fatal(err)
		}
	}
	bad := p
	bad.Args = map[string]string{"nope": "1"}
	if _, err := r.Query(ctx, "revenue_gross", bad); err == nil {
		t.Fatal("an unknown arg was accepted")
	}
	if _, err := r.Query(ctx, "no_such_metric", p); err == nil {
		t.Fatal("an unknown metric was accepted")
	}
	if len(got) != 3 {
		t.Fatalf("observed %d queries, want 3 (an unknown metric is not observed): %+v", len(got), got)
	}
	for i, want := range []struct {
		cache string
		err   bool
	}{{CacheMiss, false}, {CacheHit, false}, {"", true}} {
		s := got[i]
		if s.Metric != "revenue_gross" || s.Cache != want.cache || (s.Err != nil) != want.err || s.Duration <= 0 {
			t.Errorf("query %d: %+v, want metric revenue_gross, cache %q, error %v, a duration", i, s, want.cache, want.err)
		}
	}
	var pe *ParamError
	if !errors.As(got[2].Err, &pe) {
		t.Errorf("the failing query's error %v is not its ParamError", got[2].Err)
	}

	got = nil
	cold, err := New(ctx, Options{Store: st, CacheTTL: -1, OnQuery: observe})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cold.Query(ctx, "revenue_gross", p); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Cache != "" || got[0].Err != nil {
		t.Errorf("without a cache: %+v, want one query, neither hit nor miss", got)
	}
}
