package reports

import (
	"context"
	"sync"
	"time"
)

// Clock is the scheduler's time: the system clock, or a test's.
type Clock interface {
	Now() time.Time
	// Timer delivers the time on the channel after d; stop cancels it.
	Timer(d time.Duration) (c <-chan time.Time, stop func() bool)
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// Run runs the schedules at their times until ctx is done, then waits for
// the runs under way (their context is ctx: they stop early and are
// recorded as failed). Each run goes on in its own goroutine; a schedule
// whose previous run is still going is skipped (and recorded so). A run
// late because the machine slept runs once, at once; fires missed while it
// slept are not replayed.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	sch := s.cfg.Schedules
	next := make([]time.Time, len(sch))
	now := s.clock.Now()
	for i := range sch {
		next[i] = sch[i].Next(now)
		s.log.Info("report scheduled", "schedule", sch[i].Name, "cron", sch[i].Cron, "tz", sch[i].TZ.String(), "next", next[i].In(sch[i].TZ).Format(time.RFC3339))
	}
	for {
		first := time.Time{}
		for _, t := range next {
			if !t.IsZero() && (first.IsZero() || t.Before(first)) {
				first = t
			}
		}
		if first.IsZero() {
			<-ctx.Done()
			return nil
		}
		c, stop := s.clock.Timer(max(first.Sub(s.clock.Now()), 0))
		select {
		case <-ctx.Done():
			stop()
			return nil
		case <-c:
		}
		now = s.clock.Now()
		for i := range sch {
			if next[i].IsZero() || next[i].After(now) {
				continue
			}
			sc, at := &sch[i], next[i]
			wg.Go(func() { s.execute(ctx, sc, at, TriggerSchedule, "scheduler") })
			next[i] = sc.Next(now)
		}
	}
}
