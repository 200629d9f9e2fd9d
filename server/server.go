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
	"time"

	"github.com/gin-gonic/gin"
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
}

// Defaults applied by New for zero Config fields.
const (
	DefaultAddr            = ":8080"
	DefaultShutdownTimeout = 10 * time.Second
)

// Deps are the server's collaborators.
type Deps struct {
	Store Store
	// Log receives request and error logs; nil discards them.
	Log *slog.Logger
	// Version is converge's build version, shown in the page footer.
	Version string
}

// Timeouts of store calls made while serving a request.
const (
	readyTimeout   = 2 * time.Second // /readyz ping
	versionTimeout = 2 * time.Second // engine version on the home page
)

// Server serves converge's HTTP interface.
type Server struct {
	cfg     Config
	store   Store
	log     *slog.Logger
	version string
	engine  *gin.Engine
}

// New builds a server and its routes. It does not listen; see Run and ListenAndRun.
func New(cfg Config, deps Deps) *Server {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:     cfg,
		store:   deps.Store,
		log:     log,
		version: deps.Version,
	}
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
