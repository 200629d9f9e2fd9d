package server

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/views"
)

// home renders the landing page: the store converge uses and the engine's version. An engine that
// cannot be reached is shown inline; the page still renders with 200.
func (s *Server) home(c *gin.Context) error {
	v := views.HomeView{
		Page:  s.page(c, "", "home"),
		Name:  "converge",
		Store: s.store.Describe(),
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), versionTimeout)
	defer cancel()
	ver, err := s.store.ServerVersion(ctx)
	if err != nil {
		s.reqLog(c).Warn("engine version", "error", err)
		v.EngineError = shownText(c.Request.Context(), err)
	} else {
		v.EngineVersion = ver
	}
	c.Header("Cache-Control", "no-store")
	return s.renderHTML(c, http.StatusOK, views.Home(v))
}
