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
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/converge-dev/converge/warehouse"
)

// Lanes admit the statements of metric queries to the store. One process should give all
// its registries the same Lanes (Options.Lanes), as they share one store.
//
//   - Heavy statements run one at a time. A statement is heavy when it took HeavyStatement or
//     more the last times it ran (a moving average per SQL text, whatever the bound values):
//     on a machine with few cores, two heavy aggregations at once take longer than one after
//     the other, and they add up their memory. Light ones (most of a dashboard) run
//     concurrently, beside a heavy one.
//   - Alone: a statement the store stopped because all the queries running together wanted
//     more memory than it has (warehouse.TotalMemoryLimit) runs again (at most loneRetries
//     times) with nothing else: every statement holds one unit of the lane while it runs and
//     a retry takes them all, so it waits for the statements running then, and those that
//     arrive after it wait for it (first come, first served). A statement over its own limit
//     (engine.max_query_memory) is not retried: alone it would fail the same way.
type Lanes struct {
	lone  *semaphore.Weighted
	heavy *semaphore.Weighted

	mu   sync.Mutex
	cost map[uint64]time.Duration // SQL text → moving average of its duration
}

// HeavyStatement is the duration from which a statement counts as heavy (Lanes).
const HeavyStatement = time.Second

// loneRetries is how many times a statement is retried alone.
const loneRetries = 2

// laneAll is the lone lane's capacity: more statements than ever run at once.
const laneAll = 1 << 30

// NewLanes returns Lanes that know no statement yet.
func NewLanes() *Lanes {
	return &Lanes{lone: semaphore.NewWeighted(laneAll), heavy: semaphore.NewWeighted(1), cost: map[uint64]time.Duration{}}
}

func sqlKey(q string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(q))
	return h.Sum64()
}

// isHeavy reports whether the statement of key k (sqlKey) took HeavyStatement or more, on
// average, the last times it ran.
func (l *Lanes) isHeavy(k uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cost[k] >= HeavyStatement
}

// took records that the statement of key k ran in d.
func (l *Lanes) took(k uint64, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.cost[k]; ok {
		d = (old + d) / 2
	} else if len(l.cost) >= 10000 {
		clear(l.cost)
	}
	l.cost[k] = d
}

// run runs statement q (run executes it) through the lanes.
func (l *Lanes) run(ctx context.Context, log *slog.Logger, q string, run func() error) error {
	k := sqlKey(q)
	heavy := l.isHeavy(k)
	if heavy {
		if err := l.heavy.Acquire(ctx, 1); err != nil {
			return err
		}
	}
	if err := l.lone.Acquire(ctx, 1); err != nil {
		if heavy {
			l.heavy.Release(1)
		}
		return err
	}
	t0 := time.Now()
	err := run()
	d := time.Since(t0)
	l.lone.Release(1)
	if heavy {
		l.heavy.Release(1)
	}
	for i := 0; i < loneRetries && warehouse.TotalMemoryLimit(err); i++ {
		if aerr := l.lone.Acquire(ctx, laneAll); aerr != nil {
			return err
		}
		log.Info("metric statement stopped for lack of the store's memory: running it again, alone", "attempt", i+1, "error", err)
		t0 = time.Now()
		err = run()
		d = time.Since(t0)
		l.lone.Release(laneAll)
	}
	if err == nil {
		l.took(k, d)
	}
	return err
}

// costsFile is what Lanes.Save writes.
type costsFile struct {
	Note  string             `json:"note"`
	Costs map[string]float64 `json:"costs"` // SQL text's FNV-64a in hex → seconds
}

// Save writes what the lanes know of each statement's cost to path (atomically: a
// temporary file renamed), so that a process started later on the same store knows which
// statements are heavy from its first page (LoadLanes).
func (l *Lanes) Save(path string) error {
	f := costsFile{Note: "converge: how long each metric statement took (metrics.Lanes); safe to delete", Costs: map[string]float64{}}
	l.mu.Lock()
	for k, d := range l.cost {
		f.Costs[strconv.FormatUint(k, 16)] = d.Seconds()
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
	return l, nil
}
