package reports

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// cronSpec is a standard 5-field cron expression (minute hour day-of-month
// month day-of-week; names such as MON and JAN, ranges, steps, lists, and
// @yearly, @monthly, @weekly, @daily, @hourly) read in a time zone by its
// wall clock: "0 6 1 * *" is 06:00 on the 1st in that zone, whatever its
// offset to UTC that day.
//
// Across a change of the clocks, a schedule runs once per wall-clock time
// it names: a time the change skips (02:30 when the clocks go from 02:00 to
// 03:00) runs when the gap ends (03:00 local); a time the change repeats
// (02:30 when they go back from 03:00 to 02:00) runs once, the first time.
// (robfig/cron's own Next skips the first and runs the second twice.)
type cronSpec struct {
	expr  string
	sched cron.Schedule
	loc   *time.Location
}

// parseCron reads expr for zone loc. A CRON_TZ= or TZ= prefix and @every are
// refused: the zone is the schedule's tz, and the syntax is cron's.
func parseCron(expr string, loc *time.Location) (*cronSpec, error) {
	e := strings.TrimSpace(expr)
	switch {
	case e == "":
		return nil, fmt.Errorf("empty (a 5-field cron expression, e.g. \"0 6 1 * *\" for 06:00 on the 1st of each month)")
	case strings.HasPrefix(e, "CRON_TZ=") || strings.HasPrefix(e, "TZ="):
		return nil, fmt.Errorf("%q: set the time zone with the schedule's tz, not in the expression", expr)
	case strings.HasPrefix(e, "@every"):
		return nil, fmt.Errorf("%q: @every is not cron syntax; use a 5-field expression", expr)
	}
	s, err := cron.ParseStandard(e)
	if err != nil {
		return nil, fmt.Errorf("%q is not a cron expression (minute hour day-of-month month day-of-week): %v", expr, err)
	}
	c := &cronSpec{expr: e, sched: s, loc: loc}
	if c.Next(time.Now()).IsZero() {
		return nil, fmt.Errorf("%q never fires (no such date within five years)", expr)
	}
	return c, nil
}

// Next is the first time after t the expression names, or the zero time
// when it names none within five years.
func (c *cronSpec) Next(t time.Time) time.Time {
	// The search runs on the wall clock, represented as a UTC time, which
	// has no changes of the clocks; each wall-clock match is then placed in
	// the zone.
	wall := wallClock(t.In(c.loc))
	for {
		w := c.sched.Next(wall)
		if w.IsZero() {
			return time.Time{}
		}
		if at := c.instant(w); at.After(t) {
			return at
		}
		wall = w
	}
}

// wallClock is t's wall clock as a UTC time.
func wallClock(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// instant is the first instant whose wall clock in c.loc is w (a UTC time
// standing for a wall clock), or, when a change of the clocks skips w, the
// end of the gap.
func (c *cronSpec) instant(w time.Time) time.Time {
	var (
		first time.Time
		found bool
		lower time.Time // the earliest reading, for a gap
	)
	// The zone's offsets around w; no zone changes its offset twice within two days.
	for _, probe := range []time.Duration{-26 * time.Hour, 0, 26 * time.Hour} {
		_, off := w.Add(probe).In(c.loc).Zone()
		u := w.Add(-time.Duration(off) * time.Second)
		if wallClock(u.In(c.loc)).Equal(w) {
			if !found || u.Before(first) {
				first, found = u, true
			}
		}
		if lower.IsZero() || u.Before(lower) {
			lower = u
		}
	}
	if found {
		return first
	}
	// In a gap: the clocks jumped over w. Read with the offset after the jump, w falls before
	// it (the earliest reading): the jump is the end of that reading's zone period.
	_, end := lower.In(c.loc).ZoneBounds()
	if end.IsZero() {
		return lower
	}
	return end
}

func (c *cronSpec) String() string { return c.expr }
