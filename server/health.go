package server

import (
	"context"
	"net/http"

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
	Store  string `json:"store"`  // the store's Describe()
	Error  string `json:"error,omitempty"`
}

// readyz reports whether the store answers a ping within readyTimeout: 200 when it does, 503
// otherwise, with a JSON body either way.
func (s *Server) readyz(c *gin.Context) error {
	c.Header("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
	defer cancel()
	resp := readyResponse{Status: "ready", Store: s.store.Describe()}
	if err := s.store.Ping(ctx); err != nil {
		s.reqLog(c).Warn("store not ready", "store", resp.Store, "error", err)
		resp.Status = "unavailable"
		resp.Error = err.Error()
		c.JSON(http.StatusServiceUnavailable, resp)
		return nil
	}
	c.JSON(http.StatusOK, resp)
	return nil
}
