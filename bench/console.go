package bench

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/export"
	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/server"
	"github.com/converge-dev/converge/warehouse"
)

// consoleAnalyst runs the console load (bench's user is an admin).
var consoleAnalyst = access.User{Email: "bench-analyst", Role: access.RoleAnalyst}

// consoleLoadQuery keeps one engine thread busy until its time limit (issue #15's "30 s
// queries"): it reads no table, so it is the same on any data.
const consoleLoadQuery = "SELECT count() FROM numbers(1000000000000) WHERE cityHash64(number) % 7 = 1"

// consoleClients is how many console queries the analyst keeps asking for at once.
const consoleClients = 6

// consoleLoad: the overview as it opens (last 30 days, the clock at the data's last day),
// cfg.PageCold cold loads (a fresh registry each: no answer cached) alone, then as many while
// one analyst keeps six long console queries going through the server's /sql (each posted
// again as soon as it ends; one refused with 429 is posted again 200 ms later), side by side:
// medians, p95 and the ratio (target: at most 2). Also /readyz, asked before each loaded
// load: how many answered 200; and how many console queries ran and were refused. The
// console runs as serve runs it: export.Gate's defaults (2 per person, 3 in all) and the
// console's engine priority and threads.
func consoleLoad(ctx context.Context, cfg *Config) ([]Result, error) {
	last, err := lastOrder(ctx, cfg)
	if err != nil {
		return nil, err
	}
	opened := func() time.Time { return last }
	exports := &export.Service{Store: cfg.Store, Console: warehouse.Console{MaxRows: 10000}, Gate: &export.Gate{}}
	newServer := func() (*server.Server, error) {
		reg, err := metrics.New(ctx, metrics.Options{Store: cfg.Store, Lanes: cfg.Lanes, CacheTTL: -1})
		if err != nil {
			return nil, err
		}
		if errs := reg.Check(ctx); len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		m := server.NewRegistryMetrics(reg, server.RegistryConfig{Currency: "EUR", WeekStart: time.Monday})
		if _, err := m.Catalog(ctx); err != nil {
			return nil, err
		}
		return server.New(server.Config{TZ: "UTC", WeekStart: time.Monday, TileTimeout: time.Hour},
			server.Deps{Store: cfg.Store, Metrics: m, Exports: exports, Now: opened}), nil
	}
	load := func() (time.Duration, error) {
		srv, err := newServer()
		if err != nil {
			return 0, err
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(access.WithUser(ctx, benchUser), http.MethodGet, "/", nil)
		t0 := time.Now()
		srv.Handler().ServeHTTP(rec, req)
		d := time.Since(t0)
		if rec.Code != http.StatusOK {
			return 0, fmt.Errorf("overview: status %d", rec.Code)
		}
		if errs := tileErrRe.FindAllStringSubmatch(rec.Body.String(), -1); len(errs) > 0 {
			return 0, fmt.Errorf("overview: %d tiles failed: %s", len(errs), html.UnescapeString(strings.TrimSpace(errs[0][1])))
		}
		return d, nil
	}
	// A first load learns the statements' costs (metrics.Lanes) and warms the engine: not counted.
	if _, err := load(); err != nil {
		return nil, err
	}
	var alone []float64
	for i := range cfg.PageCold {
		d, err := load()
		if err != nil {
			return nil, err
		}
		alone = append(alone, msOf(d))
		cfg.Log.Info("bench: overview alone", "n", i+1, "ms", msOf(d))
	}

	srv, err := newServer()
	if err != nil {
		return nil, err
	}
	lctx, stop := context.WithCancel(ctx)
	var ran, refused, failed atomic.Int64
	var wg sync.WaitGroup
	for range consoleClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lctx.Err() == nil {
				rec := httptest.NewRecorder()
				form := url.Values{"query": {consoleLoadQuery}}
				req := httptest.NewRequestWithContext(access.WithUser(lctx, consoleAnalyst), http.MethodPost, "/sql", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				srv.Handler().ServeHTTP(rec, req)
				switch {
				case rec.Code == http.StatusTooManyRequests:
					refused.Add(1)
					select {
					case <-lctx.Done():
					case <-time.After(200 * time.Millisecond):
					}
				case lctx.Err() != nil:
				case rec.Code == http.StatusBadRequest && strings.Contains(rec.Body.String(), "time ("):
					ran.Add(1) // ran to its time limit, as meant
				default:
					failed.Add(1)
					ran.Add(1)
				}
			}
		}()
	}
	// Let the console queries start before the first loaded load.
	for waited := 0; waited < 50; waited++ {
		if _, all := exports.Gate.Running(""); all >= export.DefaultPerUser {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var loaded []float64
	ready, readyAsked := 0, 0
	var lerr error
	for i := range cfg.PageCold {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/readyz", nil))
		readyAsked++
		if rec.Code == http.StatusOK {
			ready++
		}
		d, err := load()
		if err != nil {
			lerr = err
			break
		}
		loaded = append(loaded, msOf(d))
		mine, _ := exports.Gate.Running(consoleAnalyst.Email)
		cfg.Log.Info("bench: overview beside console queries", "n", i+1, "ms", msOf(d), "console_running", mine)
	}
	stop()
	wg.Wait()
	if lerr != nil {
		return nil, fmt.Errorf("beside console queries: %w", lerr)
	}
	am, ap := quantiles(alone)
	lm, lp := quantiles(loaded)
	return []Result{
		{Group: "console", Name: "overview as opened, cold, alone", Unit: "ms", Median: am, P95: ap, N: len(alone),
			Note: "last 30 days to " + last.Format(time.DateOnly) + " at day grain"},
		{Group: "console", Name: "overview as opened, cold, beside six console queries", Unit: "ms", Median: lm, P95: lp, Direct: am, Ratio: lm / am, N: len(loaded),
			Note: fmt.Sprintf("one analyst keeping %d long console queries going (2 run at a time, priority %d, %d thread(s) each); 'engine direct' is the overview alone; p95 ratio %.2f",
				consoleClients, warehouse.DefaultConsolePriority, warehouse.DefaultConsoleThreads(), lp/ap)},
		{Group: "console", Name: "/readyz beside six console queries", Unit: "answered 200", Median: float64(ready), N: readyAsked,
			Note: fmt.Sprintf("console queries run %d (failed otherwise than at their time limit %d), refused at once with 429 %d", ran.Load(), failed.Load(), refused.Load())},
	}, nil
}
