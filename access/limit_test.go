package access

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	l := newLimiter(3, 10*time.Minute)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	steps := []struct {
		at       time.Duration
		fail     bool
		wantWait time.Duration
	}{
		{0, true, 0},
		{time.Minute, true, 0},
		{2 * time.Minute, false, 0}, // two failures: may try
		{2 * time.Minute, true, 0},
		{3 * time.Minute, false, 7 * time.Minute},          // three within 10 min: wait for the first to age out
		{10*time.Minute - time.Second, false, time.Second}, // just before it does
		{10 * time.Minute, false, 0},                       // the first is out of the window
		{10 * time.Minute, true, 0},
		{10 * time.Minute, false, time.Minute}, // failures at 1, 2 and 10 min: the one at 1 min decides
	}
	for i, s := range steps {
		if s.fail {
			l.fail("k", at(s.at))
			continue
		}
		if got := l.wait("k", at(s.at)); got != s.wantWait {
			t.Errorf("step %d at %s: wait %s, want %s", i, s.at, got, s.wantWait)
		}
	}
	if l.wait("other", at(10*time.Minute)) != 0 {
		t.Error("another key is limited")
	}
	l.reset("k")
	if l.wait("k", at(10*time.Minute)) != 0 {
		t.Error("reset did not clear the key")
	}
	if e := (&RateLimitError{RetryAfter: 1500 * time.Millisecond}); e.Seconds() != 2 || e.Error() != "too many failed sign-ins; try again in 2 s" {
		t.Errorf("RateLimitError: %d %q", e.Seconds(), e.Error())
	}
}
