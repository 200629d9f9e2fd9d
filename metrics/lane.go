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
//     whatever the bound values), or has never run: its cost unknown, it is not started beside
//     other heavy ones (a new server's first page on the large demo took 1.35-1.45 times its
//     statements one after another when they all started at once). When a statement runs
//     with no other beside it, the lanes also learn how many cores it keeps busy (the
//     process's CPU time over the wall time, a moving average): a heavy statement holds that
//     many of the cores (rounded, at least one), or all of them while that is not known yet. So heavy statements that keep every core
//     busy run one at a time (two heavy aggregations at once on a machine with few cores take
//     longer than one after the other, and they add up their memory), and those that leave
//     cores idle (a single-threaded join or array step) run side by side, filling them. Light
//     ones (most of a dashboard) run concurrently, beside heavy ones.
//   - Alone: a statement the store stopped because all the queries running together wanted
//     more memory than it has (warehouse.TotalMemoryLimit) runs again (at most loneRetries
//     times) with nothing else: every statement holds one unit of the lane while it runs and
//     a retry takes them all, so it waits for the statements running then, and those that
//     arrive after it wait for it (first come, first served). A statement over its own limit
//     (engine.max_query_memory) is not retried: alone it would fail the same way.
type Lanes struct {
	lone  *semaphore.Weighted
	cores int64               // the machine's cores: the heavy lane's capacity
	heavy *semaphore.Weighted // heavy statements hold cores of it (coresOf)

	mu      sync.Mutex
	cost    map[uint64]time.Duration // SQL text → moving average of its duration
	busy    map[uint64]float64       // SQL text → moving average of the cores it kept busy alone
	running int                      // statements running now
	started uint64                   // statements started so far

	cpu func() (time.Duration, bool) // the process's CPU time (cpuTime; tests set their own)
}

// HeavyStatement is the duration from which a statement counts as heavy (Lanes).
const HeavyStatement = time.Second

// loneRetries is how many times a statement is retried alone.
const loneRetries = 2

// laneAll is the lone lane's capacity: more statements than ever run at once.
const laneAll = 1 << 30

// NewLanes returns Lanes that know no statement yet, for this machine's cores.
func NewLanes() *Lanes { return newLanes(runtime.NumCPU()) }

func newLanes(cores int) *Lanes {
	c := int64(max(cores, 1))
	return &Lanes{lone: semaphore.NewWeighted(laneAll), cores: c, heavy: semaphore.NewWeighted(c),
		cost: map[uint64]time.Duration{}, busy: map[uint64]float64{}, cpu: cpuTime}
}

func sqlKey(q string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(q))
	return h.Sum64()
}

// isHeavy reports whether the statement of key k (sqlKey) took HeavyStatement or more, on
// average, the last times it ran, or has not run yet: a statement of unknown cost is taken
// for heavy (and, its use of the cores unknown too, runs alone among the heavy ones), so the
// first page of a new server does not start all its statements at once.
func (l *Lanes) isHeavy(k uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.cost[k]
	return !ok || c >= HeavyStatement
}

// coresOf is how many of the heavy lane's cores the statement of key k holds: the cores it
// kept busy when it ran alone, rounded (at least one), or all while that is unknown.
func (l *Lanes) coresOf(k uint64) int64 {
	l.mu.Lock()
	b, ok := l.busy[k]
	l.mu.Unlock()
	if !ok || b <= 0 {
		return l.cores
	}
	return min(max(int64(math.Round(b)), 1), l.cores)
}

// took records that the statement of key k ran in d and, when it ran alone, kept busy cores
// busy on average (busy <= 0: not alone, or not measured).
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
	if busy > 0 && !math.IsInf(busy, 0) && !math.IsNaN(busy) {
		if old, ok := l.busy[k]; ok {
			busy = (old + busy) / 2
		}
		l.busy[k] = busy
	}
}

// timed runs run and says how long it took and, when no other statement ran at any time
// beside it, how many cores the process kept busy meanwhile (else 0).
func (l *Lanes) timed(run func() error) (time.Duration, float64, error) {
	l.mu.Lock()
	l.running++
	l.started++
	first, alone := l.started, l.running == 1
	l.mu.Unlock()
	c0, cpuOK := l.cpu()
	t0 := time.Now()
	err := run()
	d := time.Since(t0)
	c1, _ := l.cpu()
	l.mu.Lock()
	l.running--
	alone = alone && l.started == first && cpuOK
	l.mu.Unlock()
	if !alone || d <= 0 {
		return d, 0, err
	}
	return d, (c1 - c0).Seconds() / d.Seconds(), err
}

// run runs statement q (run executes it) through the lanes.
func (l *Lanes) run(ctx context.Context, log *slog.Logger, q string, run func() error) error {
	k := sqlKey(q)
	var cores int64
	if l.isHeavy(k) {
		cores = l.coresOf(k)
		if err := l.heavy.Acquire(ctx, cores); err != nil {
			return err
		}
	}
	if err := l.lone.Acquire(ctx, 1); err != nil {
		if cores > 0 {
			l.heavy.Release(cores)
		}
		return err
	}
	d, busy, err := l.timed(run)
	l.lone.Release(1)
	if cores > 0 {
		l.heavy.Release(cores)
	}
	for i := 0; i < loneRetries && warehouse.TotalMemoryLimit(err); i++ {
		if aerr := l.lone.Acquire(ctx, laneAll); aerr != nil {
			return err
		}
		log.Info("metric statement stopped for lack of the store's memory: running it again, alone", "attempt", i+1, "error", err)
		d, busy, err = l.timed(run)
		l.lone.Release(laneAll)
	}
	if err == nil {
		l.took(k, d, busy)
	}
	return err
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
		if _, known := l.cost[h]; err != nil || !known || b <= 0 || math.IsNaN(b) || math.IsInf(b, 0) {
			return NewLanes(), fmt.Errorf("%s: busy: %q: %v is not a known statement's cores busy", path, k, b)
		}
		l.busy[h] = b
	}
	return l, nil
}
