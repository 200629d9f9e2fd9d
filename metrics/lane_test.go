package metrics

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	errTotal = errors.New("code: 241, message: Memory limit (total) exceeded: would use 5.91 GiB (attempt to allocate chunk of 4.00 MiB), maximum: 5.90 GiB. (MEMORY_LIMIT_EXCEEDED)")
	errQuery = errors.New("code: 241, message: Query memory limit exceeded: would use 2.96 GiB, maximum: 2.94 GiB: While executing AggregatingTransform. (MEMORY_LIMIT_EXCEEDED)")
)

// TestLoneLane: a statement stopped for lack of the store's total memory runs again, the
// retries one at a time; one over its own limit, or failing otherwise, is not retried.
func TestLoneLane(t *testing.T) {
	l := newLoneLane()
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()

	var running, most atomic.Int32
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range 4 {
		wg.Go(func() {
			calls := 0
			errs[i] = l.retry(ctx, log, func() error {
				calls++
				if calls == 1 {
					return errTotal // the first attempts, all together, run out of memory
				}
				n := running.Add(1)
				defer running.Add(-1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(20 * time.Millisecond)
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("statement %d: %v after its retry", i, err)
		}
	}
	if most.Load() != 1 {
		t.Errorf("%d retries ran at once, want 1", most.Load())
	}

	for _, c := range []struct {
		err   error
		calls int
	}{{errQuery, 1}, {errors.New("UNKNOWN_TABLE"), 1}, {errTotal, 1 + loneRetries}} {
		calls := 0
		err := l.retry(ctx, log, func() error { calls++; return c.err })
		if !errors.Is(err, c.err) || calls != c.calls {
			t.Errorf("%v: %d calls (%v), want %d", c.err, calls, err, c.calls)
		}
	}

	// A caller that gives up while waiting for the lane gets its error back at once.
	l <- struct{}{}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := l.retry(cctx, log, func() error { return errTotal }); !errors.Is(err, errTotal) {
		t.Errorf("cancelled while waiting: %v", err)
	}
	<-l
}
