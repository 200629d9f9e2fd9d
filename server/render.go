package server

import (
	"bytes"
	"fmt"

	"github.com/a-h/templ"
	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/static"
	"github.com/converge-dev/converge/views"
)

// renderHTML renders component fully into memory, then writes it with status, so a render error
// never leaves a half-written page and can still become an error page.
func (s *Server) renderHTML(c *gin.Context, status int, component templ.Component) error {
	var buf bytes.Buffer
	if err := component.Render(c.Request.Context(), &buf); err != nil {
		return fmt.Errorf("render page: %w", err)
	}
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
	return nil
}

// page builds the layout's view model for the current request.
func (s *Server) page(c *gin.Context, title, nav string) views.Page {
	p := views.Page{
		Title:         title,
		Version:       s.version,
		StylesheetURL: static.URL("css/app.css"),
		Nav:           nav,
		RequestID:     requestIDOf(c),
		TZ:            s.reportTZ(c),
	}
	if id := identityOf(c); id.user != nil {
		p.User, p.Role, p.Admin = id.user.Email, id.user.Role.String(), id.user.Role == admin
		p.Analyst = id.user.Role >= analyst
		p.Finance = id.user.Role >= finance
		if id.session != nil {
			p.CSRF = id.session.CSRFToken()
		}
	}
	return p
}

// reportTZ is the request's report time zone: a valid ?tz=, else Config.TZ.
func (s *Server) reportTZ(c *gin.Context) string {
	if tz := c.Query("tz"); tz != "" {
		if _, err := loadZone(tz); err == nil {
			return tz
		}
	}
	return s.cfg.TZ
}
