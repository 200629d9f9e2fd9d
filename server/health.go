package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// healthz reports that the process is alive and serving: always 200 "ok". It does not touch the
// store (see readyz).
func (s *Server) healthz(c *gin.Context) error {
	c.Header("Cache-Control", "no-store")
	c.String(http.StatusOK, "ok\n")
	return nil
}

// readyResponse is /readyz's JSON body.
type readyResponse struct {
	Status string `json:"status"` // "ready" or "unavailable"
	Store  string `json:"store"`  // "embedded" or "clickhouse": not its address (anyone may ask)
	Error  string `json:"error,omitempty"`
}

// storeKind is the kind of store desc (a Store's Describe()) names.
func storeKind(desc string) string {
	if strings.HasPrefix(desc, "embedded") {
		return "embedded"
	}
	return "clickhouse"
}

// readyz reports whether the store answers a ping within readyTimeout: 200 when it does, 503
// otherwise, with a JSON body either way. It needs no sign-in, so the body names neither the
// store's address nor its error: those are logged, under the request ID the body gives.
func (s *Server) readyz(c *gin.Context) error {
	c.Header("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
	defer cancel()
	desc := s.store.Describe()
	resp := readyResponse{Status: "ready", Store: storeKind(desc)}
	if err := s.store.Ping(ctx); err != nil {
		s.reqLog(c).Warn("store not ready", "store", desc, "error", err)
		resp.Status = "unavailable"
		resp.Error = "the store did not answer; " + internalText(requestIDOf(c))
		c.JSON(http.StatusServiceUnavailable, resp)
		return nil
	}
	c.JSON(http.StatusOK, resp)
	return nil
}
