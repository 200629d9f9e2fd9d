package access

import (
	"context"
	"errors"
	"time"
)

func (s *Service) dummyHash() string {
	s.dummyOnce.Do(func() {
		s.dummy, _ = HashPassword(GeneratePassword(), s.cfg.Hash)
	})
	return s.dummy
}

// Login checks email and password and starts a session. The sign-in limiter (limit.go)
// refuses an attempt with a *RateLimitError: before checking the password when the account is
// limited from this address or everywhere, and, from an address limited for naming accounts
// that do not exist, for such an account or a wrong password. Otherwise a failure is
// ErrBadCredentials (also for an unknown email, which takes as long) or ErrDisabled. Every
// password checked is written to login_attempts; successes, failures and the first refusal
// of a held refusal are written to the audit log.
func (s *Service) Login(ctx context.Context, email, password string, cl Client) (Session, error) {
	email = NormalizeEmail(email)
	if len(email) > 254 {
		email = email[:254]
	}
	now := s.now()
	key := pairKey(email, cl.IP)
	if e := s.memo.refused(key, now); e != nil {
		return Session{}, e // audited when it was first refused
	}
	st, err := s.attemptStats(ctx, email, cl.IP, now)
	if err != nil {
		return Session{}, err // fail closed: an attempt that cannot be limited is not checked
	}
	v := s.limits.decide(st, now, cl.IP)
	if v.refuse != nil {
		s.memo.hold(key, v.refuse, now)
		s.auditLogged(ctx, email, ActionLoginFailure, email, map[string]any{
			"reason": "rate limited", "limit": v.refuse.Limit, "retry_after_s": v.refuse.Seconds()})
		return Session{}, v.refuse
	}
	u, uerr := s.readUser(ctx, email)
	if uerr != nil && !errors.Is(uerr, ErrUnknownUser) {
		return Session{}, uerr
	}
	known := uerr == nil
	if !known && v.address {
		// Rule 3: no hash for an unknown account from this address; as long as one, so the
		// refusal does not tell that the account does not exist.
		s.waitAsVerify(ctx)
		return Session{}, &RateLimitError{RetryAfter: v.addressWait, Limit: LimitAddress}
	}
	hash := u.passwordHash
	if !known {
		hash = s.dummyHash()
	}
	start := time.Now()
	ok, herr := VerifyPassword(password, hash)
	s.verifyCost.Store(int64(time.Since(start)))
	if herr != nil {
		s.log.ErrorContext(ctx, "access: unreadable password hash", "email", email, "error", herr)
	}
	reason := ""
	switch {
	case !known:
		reason = "unknown user"
	case !ok:
		reason = "wrong password"
	case u.Disabled:
		reason = "disabled"
	}
	if reason != "" {
		if err := s.recordAttempt(ctx, email, cl.IP, false, known, now); err != nil {
			return Session{}, err // an uncounted failure would be a free guess
		}
		detail := map[string]any{"reason": reason}
		if v.address && reason != "disabled" {
			detail["limit"] = LimitAddress
		}
		s.auditLogged(ctx, email, ActionLoginFailure, email, detail)
		switch {
		case reason == "disabled":
			return Session{}, ErrDisabled
		case v.address:
			return Session{}, &RateLimitError{RetryAfter: v.addressWait, Limit: LimitAddress}
		}
		return Session{}, ErrBadCredentials
	}
	if err := s.recordAttempt(ctx, email, cl.IP, true, true, now); err != nil {
		s.log.WarnContext(ctx, "access: the sign-in stays counted as failures until it is recorded", "email", email, "error", err)
	}
	s.memo.release(key)
	if NeedsRehash(u.passwordHash, s.cfg.Hash) {
		if h, err := HashPassword(password, s.cfg.Hash); err == nil {
			prev := u.UpdatedAt
			u.passwordHash = h
			if err := s.write(ctx, u, prev); err != nil {
				s.log.WarnContext(ctx, "access: rehash password", "email", email, "error", err)
			}
		}
	}
	return s.StartSession(ctx, u, MethodPassword, cl)
}

// waitAsVerify waits as long as the last password check took (one dummy check the first
// time), or until ctx ends.
func (s *Service) waitAsVerify(ctx context.Context) {
	d := time.Duration(s.verifyCost.Load())
	if d <= 0 {
		start := time.Now()
		_, _ = VerifyPassword(GeneratePassword(), s.dummyHash())
		s.verifyCost.Store(int64(time.Since(start)))
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
