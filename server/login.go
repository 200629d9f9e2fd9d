package server

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/views"
)

// loginPage renders the sign-in form (GET /login). A signed-in user goes on to ?next= (a path on
// this site) or the overview. The form carries a token that must match the converge_login
// cookie it sets (the form's CSRF protection, before there is a session).
func (s *Server) loginPage(c *gin.Context) error {
	next := safeNext(c.Query("next"))
	if id := identityOf(c); id.session != nil {
		c.Redirect(http.StatusSeeOther, next)
		return nil
	}
	v := s.loginView(c, next)
	switch {
	case c.Query("expired") == "1":
		v.Notice = "Your session expired. Sign in again."
	case c.Query("signed_out") == "1":
		v.Notice = "You are signed out."
	}
	return s.renderLogin(c, http.StatusOK, v)
}

func (s *Server) loginView(c *gin.Context, next string) views.LoginView {
	v := views.LoginView{Page: s.page(c, "Sign in", "login"), Next: next}
	if next == "/" {
		v.Next = ""
	}
	v.Page.CSRF = s.loginToken(c)
	if s.access == nil {
		v.Error = "Sign-in is not configured on this server."
	}
	// A Secure cookie is not stored from plain HTTP (but for localhost): say so, or sign-in
	// would silently loop.
	if c.Request.TLS == nil && s.secureCookies(c.Request) && !localHost(c.Request.Host) {
		v.Warning = "This server sets its session cookie with Secure, but you reach it over plain HTTP: " +
			"your browser will not keep the sign-in. Use HTTPS, or set auth.cookie_secure to never on a trusted network."
	}
	return v
}

func (s *Server) renderLogin(c *gin.Context, status int, v views.LoginView) error {
	c.Header("Cache-Control", "no-store")
	return s.renderHTML(c, status, views.Login(v))
}

// localHost tells a Host header naming this machine (browsers keep Secure cookies from
// http://localhost).
func localHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return isLoopback(net.JoinHostPort(host, "0"))
}

// loginToken returns the sign-in form's token, from the converge_login cookie or a new one
// (which is set).
func (s *Server) loginToken(c *gin.Context) string {
	if t, err := c.Cookie(loginCookie); err == nil && len(t) == 43 {
		return t
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	t := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(c.Writer, &http.Cookie{Name: loginCookie, Value: t, Path: "/login", MaxAge: 3600,
		HttpOnly: true, Secure: s.secureCookies(c.Request), SameSite: http.SameSiteStrictMode})
	return t
}

// loginSubmit signs in (POST /login: email, password, csrf_token, next): on success it sets the
// session cookie and redirects (303) to next; otherwise the form again, with 401 (wrong email or
// password), 403 (disabled account, or a missing or wrong form token), or 429 (too many failures,
// with Retry-After).
func (s *Server) loginSubmit(c *gin.Context) error {
	next := safeNext(c.PostForm("next"))
	v := s.loginView(c, next)
	v.Email = c.PostForm("email")
	if s.access == nil {
		return s.renderLogin(c, http.StatusServiceUnavailable, v)
	}
	cookie, _ := c.Cookie(loginCookie)
	if form := c.PostForm(csrfField); cookie == "" || subtle.ConstantTimeCompare([]byte(form), []byte(cookie)) != 1 {
		v.Error = "The sign-in form expired. Please try again."
		return s.renderLogin(c, http.StatusForbidden, v)
	}
	sess, err := s.access.Login(c.Request.Context(), c.PostForm("email"), c.PostForm("password"),
		access.Client{IP: c.ClientIP(), UserAgent: c.Request.UserAgent()})
	var rl *access.RateLimitError
	switch {
	case err == nil:
	case errors.As(err, &rl):
		c.Header("Retry-After", strconv.Itoa(rl.Seconds()))
		v.Error = "Too many failed sign-ins of this account. Try again in " + strconv.Itoa(rl.Seconds()) + " s."
		if rl.Limit == access.LimitAddress {
			// Said alike for an unknown account and a wrong password (see access/limit.go).
			v.Error = "Too many failed sign-ins from your network. Check the email address and the password, or try again in " +
				strconv.Itoa(rl.Seconds()) + " s."
		}
		return s.renderLogin(c, http.StatusTooManyRequests, v)
	case errors.Is(err, access.ErrBadCredentials):
		v.Error = "Wrong email or password."
		return s.renderLogin(c, http.StatusUnauthorized, v)
	case errors.Is(err, access.ErrDisabled):
		v.Error = "This account is disabled. Ask an administrator."
		return s.renderLogin(c, http.StatusForbidden, v)
	default:
		return err
	}
	s.clearCookie(c, loginCookie, "/login")
	s.setSessionCookie(c, sess.ID)
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, next)
	return nil
}

// logout ends the session (POST /logout, with the CSRF token) and shows the sign-in page.
func (s *Server) logout(c *gin.Context) error {
	if id := identityOf(c); id.session != nil && s.access != nil {
		if err := s.access.Logout(c.Request.Context(), id.session.ID); err != nil {
			return err
		}
	}
	s.clearCookie(c, sessionCookie, "/")
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, "/login?signed_out=1")
	return nil
}

// maxNext bounds a post-sign-in destination; a longer one is dropped (the overview instead).
const maxNext = 2048

// safeNext returns next when it is a destination on this site, and "/" (the overview)
// otherwise. Browsers and net/url disagree on odd URLs (WHATWG parsers drop tabs and newlines
// and read "\" as "/", so "/\t/evil.example" and "/\evil.example" become "//evil.example",
// another host), so rather than guess how a browser reads next, it accepts only what every
// parser reads as a path on this host:
//   - at most maxNext bytes of printable ASCII without "\" (no control character, space or
//     raw non-ASCII byte);
//   - parsed by net/url: no scheme, host, user or opaque part;
//   - the decoded path and query contain no control character, "\" or invalid UTF-8 (so
//     "%09", "%0a", "%5c" are refused too);
//   - the decoded path starts with exactly one "/" ("//host", "/%2f%2fhost" are refused) and
//     is not the sign-in page itself (which would loop).
//
// The result is next re-encoded from its parsed parts (path, query, fragment), so what is
// redirected to is what was checked.
func safeNext(next string) string {
	if next == "" || len(next) > maxNext {
		return "/"
	}
	for i := 0; i < len(next); i++ {
		if b := next[i]; b <= ' ' || b >= 0x7f || b == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	query, err := url.QueryUnescape(u.RawQuery)
	if err != nil || !cleanDecoded(u.Path) || !cleanDecoded(query) || !cleanDecoded(u.Fragment) {
		return "/"
	}
	p := u.Path
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || p == "/login" || strings.HasPrefix(p, "/login/") {
		return "/"
	}
	out := (&url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery, Fragment: u.Fragment, RawFragment: u.RawFragment}).String()
	if !strings.HasPrefix(out, "/") || strings.HasPrefix(out, "//") {
		return "/" // re-encoding must not change what kind of reference it is
	}
	if len(out) > maxNext {
		return "/" // re-encoding grew it past the bound: refused, as it would be the next time
	}
	return out
}

// cleanDecoded reports whether a decoded URL part is valid UTF-8 without control characters
// (C0, DEL, C1, and the Unicode line and paragraph separators) or backslashes.
func cleanDecoded(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r == '\\' || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}
