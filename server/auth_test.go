package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// testAdmin is the user the handler tests act as (asAdmin).
var testAdmin = access.User{Email: "admin@test", Role: access.RoleAdmin}

// asAdmin makes every request to s come from testAdmin, for tests of what pages show rather
// than of who may see them (those use accessServer and real sessions).
func asAdmin(s *Server) *Server {
	u := testAdmin
	s.testUser = &u
	return s
}

// fastHash keeps password hashing cheap in tests (access tests the real parameters).
var fastHash = access.HashParams{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// testClock is an injectable clock for sessions.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// accessEnv is a server with real access control over a fresh store, the fake metrics and one
// user per role (executive@test, finance@test, analyst@test, admin@test; password
// "password-<role>").
type accessEnv struct {
	srv   *Server
	svc   *access.Service
	clock *testClock
	users map[access.Role]access.User
}

func newAccessEnv(t *testing.T, cfg Config, acfg access.Config, deps Deps) *accessEnv {
	t.Helper()
	clk := &testClock{t: time.Now().UTC()}
	acfg.Now, acfg.Hash = clk.Now, fastHash
	svc, err := access.New(whtest.Store(t), acfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	deps.Access = svc
	if deps.Store == nil {
		deps.Store = okStore()
	}
	if deps.Metrics == nil {
		deps.Metrics = newFakeMetrics()
	}
	srv := New(cfg, deps)
	srv.now = func() time.Time { return time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC) }
	env := &accessEnv{srv: srv, svc: svc, clock: clk, users: map[access.Role]access.User{}}
	for _, r := range access.UserRoles() {
		u, err := svc.AddUser(context.Background(), "test", access.User{Email: r.String() + "@test", Role: r}, "password-"+r.String())
		if err != nil {
			t.Fatal(err)
		}
		env.users[r] = u
	}
	return env
}

// session starts a session of the user of role.
func (e *accessEnv) session(t *testing.T, role access.Role) access.Session {
	t.Helper()
	s, err := e.svc.StartSession(context.Background(), e.users[role], access.MethodPassword, access.Client{IP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// send serves one request with the session's cookie (nil: none); form, when not nil, is the
// urlencoded body.
func (e *accessEnv) send(t *testing.T, ctx context.Context, method, target string, sess *access.Session, form url.Values, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	var req *http.Request
	if form != nil {
		req = httptest.NewRequestWithContext(ctx, method, target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequestWithContext(ctx, method, target, nil)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if sess != nil {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: sess.ID})
	}
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	return rec
}

var paramRe = regexp.MustCompile(`[:*](\w+)`)

// concrete fills a route pattern's parameters.
func concrete(path string) string {
	return paramRe.ReplaceAllStringFunc(path, func(p string) string {
		switch p {
		case "*path":
			return "css/app.css"
		case ":email":
			return "nobody@example.com"
		}
		return "x"
	})
}

// undeclared lists the routes of the engine that were not registered with a role.
func undeclared(s *Server) []string {
	var out []string
	for _, r := range s.engine.Routes() {
		if _, ok := s.roles[r.Method+" "+r.Path]; !ok {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

// publicRoutes are the only routes reachable without signing in. A new public route is a
// decision: add it here.
var publicRoutes = []string{
	"GET /healthz", "HEAD /healthz", "GET /readyz",
	"GET /static/*path", "HEAD /static/*path",
	"GET /login", "POST /login",
	"POST /api/v1/events/:entity", // authenticated by its ingest token
}

// TestRouteRoles walks every route of the engine: each has a declared role; without a session a
// protected page redirects to /login (GET) or answers 401, an API path 401 JSON; a role below
// the route's gets 403, a role at or above it neither 401 nor 403.
func TestRouteRoles(t *testing.T) {
	env := newAccessEnv(t, Config{}, access.Config{}, Deps{})
	s := env.srv
	if u := undeclared(s); len(u) > 0 {
		t.Fatalf("routes without a declared role (register them with s.get/s.head/s.post and a role): %v", u)
	}
	var public []string
	for _, rr := range s.RouteRoles() {
		if rr.Role == access.Public {
			public = append(public, rr.Method+" "+rr.Path)
		}
	}
	sort.Strings(public)
	want := slices.Clone(publicRoutes)
	sort.Strings(want)
	if !slices.Equal(public, want) {
		t.Fatalf("public routes %v, want exactly %v", public, want)
	}
	for _, rr := range s.RouteRoles() {
		t.Run(rr.Method+" "+rr.Path, func(t *testing.T) {
			target := concrete(rr.Path)
			call := func(role access.Role) *httptest.ResponseRecorder {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if rr.Path == liveURL {
					ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond) // a stream
				}
				defer cancel()
				var sess *access.Session
				var form url.Values
				if role != access.Public {
					ss := env.session(t, role) // a fresh one: the call may end it (logout)
					sess = &ss
					if unsafeMethod(rr.Method) {
						form = url.Values{csrfField: {ss.CSRFToken()}}
					}
				}
				return env.send(t, ctx, rr.Method, target, sess, form, nil)
			}
			toLogin := func(rec *httptest.ResponseRecorder) bool { // the sign-in redirect (not logout's)
				loc := rec.Header().Get("Location")
				return rec.Code == http.StatusSeeOther && (loc == "/login" || strings.HasPrefix(loc, "/login?next=") || strings.HasPrefix(loc, "/login?expired="))
			}
			rec := call(access.Public)
			switch {
			case rr.Role == access.Public:
				if rec.Code == http.StatusUnauthorized || toLogin(rec) {
					t.Errorf("public route without a session: %d %s", rec.Code, rec.Header().Get("Location"))
				}
			case isMachine(rr.Path):
				var body apiError
				if rec.Code != http.StatusUnauthorized || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Error == "" {
					t.Errorf("API without a session: %d %q, want 401 JSON", rec.Code, rec.Body.String())
				}
			case rr.Method == http.MethodGet || rr.Method == http.MethodHead:
				if !toLogin(rec) {
					t.Errorf("page without a session: %d %q, want 303 to /login", rec.Code, rec.Header().Get("Location"))
				}
			default:
				if rec.Code != http.StatusUnauthorized {
					t.Errorf("%s without a session: %d, want 401", rr.Method, rec.Code)
				}
			}
			for _, role := range access.UserRoles() {
				rec := call(role)
				switch {
				case rr.Role == access.Public: // may refuse for its own reasons (the sign-in form's token)
					if rec.Code == http.StatusUnauthorized || toLogin(rec) {
						t.Errorf("%s on a public route: %d", role, rec.Code)
					}
				case !role.Includes(rr.Role):
					if rec.Code != http.StatusForbidden {
						t.Errorf("%s (needs %s): %d, want 403", role, rr.Role, rec.Code)
					}
				case rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden || toLogin(rec):
					t.Errorf("%s (needs %s): %d %s, want access", role, rr.Role, rec.Code, rec.Header().Get("Location"))
				}
			}
		})
	}
}

// A route registered around the helpers has no role, and the check above names it.
func TestUndeclaredRouteIsFound(t *testing.T) {
	s := New(Config{}, Deps{Store: okStore()})
	s.engine.GET("/rogue", func(*gin.Context) {})
	if u := undeclared(s); !slices.Equal(u, []string{"GET /rogue"}) {
		t.Fatalf("undeclared = %v", u)
	}
}

func TestCSRF(t *testing.T) {
	env := newAccessEnv(t, Config{}, access.Config{}, Deps{})
	ctx := context.Background()
	adm := env.session(t, access.RoleAdmin)
	other := env.session(t, access.RoleAdmin)
	add := url.Values{"email": {"new@test"}, "role": {"finance"}, "password": {"a long password"}}
	with := func(token string) url.Values {
		f := url.Values{}
		for k, v := range add {
			f[k] = v
		}
		if token != "" {
			f.Set(csrfField, token)
		}
		return f
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		header http.Header
		want   int
	}{
		{"no token", with(""), nil, http.StatusForbidden},
		{"another session's token", with(other.CSRFToken()), nil, http.StatusForbidden},
		{"garbage", with("x"), nil, http.StatusForbidden},
		{"header token", with(""), http.Header{csrfHeader: {adm.CSRFToken()}}, http.StatusOK},
	} {
		rec := env.send(t, ctx, http.MethodPost, "/admin/users", &adm, tc.form, tc.header)
		if rec.Code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, rec.Code, tc.want)
		}
		if tc.want == http.StatusForbidden && !strings.Contains(rec.Body.String(), "CSRF") {
			t.Errorf("%s: the page does not say why: %.300s", tc.name, rec.Body.String())
		}
	}
	if _, err := env.svc.User(ctx, "new@test"); err != nil {
		t.Fatalf("the request with the token did not add the user: %v", err)
	}
	// Logout is a form too.
	rec := env.send(t, ctx, http.MethodPost, "/logout", &adm, url.Values{}, nil)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("logout without token: %d", rec.Code)
	}
	if _, err := env.svc.Session(ctx, adm.ID); err != nil {
		t.Fatalf("a refused logout ended the session: %v", err)
	}
	rec = env.send(t, ctx, http.MethodPost, "/logout", &adm, url.Values{csrfField: {adm.CSRFToken()}}, nil)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/login?signed_out=1" {
		t.Fatalf("logout: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	if _, err := env.svc.Session(ctx, adm.ID); !errors.Is(err, access.ErrNoSession) {
		t.Fatalf("after logout: %v", err)
	}
	// The sign-in form: its token must match the converge_login cookie.
	rec = env.send(t, ctx, http.MethodPost, "/login", nil, url.Values{"email": {"admin@test"}, "password": {"password-admin"}, csrfField: {"forged"}}, nil)
	if rec.Code != http.StatusForbidden || hasCookie(rec, sessionCookie) {
		t.Fatalf("login without its form token: %d", rec.Code)
	}
}

func hasCookie(rec *httptest.ResponseRecorder, name string) bool {
	for _, c := range rec.Result().Cookies() {
		if c.Name == name && c.Value != "" {
			return true
		}
	}
	return false
}

func cookieOf(rec *httptest.ResponseRecorder, name string) *http.Cookie {
	for _, c := range rec.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

var csrfInputRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// signIn goes through the sign-in page as a browser would and returns the response of the POST.
func (e *accessEnv) signIn(t *testing.T, email, password, next string) *httptest.ResponseRecorder {
	t.Helper()
	page := e.send(t, context.Background(), http.MethodGet, "/login", nil, nil, nil)
	m := csrfInputRe.FindStringSubmatch(page.Body.String())
	lc := cookieOf(page, loginCookie)
	if page.Code != http.StatusOK || m == nil || lc == nil || lc.Value != m[1] {
		t.Fatalf("login page: %d, form token %v, cookie %v", page.Code, m, lc)
	}
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{
		"email": {email}, "password": {password}, "next": {next}, csrfField: {m[1]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(lc)
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	return rec
}

func TestLoginFlow(t *testing.T) {
	env := newAccessEnv(t, Config{Addr: "127.0.0.1:8080"}, access.Config{}, Deps{})
	ctx := context.Background()
	rec := env.send(t, ctx, http.MethodGet, "/kpi/revenue?range=last_30_days", nil, nil, nil)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/login?next=%2Fkpi%2Frevenue%3Frange%3Dlast_30_days" {
		t.Fatalf("page without session: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	rec = env.signIn(t, "finance@test", "wrong password", "/kpi/revenue")
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "Wrong email or password.") || hasCookie(rec, sessionCookie) {
		t.Fatalf("wrong password: %d %.300s", rec.Code, rec.Body.String())
	}
	rec = env.signIn(t, "Finance@Test", "password-finance", "/kpi/revenue?range=last_30_days")
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/kpi/revenue?range=last_30_days" {
		t.Fatalf("sign-in: %d %q %.300s", rec.Code, rec.Header().Get("Location"), rec.Body.String())
	}
	c := cookieOf(rec, sessionCookie)
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure {
		t.Fatalf("session cookie %+v (HttpOnly, SameSite=Lax, Path=/, not Secure on loopback)", c)
	}
	sess := &access.Session{ID: c.Value}
	rec = env.send(t, ctx, http.MethodGet, "/kpi/revenue?range=last_30_days", sess, nil, nil)
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, "finance@test") || !strings.Contains(body, `action="/logout"`) {
		t.Fatalf("KPI page signed in: %d %.400s", rec.Code, body)
	}
	// An open redirect is not possible.
	for _, next := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example"} {
		rec = env.signIn(t, "finance@test", "password-finance", next)
		if rec.Header().Get("Location") != "/" {
			t.Errorf("next %q: redirected to %q", next, rec.Header().Get("Location"))
		}
	}
	// Audit: the failure and the successes, with the client address.
	entries, _, err := env.svc.AuditLog(ctx, access.AuditQuery{Actor: "finance@test"})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range entries {
		count[e.Action+" "+e.IP]++
	}
	if len(entries) != 5 || count["login.failure 192.0.2.1"] != 1 || count["login 192.0.2.1"] != 4 {
		t.Fatalf("audit %v", count)
	}
}

func TestLoginRateLimitHTTP(t *testing.T) {
	env := newAccessEnv(t, Config{}, access.Config{LoginFailuresPerAccount: 2, LoginBackoff: 40 * time.Second, LoginWindow: time.Minute}, Deps{})
	for i := range 2 {
		if rec := env.signIn(t, "analyst@test", "nope nope nope", ""); rec.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, rec.Code)
		}
	}
	rec := env.signIn(t, "analyst@test", "password-analyst", "")
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "40" ||
		!strings.Contains(rec.Body.String(), "Too many failed sign-ins of this account. Try again in 40 s.") || hasCookie(rec, sessionCookie) {
		t.Fatalf("3rd attempt: %d Retry-After %q %.300s", rec.Code, rec.Header().Get("Retry-After"), rec.Body.String())
	}
	// Another account from the same address is not limited (issue #15: a shared NAT).
	if rec := env.signIn(t, "finance@test", "password-finance", ""); rec.Code != http.StatusSeeOther {
		t.Fatalf("another account from the address: %d %.300s", rec.Code, rec.Body.String())
	}
	env.clock.Add(25 * time.Second)
	if rec := env.signIn(t, "analyst@test", "password-analyst", ""); !strings.Contains(rec.Body.String(), "Try again in 15 s.") {
		t.Fatalf("25 s later: %d %.300s", rec.Code, rec.Body.String())
	}
	env.clock.Add(15 * time.Second)
	if rec := env.signIn(t, "analyst@test", "password-analyst", ""); rec.Code != http.StatusSeeOther {
		t.Fatalf("after the wait: %d", rec.Code)
	}
}

// TestLoginAddressLimitHTTP: an address naming many unknown accounts gets one refusal for an
// unknown account and for a wrong password alike, and a correct password still signs in.
func TestLoginAddressLimitHTTP(t *testing.T) {
	env := newAccessEnv(t, Config{}, access.Config{LoginFailuresPerIP: 3}, Deps{})
	for i := range 3 {
		if rec := env.signIn(t, fmt.Sprintf("nobody%d@test", i), "x", ""); rec.Code != http.StatusUnauthorized {
			t.Fatalf("unknown %d: %d", i, rec.Code)
		}
	}
	unknown := env.signIn(t, "nobody9@test", "x", "")
	wrong := env.signIn(t, "analyst@test", "wrong password", "")
	for _, rec := range []*httptest.ResponseRecorder{unknown, wrong} {
		if rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), "Too many failed sign-ins from your network.") {
			t.Fatalf("refusal: %d %.300s", rec.Code, rec.Body.String())
		}
	}
	if unknown.Header().Get("Retry-After") != wrong.Header().Get("Retry-After") {
		t.Errorf("Retry-After differs: %q for an unknown account, %q for a wrong password", unknown.Header().Get("Retry-After"), wrong.Header().Get("Retry-After"))
	}
	if rec := env.signIn(t, "analyst@test", "password-analyst", ""); rec.Code != http.StatusSeeOther {
		t.Fatalf("correct password: %d %.300s", rec.Code, rec.Body.String())
	}
}

func TestSessionTimeoutsHTTP(t *testing.T) {
	env := newAccessEnv(t, Config{}, access.Config{IdleTimeout: 10 * time.Minute, AbsoluteTimeout: time.Hour}, Deps{})
	ctx := context.Background()
	sess := env.session(t, access.RoleExecutive)
	for range 5 { // active every 9 minutes
		env.clock.Add(9 * time.Minute)
		if rec := env.send(t, ctx, http.MethodGet, "/about", &sess, nil, nil); rec.Code != http.StatusOK {
			t.Fatalf("active session: %d", rec.Code)
		}
	}
	env.clock.Add(10 * time.Minute)
	rec := env.send(t, ctx, http.MethodGet, "/about", &sess, nil, nil)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/login?expired=1&next=%2Fabout" {
		t.Fatalf("idle session: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	page := env.send(t, ctx, http.MethodGet, rec.Header().Get("Location"), nil, nil, nil)
	if !strings.Contains(page.Body.String(), "Your session expired. Sign in again.") || !strings.Contains(page.Body.String(), `name="next" value="/about"`) {
		t.Fatalf("login page after expiry: %.500s", page.Body.String())
	}
	// Absolute: active every 9 minutes, it still ends an hour after sign-in.
	sess = env.session(t, access.RoleExecutive)
	for i := 1; i <= 7; i++ {
		env.clock.Add(9 * time.Minute)
		rec := env.send(t, ctx, http.MethodGet, "/about", &sess, nil, nil)
		if want := i*9 < 60; (rec.Code == http.StatusOK) != want {
			t.Fatalf("after %d min: %d", i*9, rec.Code)
		}
	}
	// htmx requests are told where to go instead of swapping the sign-in page into a tile.
	rec = env.send(t, ctx, http.MethodGet, "/tiles/revenue?range=last_30_days", &sess, nil,
		http.Header{"HX-Request": {"true"}, "HX-Current-URL": {"http://example.com/?range=last_30_days"}})
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("HX-Redirect") != "/login?expired=1&next=%2F%3Frange%3Dlast_30_days" {
		t.Fatalf("htmx: %d %q", rec.Code, rec.Header().Get("HX-Redirect"))
	}
}

func TestSecureCookieSetting(t *testing.T) {
	for _, tc := range []struct {
		addr, mode string
		tls        bool
		want       bool
	}{
		{":8080", "", false, true}, // not loopback: Secure
		{"127.0.0.1:8080", "", false, false},
		{"localhost:8080", "auto", false, false},
		{"127.0.0.1:8080", "", true, true}, // TLS: Secure
		{"127.0.0.1:8080", "always", false, true},
		{":8080", "never", true, false},
	} {
		s := New(Config{Addr: tc.addr, Auth: AuthConfig{CookieSecure: tc.mode}}, Deps{Store: okStore()})
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if !tc.tls {
			req.TLS = nil
		} else if req.TLS == nil {
			req = httptest.NewRequest(http.MethodGet, "https://example.com/", nil)
		}
		if got := s.secureCookies(req); got != tc.want {
			t.Errorf("%s %q tls=%v: Secure %v, want %v", tc.addr, tc.mode, tc.tls, got, tc.want)
		}
	}
	// Over plain HTTP to another host with Secure cookies, the sign-in page says why it cannot work.
	env := newAccessEnv(t, Config{Addr: ":8080"}, access.Config{}, Deps{})
	req := httptest.NewRequest(http.MethodGet, "http://10.1.2.3:8080/login", nil)
	rec := httptest.NewRecorder()
	env.srv.Handler().ServeHTTP(rec, req)
	if !strings.Contains(rec.Body.String(), "auth.cookie_secure") {
		t.Fatalf("no warning on plain HTTP: %.500s", rec.Body.String())
	}
	req = httptest.NewRequest(http.MethodGet, "http://localhost:8080/login", nil)
	rec = httptest.NewRecorder()
	env.srv.Handler().ServeHTTP(rec, req)
	if strings.Contains(rec.Body.String(), "auth.cookie_secure") {
		t.Fatal("a warning on localhost, where browsers keep Secure cookies")
	}
}

func TestProxyHeader(t *testing.T) {
	env := newAccessEnv(t, Config{Auth: AuthConfig{ProxyHeader: "X-Forwarded-Email", TrustedProxies: []string{"192.0.2.0/28", "2001:db8::1"}}},
		access.Config{}, Deps{})
	send := func(remote, email string, cookie *http.Cookie) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/about", nil)
		req.RemoteAddr = remote
		if email != "" {
			req.Header.Set("X-Forwarded-Email", email)
		}
		if cookie != nil {
			req.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		env.srv.Handler().ServeHTTP(rec, req)
		return rec
	}
	rec := send("192.0.2.1:5000", "Analyst@Test", nil)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "analyst@test") {
		t.Fatalf("trusted proxy: %d", rec.Code)
	}
	c := cookieOf(rec, sessionCookie)
	if c == nil {
		t.Fatal("no session for the proxy's user (forms need its CSRF token)")
	}
	// The same user keeps the session; another user gets a new one.
	if rec := send("192.0.2.1:5000", "analyst@test", c); rec.Code != http.StatusOK || cookieOf(rec, sessionCookie) != nil {
		t.Fatalf("second request: %d, new cookie %v", rec.Code, cookieOf(rec, sessionCookie))
	}
	if rec := send("192.0.2.1:5000", "executive@test", c); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "executive@test") {
		t.Fatalf("another user through the proxy: %d", rec.Code)
	}
	if rec := send("[2001:db8::1]:443", "admin@test", nil); rec.Code != http.StatusOK {
		t.Fatalf("IPv6 proxy: %d", rec.Code)
	}
	for name, tc := range map[string][2]string{
		"untrusted address":  {"198.51.100.7:5000", "admin@test"},
		"outside the prefix": {"192.0.2.16:5000", "admin@test"},
		"unknown user":       {"192.0.2.1:5000", "ghost@test"},
	} {
		if rec := send(tc[0], tc[1], nil); rec.Code != http.StatusSeeOther {
			t.Errorf("%s: %d, want the sign-in redirect", name, rec.Code)
		}
	}
	entries, _, _ := env.svc.AuditLog(context.Background(), access.AuditQuery{Action: access.ActionLogin})
	if len(entries) != 3 || !strings.Contains(entries[0].Detail, "proxy") {
		t.Fatalf("proxy sign-ins in the audit log: %+v", entries)
	}
}

// fakeTokens verifies tokens by a map token → scope (admin covers every scope, as the real one).
type fakeTokens map[string]string

func (f fakeTokens) Verify(_ context.Context, tok, scope string) (string, error) {
	if s, ok := f[tok]; ok && (s == scope || s == "admin") {
		return "id-" + tok, nil
	}
	return "", errors.New("invalid token")
}

func TestBearerTokens(t *testing.T) {
	env := newAccessEnv(t, Config{}, access.Config{}, Deps{Tokens: fakeTokens{"r": "read", "i": "ingest", "a": "admin"}})
	ctx := context.Background()
	for _, tc := range []struct {
		token, path string
		want        int
	}{
		{"r", "/api/v1/metrics", http.StatusOK},
		{"a", "/api/v1/metrics/revenue?range=last_30_days", http.StatusOK},
		{"i", "/api/v1/metrics", http.StatusUnauthorized},
		{"nope", "/api/v1/metrics", http.StatusUnauthorized},
		{"a", "/admin/users", http.StatusSeeOther}, // pages take sessions, not tokens
	} {
		rec := env.send(t, ctx, http.MethodGet, tc.path, nil, nil, http.Header{"Authorization": {"Bearer " + tc.token}})
		if rec.Code != tc.want {
			t.Errorf("token %s on %s: %d, want %d", tc.token, tc.path, rec.Code, tc.want)
		}
	}
}

// The roles a metric definition may name are the users' roles.
func TestMetricRolesAreUserRoles(t *testing.T) {
	if !slices.Equal(metrics.Roles, access.RoleNames()) {
		t.Fatalf("metrics.Roles %v, access roles %v", metrics.Roles, access.RoleNames())
	}
}

// A metric restricted to roles is hidden from the others everywhere: overview, tile, KPI page,
// CSV and API answer as for an unknown metric.
func TestMetricLevelAccess(t *testing.T) {
	fm := newFakeMetrics()
	for i := range fm.catalog {
		if fm.catalog[i].Name == "revenue" {
			fm.catalog[i].Roles = []string{"finance", "admin"}
		}
	}
	env := newAccessEnv(t, Config{}, access.Config{}, Deps{Metrics: fm, Tokens: fakeTokens{"r": "read"}})
	ctx := context.Background()
	for _, role := range access.UserRoles() {
		sees := role == access.RoleFinance || role == access.RoleAdmin
		sess := env.session(t, role)
		get := func(path string) *httptest.ResponseRecorder {
			return env.send(t, ctx, http.MethodGet, path, &sess, nil, nil)
		}
		rec := get("/?range=last_30_days")
		if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), `href="/kpi/revenue`) != sees ||
			!strings.Contains(rec.Body.String(), "Customer acquisition cost") {
			t.Errorf("%s: overview %d, revenue tile shown %v", role, rec.Code, !sees)
		}
		for _, path := range []string{"/kpi/revenue", "/tiles/revenue"} {
			if rec := get(path); (rec.Code == http.StatusOK) != sees || (!sees && rec.Code != http.StatusNotFound) {
				t.Errorf("%s: %s %d", role, path, rec.Code)
			}
		}
		if role.Includes(access.RoleFinance) {
			rec := get("/api/v1/metrics")
			if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), `"name":"revenue"`) != sees {
				t.Errorf("%s: API catalog %d lists revenue: %v", role, rec.Code, !sees)
			}
			if rec := get("/api/v1/metrics/revenue"); (rec.Code == http.StatusOK) != sees || (!sees && rec.Code != http.StatusNotFound) {
				t.Errorf("%s: /api/v1/metrics/revenue %d", role, rec.Code)
			}
			// The exports: these fake metrics have no export engine (503), but a hidden metric
			// is unknown before that (404).
			for _, path := range []string{"/kpi/revenue.csv", "/api/v1/export/metric/revenue"} {
				if rec := get(path); (rec.Code == http.StatusServiceUnavailable) != sees || (!sees && rec.Code != http.StatusNotFound) {
					t.Errorf("%s: %s %d", role, path, rec.Code)
				}
			}
		} else if rec := get("/kpi/cac.csv"); rec.Code != http.StatusForbidden {
			t.Errorf("%s: CSV export %d, want 403", role, rec.Code)
		} else if rec := get("/kpi/cac"); strings.Contains(rec.Body.String(), "Download CSV") {
			t.Errorf("%s: the KPI page offers an export", role)
		}
	}
	// A read token is the finance role.
	if rec := env.send(t, ctx, http.MethodGet, "/api/v1/metrics/revenue?range=last_30_days", nil, nil, http.Header{"Authorization": {"Bearer r"}}); rec.Code != http.StatusOK {
		t.Errorf("read token: %d", rec.Code)
	}
}
