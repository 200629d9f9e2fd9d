package access

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Sign-in limiting.
//
// The limiter slows password guessing without locking people out: a shared address (an
// office behind one NAT, a VPN) must not stop a colleague's correct password because someone
// else there mistyped or attacked another account. So nothing is limited by the address
// alone. It has three rules, each about what is under attack:
//
//  1. One account from one address ("account from this address"): after
//     LoginFailuresPerAccount failures since the account last signed in from that address,
//     that address must wait before trying that account again: LoginBackoff after the latest
//     failure, doubled with each further failure, at most LoginWindow. Other addresses, and
//     other accounts from this address, are not affected. This stops a single attacker at one
//     account.
//  2. One account from any address ("account"): after LoginFailuresAccountWide failures of
//     the account (from all addresses, within the failure memory of a day) the account waits
//     the same way, from its latest failure. This stops a distributed attack at one account.
//     An address the account signed in from successfully within the last 30 days is exempt
//     (rule 1 still applies to it): the account's owner at their usual desk gets in while
//     strangers are slowed.
//  3. Accounts that do not exist, from one address ("address"): after LoginFailuresPerIP
//     failures naming accounts that do not exist within LoginWindow (guessing names,
//     spraying lists: what an office does not do), the address is limited until enough of
//     them leave the window. While it is, an attempt from it naming an account that does not
//     exist is refused without checking a password (which costs an argon2id hash: this is
//     what bounds the CPU a flood can burn), and a wrong password for an existing account
//     gets the same refusal; a correct password of an account that rules 1 and 2 do not
//     limit is admitted. The refusal of an unknown account takes as long as a password check
//     (the limiter waits as long as the last check took), and both refusals say the same,
//     so the refusals do not tell which accounts exist.
//
// A refused attempt is answered with a *RateLimitError, before the password is checked
// (rules 1 and 2) and so never tells whether it was right. Unknown accounts are limited
// like existing ones by rules 1 and 2, so those do not tell either. The failures are rows of
// the login_attempts table (one per password check; refusals are not written, so a flood
// does not grow it), read on each attempt: the limits hold across restarts and across
// processes on one store. Refusals of rules 1 and 2 are also kept in memory until they end, so
// a flood at one account from one address is refused without reading the store, and only its
// first refusal is written to the audit log; so are those of rule 2, for the address refused.

// Limit names, in RateLimitError.Limit and the audit log.
const (
	LimitAccountAddress = "account from this address"
	LimitAccount        = "account"
	LimitAddress        = "address"
)

// RateLimitError refuses a sign-in after too many failures; RetryAfter is when one is allowed
// again, Limit which rule refused it (LimitAccountAddress, LimitAccount, LimitAddress).
type RateLimitError struct {
	RetryAfter time.Duration
	Limit      string
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("too many failed sign-ins; try again in %d s", e.Seconds())
}

// Seconds is RetryAfter in whole seconds, rounded up (at least 1).
func (e *RateLimitError) Seconds() int {
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}

const (
	// failureMemory is how long failures count for rules 1 and 2 (the table keeps them a day).
	failureMemory = 24 * time.Hour
	// knownAddressAge is how long a successful sign-in exempts its address from rule 2 (the
	// table keeps successes 30 days).
	knownAddressAge = 30 * 24 * time.Hour
	// memoMaxKeys bounds the in-memory refusals of rule 1.
	memoMaxKeys = 100_000
)

// limits are the limiter's settings (Config, defaults applied).
type limits struct {
	perAccount, accountWide, perIP int
	window, backoff                time.Duration
}

// attemptStats is what the store knows about an account and an address (login_limits.sql).
type attemptStats struct {
	pairFailures    int       // of the account from the address since its last sign-in from there
	pairLast        time.Time // the latest of them
	accountFailures int       // of the account from any address, within failureMemory
	accountLast     time.Time
	addressFailures int       // on unknown accounts from the address, within the window
	addressKth      time.Time // the perIP-th newest of those (zero when fewer)
	knownAddress    bool      // the account signed in from the address within knownAddressAge
}

// verdict is the decision on one attempt.
type verdict struct {
	refuse *RateLimitError // rules 1 or 2: refused before the password is checked
	// address: rule 3 holds for the address, until addressWait from now.
	address     bool
	addressWait time.Duration
}

// backoffWait is how long after its latest failure a key with n failures waits when free
// are allowed: 0 below free, then backoff, doubled per further failure, at most window.
func (l limits) backoffWait(n, free int) time.Duration {
	if n < free {
		return 0
	}
	if n-free >= 32 {
		return l.window
	}
	return min(l.window, l.backoff<<(n-free))
}

// decide applies rules 1 to 3 to st at now.
func (l limits) decide(st attemptStats, now time.Time, ip string) verdict {
	var v verdict
	wait, limit := time.Duration(0), ""
	if w := st.pairLast.Add(l.backoffWait(st.pairFailures, l.perAccount)).Sub(now); st.pairFailures >= l.perAccount && w > 0 {
		wait, limit = w, LimitAccountAddress
	}
	if !st.knownAddress && st.accountFailures >= l.accountWide {
		if w := st.accountLast.Add(l.backoffWait(st.accountFailures, l.accountWide)).Sub(now); w > wait {
			wait, limit = w, LimitAccount
		}
	}
	if wait > 0 {
		v.refuse = &RateLimitError{RetryAfter: wait, Limit: limit}
	}
	if ip != "" && st.addressFailures >= l.perIP && !st.addressKth.IsZero() {
		if w := st.addressKth.Add(l.window).Sub(now); w > 0 {
			v.address, v.addressWait = true, w
		}
	}
	return v
}

// attemptStats reads the store's attempts of email and ip for an attempt at now.
func (s *Service) attemptStats(ctx context.Context, email, ip string, now time.Time) (attemptStats, error) {
	var st attemptStats
	var pairN, accountN, addressN uint64
	var pairOK time.Time
	err := s.st.App.QueryRow(ctx, query("login_limits"),
		clickhouse.Named("email", email), clickhouse.Named("ip", ip),
		clickhouse.Named("since", chTime(now.Add(-failureMemory))),
		clickhouse.Named("window_since", chTime(now.Add(-s.limits.window))),
		clickhouse.Named("known_since", chTime(now.Add(-knownAddressAge))),
		clickhouse.Named("address_limit", uint32(s.limits.perIP)),
	).Scan(&pairN, &st.pairLast, &accountN, &st.accountLast, &addressN, &st.addressKth, &pairOK)
	if err != nil {
		return st, fmt.Errorf("read sign-in attempts of %s from %q: %w", email, ip, err)
	}
	st.pairFailures, st.accountFailures, st.addressFailures = int(pairN), int(accountN), int(addressN)
	st.knownAddress = pairOK.Unix() > 0
	if st.addressKth.Unix() <= 0 {
		st.addressKth = time.Time{}
	}
	return st, nil
}

// recordAttempt writes a checked password: ok for a sign-in, known when the account exists.
func (s *Service) recordAttempt(ctx context.Context, email, ip string, ok, known bool, at time.Time) error {
	err := s.st.App.Exec(ctx, query("login_attempt_put"), clickhouse.Named("at", chTime(at)),
		clickhouse.Named("email", email), clickhouse.Named("ip", ip), clickhouse.Named("ok", ok), clickhouse.Named("known", known))
	if err != nil {
		return fmt.Errorf("record sign-in attempt of %s: %w", email, err)
	}
	return nil
}

// memo holds the refusals of rules 1 and 2 in memory until they end, by account and address
// (a refusal of rule 2 holds for the address until it ends: the address does not become
// known without signing in).
type memo struct {
	mu    sync.Mutex
	until map[string]held
}

type held struct {
	until time.Time
	limit string
}

func pairKey(email, ip string) string { return email + "\x00" + ip }

// refused is key's refusal still in force at now (nil: ask the store).
func (m *memo) refused(key string, now time.Time) *RateLimitError {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.until[key]
	if !ok {
		return nil
	}
	if !now.Before(h.until) {
		delete(m.until, key)
		return nil
	}
	return &RateLimitError{RetryAfter: h.until.Sub(now), Limit: h.limit}
}

// hold keeps refusal e of key from now.
func (m *memo) hold(key string, e *RateLimitError, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.until == nil {
		m.until = map[string]held{}
	}
	if _, ok := m.until[key]; !ok && len(m.until) >= memoMaxKeys {
		for k, h := range m.until {
			if !now.Before(h.until) {
				delete(m.until, k)
			}
		}
		for k := range m.until {
			if len(m.until) < memoMaxKeys {
				break
			}
			delete(m.until, k) // forgetting a refusal only costs a read of the store
		}
	}
	m.until[key] = held{until: now.Add(e.RetryAfter), limit: e.Limit}
}

// release forgets key's refusal (a successful sign-in).
func (m *memo) release(key string) {
	m.mu.Lock()
	delete(m.until, key)
	m.mu.Unlock()
}
