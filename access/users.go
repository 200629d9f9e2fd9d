package access

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	convsql "github.com/converge-dev/converge/sql"
)

// query returns the named query of sql/access (embedded; a missing file is a build defect).
func query(name string) string {
	q, ok := queries()[name]
	if !ok {
		panic("access: no query sql/access/" + name + ".sql")
	}
	return q
}

var queries = sync.OnceValue(func() map[string]string {
	fsys := convsql.Access()
	names, _ := fs.Glob(fsys, "*.sql")
	out := map[string]string{}
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			panic(err)
		}
		out[strings.TrimSuffix(n, ".sql")] = string(b)
	}
	return out
})

// chTime formats t for a DateTime64(3, 'UTC') parameter.
func chTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") }

// ErrUnknownUser is returned for an email no user has.
var ErrUnknownUser = errors.New("no such user")

// InvalidError refuses an input (an email, a role, a password) or a change (the last admin):
// Reason says what is wrong, for the person who asked; Field names the input ("" for a change).
type InvalidError struct {
	Field, Reason string
}

func (e *InvalidError) Error() string { return e.Reason }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// NormalizeEmail is the login form of an email: trimmed, lower case.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// ValidateEmail accepts an address of the form local@domain (no spaces, at most 254
// characters); "admin@localhost" is valid.
func ValidateEmail(e string) error {
	local, domain, ok := strings.Cut(e, "@")
	switch {
	case len(e) > 254:
		return invalid("email", "the email address is longer than 254 characters")
	case !ok || local == "" || domain == "" || strings.ContainsAny(e, " \t\r\n<>\"(),;:\\[]") || strings.Contains(domain, "@"):
		return invalid("email", "%q is not an email address", e)
	}
	return nil
}

// readUser reads one user (with its password hash) from the store.
func (s *Service) readUser(ctx context.Context, email string) (User, error) {
	var u User
	var role string
	err := s.st.App.QueryRow(ctx, query("user_get"), clickhouse.Named("email", email)).
		Scan(&u.Email, &u.Name, &role, &u.passwordHash, &u.Disabled, &u.CreatedAt, &u.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("%w %q", ErrUnknownUser, email)
	}
	if err != nil {
		return User{}, fmt.Errorf("read user %s: %w", email, err)
	}
	if u.Role, err = ParseRole(role); err != nil {
		return User{}, fmt.Errorf("user %s: %w", email, err)
	}
	return u, nil
}

type cachedUser struct {
	u  User
	at time.Time
}

// user returns the user of email, from the cache when it is younger than CacheTTL.
func (s *Service) user(ctx context.Context, email string) (User, error) {
	now := s.now()
	s.mu.Lock()
	c, ok := s.users[email]
	s.mu.Unlock()
	if ok && now.Sub(c.at) < s.cfg.CacheTTL {
		return c.u, nil
	}
	u, err := s.readUser(ctx, email)
	if err != nil {
		return User{}, err
	}
	s.mu.Lock()
	s.users[email] = cachedUser{u: u, at: now}
	s.mu.Unlock()
	return u, nil
}

// User returns the user of email (ErrUnknownUser when there is none).
func (s *Service) User(ctx context.Context, email string) (User, error) {
	return s.readUser(ctx, NormalizeEmail(email))
}

// Users lists every user, disabled ones included, by email.
func (s *Service) Users(ctx context.Context) ([]User, error) {
	rows, err := s.st.App.Query(ctx, query("users_list"))
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		var role string
		if err := rows.Scan(&u.Email, &u.Name, &role, &u.passwordHash, &u.Disabled, &u.CreatedAt, &u.UpdatedAt); err != nil {
			return nil, err
		}
		if u.Role, err = ParseRole(role); err != nil {
			return nil, fmt.Errorf("user %s: %w", u.Email, err)
		}
		u.passwordHash = ""
		out = append(out, u)
	}
	return out, rows.Err()
}

// write stores u as its newest version: its UpdatedAt becomes now, and always later than the
// version it replaces, so the ReplacingMergeTree keeps this one.
func (s *Service) write(ctx context.Context, u User, prev time.Time) error {
	u.UpdatedAt = s.now()
	if !u.UpdatedAt.After(prev) {
		u.UpdatedAt = prev.Add(time.Millisecond)
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = u.UpdatedAt
	}
	err := s.st.App.Exec(ctx, query("user_put"),
		clickhouse.Named("email", u.Email), clickhouse.Named("name", u.Name), clickhouse.Named("role", u.Role.String()),
		clickhouse.Named("hash", u.passwordHash), clickhouse.Named("created", chTime(u.CreatedAt)),
		clickhouse.Named("disabled", u.Disabled), clickhouse.Named("updated", chTime(u.UpdatedAt)))
	if err != nil {
		return fmt.Errorf("write user %s: %w", u.Email, err)
	}
	s.mu.Lock()
	delete(s.users, u.Email)
	s.mu.Unlock()
	return nil
}

// AddUser creates a user with password; actor is who does it (for the audit log). An email
// that exists already, disabled or not, is refused.
func (s *Service) AddUser(ctx context.Context, actor string, u User, password string) (User, error) {
	u.Email = NormalizeEmail(u.Email)
	u.Name = strings.TrimSpace(u.Name)
	if err := ValidateEmail(u.Email); err != nil {
		return User{}, err
	}
	if u.Role == Public || int(u.Role) >= len(roleNames) {
		return User{}, invalid("role", "role %q is not one of %s", u.Role, strings.Join(RoleNames(), ", "))
	}
	if err := ValidatePassword(password); err != nil {
		return User{}, err
	}
	if _, err := s.readUser(ctx, u.Email); err == nil {
		return User{}, invalid("email", "a user %s exists already", u.Email)
	} else if !errors.Is(err, ErrUnknownUser) {
		return User{}, err
	}
	hash, err := HashPassword(password, s.cfg.Hash)
	if err != nil {
		return User{}, err
	}
	u.passwordHash, u.Disabled, u.CreatedAt = hash, false, time.Time{}
	if err := s.write(ctx, u, time.Time{}); err != nil {
		return User{}, err
	}
	s.auditLogged(ctx, actor, ActionUserCreate, u.Email, map[string]string{"role": u.Role.String(), "name": u.Name})
	return s.readUser(ctx, u.Email)
}

// SetPassword replaces a user's password and ends the user's sessions.
func (s *Service) SetPassword(ctx context.Context, actor, email, password string) error {
	if err := ValidatePassword(password); err != nil {
		return err
	}
	u, err := s.readUser(ctx, NormalizeEmail(email))
	if err != nil {
		return err
	}
	prev := u.UpdatedAt
	if u.passwordHash, err = HashPassword(password, s.cfg.Hash); err != nil {
		return err
	}
	if err := s.write(ctx, u, prev); err != nil {
		return err
	}
	s.auditLogged(ctx, actor, ActionUserPassword, u.Email, nil)
	return s.RevokeSessions(ctx, u.Email)
}

// SetRole changes a user's role. The last enabled admin keeps the admin role.
func (s *Service) SetRole(ctx context.Context, actor, email string, role Role) error {
	if role == Public || int(role) >= len(roleNames) {
		return invalid("role", "role %q is not one of %s", role, strings.Join(RoleNames(), ", "))
	}
	u, err := s.readUser(ctx, NormalizeEmail(email))
	if err != nil {
		return err
	}
	if u.Role == role {
		return nil
	}
	if u.Role == RoleAdmin && !u.Disabled {
		if err := s.keepAnAdmin(ctx, u.Email, "take the admin role from"); err != nil {
			return err
		}
	}
	from := u.Role
	u.Role = role
	if err := s.write(ctx, u, u.UpdatedAt); err != nil {
		return err
	}
	s.auditLogged(ctx, actor, ActionUserRole, u.Email, map[string]string{"from": from.String(), "to": role.String()})
	return nil
}

// SetDisabled disables (and ends the sessions of) or enables a user. The last enabled admin
// cannot be disabled.
func (s *Service) SetDisabled(ctx context.Context, actor, email string, disabled bool) error {
	u, err := s.readUser(ctx, NormalizeEmail(email))
	if err != nil {
		return err
	}
	if u.Disabled == disabled {
		return nil
	}
	if disabled && u.Role == RoleAdmin {
		if err := s.keepAnAdmin(ctx, u.Email, "disable"); err != nil {
			return err
		}
	}
	u.Disabled = disabled
	if err := s.write(ctx, u, u.UpdatedAt); err != nil {
		return err
	}
	if !disabled {
		s.auditLogged(ctx, actor, ActionUserEnable, u.Email, nil)
		return nil
	}
	s.auditLogged(ctx, actor, ActionUserDisable, u.Email, nil)
	return s.RevokeSessions(ctx, u.Email)
}

// keepAnAdmin refuses a change that would leave no enabled admin besides email.
func (s *Service) keepAnAdmin(ctx context.Context, email, what string) error {
	users, err := s.Users(ctx)
	if err != nil {
		return err
	}
	for _, o := range users {
		if o.Email != email && o.Role == RoleAdmin && !o.Disabled {
			return nil
		}
	}
	return invalid("", "cannot %s %s: it is the last enabled admin", what, email)
}

// CountUsers is the number of users, disabled ones included.
func (s *Service) CountUsers(ctx context.Context) (int, error) {
	var n uint64
	if err := s.st.App.QueryRow(ctx, query("users_count")).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return int(n), nil
}

// Bootstrap creates the first user, an admin with email and a random password, when there are
// no users at all; it returns that password (to be shown once), or "" when users exist.
func (s *Service) Bootstrap(ctx context.Context, email string) (string, error) {
	n, err := s.CountUsers(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	pw := GeneratePassword()
	if _, err := s.AddUser(ctx, "system", User{Email: email, Name: "Administrator", Role: RoleAdmin}, pw); err != nil {
		return "", fmt.Errorf("first-run admin %s: %w", email, err)
	}
	return pw, nil
}
