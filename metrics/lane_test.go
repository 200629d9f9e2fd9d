package metrics

import (
	"context"
	"errors"
	"fmt"
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

// peak counts one more running in c and keeps the most seen in most; the func it returns
// counts it out.
func peak(c, most *atomic.Int32) func() {
	n := c.Add(1)
	for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
	}
	return func() { c.Add(-1) }
}

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

// Heavy statements (HeavyStatement or more the last times) whose use of the cores is unknown run
// one at a time; light ones run beside them; a statement's cost is learned from its runs.
func TestHeavyLane(t *testing.T) {
	l := newLanes(4)
	l.cpu = func() (time.Duration, bool) { return 0, false } // cores busy never known: heavy ones hold all
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	if !l.isHeavy(sqlKey("SELECT heavy")) || l.coresOf(sqlKey("SELECT heavy")) != allFree {
		t.Fatal("a statement never run is not taken for heavy, taking every core free")
	}
	l.took(sqlKey("SELECT heavy"), 3*HeavyStatement, notMeasured)
	l.took(sqlKey("SELECT heavy too"), 2*HeavyStatement, notMeasured)
	l.took(sqlKey("SELECT light"), HeavyStatement/10, notMeasured)
	if !l.isHeavy(sqlKey("SELECT heavy")) || l.isHeavy(sqlKey("SELECT light")) {
		t.Fatal("costs not learned")
	}
	var heavyNow, heavyMost, all, allMost atomic.Int32
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

// Heavy statements hold the cores they keep busy: those that leave cores idle run side by side,
// one that keeps them all busy runs alone; what a statement keeps busy is learned from its
// runs with no other statement beside it.
func TestHeavySharesCores(t *testing.T) {
	l := newLanes(2)
	var cpu atomic.Int64 // a CPU clock the statements below advance
	l.cpu = func() (time.Duration, bool) { return time.Duration(cpu.Load()), true }
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()

	// Learning: alone, a statement that used 1.5 × its wall time of CPU kept 1.5 cores busy.
	work := func(wall time.Duration, cores float64) func() error {
		return func() error {
			time.Sleep(wall)
			cpu.Add(int64(float64(wall) * cores))
			return nil
		}
	}
	if err := l.run(ctx, log, "SELECT learn", work(20*time.Millisecond, 1.5)); err != nil {
		t.Fatal(err)
	}
	if b := l.busy[sqlKey("SELECT learn")]; b < 0.5 || b > 1.5 {
		t.Errorf("learned %.2f cores busy, want about 1.5 (at most: the wall time includes the lane)", b)
	}
	// Two at once (light, so not kept apart): neither is alone, nothing is learned.
	l.took(sqlKey("SELECT together"), HeavyStatement/10, notMeasured)
	var two sync.WaitGroup
	for range 2 {
		two.Go(func() { _ = l.run(ctx, log, "SELECT together", work(30*time.Millisecond, 1)) })
	}
	two.Wait()
	if _, ok := l.busy[sqlKey("SELECT together")]; ok {
		t.Error("cores busy learned from a statement that did not run alone")
	}
	if got := l.coresOf(sqlKey("SELECT never")); got != allFree {
		t.Errorf("a statement of unknown use holds %d cores, want every core free", got)
	}

	l.took(sqlKey("SELECT one core"), 3*HeavyStatement, 1.2)
	l.took(sqlKey("SELECT all cores"), 3*HeavyStatement, 1.9)
	if a, b := l.coresOf(sqlKey("SELECT one core")), l.coresOf(sqlKey("SELECT all cores")); a != 1 || b != 2 {
		t.Fatalf("cores held: %d and %d, want 1 and 2", a, b)
	}
	var one, all, oneMost atomic.Int32
	var wg sync.WaitGroup
	for i := range 6 {
		q := []string{"SELECT one core", "SELECT one core", "SELECT all cores"}[i%3]
		wg.Go(func() {
			err := l.run(ctx, log, q, func() error {
				if q == "SELECT all cores" {
					all.Add(1)
					defer all.Add(-1)
					if one.Load() > 0 {
						return errors.New("a statement that keeps all cores busy ran beside another heavy one")
					}
				} else {
					defer peak(&one, &oneMost)()
					if all.Load() > 0 {
						return errors.New("a heavy statement ran beside one that keeps all cores busy")
					}
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
	if oneMost.Load() != 2 {
		t.Errorf("at most %d one-core statements ran at once, want 2 (the machine's cores)", oneMost.Load())
	}
}

// What the lanes learned survives a restart (Save, LoadLanes); a damaged file is an error
// naming it, and new lanes serve meanwhile.
func TestLanesSaved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "costs.json")
	if l, err := LoadLanes(path); err != nil || len(l.cost) != 0 {
		t.Fatalf("no file: %v", err)
	}
	l := newLanes(8)
	l.took(sqlKey("SELECT heavy"), 5*HeavyStatement, 3.6)
	l.took(sqlKey("SELECT light"), HeavyStatement/100, notMeasured)
	if err := l.Save(path); err != nil {
		t.Fatal(err)
	}
	again, err := LoadLanes(path)
	if err != nil {
		t.Fatal(err)
	}
	if !again.isHeavy(sqlKey("SELECT heavy")) || again.isHeavy(sqlKey("SELECT light")) {
		t.Error("costs not kept across Save and LoadLanes")
	}
	if b := again.busy[sqlKey("SELECT heavy")]; b != 3.6 {
		t.Errorf("cores busy %v after Save and LoadLanes, want 3.6", b)
	}
	if _, ok := again.busy[sqlKey("SELECT light")]; ok {
		t.Error("cores busy invented for a statement never measured alone")
	}
	for _, bad := range []string{`{"costs": {"zz": 1}}`, `{"costs": {"1f": -1}}`, `not json`,
		`{"costs": {"1f": 1}, "busy": {"2f": 1}}`, `{"costs": {"1f": 1}, "busy": {"1f": -2}}`} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := LoadLanes(path)
		if err == nil || !strings.Contains(err.Error(), path) || l == nil || len(l.cost) != 0 {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// fakeCPU is a CPU clock for the lanes: statements say how many cores they keep busy while
// they run, and the clock advances by that much.
type fakeCPU struct {
	mu   sync.Mutex
	rate float64 // cores busy now
	acc  time.Duration
	at   time.Time
}

func (f *fakeCPU) now() (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.acc + time.Duration(f.rate*float64(time.Since(f.at))), true
}

// busy counts cores busy from now until the func it returns is called.
func (f *fakeCPU) busy(cores float64) func() {
	add := func(r float64) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.at.IsZero() {
			f.acc += time.Duration(f.rate * float64(time.Since(f.at)))
		}
		f.at, f.rate = time.Now(), f.rate+r
	}
	add(cores)
	return func() { add(-cores) }
}

// Statements of unknown cost run one after another, each taking every core free; one that
// leaves the cores idle gives them back after the probe, so those behind it do not wait for
// it to end; one that failed after HeavyStatement is known as heavy, not unknown again.
func TestUnknownStatements(t *testing.T) {
	l := newLanes(2)
	f := &fakeCPU{}
	l.cpu = f.now
	l.probeAfter = 50 * time.Millisecond
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()

	// Four statements never run that keep both cores busy: one at a time.
	var now, most atomic.Int32
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			err := l.run(ctx, log, fmt.Sprintf("SELECT busy %d", i), func() error {
				defer peak(&now, &most)()
				defer f.busy(2)()
				time.Sleep(120 * time.Millisecond)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Errorf("%d statements of unknown cost that keep every core busy ran at once, want 1", most.Load())
	}
	if b := l.busy[sqlKey("SELECT busy 0")]; b < 1.5 {
		t.Errorf("learned %.2f cores busy for a statement that kept 2 busy alone", b)
	}

	// Two that wait (keep no core busy) for 600 ms, the second not alone, so not learned from:
	// the others, arriving after them, end long before they do.
	var sleepers sync.WaitGroup
	sleptUntil := make(chan time.Time, 2)
	for i := range 2 {
		started := make(chan struct{})
		sleepers.Go(func() {
			err := l.run(ctx, log, fmt.Sprintf("SELECT sleep %d", i), func() error {
				close(started)
				time.Sleep(600 * time.Millisecond)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
			sleptUntil <- time.Now()
		})
		<-started
	}
	ends := make(chan time.Time, 3)
	for i := range 3 {
		wg.Go(func() {
			err := l.run(ctx, log, fmt.Sprintf("SELECT after %d", i), func() error {
				defer f.busy(1)()
				time.Sleep(20 * time.Millisecond)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
			ends <- time.Now()
		})
	}
	wg.Wait()
	sleepers.Wait()
	close(ends)
	first := <-sleptUntil
	if other := <-sleptUntil; other.Before(first) {
		first = other
	}
	for end := range ends {
		if !end.Before(first) {
			t.Errorf("a statement waited for one that keeps no core busy to end (ended %s after it)", end.Sub(first))
		}
	}
	if got := l.coresOf(sqlKey("SELECT sleep 0")); got != 0 {
		t.Errorf("a statement that keeps no core busy holds %d cores next time, want none", got)
	}
	if got := l.coresOf(sqlKey("SELECT sleep 1")); got != allFree {
		t.Errorf("a statement measured beside another is known to hold %d cores, want unknown", got)
	}

	// Failed after HeavyStatement (its time budget ran out): heavy from now on, its use of the
	// cores measured.
	budget := errors.New("no answer within 1s: time budget exceeded")
	if err := l.run(ctx, log, "SELECT too long", func() error { time.Sleep(HeavyStatement); return budget }); !errors.Is(err, budget) {
		t.Fatal(err)
	}
	if d, ok := l.cost[sqlKey("SELECT too long")]; !ok || d < HeavyStatement {
		t.Errorf("a statement stopped after %s is known to cost %s (known: %v)", HeavyStatement, d, ok)
	}
	if got := l.coresOf(sqlKey("SELECT too long")); got != 0 {
		t.Errorf("a statement stopped after its probe, that kept no core busy, holds %d cores next time, want none", got)
	}
	// Failed fast: its cost says nothing, it stays unknown.
	_ = l.run(ctx, log, "SELECT fails", func() error { return budget })
	if _, ok := l.cost[sqlKey("SELECT fails")]; ok {
		t.Error("a statement that failed at once has a cost")
	}
}

// The cores are handed out in arrival order; one that gives up waiting takes none; one with a
// deadline stops waiting at half the time it has left.
func TestCoreLane(t *testing.T) {
	c := newCoreLane(2)
	ctx := context.Background()
	if got, err := c.acquire(ctx, allFree); err != nil || got != 2 {
		t.Fatalf("every core free: got %d, %v", got, err)
	}
	order := make(chan string, 3)
	var wg sync.WaitGroup
	wait := func(name string, n int64) {
		wg.Go(func() {
			got, err := c.acquire(ctx, n)
			if err != nil {
				t.Error(err)
				return
			}
			order <- fmt.Sprintf("%s:%d", name, got)
			time.Sleep(20 * time.Millisecond)
			c.release(got)
		})
	}
	wait("two", 2)
	for c.waiting() < 1 {
		time.Sleep(time.Millisecond)
	}
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(30*time.Millisecond, cancel)
	if _, err := c.acquire(cctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("gave up waiting: %v", err)
	}
	// With a deadline: no core after half the time left, no error (it runs beside them).
	dctx, cancelD := context.WithTimeout(ctx, 400*time.Millisecond)
	defer cancelD()
	if got, err := c.acquire(dctx, 1); err != nil || got != 0 || dctx.Err() != nil {
		t.Fatalf("waited with a deadline: got %d, %v (deadline passed: %v), want 0 cores before it", got, err, dctx.Err())
	}
	wait("free", allFree)
	for c.waiting() < 2 {
		time.Sleep(time.Millisecond)
	}
	c.release(2)
	wg.Wait()
	close(order)
	var got []string
	for o := range order {
		got = append(got, o)
	}
	if strings.Join(got, " ") != "two:2 free:2" {
		t.Errorf("handed out %q, want two:2 then free:2", got)
	}
	if c.waiting() != 0 || c.free != 2 {
		t.Errorf("after all released: %d waiting, %d free", c.waiting(), c.free)
	}
}
