package server

import (
	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/static"
)

// routes builds the router. Every route of the server is registered here.
func (s *Server) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	// Trust no proxy headers until a deployment configures its proxies: ClientIP is the peer address.
	_ = r.SetTrustedProxies(nil)
	r.RedirectTrailingSlash = true
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = false

	// Order matters: the request id comes first so every log line and error page carries it.
	r.Use(s.requestID, s.requestLogger, s.recovery, securityHeaders)

	r.GET("/healthz", s.handle(s.healthz))
	r.HEAD("/healthz", s.handle(s.healthz))
	r.GET("/readyz", s.handle(s.readyz))

	r.GET(static.Prefix+"*path", s.handle(s.staticAsset))
	r.HEAD(static.Prefix+"*path", s.handle(s.staticAsset))

	// Dashboard pages (filters in the URL, see filters.go).
	r.GET("/", s.handle(s.overview))
	r.GET("/kpi/:name", s.handle(s.kpi)) // also /kpi/<name>.csv
	r.GET("/tiles/:name", s.handle(s.tilePartial))
	r.GET(liveURL, s.handle(s.live))
	// Customers: search, best customers, at risk, RFM segments; the customer 360.
	r.GET("/customers", s.handle(s.customersPage))
	r.GET("/customers/:id", s.handle(s.customer360))
	// The system page: store and engine (the former home page).
	r.GET("/about", s.handle(s.home))

	// JSON API: the same URL parameters as the pages; errors are JSON.
	api := r.Group("/api/v1")
	api.GET("/metrics", s.handleAPI(s.apiCatalog))
	api.GET("/metrics/:name", s.handleAPI(s.apiMetric))
	// Events: authenticated by an API token of scope ingest (see ingest/events).
	api.POST("/events/:entity", s.handle(s.events))

	r.NoRoute(s.handle(s.notFound))
	return r
}
