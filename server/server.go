// Package server is converge's HTTP front: a gin router serving server-rendered pages (templ),
// health endpoints and static assets. All routes are in routes.go; handlers are thin, one file per
// page, and return an error that one wrapper (errors.go) logs once and renders.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/access"
)

// Store is what the server needs of the warehouse.
type Store interface {
	// Ping reports whether the store answers queries.
	Ping(ctx context.Context) error
	// Describe names the store for people, e.g. "embedded ./data" or "http://host:8123".
	Describe() string
	// ServerVersion is the ClickHouse engine's version, e.g. "26.5.3.1".
	ServerVersion(ctx context.Context) (string, error)
}

// Config is the server's configuration.
type Config struct {
	// Addr is the TCP address ListenAndRun listens on; default ":8080".
	Addr string
	// ShutdownTimeout bounds the graceful shutdown: in-flight requests get this long to finish
	// once the context given to Run is done; default 10 s.
	ShutdownTimeout time.Duration
	// TZ is the default report time zone (IANA name) of the dashboard; a request may choose
	// another with ?tz=. Default "UTC".
	TZ string
	// WeekStart is the first day of a week bucket as the metrics layer buckets weeks (the zero
	// value is Sunday); the dashboard states it next to the grain.
	WeekStart time.Weekday
	// FiscalYearStartMonth is the first month of the fiscal year, for the fiscal range presets;
	// zero means January.
	FiscalYearStartMonth time.Month
	// TileTimeout is each dashboard widget's time budget (one metric query); default 3 s.
	TileTimeout time.Duration
	// FinishInBackground says that the metric registry finishes a query a widget gave up on
	// and caches its answer (metrics.Options.Finish): a widget over its budget says so.
	FinishInBackground bool
	// KeepAlive is the interval of keep-alive comments on /events/live; default 15 s.
	KeepAlive time.Duration
	// StaleAfter marks a source stale on the data page when its last successful load ended
	// longer ago than this; default 48 hours (a daily feed that missed a day).
	StaleAfter time.Duration
	// Auth configures the session cookie and reverse proxies (auth.go).
	Auth AuthConfig
	// ExportMaxRows is the most data rows a download of the SQL console or of a dashboard
	// table holds (export.max_rows); a longer one is cut and says so. 0: no limit.
	ExportMaxRows int
}

// Defaults applied by New for zero Config fields.
const (
	DefaultAddr            = ":8080"
	DefaultShutdownTimeout = 10 * time.Second
	DefaultTZ              = "UTC"
	DefaultTileTimeout     = 3 * time.Second
	DefaultKeepAlive       = 15 * time.Second
	DefaultStaleAfter      = 48 * time.Hour
)

// Deps are the server's collaborators.
type Deps struct {
	Store Store
	// Log receives request and error logs; nil discards them.
	Log *slog.Logger
	// Version is converge's build version, shown in the page footer.
	Version string
	// Metrics answers the dashboard's and the API's metric queries; nil shows the dashboard
	// pages in a "metrics are not configured" state and makes the metric API answer 503.
	Metrics Metrics
	// Changes, optional, tells open dashboards to refresh their tiles; nil: /events/live only
	// sends keep-alive comments.
	Changes Changes
	// Events, optional, receives POST /api/v1/events/{entity} (NDJSON or a JSON array of
	// records, authenticated with an ingest token); nil answers 503.
	Events http.Handler
	// Data, optional, serves the data pages (/data, /data/quarantine) from the ingest
	// bookkeeping (ingest.NewCatalog); nil answers them with 503.
	Data Data
	// Access signs users in and keeps sessions and the audit log; nil: nobody can sign in and
	// every route but the public ones answers 401 (or redirects to /login).
	Access *access.Service
	// Tokens, optional, admits API tokens on /api/: scope read as the finance role, admin as
	// admin.
	Tokens TokenVerifier
	// Customers, optional, answers the customer pages (/customers, /customers/:id); nil makes
	// them answer 503 "not configured".
	Customers Customers
	// Telemetry, optional, holds the Prometheus metrics served on /metrics (telemetry.go); nil:
	// the server makes its own, with the HTTP, runtime and process metrics only.
	Telemetry *Telemetry
	// Reports, optional, makes the finance pack (/reports) and lists the scheduled reports; nil
	// makes /reports answer 503.
	Reports Reports
	// Exports, optional, writes CSV/XLSX exports and runs the SQL console (export.Service);
	// nil makes the downloads and the console answer 503 "not configured".
	Exports Exports
	// Now, optional, is the clock the date presets (last 30 days, …) count from; nil is
	// time.Now. The benchmark sets it to the demo data's last day.
	Now func() time.Time
}

// Timeouts of store calls made while serving a request.
const (
	readyTimeout   = 2 * time.Second  // /readyz ping
	versionTimeout = 2 * time.Second  // engine version on the home page
	catalogTimeout = 10 * time.Second // the metric catalog on any dashboard page (definitions are checked once per version)
)

// Server serves converge's HTTP interface.
type Server struct {
	cfg     Config
	store   Store
	log     *slog.Logger
	version string
	metrics Metrics
	changes Changes
	engine  *gin.Engine
	now     func() time.Time // today's reference for the range presets
	eventsH http.Handler
	data    Data
	// customers answers the customer pages; nil: not configured.
	customers Customers
	// telemetry holds the Prometheus metrics (telemetry.go).
	telemetry *Telemetry
	// reports makes the report packs; nil: not configured.
	reports Reports
	exports Exports
	// closing is closed when a graceful shutdown starts, so long-lived streams end.
	closing   chan struct{}
	closeOnce sync.Once

	access   *access.Service
	tokens   TokenVerifier
	roles    map[string]access.Role // "METHOD /path" → least role (auth.go)
	proxies  []netip.Prefix         // Config.Auth.TrustedProxies
	loopback atomic.Bool            // the server listens on loopback only (for Secure cookies)
	testUser *access.User           // set by tests only: every request is this user's
}

// New builds a server and its routes. It does not listen; see Run and ListenAndRun.
func New(cfg Config, deps Deps) *Server {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.TZ == "" {
		cfg.TZ = DefaultTZ
	}
	if cfg.TileTimeout <= 0 {
		cfg.TileTimeout = DefaultTileTimeout
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if cfg.FiscalYearStartMonth < time.January || cfg.FiscalYearStartMonth > time.December {
		cfg.FiscalYearStartMonth = time.January
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = slog.New(LogHandler(log.Handler())) // lines logged with a request's context carry its id
	if _, err := loadZone(cfg.TZ); err != nil {
		log.Error("server: bad report time zone, using UTC", "tz", cfg.TZ, "error", err)
		cfg.TZ = DefaultTZ
	}
	proxies, err := ParseProxies(cfg.Auth.TrustedProxies)
	if err != nil {
		log.Error("server: trusted proxies ignored", "error", err)
		cfg.Auth.TrustedProxies, proxies = nil, nil
	}
	s := &Server{
		cfg:     cfg,
		store:   deps.Store,
		log:     log,
		version: deps.Version,
		metrics: deps.Metrics,
		changes: deps.Changes,
		eventsH: deps.Events,
		data:    deps.Data,
		now:     time.Now,
		closing: make(chan struct{}),
		access:  deps.Access,
		tokens:  deps.Tokens,
		roles:   map[string]access.Role{},
		proxies: proxies,
	}
	if deps.Metrics != nil {
		s.metrics = roleMetrics{deps.Metrics}
	}
	s.loopback.Store(isLoopback(cfg.Addr))
	s.customers = deps.Customers
	s.telemetry = deps.Telemetry
	if s.telemetry == nil {
		s.telemetry = NewTelemetry(TelemetryConfig{Log: log})
	}
	s.reports = deps.Reports
	if deps.Now != nil {
		s.now = deps.Now
	}
	s.exports = deps.Exports
	s.engine = s.routes()
	return s
}

// Handler returns the server's HTTP handler (for tests and for embedding in another server).
func (s *Server) Handler() http.Handler { return s.engine }

// ListenAndRun listens on Config.Addr and calls Run.
func (s *Server) ListenAndRun(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("server: listen on %s: %w", s.cfg.Addr, err)
	}
	return s.Run(ctx, ln)
}

// Run serves on ln until ctx is done, then shuts down gracefully: it stops accepting connections
// and waits up to Config.ShutdownTimeout for in-flight requests before closing them. It returns
// nil after a clean shutdown, and an error if serving fails or the shutdown timed out.
// Run closes ln.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.engine,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.loopback.Store(isLoopback(ln.Addr().String()))
	// Shutdown waits for active requests: end the event streams (/events/live) at once.
	srv.RegisterOnShutdown(func() { s.closeOnce.Do(func() { close(s.closing) }) })
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	s.log.Info("server listening", "addr", ln.Addr().String())

	select {
	case err := <-served:
		// Serve failed before shutdown was requested.
		return fmt.Errorf("server: serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}

	s.log.Info("server shutting down", "timeout", s.cfg.ShutdownTimeout)
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	shutErr := srv.Shutdown(shutCtx)
	if shutErr != nil {
		_ = srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: serve on %s: %w", ln.Addr(), err)
	}
	if shutErr != nil {
		return fmt.Errorf("server: graceful shutdown: %w", shutErr)
	}
	s.log.Info("server stopped")
	return nil
}
