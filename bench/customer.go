package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"time"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/server"
)

// customer360: the customer 360 page of the customer with the most orders,
// served by the real server: cold loads vs the statements they ran replayed
// one after another, warm loads (the page has no answer cache: warm means
// the engine's caches are warm), and its HTML bytes.
func customer360(ctx context.Context, cfg *Config) ([]Result, error) {
	var id string
	if err := cfg.Store.Conn.QueryRow(ctx, `SELECT customer_id FROM orders_resolved WHERE customer_id != ''
GROUP BY customer_id ORDER BY count() DESC, customer_id LIMIT 1`).Scan(&id); err != nil {
		return nil, err
	}
	reg, err := metrics.New(ctx, metrics.Options{Store: cfg.Store, Lanes: cfg.Lanes})
	if err != nil {
		return nil, err
	}
	srv := server.New(server.Config{TZ: "UTC", WeekStart: time.Monday, TileTimeout: time.Hour}, server.Deps{Store: cfg.Store,
		Metrics:   server.NewRegistryMetrics(reg, server.RegistryConfig{Currency: "EUR", WeekStart: time.Monday}),
		Customers: metrics.NewCustomers(cfg.Store)})
	target := "/customers/" + url.PathEscape(id)
	load := func(rctx context.Context) (time.Duration, int, error) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(access.WithUser(rctx, benchUser), http.MethodGet, target, nil)
		t0 := time.Now()
		srv.Handler().ServeHTTP(rec, req)
		d := time.Since(t0)
		if rec.Code != http.StatusOK {
			return 0, 0, fmt.Errorf("customer 360 %s: status %d", id, rec.Code)
		}
		return d, rec.Body.Len(), nil
	}
	var cold, raw, coldBusy, rawBusy []float64
	var perQuery []map[string]float64
	var bytes, stmts int
	for range cfg.PageCold {
		var rec recorder
		c0 := cpuTime()
		d, n, err := load(rec.ctx(ctx))
		if err != nil {
			return nil, err
		}
		cb := busy(cpuTime()-c0, d)
		r, rb, per, err := replayEach(ctx, cfg, rec.stmts)
		if err != nil {
			return nil, err
		}
		perQuery = append(perQuery, per)
		cold, raw, bytes, stmts = append(cold, msOf(d)), append(raw, msOf(r)), n, len(rec.stmts)
		coldBusy, rawBusy = append(coldBusy, cb), append(rawBusy, rb)
	}
	var warm []float64
	for range cfg.Warm {
		d, _, err := load(ctx)
		if err != nil {
			return nil, err
		}
		warm = append(warm, msOf(d))
	}
	note := fmt.Sprintf("customer %s; vs its %d statements one after another; cores busy %.2f, one after another %.2f of %d",
		id, stmts, median(coldBusy), median(rawBusy), runtime.NumCPU())
	if s := slowest(perQuery, 4); s != "" {
		note += "; slowest statements (median of the loads, one after another): " + s
	}
	cm, cp := quantiles(cold)
	rm, _ := quantiles(raw)
	wm, wp := quantiles(warm)
	return []Result{
		{Group: "page", Name: "customer 360 first loads", Unit: "ms", Median: cm, P95: cp, Direct: rm, Ratio: cm / rm, N: len(cold),
			Note: note},
		{Group: "page", Name: "customer 360 repeated", Unit: "ms", Median: wm, P95: wp, N: cfg.Warm},
		{Group: "page", Name: "customer 360 HTML", Unit: "bytes", Median: float64(bytes), N: 1},
	}, nil
}
