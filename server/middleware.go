package server

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"time"

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

// securityHeaders sets headers every response should carry.
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	c.Next()
}
