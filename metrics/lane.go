package metrics

import (
	"context"
	"hash/fnv"
	"log/slog"
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

// isHeavy reports whether q took HeavyStatement or more, on average, the last times it ran.
func (l *Lanes) isHeavy(q string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cost[sqlKey(q)] >= HeavyStatement
}

// took records that q ran in d.
func (l *Lanes) took(q string, d time.Duration) {
	k := sqlKey(q)
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
	heavy := l.isHeavy(q)
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
		l.took(q, d)
	}
	return err
}
