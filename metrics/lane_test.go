package metrics

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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
	l := NewLanes()
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()

	var running, most atomic.Int32
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range 4 {
		wg.Go(func() {
			calls := 0
			errs[i] = l.run(ctx, log, "q", func() error {
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
		err := l.run(ctx, log, "q", func() error { calls++; return c.err })
		if !errors.Is(err, c.err) || calls != c.calls {
			t.Errorf("%v: %d calls (%v), want %d", c.err, calls, err, c.calls)
		}
	}

	// A retry runs alone: the statement running when it asks waits out, and one that comes
	// while it runs waits for it.
	var active atomic.Int32
	slow := func(d time.Duration) func() error {
		return func() error {
			active.Add(1)
			defer active.Add(-1)
			time.Sleep(d)
			return nil
		}
	}
	var lone sync.WaitGroup
	lone.Go(func() { _ = l.run(ctx, log, "q", slow(150*time.Millisecond)) })
	time.Sleep(20 * time.Millisecond)
	lone.Go(func() {
		calls := 0
		err := l.run(ctx, log, "q", func() error {
			calls++
			if calls == 1 {
				return errTotal
			}
			n := active.Add(1)
			defer active.Add(-1)
			time.Sleep(100 * time.Millisecond)
			if n != 1 || active.Load() != 1 {
				return errors.New("not alone")
			}
			return nil
		})
		if err != nil {
			t.Errorf("retry: %v", err)
		}
	})
	time.Sleep(60 * time.Millisecond)
	lone.Go(func() { _ = l.run(ctx, log, "q", slow(10*time.Millisecond)) })
	lone.Wait()

	// A caller that gives up while waiting for the lane gets its error back at once.
	hold, held := make(chan struct{}), make(chan struct{})
	go l.run(ctx, log, "q", func() error { close(held); <-hold; return nil })
	<-held
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := l.run(cctx, log, "q", func() error { return errTotal }); !errors.Is(err, errTotal) {
		t.Errorf("cancelled while waiting: %v", err)
	}
	close(hold)
}

// Heavy statements (HeavyStatement or more the last times) run one at a time; light ones run
// beside them; a statement's cost is learned from its runs.
func TestHeavyLane(t *testing.T) {
	l := NewLanes()
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	if l.isHeavy(sqlKey("SELECT heavy")) {
		t.Fatal("a statement never run is heavy")
	}
	l.took(sqlKey("SELECT heavy"), 3*HeavyStatement)
	l.took(sqlKey("SELECT heavy too"), 2*HeavyStatement)
	l.took(sqlKey("SELECT light"), HeavyStatement/10)
	if !l.isHeavy(sqlKey("SELECT heavy")) || l.isHeavy(sqlKey("SELECT light")) {
		t.Fatal("costs not learned")
	}
	var heavyNow, heavyMost, all, allMost atomic.Int32
	peak := func(c, most *atomic.Int32) func() {
		n := c.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		return func() { c.Add(-1) }
	}
	var wg sync.WaitGroup
	for i := range 6 {
		q := []string{"SELECT heavy", "SELECT heavy too", "SELECT light"}[i%3]
		wg.Go(func() {
			err := l.run(ctx, log, q, func() error {
				defer peak(&all, &allMost)()
				if q != "SELECT light" {
					defer peak(&heavyNow, &heavyMost)()
				}
				time.Sleep(40 * time.Millisecond)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if heavyMost.Load() != 1 {
		t.Errorf("%d heavy statements ran at once, want 1", heavyMost.Load())
	}
	if allMost.Load() < 2 {
		t.Errorf("light statements did not run beside a heavy one (at most %d at once)", allMost.Load())
	}
	// The average follows the runs: a heavy statement that became fast is light again.
	for range 6 {
		if err := l.run(ctx, log, "SELECT heavy", func() error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if l.isHeavy(sqlKey("SELECT heavy")) {
		t.Error("a statement that became fast is still heavy")
	}
}

// What the lanes learned survives a restart (Save, LoadLanes); a damaged file is an error
// naming it, and new lanes serve meanwhile.
func TestLanesSaved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "costs.json")
	if l, err := LoadLanes(path); err != nil || l.isHeavy(sqlKey("SELECT heavy")) {
		t.Fatalf("no file: %v", err)
	}
	l := NewLanes()
	l.took(sqlKey("SELECT heavy"), 5*HeavyStatement)
	l.took(sqlKey("SELECT light"), HeavyStatement/100)
	if err := l.Save(path); err != nil {
		t.Fatal(err)
	}
	again, err := LoadLanes(path)
	if err != nil {
		t.Fatal(err)
	}
	if !again.isHeavy(sqlKey("SELECT heavy")) || again.isHeavy(sqlKey("SELECT light")) || again.isHeavy(sqlKey("SELECT other")) {
		t.Error("costs not kept across Save and LoadLanes")
	}
	for _, bad := range []string{`{"costs": {"zz": 1}}`, `{"costs": {"1f": -1}}`, `not json`} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := LoadLanes(path)
		if err == nil || !strings.Contains(err.Error(), path) || l == nil || l.isHeavy(sqlKey("SELECT heavy")) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
