package access

import (
	"testing"
	"time"
)

func TestBackoffWait(t *testing.T) {
	l := limits{window: 15 * time.Minute, backoff: time.Second}
	cases := []struct {
		n, free int
		want    time.Duration
	}{
		{0, 5, 0},
		{4, 5, 0},
		{5, 5, time.Second},
		{6, 5, 2 * time.Second},
		{7, 5, 4 * time.Second},
		{14, 5, 512 * time.Second},
		{15, 5, 15 * time.Minute}, // 1024 s, capped at the window
		{40, 5, 15 * time.Minute},
		{1000, 5, 15 * time.Minute}, // no shift overflow
	}
	for _, c := range cases {
		if got := l.backoffWait(c.n, c.free); got != c.want {
			t.Errorf("backoffWait(%d, %d) = %s, want %s", c.n, c.free, got, c.want)
		}
	}
}

func TestDecide(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	l := limits{perAccount: 5, accountWide: 20, perIP: 20, window: 15 * time.Minute, backoff: time.Second}
	cases := []struct {
		name        string
		st          attemptStats
		ip          string
		wantLimit   string // "" = not refused
		wantWait    time.Duration
		wantAddress time.Duration // 0 = rule 3 does not hold
	}{
		{name: "nothing", ip: "192.0.2.1"},
		{name: "four failures from here", st: attemptStats{pairFailures: 4, pairLast: now}, ip: "192.0.2.1"},
		{name: "five failures from here, just now", st: attemptStats{pairFailures: 5, pairLast: now}, ip: "192.0.2.1",
			wantLimit: LimitAccountAddress, wantWait: time.Second},
		{name: "five failures from here, waited", st: attemptStats{pairFailures: 5, pairLast: ago(time.Second)}, ip: "192.0.2.1"},
		{name: "eight failures from here", st: attemptStats{pairFailures: 8, pairLast: ago(3 * time.Second)}, ip: "192.0.2.1",
			wantLimit: LimitAccountAddress, wantWait: 5 * time.Second},
		{name: "the account everywhere", st: attemptStats{accountFailures: 22, accountLast: ago(time.Second)}, ip: "192.0.2.1",
			wantLimit: LimitAccount, wantWait: 3 * time.Second},
		{name: "the account everywhere, from a known address", st: attemptStats{accountFailures: 22, accountLast: ago(time.Second), knownAddress: true}, ip: "192.0.2.1"},
		{name: "known address, its own failures still count", st: attemptStats{pairFailures: 6, pairLast: now, accountFailures: 22, accountLast: now, knownAddress: true},
			ip: "192.0.2.1", wantLimit: LimitAccountAddress, wantWait: 2 * time.Second},
		{name: "the longer of both", st: attemptStats{pairFailures: 6, pairLast: now, accountFailures: 30, accountLast: now}, ip: "192.0.2.1",
			wantLimit: LimitAccount, wantWait: 15 * time.Minute},
		// Rule 3 never refuses before the password check: it only marks the address.
		{name: "unknown accounts from here", st: attemptStats{addressFailures: 20, addressKth: ago(5 * time.Minute)}, ip: "192.0.2.1",
			wantAddress: 10 * time.Minute},
		{name: "unknown accounts from here, aged out", st: attemptStats{addressFailures: 20, addressKth: ago(15 * time.Minute)}, ip: "192.0.2.1"},
		{name: "19 unknown accounts", st: attemptStats{addressFailures: 19}, ip: "192.0.2.1"},
		{name: "no address", st: attemptStats{addressFailures: 50, addressKth: now}, ip: ""},
	}
	for _, c := range cases {
		v := l.decide(c.st, now, c.ip)
		switch {
		case c.wantLimit == "" && v.refuse != nil:
			t.Errorf("%s: refused %+v", c.name, *v.refuse)
		case c.wantLimit != "" && (v.refuse == nil || v.refuse.Limit != c.wantLimit || v.refuse.RetryAfter != c.wantWait):
			t.Errorf("%s: %+v, want %s for %s", c.name, v.refuse, c.wantLimit, c.wantWait)
		}
		if v.address != (c.wantAddress > 0) || v.addressWait != c.wantAddress {
			t.Errorf("%s: address %v for %s, want %s", c.name, v.address, v.addressWait, c.wantAddress)
		}
	}
}

func TestMemo(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var m memo
	if m.refused("k", now) != nil {
		t.Fatal("empty memo refuses")
	}
	m.hold("k", &RateLimitError{RetryAfter: 10 * time.Second, Limit: LimitAccount}, now)
	if e := m.refused("k", now.Add(4*time.Second)); e == nil || e.RetryAfter != 6*time.Second || e.Limit != LimitAccount {
		t.Fatalf("held: %+v", e)
	}
	if m.refused("other", now) != nil {
		t.Fatal("another key is refused")
	}
	if m.refused("k", now.Add(10*time.Second)) != nil {
		t.Fatal("refused after it ended")
	}
	m.hold("k", &RateLimitError{RetryAfter: time.Minute}, now)
	m.release("k")
	if m.refused("k", now) != nil {
		t.Fatal("release did not clear the key")
	}
	if e := (&RateLimitError{RetryAfter: 1500 * time.Millisecond}); e.Seconds() != 2 || e.Error() != "too many failed sign-ins; try again in 2 s" {
		t.Errorf("RateLimitError: %d %q", e.Seconds(), e.Error())
	}
}
