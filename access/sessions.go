package access

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Errors of Login and Session.
var (
	// ErrBadCredentials: unknown email or wrong password (the message does not say which).
	ErrBadCredentials = errors.New("wrong email or password")
	// ErrDisabled: the password is right but the account is disabled.
	ErrDisabled = errors.New("account disabled")
	// ErrNoSession: no session has this id, or it was ended (signed out, user disabled).
	ErrNoSession = errors.New("no such session")
	// ErrExpired: the session passed its idle or absolute timeout.
	ErrExpired = errors.New("the session expired")
)

// Session methods: how a session was started.
const (
	MethodPassword = "password"
	MethodProxy    = "proxy" // a trusted reverse proxy's user header
)

// Session is a signed-in user's session. ID is the secret the client presents (the cookie's
// value); the store keeps only its SHA-256.
type Session struct {
	ID        string
	User      User
	Method    string
	CreatedAt time.Time
	LastSeen  time.Time
}

// CSRFToken is the session's token for forms and unsafe requests: an HMAC of a fixed label
// keyed with the session id, so it is stable for the session, differs between sessions, and
// cannot be computed without the id (which scripts cannot read: the cookie is HttpOnly).
func (s Session) CSRFToken() string { return csrfToken(s.ID) }

func csrfToken(id string) string {
	m := hmac.New(sha256.New, []byte(id))
	m.Write([]byte("converge csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckCSRF reports, in constant time, whether token is the session's CSRF token.
func (s Session) CheckCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.CSRFToken())) == 1
}

// Client describes who signs in, for the session row and the audit log.
type Client struct {
	IP, UserAgent string
}

type cachedSession struct {
	email, method     string
	created, lastSeen time.Time
	written           time.Time // last_seen as last written to the store
	revoked           bool
	fetched           time.Time
}

// touchEvery is how often a session's activity is written to the store (it is kept in memory
// in between): the idle timeout seen by another process is this much coarser.
const touchEvery = time.Minute

func hashID(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

// StartSession starts a session for u (signed in by method) and writes it to the audit log as
// a login.
func (s *Service) StartSession(ctx context.Context, u User, method string, cl Client) (Session, error) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	id := base64.RawURLEncoding.EncodeToString(b[:])
	now := s.now()
	ua := cl.UserAgent
	if len(ua) > 256 {
		ua = ua[:256]
	}
	err := s.st.App.Exec(ctx, query("session_put"),
		clickhouse.Named("id_hash", hashID(id)), clickhouse.Named("email", u.Email), clickhouse.Named("method", method),
		clickhouse.Named("ip", cl.IP), clickhouse.Named("user_agent", ua), clickhouse.Named("created", chTime(now)),
		clickhouse.Named("last_seen", chTime(now)), clickhouse.Named("revoked", nil), clickhouse.Named("updated", chTime(now)))
	if err != nil {
		return Session{}, fmt.Errorf("start session: %w", err)
	}
	s.mu.Lock()
	s.sessions[hashID(id)] = &cachedSession{email: u.Email, method: method, created: now, lastSeen: now, written: now, fetched: now}
	s.pruneSessions(now)
	s.mu.Unlock()
	s.auditLogged(ctx, u.Email, ActionLogin, u.Email, map[string]string{"method": method})
	u.passwordHash = ""
	return Session{ID: id, User: u, Method: method, CreatedAt: now, LastSeen: now}, nil
}

// pruneSessions drops expired sessions from the cache when it has grown. s.mu is held.
func (s *Service) pruneSessions(now time.Time) {
	if len(s.sessions) < 1024 {
		return
	}
	for h, c := range s.sessions {
		if c.revoked || s.expired(c, now) {
			delete(s.sessions, h)
		}
	}
}

func (s *Service) expired(c *cachedSession, now time.Time) bool {
	return now.Sub(c.created) >= s.cfg.AbsoluteTimeout || now.Sub(c.lastSeen) >= s.cfg.IdleTimeout
}

// Session returns the live session of id and records the request as its activity. An unknown
// or ended session is ErrNoSession; one past its idle or absolute timeout is ErrExpired; a
// session whose user is gone or disabled is ErrNoSession.
func (s *Service) Session(ctx context.Context, id string) (Session, error) {
	if id == "" {
		return Session{}, ErrNoSession
	}
	h := hashID(id)
	now := s.now()
	s.mu.Lock()
	c, ok := s.sessions[h]
	var snap cachedSession
	if ok {
		snap = *c
	}
	s.mu.Unlock()
	if !ok || now.Sub(snap.fetched) >= s.cfg.CacheTTL {
		fresh, err := s.readSession(ctx, h)
		if err != nil {
			return Session{}, err
		}
		fresh.fetched = now
		if ok && snap.lastSeen.After(fresh.lastSeen) {
			fresh.lastSeen = snap.lastSeen // activity not written yet
		}
		fresh.revoked = fresh.revoked || snap.revoked
		snap = fresh
	}
	if snap.revoked {
		s.forget(h)
		return Session{}, ErrNoSession
	}
	if s.expired(&snap, now) {
		s.forget(h)
		return Session{}, ErrExpired
	}
	u, err := s.user(ctx, snap.email)
	if errors.Is(err, ErrUnknownUser) || (err == nil && u.Disabled) {
		s.forget(h)
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, err
	}
	snap.lastSeen = now
	write := now.Sub(snap.written) >= touchEvery
	if write {
		snap.written = now
	}
	s.mu.Lock()
	s.sessions[h] = &snap
	s.mu.Unlock()
	if write {
		if err := s.st.App.Exec(ctx, query("session_touch"), clickhouse.Named("id_hash", h),
			clickhouse.Named("last_seen", chTime(now)), clickhouse.Named("updated", chTime(now))); err != nil {
			s.log.WarnContext(ctx, "access: record session activity", "error", err)
		}
	}
	u.passwordHash = ""
	return Session{ID: id, User: u, Method: snap.method, CreatedAt: snap.created, LastSeen: now}, nil
}

func (s *Service) readSession(ctx context.Context, h string) (cachedSession, error) {
	var c cachedSession
	var revoked *time.Time
	err := s.st.App.QueryRow(ctx, query("session_get"), clickhouse.Named("id_hash", h)).
		Scan(&c.email, &c.method, &c.created, &c.lastSeen, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return c, ErrNoSession
	}
	if err != nil {
		return c, fmt.Errorf("read session: %w", err)
	}
	c.revoked = revoked != nil
	c.written = c.lastSeen
	return c, nil
}

func (s *Service) forget(h string) {
	s.mu.Lock()
	delete(s.sessions, h)
	s.mu.Unlock()
}

// Logout ends the session of id and writes it to the audit log.
func (s *Service) Logout(ctx context.Context, id string) error {
	h := hashID(id)
	s.mu.Lock()
	c, ok := s.sessions[h]
	email := ""
	if ok {
		email = c.email
	}
	s.mu.Unlock()
	if !ok {
		if c, err := s.readSession(ctx, h); err == nil {
			email = c.email
		}
	}
	s.forget(h)
	if err := s.st.App.Exec(ctx, query("session_revoke"), clickhouse.Named("id_hash", h), clickhouse.Named("at", chTime(s.now()))); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	if email != "" {
		s.auditLogged(ctx, email, ActionLogout, email, nil)
	}
	return nil
}

// RevokeSessions ends every session of email (a disabled user, a changed password).
func (s *Service) RevokeSessions(ctx context.Context, email string) error {
	s.mu.Lock()
	for h, c := range s.sessions {
		if c.email == email {
			delete(s.sessions, h)
		}
	}
	s.mu.Unlock()
	if err := s.st.App.Exec(ctx, query("sessions_revoke_user"), clickhouse.Named("email", email), clickhouse.Named("at", chTime(s.now()))); err != nil {
		return fmt.Errorf("end sessions of %s: %w", email, err)
	}
	return nil
}
