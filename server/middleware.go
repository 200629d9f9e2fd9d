package server

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/a-h/templ"
	"github.com/gin-gonic/gin"
)

// Keys of values stored on the gin context.
const (
	ctxRequestID = "converge.request_id"
	ctxLogger    = "converge.logger"
)

// HeaderRequestID carries the request id, in requests (honoured when well-formed) and responses.
const HeaderRequestID = "X-Request-Id"

// requestID takes the request's X-Request-Id when it is well-formed, or makes one, echoes it in
// the response and attaches a logger carrying it.
func (s *Server) requestID(c *gin.Context) {
	id := c.GetHeader(HeaderRequestID)
	if !validRequestID(id) {
		id = newRequestID()
	}
	c.Set(ctxRequestID, id)
	c.Set(ctxLogger, s.log.With("request_id", id))
	c.Request = c.Request.WithContext(WithRequestID(c.Request.Context(), id))
	c.Header(HeaderRequestID, id)
	c.Next()
}

// validRequestID accepts 1 to 128 characters of [A-Za-z0-9._:-], so ids from proxies pass
// and nothing odd reaches the logs or the page.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9',
			b == '-', b == '_', b == '.', b == ':':
		default:
			return false
		}
	}
	return true
}

// newRequestID returns 16 random bytes in hex.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics on failure since Go 1.24)
	return hex.EncodeToString(b[:])
}

// requestIDOf returns the request id set by the requestID middleware.
func requestIDOf(c *gin.Context) string { return c.GetString(ctxRequestID) }

// requestLogger logs one line per request after it is served.
func (s *Server) requestLogger(c *gin.Context) {
	start := time.Now()
	c.Next()
	status := c.Writer.Status()
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelWarn
	}
	s.reqLog(c).LogAttrs(c.Request.Context(), level, "request",
		slog.String("method", c.Request.Method),
		slog.String("path", c.Request.URL.Path),
		slog.Int("status", status),
		slog.Int("bytes", max(c.Writer.Size(), 0)),
		slog.Duration("duration", time.Since(start)),
		slog.String("remote", c.ClientIP()),
	)
}

// securityHeaders sets headers every response should carry: a Content-Security-Policy with a
// nonce of its own (put on the request's context for templ: templ.GetNonce), no MIME sniffing,
// no framing, no referrer to other sites, no shared browsing context with other sites' windows.
func securityHeaders(c *gin.Context) {
	nonce := newNonce()
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy(nonce))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	c.Request = c.Request.WithContext(templ.WithNonce(c.Request.Context(), nonce))
	c.Next()
}

// contentSecurityPolicy is the policy of every response. Scripts and styles come from this site
// (static/, embedded) or carry the response's nonce: no inline script, event handler attribute
// or inline style otherwise runs. The pages have none: charts are drawn by static/js/app.js
// from each chart's data-option JSON, htmx's indicator style is in app.css (the layout turns
// its inline one off), and ECharts' tooltips are drawn in the chart, not as HTML with style
// attributes (views/charts.go). Images are the site's or data: URIs (ECharts' SVG); requests,
// forms and frames stay on this site; nothing may frame a page (frame-ancestors, and
// X-Frame-Options for older browsers).
func contentSecurityPolicy(nonce string) string {
	return "default-src 'self'; script-src 'self' 'nonce-" + nonce + "'; style-src 'self' 'nonce-" + nonce + "'; " +
		"img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; " +
		"form-action 'self'; frame-ancestors 'none'"
}

// newNonce returns 16 random bytes, base64: a CSP nonce.
func newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}
