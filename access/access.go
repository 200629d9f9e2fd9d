// Package access is converge's access control: users with roles, passwords hashed with argon2id,
// server-side sessions with idle and absolute expiry, per-session CSRF tokens, sign-in limiting
// (limit.go), and the audit log.
//
// Its state lives in the warehouse (tables users, sessions, login_attempts and audit_log in the
// app database, through Store.App, out of the console's reach; its queries are sql/access/*.sql),
// so it imports warehouse and sql. This adds one package to the layering of
// design.md: server → access → warehouse, and cmd/converge → access. server and cmd/converge
// import it; it imports neither.
//
// # Roles
//
// Roles are ordered and each includes the ones before it:
//
//	executive  views the dashboards
//	finance    + exports (CSV, the JSON API)
//	analyst    + the SQL console and the metric catalog
//	admin      + users, tokens, settings, the audit log
//
// A metric definition may further restrict who sees it ("-- roles: finance, admin"): only the
// roles listed, and admin always, see it (see Role.Sees).
//
// # Time
//
// Every time is UTC. Config.Now is the clock (tests inject one); the idle timeout counts from
// a session's last request, the absolute timeout from its sign-in.
package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/converge-dev/converge/warehouse"
)

// Role is what a user may do. The zero value, Public, is no role: it marks what anyone may
// reach without signing in.
type Role uint8

// Roles, in order; each includes the ones before it.
const (
	Public        Role = iota // not a user's role: no session needed
	RoleExecutive             // views dashboards
	RoleFinance               // + exports
	RoleAnalyst               // + SQL console, metric catalog
	RoleAdmin                 // + users, tokens, settings, audit log
)

var roleNames = [...]string{"public", "executive", "finance", "analyst", "admin"}

// String is the role's name as stored and configured ("executive", …, "public").
func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return fmt.Sprintf("role(%d)", r)
}

// UserRoles are the roles a user can have, in order.
func UserRoles() []Role { return []Role{RoleExecutive, RoleFinance, RoleAnalyst, RoleAdmin} }

// RoleNames are the names of UserRoles, in order.
func RoleNames() []string {
	var out []string
	for _, r := range UserRoles() {
		out = append(out, r.String())
	}
	return out
}

// ParseRole reads a user role's name (case-insensitive); "public" is not one.
func ParseRole(s string) (Role, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for _, r := range UserRoles() {
		if r.String() == s {
			return r, nil
		}
	}
	return Public, invalid("role", "role %q is not one of %s", s, strings.Join(RoleNames(), ", "))
}

// Includes reports whether r may do what need requires: roles are ordered, and Public is
// required by nothing.
func (r Role) Includes(need Role) bool { return r >= need }

// Sees reports whether a holder of r may see something restricted to roles (role names, as in
// a metric definition's "roles" header): everyone when roles is empty, admin always, otherwise
// only the roles listed.
func (r Role) Sees(roles []string) bool {
	return len(roles) == 0 || r == RoleAdmin || slices.Contains(roles, r.String())
}

// User is a dashboard user. Email is the login, lower case.
type User struct {
	Email     string
	Name      string
	Role      Role
	Disabled  bool
	CreatedAt time.Time
	UpdatedAt time.Time

	passwordHash string
}

// Config configures a Service; zero fields take the defaults below.
type Config struct {
	// IdleTimeout ends a session this long after its last request; default 2 h.
	IdleTimeout time.Duration
	// AbsoluteTimeout ends a session this long after sign-in, however active; default 12 h, at
	// most 30 days (the sessions table keeps rows 30 days after their last use).
	AbsoluteTimeout time.Duration
	// Hash are the argon2id parameters of new password hashes; zero: DefaultHashParams.
	Hash HashParams
	// Sign-in limiting (the policy is in limit.go). LoginFailuresPerAccount are the failures
	// of one account from one address before that address waits for the account (default 5);
	// LoginFailuresAccountWide those of one account from all addresses before the account
	// waits (default 4 × LoginFailuresPerAccount); LoginFailuresPerIP those naming accounts
	// that do not exist from one address within LoginWindow before the address is limited
	// (default 20). A wait is LoginBackoff (default 1 s) after the latest failure, doubled
	// with each further failure, at most LoginWindow (default 15 min).
	LoginFailuresPerAccount  int
	LoginFailuresAccountWide int
	LoginFailuresPerIP       int
	LoginWindow              time.Duration
	LoginBackoff             time.Duration
	// CacheTTL bounds how long a session or user read from the store is trusted before it is
	// read again: a change made by another process (converge user disable) takes effect within
	// it. Default 30 s.
	CacheTTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Defaults of Config.
const (
	DefaultIdleTimeout     = 2 * time.Hour
	DefaultAbsoluteTimeout = 12 * time.Hour
	MaxAbsoluteTimeout     = 30 * 24 * time.Hour
	DefaultAccountFailures = 5
	DefaultIPFailures      = 20
	DefaultLoginWindow     = 15 * time.Minute
	DefaultLoginBackoff    = time.Second
	DefaultCacheTTL        = 30 * time.Second
)

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.IdleTimeout < 0 || c.AbsoluteTimeout < 0 || c.LoginWindow < 0 || c.LoginBackoff < 0:
		return errors.New("access: timeouts must not be negative")
	case c.AbsoluteTimeout > MaxAbsoluteTimeout:
		return fmt.Errorf("access: absolute session timeout %s is longer than %s", c.AbsoluteTimeout, MaxAbsoluteTimeout)
	case c.IdleTimeout > 0 && c.AbsoluteTimeout > 0 && c.IdleTimeout > c.AbsoluteTimeout:
		return fmt.Errorf("access: idle timeout %s is longer than the absolute timeout %s", c.IdleTimeout, c.AbsoluteTimeout)
	case c.LoginFailuresPerAccount < 0 || c.LoginFailuresAccountWide < 0 || c.LoginFailuresPerIP < 0:
		return errors.New("access: login failure limits must not be negative")
	case c.LoginWindow > 0 && c.LoginWindow > failureMemory:
		return fmt.Errorf("access: login window %s is longer than the %s failures are kept", c.LoginWindow, failureMemory)
	case c.LoginBackoff > 0 && c.LoginWindow > 0 && c.LoginBackoff > c.LoginWindow:
		return fmt.Errorf("access: login backoff %s is longer than the login window %s", c.LoginBackoff, c.LoginWindow)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.AbsoluteTimeout == 0 {
		c.AbsoluteTimeout = max(DefaultAbsoluteTimeout, c.IdleTimeout)
	}
	if c.Hash == (HashParams{}) {
		c.Hash = DefaultHashParams
	}
	if c.LoginFailuresPerAccount == 0 {
		c.LoginFailuresPerAccount = DefaultAccountFailures
	}
	if c.LoginFailuresAccountWide == 0 {
		c.LoginFailuresAccountWide = 4 * c.LoginFailuresPerAccount
	}
	if c.LoginFailuresPerIP == 0 {
		c.LoginFailuresPerIP = DefaultIPFailures
	}
	if c.LoginWindow == 0 {
		c.LoginWindow = DefaultLoginWindow
	}
	if c.LoginBackoff == 0 {
		c.LoginBackoff = min(DefaultLoginBackoff, c.LoginWindow)
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = DefaultCacheTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Service keeps users, sessions and the audit log in a warehouse. It is safe for concurrent use.
type Service struct {
	st  *warehouse.Store
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	sessions map[string]*cachedSession // by id hash
	users    map[string]cachedUser     // by email

	limits limits
	memo   memo // rule 1's refusals (limit.go)

	dummyOnce  sync.Once
	dummy      string       // a hash verified for unknown accounts, so they take as long as known ones
	verifyCost atomic.Int64 // how long the last password check took, ns (limit.go, rule 3)
}

// New serves access control from st (migrated). It returns an error for an invalid cfg.
func New(st *warehouse.Store, cfg Config, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	return &Service{
		st: st, cfg: cfg, log: log,
		sessions: map[string]*cachedSession{},
		users:    map[string]cachedUser{},
		limits: limits{perAccount: cfg.LoginFailuresPerAccount, accountWide: cfg.LoginFailuresAccountWide,
			perIP: cfg.LoginFailuresPerIP, window: cfg.LoginWindow, backoff: cfg.LoginBackoff},
	}, nil
}

// Config is the configuration in force, defaults applied.
func (s *Service) Config() Config { return s.cfg }

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

type ctxKey int

const (
	userKey ctxKey = iota
	requestKey
)

// WithUser returns ctx carrying u as the acting user. The server sets it on every
// authenticated request; in-process callers (the server's warm-up, tests) may set it to make
// a request as u.
func WithUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, userKey, u)
}

// UserFrom returns the acting user of ctx.
func UserFrom(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(userKey).(User)
	return u, ok
}

type requestInfo struct {
	svc *Service
	ip  string
}

// WithRequest returns ctx carrying the service that Audit writes to and the client address
// recorded with each entry. The server sets it on every request.
func WithRequest(ctx context.Context, s *Service, clientIP string) context.Context {
	return context.WithValue(ctx, requestKey, requestInfo{svc: s, ip: clientIP})
}

// ClientIP is the client address WithRequest put on ctx ("" when none).
func ClientIP(ctx context.Context) string {
	ri, _ := ctx.Value(requestKey).(requestInfo)
	return ri.ip
}

// ErrNoAuditLog is returned by Audit for a context without a Service (see WithRequest).
var ErrNoAuditLog = errors.New("access: no audit log on this context")

// Audit records that actor did action on target, with detail (marshalled as JSON; nil for
// none), in the audit log of the Service on ctx, with the client address on ctx. An empty actor
// is ctx's user, or "system" without one. Handlers call it for what must leave a trace:
//
//	access.Audit(c.Request.Context(), "", "export", "revenue_gross", map[string]any{"format": "csv", "rows": n})
func Audit(ctx context.Context, actor, action, target string, detail any) error {
	ri, _ := ctx.Value(requestKey).(requestInfo)
	if ri.svc == nil {
		return ErrNoAuditLog
	}
	return ri.svc.Audit(ctx, actor, action, target, detail)
}
