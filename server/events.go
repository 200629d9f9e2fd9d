package server

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// events hands POST /api/v1/events/{entity} to the ingest events service,
// which authenticates the token, validates and stores the records and
// answers in JSON (per-record errors included).
func (s *Server) events(c *gin.Context) error {
	if s.eventsH == nil {
		c.JSON(http.StatusServiceUnavailable, gin.H{"error": "the events endpoint is not enabled on this server"})
		return nil
	}
	s.eventsH.ServeHTTP(c.Writer, c.Request)
	return nil
}
