package access

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/converge-dev/converge/warehouse/whtest"
)

func TestMain(m *testing.M) { os.Exit(whtest.Main(m)) }

// clock is an injectable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestService(t *testing.T, cfg Config) (*Service, *clock) {
	t.Helper()
	// The real time: the sessions table drops rows 30 days after their last use.
	clk := &clock{t: time.Now().UTC().Truncate(time.Hour)}
	cfg.Now = clk.Now
	if cfg.Hash == (HashParams{}) {
		cfg.Hash = testHash
	}
	svc, err := New(whtest.Store(t), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return svc, clk
}

func addUser(t *testing.T, svc *Service, email string, role Role) {
	t.Helper()
	if _, err := svc.AddUser(context.Background(), "test", User{Email: email, Role: role}, "password-"+email); err != nil {
		t.Fatal(err)
	}
}

func TestUsers(t *testing.T) {
	svc, clk := newTestService(t, Config{})
	ctx := context.Background()
	u, err := svc.AddUser(ctx, "cli", User{Email: " Ann@Example.com ", Name: "Ann", Role: RoleFinance}, "a long password")
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "ann@example.com" || u.Role != RoleFinance || u.Disabled || u.Name != "Ann" {
		t.Fatalf("added user %+v", u)
	}
	if _, err := svc.AddUser(ctx, "cli", User{Email: "ann@example.com", Role: RoleAdmin}, "a long password"); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Fatalf("a second ann: %v", err)
	}
	if _, err := svc.AddUser(ctx, "cli", User{Email: "bob@example.com", Role: RoleAdmin}, "short"); err == nil {
		t.Fatal("a short password is accepted")
	}
	if _, err := svc.AddUser(ctx, "cli", User{Email: "bob@example.com", Role: Public}, "a long password"); err == nil {
		t.Fatal("a user without a role is accepted")
	}
	addUser(t, svc, "root@example.com", RoleAdmin)
	// Changes within one millisecond still replace each other in order.
	if err := svc.SetRole(ctx, "root@example.com", "ann@example.com", RoleAnalyst); err != nil {
		t.Fatal(err)
	}
	if err := svc.SetRole(ctx, "root@example.com", "ann@example.com", RoleExecutive); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	if err := svc.SetDisabled(ctx, "root@example.com", "ann@example.com", true); err != nil {
		t.Fatal(err)
	}
	users, err := svc.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 || users[0].Email != "ann@example.com" || users[0].Role != RoleExecutive || !users[0].Disabled || users[1].Role != RoleAdmin {
		t.Fatalf("users %+v", users)
	}
	// The last enabled admin stays one.
	if err := svc.SetRole(ctx, "x", "root@example.com", RoleAnalyst); err == nil || !strings.Contains(err.Error(), "last enabled admin") {
		t.Fatalf("demoting the last admin: %v", err)
	}
	if err := svc.SetDisabled(ctx, "x", "root@example.com", true); err == nil || !strings.Contains(err.Error(), "last enabled admin") {
		t.Fatalf("disabling the last admin: %v", err)
	}
	if err := svc.SetRole(ctx, "x", "nobody@example.com", RoleAnalyst); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("role of an unknown user: %v", err)
	}
	// Password change: the old one no longer works.
	if err := svc.SetPassword(ctx, "cli", "root@example.com", "the new password"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Login(ctx, "root@example.com", "password-root@example.com", Client{}); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("old password: %v", err)
	}
	if _, err := svc.Login(ctx, "ROOT@example.com", "the new password", Client{}); err != nil {
		t.Fatalf("new password: %v", err)
	}
	n, err := svc.CountUsers(ctx)
	if err != nil || n != 2 {
		t.Fatalf("CountUsers = %d, %v", n, err)
	}
	// Audit rows for every change.
	entries, total, err := svc.AuditLog(ctx, AuditQuery{Target: "ann@"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Actor+" "+e.Action+" "+e.Detail)
	}
	slices.Sort(got) // the two role changes have one time
	want := []string{
		`cli user.create {"name":"Ann","role":"finance"}`,
		`root@example.com user.disable `,
		`root@example.com user.role {"from":"analyst","to":"executive"}`,
		`root@example.com user.role {"from":"finance","to":"analyst"}`,
	}
	if total != 4 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit of ann (%d):\n%s\nwant:\n%s", total, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestBootstrap(t *testing.T) {
	svc, _ := newTestService(t, Config{})
	ctx := context.Background()
	pw, err := svc.Bootstrap(ctx, "admin@localhost")
	if err != nil || len(pw) != 24 {
		t.Fatalf("Bootstrap = %q, %v", pw, err)
	}
	s, err := svc.Login(ctx, "admin@localhost", pw, Client{})
	if err != nil || s.User.Role != RoleAdmin {
		t.Fatalf("login with the first-run password: %+v %v", s, err)
	}
	again, err := svc.Bootstrap(ctx, "admin@localhost")
	if err != nil || again != "" {
		t.Fatalf("second Bootstrap = %q, %v; want nothing created", again, err)
	}
	pw2, _ := newBootstrap(t)
	if pw2 == pw {
		t.Fatal("two first-run passwords are equal")
	}
}

func newBootstrap(t *testing.T) (string, error) {
	svc, _ := newTestService(t, Config{})
	return svc.Bootstrap(context.Background(), "admin@localhost")
}

func TestSessionExpiry(t *testing.T) {
	svc, clk := newTestService(t, Config{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 2 * time.Hour, CacheTTL: time.Minute})
	ctx := context.Background()
	addUser(t, svc, "ann@example.com", RoleExecutive)
	login := func() Session {
		t.Helper()
		s, err := svc.Login(ctx, "ann@example.com", "password-ann@example.com", Client{IP: "192.0.2.1", UserAgent: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// Idle: active every 29 min it lives; 30 min without a request ends it.
	s := login()
	for range 3 {
		clk.Add(29 * time.Minute)
		if _, err := svc.Session(ctx, s.ID); err != nil {
			t.Fatalf("active session after 29 min: %v", err)
		}
	}
	clk.Add(30 * time.Minute)
	if _, err := svc.Session(ctx, s.ID); !errors.Is(err, ErrExpired) {
		t.Fatalf("after 30 idle minutes: %v, want ErrExpired", err)
	}

	// Absolute: however active, it ends 2 h after sign-in.
	s = login()
	for i := range 5 {
		clk.Add(20 * time.Minute)
		if _, err := svc.Session(ctx, s.ID); err != nil {
			t.Fatalf("active session, %d min: %v", 20*(i+1), err)
		}
	}
	clk.Add(20 * time.Minute) // 2 h
	if _, err := svc.Session(ctx, s.ID); !errors.Is(err, ErrExpired) {
		t.Fatalf("after 2 h: %v, want ErrExpired", err)
	}

	// The store, not only the cache, knows the activity: a fresh service (another process)
	// sees the session alive 29 min after its last recorded request.
	s = login()
	clk.Add(10 * time.Minute)
	if _, err := svc.Session(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	other, err := New(svc.st, Config{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 2 * time.Hour, Now: clk.Now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(29 * time.Minute)
	if got, err := other.Session(ctx, s.ID); err != nil || got.User.Email != "ann@example.com" || got.Method != MethodPassword {
		t.Fatalf("session read from the store: %+v %v", got, err)
	}

	// Unknown ids, sign-out, and a disabled user.
	if _, err := svc.Session(ctx, "nope"); !errors.Is(err, ErrNoSession) {
		t.Fatalf("unknown id: %v", err)
	}
	s = login()
	if err := svc.Logout(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Session(ctx, s.ID); !errors.Is(err, ErrNoSession) {
		t.Fatalf("after logout: %v", err)
	}
	if _, err := other.Session(ctx, s.ID); !errors.Is(err, ErrNoSession) {
		t.Fatalf("after logout, another process: %v", err)
	}
	s = login()
	addUser(t, svc, "root@example.com", RoleAdmin)
	if err := svc.SetDisabled(ctx, "root@example.com", "ann@example.com", true); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Session(ctx, s.ID); !errors.Is(err, ErrNoSession) {
		t.Fatalf("session of a disabled user: %v", err)
	}
	if _, err := svc.Login(ctx, "ann@example.com", "password-ann@example.com", Client{}); !errors.Is(err, ErrDisabled) {
		t.Fatalf("login of a disabled user: %v", err)
	}
}

func TestCSRFToken(t *testing.T) {
	a, b := Session{ID: "session-a"}, Session{ID: "session-b"}
	if a.CSRFToken() == "" || a.CSRFToken() != (Session{ID: "session-a"}).CSRFToken() {
		t.Fatal("the token is not stable for a session")
	}
	if a.CSRFToken() == b.CSRFToken() {
		t.Fatal("two sessions share a token")
	}
	if strings.Contains(a.CSRFToken(), "session-a") {
		t.Fatal("the token reveals the session id")
	}
	if !a.CheckCSRF(a.CSRFToken()) || a.CheckCSRF(b.CSRFToken()) || a.CheckCSRF("") {
		t.Fatal("CheckCSRF")
	}
}

func TestAuditFromContext(t *testing.T) {
	svc, clk := newTestService(t, Config{})
	t0 := clk.Now()
	ctx := context.Background()
	if err := Audit(ctx, "", "export", "x", nil); !errors.Is(err, ErrNoAuditLog) {
		t.Fatalf("Audit without a service: %v", err)
	}
	ctx = WithRequest(WithUser(ctx, User{Email: "ann@example.com", Role: RoleFinance}), svc, "192.0.2.7")
	if err := Audit(ctx, "", "export", "revenue_gross", map[string]any{"format": "csv", "rows": 12}); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	if err := Audit(ctx, "ops@example.com", "sql.run", "", nil); err != nil {
		t.Fatal(err)
	}
	entries, total, err := svc.AuditLog(ctx, AuditQuery{})
	if err != nil || total != 2 || len(entries) != 2 {
		t.Fatalf("AuditLog: %d %d %v", total, len(entries), err)
	}
	e := entries[1]
	if e.Actor != "ann@example.com" || e.Action != "export" || e.Target != "revenue_gross" || e.Detail != `{"format":"csv","rows":12}` ||
		e.IP != "192.0.2.7" || !e.At.Equal(t0) {
		t.Fatalf("entry %+v", e)
	}
	if entries[0].Actor != "ops@example.com" {
		t.Fatalf("newest first: %+v", entries)
	}
	// Filters and pages.
	for _, tc := range []struct {
		q     AuditQuery
		total int
		first string
	}{
		{AuditQuery{Action: "sql.run"}, 1, "sql.run"},
		{AuditQuery{Actor: "ANN"}, 1, "export"},
		{AuditQuery{To: t0.Add(30 * time.Minute)}, 1, "export"},
		{AuditQuery{From: t0.Add(30 * time.Minute)}, 1, "sql.run"},
		{AuditQuery{Limit: 1, Offset: 1}, 2, "export"},
		{AuditQuery{Action: "nothing"}, 0, ""},
	} {
		got, total, err := svc.AuditLog(ctx, tc.q)
		if err != nil {
			t.Fatal(err)
		}
		first := ""
		if len(got) > 0 {
			first = got[0].Action
		}
		if total != tc.total || first != tc.first {
			t.Errorf("%+v: total %d first %q, want %d %q", tc.q, total, first, tc.total, tc.first)
		}
	}
	actions, err := svc.AuditActions(ctx)
	if err != nil || strings.Join(actions, ",") != "export,sql.run" {
		t.Fatalf("AuditActions = %v, %v", actions, err)
	}
}
