package export

import (
	"fmt"
	"sync"
)

// Gate bounds how many console queries (runs and downloads) run at once: PerUser for one
// person, Total for everyone. A query over either is refused at once with a *BusyError (it
// does not wait: a person waiting on a hung page starts another). Total is meant to stay
// below the store's connections (engine.pool), so the dashboards and /readyz always find
// one free.
type Gate struct {
	PerUser int // 0: DefaultPerUser
	Total   int // 0: DefaultTotal

	mu      sync.Mutex
	running map[string]int
	total   int
}

// Gate defaults: two queries of one person, three in all (the embedded store has four
// connections by default).
const (
	DefaultPerUser = 2
	DefaultTotal   = 3
)

// BusyError is a console query refused because too many are running.
type BusyError struct {
	Running int  // the person's queries running (Mine), or everyone's
	Limit   int  // the limit reached
	Mine    bool // the person's own limit, else everyone's
}

func (e *BusyError) Error() string {
	if e.Mine {
		return fmt.Sprintf("you have %d console %s running, the most one person may run at once: wait for %s to finish (or stop it by closing its tab), then run this one", e.Running, plural(e.Running, "query", "queries"), plural(e.Running, "it", "one"))
	}
	return fmt.Sprintf("the console is running %d %s, the most it runs at once so that the dashboards keep their share of the store: try again in a moment", e.Running, plural(e.Running, "query", "queries"))
}

func plural(n int, one, more string) string {
	if n == 1 {
		return one
	}
	return more
}

// Limits returns the per-person and total limits in force (0, 0 for a nil Gate: none).
func (g *Gate) Limits() (perUser, total int) {
	if g == nil {
		return 0, 0
	}
	perUser, total = g.PerUser, g.Total
	if perUser <= 0 {
		perUser = DefaultPerUser
	}
	if total <= 0 {
		total = DefaultTotal
	}
	return perUser, total
}

// Enter admits one query of user, or refuses it with a *BusyError; release (once) when the
// query has ended. A nil Gate admits everything.
func (g *Gate) Enter(user string) (release func(), err error) {
	if g == nil {
		return func() {}, nil
	}
	perUser, total := g.Limits()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running == nil {
		g.running = map[string]int{}
	}
	if n := g.running[user]; n >= perUser {
		return nil, &BusyError{Running: n, Limit: perUser, Mine: true}
	}
	if g.total >= total {
		return nil, &BusyError{Running: g.total, Limit: total}
	}
	g.running[user]++
	g.total++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.total--
			if g.running[user]--; g.running[user] <= 0 {
				delete(g.running, user)
			}
		})
	}, nil
}

// Running is how many console queries run now: user's, and everyone's.
func (g *Gate) Running(user string) (mine, all int) {
	if g == nil {
		return 0, 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.running[user], g.total
}
