package server

import (
	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/static"
)

// Roles (package access), each including the ones before: executive views dashboards, finance
// also exports, analyst also runs SQL and edits metrics, admin does everything. access.Public
// needs no sign-in.
const (
	public    = access.Public
	executive = access.RoleExecutive
	finance   = access.RoleFinance
	analyst   = access.RoleAnalyst
	admin     = access.RoleAdmin
)

// routes builds the router. Every route of the server is registered here, with s.get, s.head or
// s.post and the least role it needs (auth.go); a route without a role fails TestRouteRoles.
func (s *Server) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	s.engine = r
	// Trust no proxy headers but those of the configured proxies: otherwise ClientIP is the peer.
	_ = r.SetTrustedProxies(s.cfg.Auth.TrustedProxies)
	r.RedirectTrailingSlash = true
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = false

	// Order matters: the request id comes first so every log line and error page carries it.
	r.Use(s.requestID, s.requestLogger, s.telemetry.observeHTTP, s.recovery, securityHeaders)

	s.get("/healthz", public, s.handle(s.healthz))
	s.head("/healthz", public, s.handle(s.healthz))
	s.get("/readyz", public, s.handle(s.readyz))
	// Prometheus: an admin, or a bearer token of scope metrics (telemetry.go).
	s.get(metricsPath, admin, s.handle(s.metricsPage))

	s.get(static.Prefix+"*path", public, s.handle(s.staticAsset))
	s.head(static.Prefix+"*path", public, s.handle(s.staticAsset))

	// Sign-in (login.go).
	s.get("/login", public, s.handle(s.loginPage))
	s.post("/login", public, s.handle(s.loginSubmit))
	s.post("/logout", executive, s.handle(s.logout))

	// Dashboard pages (filters in the URL, see filters.go).
	s.get("/", executive, s.handle(s.overview))
	s.get("/kpi/:name", executive, s.handle(s.kpi)) // also /kpi/<name>.csv, for finance and up
	s.get("/tiles/:name", executive, s.handle(s.tilePartial))
	s.get(liveURL, executive, s.handle(s.live))
	s.get(channelsPath, executive, s.handle(s.channels))
	s.get("/retention", executive, s.handle(s.retention)) // cohort retention matrix
	s.get("/funnel", executive, s.handle(s.funnel))       // touchpoint → signup → first order → repeat
	// Data: sources and freshness, ingest runs, quarantine (raw records), metric catalog (data.go):
	// the analyst's pages.
	s.get("/data", analyst, s.handle(s.dataPage))
	s.get("/data/quarantine", analyst, s.handle(s.quarantinePage))
	// The SQL console (console.go): read-only queries, their downloads, each user's history.
	s.get("/sql", analyst, s.handle(s.consolePage))
	s.post("/sql", analyst, s.handle(s.consoleRun))
	s.post("/sql/download", analyst, s.handle(s.consoleDownload))
	// Customers: search, best customers, at risk, RFM segments; the customer 360.
	s.get("/customers", executive, s.handle(s.customersPage))
	s.get("/customers/:id", executive, s.handle(s.customer360))
	// Reports: the monthly finance pack to download (reports.go); admins also see the schedules.
	s.get(reportsPath, finance, s.handle(s.reportsPage))
	s.get(financePackPath, finance, s.handle(s.financePack))
	// The system page: store and engine (the former home page).
	s.get("/about", executive, s.handle(s.home))

	// Administration (admin.go).
	s.get("/admin/users", admin, s.handle(s.adminUsers))
	s.post("/admin/users", admin, s.handle(s.adminAddUser))
	s.post("/admin/users/:email", admin, s.handle(s.adminChangeUser))
	s.get("/admin/audit", admin, s.handle(s.adminAudit))

	// JSON API: the same URL parameters as the pages; errors are JSON. A session or an API
	// token of scope read (or admin).
	s.get("/api/v1/metrics", finance, s.handleAPI(s.apiCatalog))
	s.get("/api/v1/metrics/:name", finance, s.handleAPI(s.apiMetric))
	// Exports (exports.go): a metric as CSV/XLSX with its manifest. Every table of the pages
	// downloads from its page's own URL (?table=ID, tables.go).
	s.get("/api/v1/export/metric/:name", finance, s.handleAPI(s.apiExportMetric))
	// Rollups (rollups.go): their state and freshness, and the metrics read from raw rows.
	s.get("/api/rollups", analyst, s.handleAPI(s.apiRollups))
	// Events: authenticated by an API token of scope ingest (see ingest/events).
	s.post("/api/v1/events/:entity", public, s.handle(s.events))

	r.NoRoute(s.handle(s.notFound))
	return r
}
