package server

import (
	"net/http"
	"net/url"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/views"
)

// overview renders the dashboard's front page: a tile per valid KPI, grouped by owner or 4R.
// Tiles are queried concurrently, each within Config.TileTimeout; a failed or late tile shows
// its error and the page still renders with 200. Bad URL parameters are a 400.
func (s *Server) overview(c *gin.Context) error {
	f, err := s.filters(c)
	if err != nil {
		return err
	}
	v := views.OverviewView{
		Page:    s.dashPage(c, "Overview", "overview", f),
		Filters: s.filterBar(f, "/"),
	}
	for _, opt := range []struct{ view, label string }{{"owner", "By owner"}, {"4r", "By 4R"}} {
		v.ViewLinks = append(v.ViewLinks, views.Link{
			Label:   opt.label,
			Current: f.View == opt.view,
			Href: f.URL("/", func(q url.Values) {
				q.Del("view")
				if opt.view != "owner" {
					q.Set("view", opt.view)
				}
			}),
		})
	}
	c.Header("Cache-Control", "no-store")
	if s.metrics == nil {
		v.NotConfigured = true
		return s.renderHTML(c, http.StatusOK, views.Overview(v))
	}
	// The tiles share the values they compute: a derived tile reads its inputs
	// from the tiles (or other derived tiles) that computed them in this load.
	ctx := metrics.WithSharedValues(c.Request.Context())
	cat, err := s.catalog(ctx)
	if err != nil {
		s.reqLog(c).Warn("overview: catalog", "error", err)
		v.CatalogError = shownText(ctx, err)
		return s.renderHTML(c, http.StatusOK, views.Overview(v))
	}
	var valid []MetricInfo
	for _, m := range cat {
		if m.Valid {
			valid = append(valid, m)
		} else {
			v.Invalid = append(v.Invalid, views.InvalidMetric{Name: m.Name, Error: m.Error})
		}
	}
	tiles := make([]views.TileView, len(valid))
	var wg sync.WaitGroup
	for i, m := range valid {
		wg.Go(func() { tiles[i] = s.tile(ctx, m, f) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	tileDownloads(c, f, tiles)
	v.Groups = groupTiles(tiles, f.View)
	return s.renderHTML(c, http.StatusOK, views.Overview(v))
}

// tilePartial renders one tile (/tiles/:name) with the page's filters, for live refreshes.
func (s *Server) tilePartial(c *gin.Context) error {
	f, err := s.filters(c)
	if err != nil {
		return err
	}
	if s.metrics == nil {
		return errUnavailable(msgNotConfigured)
	}
	info, err := s.lookup(c.Request.Context(), c.Param("name"))
	if err != nil {
		return err
	}
	c.Header("Cache-Control", "no-store")
	tile := []views.TileView{s.tile(c.Request.Context(), info, f)}
	tileDownloads(c, f, tile)
	return s.renderHTML(c, http.StatusOK, views.TileFragment(tile[0]))
}
