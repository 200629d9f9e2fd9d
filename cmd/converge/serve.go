package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/export"
	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/ingest/events"
	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/reports"
	"github.com/converge-dev/converge/server"
	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/embedded"
)

func (a *app) serveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the dashboard (and, for the embedded store, a loopback ClickHouse endpoint)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.serve(cmd.Context())
		},
	}
	cmd.Flags().String("addr", "", "listen address of the dashboard (default :8080, key server.addr)")
	return cmd
}

func (a *app) serve(ctx context.Context) error {
	start := time.Now()
	st, err := a.openServeStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	acc, err := a.openAccess(st)
	if err != nil {
		return err
	}
	// What serve needs of the store before it is ready: the database, the schema, the first
	// admin. The embedded store must be prepared to start; a remote one that does not answer
	// yet is retried while the server runs with /readyz 503 (startup.go).
	prepare := func(ctx context.Context) error {
		if st.Engine == nil {
			if err := st.Prepare(ctx); err != nil {
				return err
			}
		}
		if _, err := st.Migrate(ctx); err != nil { // logs what it applied, in one line
			return err
		}
		// Runs of a process that ended mid-run (killed, crashed): failed, or their commit
		// finished, before the data page or the events API use the store.
		if _, err := ingest.Recover(ctx, st, a.log); err != nil {
			a.log.Error("ingest: recovering interrupted runs failed; the next start tries again", "err", err)
		}
		return a.bootstrapAdmin(ctx, acc)
	}
	gate := &storeGate{Store: st}
	if err := prepare(ctx); err != nil {
		if st.Engine != nil {
			return err
		}
		gate.setPending(err)
		a.log.Warn("store not ready: serving with /readyz 503 until it answers", "store", st.Describe(), "retry_every", startRetry.String(), "error", err)
	}
	ln, err := net.Listen("tcp", a.cfg.ServerAddr)
	if err != nil {
		return fmt.Errorf("server.addr %s: %w", a.cfg.ServerAddr, err)
	}
	catalog := ingest.NewCatalog(st)
	tel := server.NewTelemetry(server.TelemetryConfig{Quarantine: catalog, Store: gate, Log: a.log})
	lanes := a.lanes()
	defer a.saveLanes(lanes)
	reg, err := metrics.New(ctx, metrics.Options{Store: st, Dir: a.cfg.MetricsDir, Log: a.log, OnQuery: tel.ObserveQuery, Finish: a.cfg.ServerFinish, Lifetime: ctx, Lanes: lanes, Defaults: metrics.Defaults{
		TZ: a.cfg.ReportTZ, SundayWeeks: a.cfg.ReportWeekStart == time.Sunday, FiscalYearStart: a.cfg.ReportFiscalYearStart, Margin: a.cfg.ReportDefaultMargin,
		Currency: a.cfg.ReportCurrency}})
	if err != nil {
		ln.Close()
		return err
	}
	for _, e := range reg.Errors() {
		a.log.Warn("metric definition refused (the last good version, if any, keeps serving)", "err", e)
	}
	rep, err := reports.New(reg, st, a.cfg.Reports, reports.Options{Log: a.log, Audit: acc.Audit})
	if err != nil {
		ln.Close()
		return err
	}
	changes := server.NewBroadcaster()
	tokens := events.NewTokens(st, 0)
	evs := events.New(st, tokens, events.Config{}, a.log)
	evs.OnData = func(string) {
		if a.cfg.RollupsInterval > 0 {
			reg.KickRollups() // the open pages hear of it once the rollups hold it
			return
		}
		changes.Notify()
	}
	evs.OnRecords = tel.ObserveIngest
	defer evs.Close(context.WithoutCancel(ctx)) // flush what is buffered at shutdown
	srv := server.New(server.Config{Addr: a.cfg.ServerAddr, TZ: a.cfg.ReportTZ.String(), TileTimeout: a.cfg.ServerTileTimeout, FinishInBackground: a.cfg.ServerFinish > 0, WeekStart: a.cfg.ReportWeekStart,
		FiscalYearStartMonth: a.cfg.ReportFiscalYearStart, Auth: a.cfg.Auth.server(), ExportMaxRows: a.cfg.ExportMaxRows}, server.Deps{Store: gate, Log: a.log, Version: convergeVersion(),
		Events: evs, Changes: changes, Access: acc, Tokens: tokens, Data: catalog, Telemetry: tel,
		Customers: metrics.NewCustomers(st), Reports: rep,
		Exports: &export.Service{Store: st, Registry: reg, Margin: a.cfg.ReportDefaultMargin, Console: a.cfg.console(),
			Gate: consoleGate(a.cfg)},
		Metrics: server.NewRegistryMetrics(reg, server.RegistryConfig{Currency: a.cfg.ReportCurrency, WeekStart: a.cfg.ReportWeekStart,
			FiscalYearStart: a.cfg.ReportFiscalYearStart})})
	g, gctx := errgroup.WithContext(ctx)
	if a.cfg.MetricsDir != "" {
		g.Go(func() error { return reg.Watch(gctx) })
	}
	if a.cfg.ServerMetricsAddr != "" {
		mln, err := net.Listen("tcp", a.cfg.ServerMetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("server.metrics_addr %s: %w", a.cfg.ServerMetricsAddr, err)
		}
		g.Go(func() error { return srv.ServeMetrics(gctx, mln) })
	}
	g.Go(func() error { return rep.Run(gctx) }) // the scheduled reports; stops with the server
	if a.cfg.RollupsInterval > 0 {
		// Rollups: built at the first round where missing, then kept as facts land.
		g.Go(func() error {
			reg.RunRollups(gctx, a.cfg.RollupsInterval, changes.Notify)
			return nil
		})
	}
	// What the statements cost, saved now and then (and when serve returns).
	g.Go(func() error {
		t := time.NewTicker(5 * time.Minute)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
				a.saveLanes(lanes)
			}
		}
	})
	if st.Engine != nil && a.cfg.EngineHTTPListen != "" {
		eln, err := net.Listen("tcp", a.cfg.EngineHTTPListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("engine.http_listen %s: %w (set another address, or \"\" to turn the endpoint off)", a.cfg.EngineHTTPListen, err)
		}
		random := func() string {
			var b [16]byte
			_, _ = rand.Read(b[:])
			return hex.EncodeToString(b[:])
		}
		password := a.cfg.EngineHTTPPassword
		if password == "" {
			password = random()
		}
		ep := endpoint{URL: "http://" + eln.Addr().String(), User: "default", Password: password, PID: os.Getpid()}
		epAccess := embedded.Access{Password: password}
		if u := a.cfg.EngineAnalystUser; u != "" {
			// Analysts' tools: read-only, the main database, the console's checks.
			ep.AnalystUser, ep.AnalystPassword = u, a.cfg.EngineAnalystPassword
			if ep.AnalystPassword == "" {
				ep.AnalystPassword = random()
			}
			epAccess.Analyst = &embedded.Analyst{User: u, Password: ep.AnalystPassword, Database: st.Database, Check: st.AnalystCheck}
		}
		if err := writeEndpoint(a.cfg.DataDir, ep); err != nil {
			eln.Close()
			ln.Close()
			return fmt.Errorf("publish endpoint in %s: %w", a.cfg.DataDir, err)
		}
		defer os.Remove(filepath.Join(a.cfg.DataDir, endpointFile))
		g.Go(func() error { return st.Engine.ServeAccess(gctx, eln, epAccess) })
		a.log.Info("ClickHouse HTTP endpoint for this machine", "url", ep.URL, "user", "default", "analyst_user", ep.AnalystUser,
			"passwords_in", filepath.Join(a.cfg.DataDir, endpointFile))
	}
	// The dashboard answers /readyz only once the endpoint other commands use is published.
	g.Go(func() error { return srv.Run(gctx, ln) })
	// Warm the metric cache: render the overview once, as the first visitor would (as an admin,
	// who sees every metric).
	warm := func() {
		t0 := time.Now()
		req := httptest.NewRequestWithContext(access.WithUser(gctx, access.User{Email: "system", Role: access.RoleAdmin}), http.MethodGet, "/", nil)
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		a.log.Info("dashboard warmed", "status", rec.Code, "took", time.Since(t0).Round(time.Millisecond).String())
	}
	g.Go(func() error {
		if !gate.prepared() {
			// The store came up after the start: check the analysts' files against it again.
			err := gate.prepareUntilReady(gctx, func(ctx context.Context) error {
				if err := prepare(ctx); err != nil {
					return err
				}
				if a.cfg.MetricsDir != "" {
					return reg.Reload(ctx)
				}
				return nil
			})
			if err != nil || gctx.Err() != nil {
				return err
			}
			a.log.Info("store ready", "store", st.Describe(), "after", time.Since(start).Round(time.Millisecond).String())
		}
		warm()
		return nil
	})
	a.log.Info("converge serving", "addr", ln.Addr().String(), "store", st.Describe(), "version", convergeVersion(),
		"startup", time.Since(start).Round(time.Millisecond).String())
	err = g.Wait()
	a.log.Info("converge stopped")
	return err
}

// openServeStore opens the store for serve: as other commands do for the embedded store, and
// without waiting for a remote one (warehouse.OpenDeferred), which serve prepares itself.
func (a *app) openServeStore(ctx context.Context) (*warehouse.Store, error) {
	if a.cfg.ClickHouse.Addr == "" {
		return a.openStore(ctx, true)
	}
	return warehouse.OpenDeferred(ctx, a.cfg.warehouseConfig(), a.log)
}

// consoleGate bounds the console queries running at once (Config.consoleRunning).
func consoleGate(cfg *Config) *export.Gate {
	perUser, total := cfg.consoleRunning()
	return &export.Gate{PerUser: perUser, Total: total}
}
