package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// attempts is the number of rows of login_attempts.
func attempts(t *testing.T, svc *Service) uint64 {
	t.Helper()
	var n uint64
	if err := svc.st.App.QueryRow(context.Background(), "SELECT count() FROM login_attempts").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

type loginTry struct {
	svc *Service
	t   *testing.T
}

func (l loginTry) try(email, pw, ip string) error {
	_, err := l.svc.Login(context.Background(), email, pw, Client{IP: ip})
	return err
}

// wantLimit fails unless err is a rate limit of limit for want (0: any wait).
func (l loginTry) wantLimit(what string, err error, limit string, want time.Duration) {
	l.t.Helper()
	var rl *RateLimitError
	if !errors.As(err, &rl) || rl.Limit != limit || (want > 0 && rl.RetryAfter != want) {
		l.t.Fatalf("%s: %v (%+v), want the %q limit for %s", what, err, rl, limit, want)
	}
}

// TestLoginShared address is the attack of issue #15: many failures from one address (a shared
// office NAT) must not stop another account's correct password from there.
func TestLoginSharedAddress(t *testing.T) {
	svc, clk := newTestService(t, Config{})
	addUser(t, svc, "ann@example.com", RoleExecutive)
	addUser(t, svc, "bob@example.com", RoleExecutive)
	l := loginTry{svc, t}
	const office = "198.51.100.7"
	// Bob's attacker (or bob with caps lock) fails 30 times from the office, as fast as allowed.
	for i := 0; i < 30; i++ {
		err := l.try("bob@example.com", "wrong password", office)
		var rl *RateLimitError
		if errors.As(err, &rl) {
			clk.Add(rl.RetryAfter)
			continue
		}
		if !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("bob's failure %d: %v", i+1, err)
		}
	}
	// Colleagues of every kind still sign in from the office with their password.
	if err := l.try("ann@example.com", "password-ann@example.com", office); err != nil {
		t.Fatalf("ann from the office: %v", err)
	}
	// Bob himself, from home, too: the limit is of the office on bob's account.
	if err := l.try("bob@example.com", "password-bob@example.com", "203.0.113.9"); err != nil {
		t.Fatalf("bob from home: %v", err)
	}
	// Even unknown accounts named from the office, below the address limit, are no reason.
	for i := 0; i < DefaultIPFailures-1; i++ {
		if err := l.try(fmt.Sprintf("nobody%d@example.com", i), "x", office); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("unknown account %d: %v", i, err)
		}
	}
	if err := l.try("ann@example.com", "password-ann@example.com", office); err != nil {
		t.Fatalf("ann from the office after the unknown accounts: %v", err)
	}
}

// TestLoginBackoff: rule 1, one account from one address: free failures, then a wait that
// doubles, refused before the password is checked (and not written), lifted by waiting.
func TestLoginBackoff(t *testing.T) {
	svc, clk := newTestService(t, Config{LoginFailuresPerAccount: 3, LoginWindow: 10 * time.Minute, LoginBackoff: 2 * time.Second})
	addUser(t, svc, "ann@example.com", RoleExecutive)
	l := loginTry{svc, t}
	const ip = "192.0.2.1"
	for i := range 3 {
		if err := l.try("ann@example.com", "wrong password", ip); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	// Refused, even with the right password; the refusal is not a row.
	rows := attempts(t, svc)
	l.wantLimit("4th attempt", l.try("ann@example.com", "password-ann@example.com", ip), LimitAccountAddress, 2*time.Second)
	clk.Add(time.Second)
	l.wantLimit("1 s later", l.try("ann@example.com", "password-ann@example.com", ip), LimitAccountAddress, time.Second)
	if n := attempts(t, svc); n != rows {
		t.Fatalf("refusals wrote %d rows", n-rows)
	}
	// Another address is not limited.
	if err := l.try("ann@example.com", "wrong password", "192.0.2.2"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("another address: %v", err)
	}
	// Each further failure doubles the wait: 2 s, 4 s, 8 s, … at most the window.
	for _, want := range []time.Duration{4, 8, 16, 32, 64, 128, 256, 512, 600} {
		clk.Add(time.Hour) // more than any wait, less than the failure memory
		if err := l.try("ann@example.com", "wrong password", ip); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure before a %d s wait: %v", want, err)
		}
		l.wantLimit(fmt.Sprintf("after the failure, want %d s", want), l.try("ann@example.com", "password-ann@example.com", ip), LimitAccountAddress, want*time.Second)
	}
	// The wait ends; the right password signs in and clears the address's failures.
	clk.Add(10 * time.Minute)
	if err := l.try("ann@example.com", "password-ann@example.com", ip); err != nil {
		t.Fatalf("after the wait: %v", err)
	}
	clk.Add(time.Second) // failures count after the sign-in, to the millisecond
	for i := range 3 {
		if err := l.try("ann@example.com", "wrong password", ip); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d after signing in: %v", i+1, err)
		}
	}
	l.wantLimit("three failures after signing in", l.try("ann@example.com", "x", ip), LimitAccountAddress, 2*time.Second)
	// Failures are forgotten after a day.
	clk.Add(failureMemory)
	if err := l.try("ann@example.com", "password-ann@example.com", ip); err != nil {
		t.Fatalf("a day later: %v", err)
	}
	// The audit log has the failures and the first refusal of each wait only.
	entries, _, err := svc.AuditLog(context.Background(), AuditQuery{Actor: "ann@example.com", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range entries {
		count[e.Action+" "+e.Detail]++
	}
	if count[`login.failure {"reason":"wrong password"}`] != 16 || count[`login {"method":"password"}`] != 2 ||
		count[`login.failure {"limit":"account from this address","reason":"rate limited","retry_after_s":2}`] != 2 ||
		count[`login.failure {"limit":"account from this address","reason":"rate limited","retry_after_s":600}`] != 1 {
		t.Fatalf("audit: %v", count)
	}
}

// TestLoginAccountWide: rule 2, one account from many addresses, and the exemption of an
// address the account signed in from.
func TestLoginAccountWide(t *testing.T) {
	svc, clk := newTestService(t, Config{LoginFailuresPerAccount: 3, LoginFailuresAccountWide: 6})
	addUser(t, svc, "ann@example.com", RoleExecutive)
	l := loginTry{svc, t}
	if err := l.try("ann@example.com", "password-ann@example.com", "192.0.2.10"); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	for i := range 6 { // two failures from each of three addresses: none reaches rule 1
		if err := l.try("ann@example.com", "wrong password", fmt.Sprintf("203.0.113.%d", i/2)); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	l.wantLimit("a new address", l.try("ann@example.com", "password-ann@example.com", "203.0.113.99"), LimitAccount, time.Second)
	l.wantLimit("one of the attacking addresses", l.try("ann@example.com", "password-ann@example.com", "203.0.113.0"), LimitAccount, time.Second)
	// Ann's own address (she signed in from it) is exempt.
	if err := l.try("ann@example.com", "password-ann@example.com", "192.0.2.10"); err != nil {
		t.Fatalf("ann's known address: %v", err)
	}
	clk.Add(time.Second)
	if err := l.try("ann@example.com", "wrong password", "203.0.113.50"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("after the wait: %v", err)
	}
	l.wantLimit("7 failures", l.try("ann@example.com", "x", "203.0.113.51"), LimitAccount, 2*time.Second)
	// Unknown accounts are limited the same way (the limit does not tell which exist).
	for i := range 6 {
		if err := l.try("ghost@example.com", "x", fmt.Sprintf("203.0.113.%d", i/2)); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("ghost failure %d: %v", i+1, err)
		}
	}
	l.wantLimit("ghost", l.try("ghost@example.com", "x", "203.0.113.99"), LimitAccount, time.Second)
}

// TestLoginUnknownAccounts: rule 3: an address naming many accounts that do not exist is
// refused for those without a password check, gets the same refusal for a wrong password, and
// still signs in a correct one.
func TestLoginUnknownAccounts(t *testing.T) {
	svc, clk := newTestService(t, Config{LoginFailuresPerIP: 5, LoginWindow: 10 * time.Minute})
	addUser(t, svc, "ann@example.com", RoleExecutive)
	addUser(t, svc, "bob@example.com", RoleExecutive)
	l := loginTry{svc, t}
	const ip = "192.0.2.66"
	for i := range 5 {
		if err := l.try(fmt.Sprintf("user%d@example.com", i), "x", ip); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("unknown %d: %v", i, err)
		}
		clk.Add(time.Minute)
	}
	rows := attempts(t, svc)
	// The fifth of them was a minute ago; the first leaves the window in 5 min.
	l.wantLimit("another unknown account", l.try("user99@example.com", "x", ip), LimitAddress, 5*time.Minute)
	if n := attempts(t, svc); n != rows {
		t.Fatal("the refusal of an unknown account was checked and written")
	}
	l.wantLimit("a wrong password", l.try("bob@example.com", "wrong password", ip), LimitAddress, 5*time.Minute)
	if n := attempts(t, svc); n != rows+1 {
		t.Fatal("the wrong password was not written")
	}
	if err := l.try("ann@example.com", "password-ann@example.com", ip); err != nil {
		t.Fatalf("a correct password from the address: %v", err)
	}
	// Other addresses are not concerned; and the limit lifts as the failures age.
	if err := l.try("user99@example.com", "x", "192.0.2.67"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("another address: %v", err)
	}
	clk.Add(5 * time.Minute)
	if err := l.try("user99@example.com", "x", ip); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("after the window: %v", err)
	}
}

// TestLoginLimitSurvivesRestart: the failures are in the store: a new Service (a restart, or
// another converge on the store) refuses as the first did.
func TestLoginLimitSurvivesRestart(t *testing.T) {
	svc, clk := newTestService(t, Config{LoginFailuresPerAccount: 2, LoginBackoff: time.Minute})
	addUser(t, svc, "ann@example.com", RoleExecutive)
	for range 2 {
		if _, err := svc.Login(context.Background(), "ann@example.com", "nope", Client{IP: "192.0.2.1"}); !errors.Is(err, ErrBadCredentials) {
			t.Fatal(err)
		}
	}
	clk.Add(20 * time.Second)
	again, err := New(svc.st, svc.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	loginTry{again, t}.wantLimit("after a restart", loginTry{again, t}.try("ann@example.com", "password-ann@example.com", "192.0.2.1"), LimitAccountAddress, 40*time.Second)
}

func TestLimitConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{LoginWindow: 25 * time.Hour}, "longer than the 24h0m0s failures are kept"},
		{Config{LoginBackoff: time.Hour, LoginWindow: time.Minute}, "login backoff 1h0m0s is longer than the login window"},
		{Config{LoginFailuresAccountWide: -1}, "must not be negative"},
		{Config{LoginBackoff: -time.Second}, "must not be negative"},
	} {
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
	d := Config{LoginFailuresPerAccount: 3}.withDefaults()
	if d.LoginFailuresAccountWide != 12 || d.LoginFailuresPerIP != DefaultIPFailures || d.LoginBackoff != time.Second || d.LoginWindow != DefaultLoginWindow {
		t.Errorf("defaults %+v", d)
	}
}
