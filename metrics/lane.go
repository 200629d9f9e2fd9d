package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/converge-dev/converge/warehouse"
)

// Lanes admit the statements of metric queries to the store. One process should give all
// its registries the same Lanes (Options.Lanes), as they share one store.
//
//   - Heavy statements share the machine's cores by what they use. A statement is heavy when
//     it took HeavyStatement or more the last times it ran (a moving average per SQL text,
//     whatever the bound values; a run that failed after HeavyStatement counts too), or has
//     never run. When a statement runs with no other beside it, the lanes learn how many
//     cores it keeps busy (the process's CPU time over the wall time, a moving average): a
//     heavy statement holds that many of the cores, rounded (none when it keeps less than half
//     a core busy: it waits on something, a sleep, a disk or a remote server). So heavy
//     statements that keep every core busy run one at a time (two heavy aggregations at once
//     on a machine with few cores take longer than one after the other, and they add up their
//     memory), and those that leave cores idle (a single-threaded join or array step) run side
//     by side, filling them. Light ones (most of a dashboard) run concurrently, beside heavy ones.
//   - A heavy statement whose use of the cores is not known yet (a new server's first page:
//     all its statements) takes every core free when its turn comes, at least one, so such
//     statements run one after another (the large demo's first page took 1.35-1.45 times its
//     statements one after another when they all started at once). After ProbeAfter it keeps
//     only as many cores as the process has kept busy meanwhile (its own use, and that of any
//     statement beside it: never fewer than it uses) and gives back the others, so one that
//     waits on something does not hold back the statements behind it until its time budget
//     runs out.
//   - The cores are handed out first come, first served. A statement whose context has a
//     deadline (a tile's time budget) waits for them at most half the time it has left, then
//     runs beside those holding them: a slow heavy statement makes the others slower, not
//     fail for having waited.
//   - Alone: a statement the store stopped because all the queries running together wanted
//     more memory than it has (warehouse.TotalMemoryLimit) runs again (at most loneRetries
//     times) with nothing else: every statement holds one unit of the lane while it runs and
//     a retry takes them all, so it waits for the statements running then, and those that
//     arrive after it wait for it (first come, first served). A statement over its own limit
//     (engine.max_query_memory) is not retried: alone it would fail the same way.
type Lanes struct {
	lone  *semaphore.Weighted
	cores int64     // the machine's cores: the heavy lane's capacity
	heavy *coreLane // heavy statements hold cores of it (coresOf)

	mu      sync.Mutex
	cost    map[uint64]time.Duration // SQL text → moving average of its duration
	busy    map[uint64]float64       // SQL text → moving average of the cores it kept busy alone
	running int                      // statements running now
	started uint64                   // statements started so far

	cpu        func() (time.Duration, bool) // the process's CPU time (cpuTime; tests set their own)
	probeAfter time.Duration                // ProbeAfter (tests set their own)
}

// HeavyStatement is the duration from which a statement counts as heavy (Lanes).
const HeavyStatement = time.Second

// ProbeAfter is how long a statement of unknown use of the cores runs alone before it keeps
// only the cores it kept busy meanwhile (Lanes).
const ProbeAfter = time.Second

// loneRetries is how many times a statement is retried alone.
const loneRetries = 2

// laneAll is the lone lane's capacity: more statements than ever run at once.
const laneAll = 1 << 30

// NewLanes returns Lanes that know no statement yet, for this machine's cores.
func NewLanes() *Lanes { return newLanes(runtime.NumCPU()) }

func newLanes(cores int) *Lanes {
	c := int64(max(cores, 1))
	return &Lanes{lone: semaphore.NewWeighted(laneAll), cores: c, heavy: newCoreLane(c),
		cost: map[uint64]time.Duration{}, busy: map[uint64]float64{}, cpu: cpuTime, probeAfter: ProbeAfter}
}

func sqlKey(q string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(q))
	return h.Sum64()
}

// isHeavy reports whether the statement of key k (sqlKey) took HeavyStatement or more, on
// average, the last times it ran, or has not run yet: a statement of unknown cost is taken
// for heavy (and, its use of the cores unknown too, takes every core free: see Lanes), so the
// first page of a new server does not start all its statements at once.
func (l *Lanes) isHeavy(k uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.cost[k]
	return !ok || c >= HeavyStatement
}

// allFree is what coresOf returns for a statement whose use of the cores is not known: every
// core free when its turn comes, at least one (coreLane.acquire).
const allFree = -1

// coresOf is how many of the heavy lane's cores the statement of key k holds: the cores it
// kept busy when it ran alone, rounded (none when it kept less than half a core busy: it
// waits on something, a sleep or a remote server), or allFree while that is unknown.
func (l *Lanes) coresOf(k uint64) int64 {
	l.mu.Lock()
	b, ok := l.busy[k]
	l.mu.Unlock()
	if !ok {
		return allFree
	}
	return l.keep(b, l.cores)
}

// keep is how many of held cores a statement that kept busy cores busy needs: busy rounded,
// at most held.
func (l *Lanes) keep(busy float64, held int64) int64 {
	return min(max(int64(math.Round(busy)), 0), held)
}

// notMeasured is the cores busy of a statement that did not run alone (Lanes.took).
const notMeasured = -1.0

// took records that the statement of key k ran in d and, when it ran alone, kept busy cores
// busy on average (notMeasured, or any negative: not alone, or not measured).
func (l *Lanes) took(k uint64, d time.Duration, busy float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.cost[k]; ok {
		d = (old + d) / 2
	} else if len(l.cost) >= 10000 {
		clear(l.cost)
		clear(l.busy)
	}
	l.cost[k] = d
	if busy >= 0 && !math.IsInf(busy, 0) && !math.IsNaN(busy) {
		if old, ok := l.busy[k]; ok {
			busy = (old + busy) / 2
		}
		l.busy[k] = busy
	}
}

// timed runs run and says how long it took and, when no other statement ran at any time
// beside it, how many cores the process kept busy meanwhile (else notMeasured). With probe not
// nil, a statement still running after l.probeAfter is measured then: probe is called with
// the cores the process kept busy so far (this statement's use and, unless alone, others':
// never less than this one's), and whether it ran alone so far.
func (l *Lanes) timed(run func() error, probe func(busy float64, alone bool)) (time.Duration, float64, error) {
	l.mu.Lock()
	l.running++
	l.started++
	first, alone := l.started, l.running == 1
	l.mu.Unlock()
	startedAlone := alone
	c0, cpuOK := l.cpu()
	t0 := time.Now()
	var probing *time.Timer
	if probe != nil && cpuOK {
		probing = time.AfterFunc(l.probeAfter, func() {
			c1, ok := l.cpu()
			d := time.Since(t0)
			l.mu.Lock()
			still := l.started == first
			l.mu.Unlock()
			if ok && d > 0 {
				probe((c1-c0).Seconds()/d.Seconds(), startedAlone && still)
			}
		})
	}
	err := run()
	d := time.Since(t0)
	c1, _ := l.cpu()
	if probing != nil {
		probing.Stop()
	}
	l.mu.Lock()
	l.running--
	alone = alone && l.started == first && cpuOK
	l.mu.Unlock()
	if !alone || d <= 0 {
		return d, notMeasured, err
	}
	return d, (c1 - c0).Seconds() / d.Seconds(), err
}

// run runs statement q (run executes it) through the lanes.
func (l *Lanes) run(ctx context.Context, log *slog.Logger, q string, run func() error) error {
	k := sqlKey(q)
	var (
		hmu    sync.Mutex
		held   int64         // heavy lane's cores held now
		probed = notMeasured // cores kept busy, as the probe measured them
		probe  func(float64, bool)
	)
	if want := l.coresOf(k); l.isHeavy(k) && want != 0 {
		got, err := l.heavy.acquire(ctx, want)
		if err != nil {
			return err
		}
		held = got
		if got == 0 {
			log.Debug("metric statement waited half its time for cores: running beside the heavy statements", "statement", k)
		}
		if want == allFree {
			probe = func(busy float64, alone bool) {
				hmu.Lock()
				defer hmu.Unlock()
				if alone {
					probed = busy
				}
				if keep := l.keep(busy, held); keep < held {
					l.heavy.release(held - keep)
					held = keep
				}
			}
		}
	}
	if err := l.lone.Acquire(ctx, 1); err != nil {
		hmu.Lock()
		l.heavy.release(held)
		hmu.Unlock()
		return err
	}
	d, busy, err := l.timed(run, probe)
	l.lone.Release(1)
	hmu.Lock()
	l.heavy.release(held)
	held = 0
	if busy < 0 {
		busy = probed
	}
	hmu.Unlock()
	for i := 0; i < loneRetries && warehouse.TotalMemoryLimit(err); i++ {
		if aerr := l.lone.Acquire(ctx, laneAll); aerr != nil {
			return err
		}
		log.Info("metric statement stopped for lack of the store's memory: running it again, alone", "attempt", i+1, "error", err)
		d, busy, err = l.timed(run, nil)
		l.lone.Release(laneAll)
	}
	// A failed run says the statement costs at least d: recorded when that makes it heavy
	// (a statement stopped by its time budget is not started again as one of unknown cost).
	if err == nil || d >= HeavyStatement {
		l.took(k, d, busy)
	}
	return err
}

// coreLane is the heavy lane: the machine's cores, handed out first come, first served.
type coreLane struct {
	mu    sync.Mutex
	free  int64
	queue []*coreAsk // waiting, in arrival order
}

// coreAsk is a statement waiting for n cores (allFree: every core free, at least one).
type coreAsk struct {
	n     int64
	got   int64
	ready chan struct{} // closed when got is granted
}

func newCoreLane(cores int64) *coreLane { return &coreLane{free: cores} }

// fits reports whether n cores (allFree: at least one) can be handed out now; grant hands
// them out.
func (c *coreLane) fits(n int64) bool { return c.free >= max(n, 1) }

func (c *coreLane) grant(n int64) int64 {
	if n == allFree {
		n = c.free
	}
	c.free -= n
	return n
}

// acquire waits until n cores (allFree: every core free, at least one) are handed out to the
// caller, after those that asked before, and says how many it got; or until ctx is done. A
// caller whose ctx has a deadline waits at most half the time it has left: then it gets no
// core, no error, and runs beside the statements that hold them rather than run out of time
// waiting (its tile's time budget, the finishing bound).
func (c *coreLane) acquire(ctx context.Context, n int64) (int64, error) {
	c.mu.Lock()
	if len(c.queue) == 0 && c.fits(n) {
		got := c.grant(n)
		c.mu.Unlock()
		return got, nil
	}
	a := &coreAsk{n: n, ready: make(chan struct{})}
	c.queue = append(c.queue, a)
	c.mu.Unlock()
	var patience <-chan time.Time
	if deadline, ok := ctx.Deadline(); ok {
		t := time.NewTimer(time.Until(deadline) / 2)
		defer t.Stop()
		patience = t.C
	}
	var err error
	select {
	case <-a.ready:
		return a.got, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-patience:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-a.ready: // handed out meanwhile
		if err == nil {
			return a.got, nil
		}
		c.free += a.got
	default:
		c.queue = slices.DeleteFunc(c.queue, func(w *coreAsk) bool { return w == a })
	}
	c.serve()
	return 0, err
}

// waiting is how many statements wait for cores.
func (c *coreLane) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}

// release gives back n cores.
func (c *coreLane) release(n int64) {
	if n <= 0 {
		return
	}
	c.mu.Lock()
	c.free += n
	c.serve()
	c.mu.Unlock()
}

// serve hands out cores to those waiting, in order, while the first of them fits.
func (c *coreLane) serve() {
	for len(c.queue) > 0 && c.fits(c.queue[0].n) {
		a := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		a.got = c.grant(a.n)
		close(a.ready)
	}
}

// costsFile is what Lanes.Save writes.
type costsFile struct {
	Note  string             `json:"note"`
	Costs map[string]float64 `json:"costs"`          // SQL text's FNV-64a in hex → seconds
	Busy  map[string]float64 `json:"busy,omitempty"` // the same → cores kept busy when it ran alone
}

// Save writes what the lanes know of each statement's cost to path (atomically: a
// temporary file renamed), so that a process started later on the same store knows which
// statements are heavy from its first page (LoadLanes).
func (l *Lanes) Save(path string) error {
	f := costsFile{Note: "converge: how long each metric statement took and the cores it kept busy (metrics.Lanes); safe to delete",
		Costs: map[string]float64{}, Busy: map[string]float64{}}
	l.mu.Lock()
	for k, d := range l.cost {
		f.Costs[strconv.FormatUint(k, 16)] = d.Seconds()
	}
	for k, b := range l.busy {
		f.Busy[strconv.FormatUint(k, 16)] = b
	}
	l.mu.Unlock()
	b, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// LoadLanes returns Lanes that know the costs Save wrote to path. A missing file is no error
// (new Lanes); an unreadable one is an error naming the file, with new Lanes.
func LoadLanes(path string) (*Lanes, error) {
	l := NewLanes()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return l, err
	}
	var f costsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return l, fmt.Errorf("%s: %w (it is rebuilt as statements run; delete it to silence this)", path, err)
	}
	for k, s := range f.Costs {
		h, err := strconv.ParseUint(k, 16, 64)
		if err != nil || s < 0 || math.IsNaN(s) || math.IsInf(s, 0) || len(l.cost) >= 10000 {
			return NewLanes(), fmt.Errorf("%s: costs: %q: %v is not a statement's hash and duration", path, k, s)
		}
		l.cost[h] = time.Duration(s * float64(time.Second))
	}
	for k, b := range f.Busy {
		h, err := strconv.ParseUint(k, 16, 64)
		if _, known := l.cost[h]; err != nil || !known || b < 0 || math.IsNaN(b) || math.IsInf(b, 0) {
			return NewLanes(), fmt.Errorf("%s: busy: %q: %v is not a known statement's cores busy", path, k, b)
		}
		l.busy[h] = b
	}
	return l, nil
}
