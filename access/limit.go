package access

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// RateLimitError refuses a sign-in after too many failures; RetryAfter is when one is allowed
// again.
type RateLimitError struct {
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("too many failed sign-ins; try again in %d s", e.Seconds())
}

// Seconds is RetryAfter in whole seconds, rounded up (at least 1).
func (e *RateLimitError) Seconds() int {
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}

// limiterMaxKeys bounds a limiter's memory: beyond it, keys whose failures are all older than
// the window are dropped, then arbitrary ones.
const limiterMaxKeys = 100_000

// limiter counts failures per key in a sliding window: after max failures within window, the
// key waits until its oldest failure leaves the window.
type limiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	fails  map[string][]time.Time // oldest first
}

func newLimiter(max int, window time.Duration) *limiter {
	return &limiter{max: max, window: window, fails: map[string][]time.Time{}}
}

// wait is how long key must wait before its next attempt (0: it may try now).
func (l *limiter) wait(key string, now time.Time) time.Duration {
	if key == "" {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.recent(key, now)
	if len(f) < l.max {
		return 0
	}
	return f[len(f)-l.max].Add(l.window).Sub(now)
}

// recent drops key's failures older than the window and returns the rest. l.mu is held.
func (l *limiter) recent(key string, now time.Time) []time.Time {
	f := l.fails[key]
	i := 0
	for i < len(f) && now.Sub(f[i]) >= l.window {
		i++
	}
	if i == len(f) {
		delete(l.fails, key)
		return nil
	}
	f = f[i:]
	l.fails[key] = f
	return f
}

// fail records a failure of key at now.
func (l *limiter) fail(key string, now time.Time) {
	if key == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.fails[key]; !ok && len(l.fails) >= limiterMaxKeys {
		l.prune(now)
	}
	f := append(l.recent(key, now), now)
	if len(f) > l.max {
		f = f[len(f)-l.max:] // only the last max failures decide when the key may try again
	}
	l.fails[key] = f
}

// prune makes room for a new key. l.mu is held.
func (l *limiter) prune(now time.Time) {
	for k := range l.fails {
		l.recent(k, now)
	}
	for k := range l.fails {
		if len(l.fails) < limiterMaxKeys {
			break
		}
		delete(l.fails, k)
	}
}

// reset forgets key's failures (after a successful sign-in).
func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, key)
}
