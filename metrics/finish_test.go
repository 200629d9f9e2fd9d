package metrics

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowMetric is a user metric whose every answer takes about a second (the fixture's orders,
// 0.1 s each).
func slowMetric(t *testing.T, o Options) *Registry {
	t.Helper()
	o.Store, o.Dir = fixture(t), t.TempDir()
	writeFile(t, o.Dir, "slow.sql", strings.Replace(goodHead, "big_orders", "slow_orders", 1)+
		"SELECT * FROM orders FINAL WHERE sleepEachRow(0.1) = 0")
	r, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if errs := r.Errors(); len(errs) > 0 {
		t.Fatal(errs)
	}
	return r
}

var slowParams = Params{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC),
	Grain: Month, TZ: time.UTC, WeekStart: time.Monday, FiscalYearStart: time.January}

func (r *Registry) cached() int {
	r.cache.mu.Lock()
	defer r.cache.mu.Unlock()
	return len(r.cache.m)
}

// TestFinishInBackground: with Options.Finish, a caller that gives up leaves its query running
// and the answer lands in the cache; callers of the same query at once share one computation.
func TestFinishInBackground(t *testing.T) {
	r := slowMetric(t, Options{Finish: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := r.Query(ctx, "slow_orders", slowParams); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the caller's budget: got %v, want a deadline error", err)
	}
	for wait := time.Now(); r.cached() == 0; time.Sleep(50 * time.Millisecond) {
		if time.Since(wait) > 30*time.Second {
			t.Fatal("the abandoned query never reached the cache")
		}
	}
	if n := r.computed.Load(); n != 1 {
		t.Fatalf("%d computations, want 1", n)
	}
	res, err := r.Query(context.Background(), "slow_orders", slowParams)
	if err != nil || !res.Cached {
		t.Fatalf("after the background finish: %v, cached %v", err, res != nil && res.Cached)
	}

	// Five callers at once of a query not yet cached (another grain): one computation.
	p := slowParams
	p.Grain = Quarter
	var wg sync.WaitGroup
	errs := make([]error, 5)
	totals := make([]float64, 5)
	for i := range 5 {
		wg.Go(func() {
			res, err := r.Query(context.Background(), "slow_orders", p)
			if errs[i] = err; err == nil && res.Series[0].Total != nil {
				totals[i] = *res.Series[0].Total
			}
		})
	}
	wg.Wait()
	for i := range 5 {
		if errs[i] != nil || totals[i] != totals[0] || totals[0] == 0 {
			t.Fatalf("caller %d: %v, total %v (first %v)", i, errs[i], totals[i], totals[0])
		}
	}
	if n := r.computed.Load(); n != 2 {
		t.Fatalf("%d computations after five concurrent callers, want 2 in all", n)
	}
}

// TestStopsWithCaller: without Finish, a query stops with its caller and caches nothing.
func TestStopsWithCaller(t *testing.T) {
	r := slowMetric(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := r.Query(ctx, "slow_orders", slowParams); err == nil {
		t.Fatal("a query over its caller's budget answered")
	}
	time.Sleep(2 * time.Second) // longer than the query would take
	if n := r.cached(); n != 0 {
		t.Fatalf("%d answers cached after the caller gave up, want none", n)
	}
}
