package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/access"
)

// Access control. Every route is registered with the least role it needs (route, below); the
// table of route → role is Server.RouteRoles, and TestRouteRoles calls every route with every
// role. A request is identified by, in order: a user put on its context by in-process code
// (access.WithUser: the warm-up, tests), a trusted reverse proxy's user header, the session
// cookie, or, on /api/, a bearer API token. Then:
//   - no identity: pages answer GET with 303 to /login?next=…, other methods with 401; /api/
//     answers 401 JSON;
//   - a role too low: 403;
//   - an unsafe method (POST, PUT, PATCH, DELETE) of a session must carry the session's CSRF
//     token (form field csrf_token or header X-CSRF-Token): 403 otherwise. Bearer tokens are
//     not sent by browsers on their own, so token requests are exempt.

// AuthConfig configures sign-in, the session cookie and reverse proxies.
type AuthConfig struct {
	// CookieSecure is when the session cookie carries Secure: "auto" (the default) when the
	// request came over TLS or the server does not listen on a loopback address; "always";
	// "never" (for plain-HTTP access from another machine, on a trusted network only).
	CookieSecure string
	// SessionTTL is the session cookie's Max-Age (the absolute session timeout); 0: a cookie
	// that ends with the browser session.
	SessionTTL int
	// ProxyHeader names a header in which an authenticating reverse proxy passes the signed-in
	// user's email; "" (the default) trusts no such header. It is read only from TrustedProxies,
	// and the user must exist and be enabled.
	ProxyHeader string
	// TrustedProxies are the addresses (IPs or CIDR prefixes) of reverse proxies: their
	// X-Forwarded-For gives the client address, and ProxyHeader is read only from them.
	TrustedProxies []string
}

// TokenVerifier checks a presented API token against a scope and returns its id (see
// ingest/events.Tokens).
type TokenVerifier interface {
	Verify(ctx context.Context, presented, scope string) (string, error)
}

// Cookie names.
const (
	sessionCookie = "converge_session"
	loginCookie   = "converge_login" // the sign-in form's CSRF token (double submit)
)

// csrfField and csrfHeader carry a session's CSRF token in forms and in scripts' requests.
const (
	csrfField  = "csrf_token"
	csrfHeader = "X-CSRF-Token"
)

const ctxIdentity = "converge.identity"

// identity is who makes a request.
type identity struct {
	user    *access.User
	session *access.Session // the session of a cookie or proxy sign-in; nil for tokens and in-process users
	via     string          // "session", "proxy", "token", "internal"
	expired bool            // a session cookie was presented but its session expired
	err     error           // the store could not tell (sessions are unknown)
}

func identityOf(c *gin.Context) identity {
	id, _ := c.Get(ctxIdentity)
	v, _ := id.(identity)
	return v
}

// roleOf is the request's role (access.Public without a user).
func roleOf(c *gin.Context) access.Role {
	if id := identityOf(c); id.user != nil {
		return id.user.Role
	}
	return access.Public
}

// route registers h for method and path, reachable by role and the roles above it
// (access.Public: by anyone, without signing in), and records it in the table of route → role
// (RouteRoles). Every route is registered through route or its shorthands get, head, post; a
// route registered otherwise has no role and fails TestRouteRoles.
func (s *Server) route(method, path string, role access.Role, h gin.HandlerFunc) {
	key := method + " " + path
	if _, dup := s.roles[key]; dup {
		panic("server: route " + key + " registered twice")
	}
	s.roles[key] = role
	handlers := []gin.HandlerFunc{s.identify(role)}
	if role != access.Public {
		handlers = append(handlers, s.require(role))
	}
	s.engine.Handle(method, path, append(handlers, h)...)
}

func (s *Server) get(path string, role access.Role, h gin.HandlerFunc) {
	s.route(http.MethodGet, path, role, h)
}

func (s *Server) head(path string, role access.Role, h gin.HandlerFunc) {
	s.route(http.MethodHead, path, role, h)
}

func (s *Server) post(path string, role access.Role, h gin.HandlerFunc) {
	s.route(http.MethodPost, path, role, h)
}

// RouteRole is one row of the route table.
type RouteRole struct {
	Method, Path string
	Role         access.Role // access.Public: no sign-in needed
}

// RouteRoles is the table of every registered route and the least role it needs, by path.
func (s *Server) RouteRoles() []RouteRole {
	out := make([]RouteRole, 0, len(s.roles))
	for k, r := range s.roles {
		m, p, _ := strings.Cut(k, " ")
		out = append(out, RouteRole{Method: m, Path: p, Role: r})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

// isAPI tells JSON API paths, whose errors are JSON.
func isAPI(path string) bool { return strings.HasPrefix(path, "/api/") }

// isMachine tells paths for programs rather than people: the API and /metrics. They admit
// bearer tokens and answer a missing sign-in with 401 JSON, not a redirect to the sign-in page.
func isMachine(path string) bool { return isAPI(path) || path == metricsPath }

func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// identify finds who makes the request (see the top of this file) and puts the user, the
// access service (for access.Audit) and the client address on the request's context.
func (s *Server) identify(role access.Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx := access.WithRequest(c.Request.Context(), s.access, c.ClientIP())
		id := s.resolve(c, ctx, role)
		if id.user != nil {
			ctx = access.WithUser(ctx, *id.user)
		}
		c.Request = c.Request.WithContext(ctx)
		c.Set(ctxIdentity, id)
		c.Next()
	}
}

func (s *Server) resolve(c *gin.Context, ctx context.Context, role access.Role) identity {
	if u, ok := access.UserFrom(ctx); ok {
		return identity{user: &u, via: "internal"}
	}
	if s.testUser != nil {
		u := *s.testUser
		return identity{user: &u, via: "internal"}
	}
	if s.access == nil {
		return identity{}
	}
	if id, ok := s.fromProxy(c, ctx); ok {
		return id
	}
	if cookie, err := c.Cookie(sessionCookie); err == nil && cookie != "" {
		sess, err := s.access.Session(ctx, cookie)
		switch {
		case err == nil:
			return identity{user: &sess.User, session: &sess, via: "session"}
		case errors.Is(err, access.ErrExpired):
			return identity{expired: true}
		case errors.Is(err, access.ErrNoSession):
			return identity{}
		default:
			s.reqLog(c).Warn("session lookup", "error", err)
			return identity{err: err}
		}
	}
	if role != access.Public && isMachine(c.Request.URL.Path) && s.tokens != nil {
		if tok, ok := bearerToken(c.GetHeader("Authorization")); ok {
			type scopeRole struct {
				scope string
				role  access.Role
			}
			scopes := []scopeRole{{"admin", access.RoleAdmin}, {"read", access.RoleFinance}}
			if c.Request.URL.Path == metricsPath {
				// A metrics token scrapes this one route (an admin token too).
				scopes = []scopeRole{{"metrics", access.RoleAdmin}}
			}
			for _, t := range scopes {
				if tid, err := s.tokens.Verify(ctx, tok, t.scope); err == nil {
					return identity{user: &access.User{Email: "token:" + tid, Role: t.role}, via: "token"}
				}
			}
		}
	}
	return identity{}
}

// bearerToken is the token of an Authorization header of the Bearer scheme (RFC 6750 2.1),
// whose name is case-insensitive (RFC 9110 11.1: "bearer", "BEARER" are the same), separated
// from the token by spaces or tabs; ok is false for another scheme or no token.
func bearerToken(h string) (tok string, ok bool) {
	h = strings.Trim(h, " \t")
	i := strings.IndexAny(h, " \t")
	if i < 0 || !strings.EqualFold(h[:i], "Bearer") {
		return "", false
	}
	tok = strings.TrimLeft(h[i:], " \t")
	return tok, tok != ""
}

// fromProxy signs in the user named by a trusted proxy's header: it keeps the session cookie
// when it is that user's, and otherwise starts a session (so forms get a CSRF token as usual).
func (s *Server) fromProxy(c *gin.Context, ctx context.Context) (identity, bool) {
	if s.cfg.Auth.ProxyHeader == "" || !s.fromTrustedProxy(c.Request) {
		return identity{}, false
	}
	email := access.NormalizeEmail(c.GetHeader(s.cfg.Auth.ProxyHeader))
	if email == "" {
		return identity{}, false
	}
	if cookie, err := c.Cookie(sessionCookie); err == nil {
		if sess, err := s.access.Session(ctx, cookie); err == nil && sess.User.Email == email {
			return identity{user: &sess.User, session: &sess, via: "proxy"}, true
		}
	}
	u, err := s.access.User(ctx, email)
	if err != nil || u.Disabled {
		s.reqLog(c).Warn("proxy user refused", "email", email, "error", err, "disabled", u.Disabled)
		return identity{}, true // the proxy's word is final: no fallback to another identity
	}
	sess, err := s.access.StartSession(ctx, u, access.MethodProxy, access.Client{IP: c.ClientIP(), UserAgent: c.Request.UserAgent()})
	if err != nil {
		s.reqLog(c).Warn("proxy session", "error", err)
		return identity{err: err}, true
	}
	s.setSessionCookie(c, sess.ID)
	return identity{user: &sess.User, session: &sess, via: "proxy"}, true
}

// fromTrustedProxy reports whether the request's peer is one of Auth.TrustedProxies.
func (s *Server) fromTrustedProxy(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range s.proxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ParseProxies reads trusted proxy addresses: IPs or CIDR prefixes.
func ParseProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
		}
		out = append(out, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
	}
	return out, nil
}

// require lets the request through when its user has role (or a higher one) and, for an
// unsafe method of a session, the session's CSRF token.
func (s *Server) require(role access.Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := identityOf(c)
		switch {
		case id.err != nil:
			s.deny(c, http.StatusServiceUnavailable, "Your sign-in could not be checked: the store did not answer. Try again shortly.")
		case id.user == nil:
			s.unauthenticated(c, id.expired)
		case !id.user.Role.Includes(role):
			s.deny(c, http.StatusForbidden, fmt.Sprintf("Your role (%s) cannot open this; it needs %s or higher.", id.user.Role, role))
		case unsafeMethod(c.Request.Method) && id.session != nil && !id.session.CheckCSRF(csrfFrom(c)):
			s.deny(c, http.StatusForbidden, "The form's security token is missing or wrong (CSRF check). Reload the page and try again.")
		default:
			c.Next()
		}
	}
}

func csrfFrom(c *gin.Context) string {
	if t := c.GetHeader(csrfHeader); t != "" {
		return t
	}
	return c.PostForm(csrfField)
}

// unauthenticated answers a request without a user: API 401 JSON, a page GET a redirect to the
// sign-in page (htmx requests: 401 with HX-Redirect), other methods 401.
func (s *Server) unauthenticated(c *gin.Context, expired bool) {
	if isMachine(c.Request.URL.Path) {
		c.Header("WWW-Authenticate", `Bearer realm="converge"`)
		msg := "Sign in, or send an API token (Authorization: Bearer …) of scope read or admin."
		if c.Request.URL.Path == metricsPath {
			msg = "Send an API token of scope metrics (Authorization: Bearer …; converge token create --scope metrics), or scrape server.metrics_addr."
		}
		s.deny(c, http.StatusUnauthorized, msg)
		return
	}
	next := c.Request.URL.RequestURI()
	if c.GetHeader("HX-Request") == "true" {
		if cur, err := url.Parse(c.GetHeader("HX-Current-URL")); err == nil && cur.Path != "" {
			next = cur.RequestURI()
		}
		c.Header("HX-Redirect", loginURL(next, expired))
		s.deny(c, http.StatusUnauthorized, "Sign in first.")
		return
	}
	if c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead {
		c.Header("Cache-Control", "no-store")
		c.Redirect(http.StatusSeeOther, loginURL(next, expired))
		c.Abort()
		return
	}
	s.deny(c, http.StatusUnauthorized, "Sign in first.")
}

func loginURL(next string, expired bool) string {
	q := url.Values{}
	if n := safeNext(next); n != "/" {
		q.Set("next", n)
	}
	if expired {
		q.Set("expired", "1")
	}
	if len(q) == 0 {
		return "/login"
	}
	return "/login?" + q.Encode()
}

// deny answers status with msg: JSON on the API, the error page otherwise.
func (s *Server) deny(c *gin.Context, status int, msg string) {
	s.reqLog(c).Info("request denied", "status", status, "role", roleOf(c).String(), "error", msg)
	if isMachine(c.Request.URL.Path) {
		c.Header("Cache-Control", "no-store")
		c.AbortWithStatusJSON(status, apiError{Error: msg})
		return
	}
	s.renderError(c, status, msg)
}

// needRole is a handler's own check for a part of a route that needs more than the route
// (e.g. the CSV of a KPI page): a 403 httpError when the request's role is below role.
func needRole(c *gin.Context, role access.Role) error {
	if r := roleOf(c); !r.Includes(role) {
		return httpError{status: http.StatusForbidden, msg: fmt.Sprintf("Your role (%s) cannot do this; it needs %s or higher.", r, role)}
	}
	return nil
}

// secureCookies tells whether cookies set on this request carry Secure (see AuthConfig).
func (s *Server) secureCookies(r *http.Request) bool {
	switch s.cfg.Auth.CookieSecure {
	case "always":
		return true
	case "never":
		return false
	}
	return r.TLS != nil || !s.loopback.Load()
}

func (s *Server) setSessionCookie(c *gin.Context, id string) {
	http.SetCookie(c.Writer, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", MaxAge: s.cfg.Auth.SessionTTL,
		HttpOnly: true, Secure: s.secureCookies(c.Request), SameSite: http.SameSiteLaxMode})
}

func (s *Server) clearCookie(c *gin.Context, name, path string) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: "", Path: path, MaxAge: -1,
		HttpOnly: true, Secure: s.secureCookies(c.Request), SameSite: http.SameSiteLaxMode})
}

// isLoopback tells whether a listen address is on a loopback interface only (":8080" is not).
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
