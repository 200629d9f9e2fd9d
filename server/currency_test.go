package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// An order in a currency converge cannot convert, stored by an older version (inserted here
// straight into the store, bypassing ingest's checks), once made revenue_gross answer 500
// "internal error" and broke every tile that reads it. Now the metric answers for the other
// orders and names the one it leaves out: on the API, on the tile, on the KPI page.
func TestUnconvertibleCurrency(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	if err := st.Conn.Exec(ctx, `INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, channel, source) VALUES
		('o1', 'C1', '2025-03-01 10:00:00', 40, 'EUR', 'ads', 'shop'), ('o2', 'C2', '2025-03-09 10:00:00', 60, 'XX', 'ads', 'shop')`); err != nil {
		t.Fatal(err)
	}
	reg, err := metrics.New(ctx, metrics.Options{Store: st, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	m := NewRegistryMetrics(reg, RegistryConfig{Currency: "EUR", WeekStart: time.Monday})
	const warn = "1 order in currency XX left out: not convertible to EUR"

	res, err := m.Query(ctx, "revenue_gross", MetricQuery{From: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC),
		To: time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC), Grain: "month", TZ: "UTC"})
	if err != nil {
		t.Fatalf("revenue_gross through the metrics layer: %v, want an answer", err)
	}
	if res.Total == nil || *res.Total != 40 || len(res.Warnings) != 1 || !strings.HasPrefix(res.Warnings[0].Message, warn) {
		t.Fatalf("revenue_gross: total %v warnings %+v, want 40 and the XX order named", res.Total, res.Warnings)
	}

	srv := asAdmin(New(Config{TZ: "UTC", WeekStart: time.Monday, TileTimeout: time.Minute}, Deps{Store: fakeStore{}, Metrics: m}))
	h := srv.Handler()
	const period = "range=custom&from=2025-03-01&to=2025-03-31"
	api := []struct {
		name, target string
		total        float64
		currency     string
		warnings     int
	}{
		{"the rest, and the rows left out named", "/api/v1/metrics/revenue_gross?" + period, 40, "EUR", 1},
		{"a ratio over the same orders", "/api/v1/metrics/aov?" + period, 40, "EUR", 1},
		{"a margin (no cost: the 30 % margin setting)", "/api/v1/metrics/gross_margin?" + period, 12, "EUR", 1},
		{"asked in that currency", "/api/v1/metrics/revenue_gross?" + period + "&f.currency=XX", 60, "XX", 0},
	}
	for _, c := range api {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.target, nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("%s: %d %s, want 200", c.target, rec.Code, rec.Body.String())
			}
			var body struct {
				Total    *float64 `json:"total"`
				Metric   struct{ Currency string }
				Warnings []struct {
					Code, Currency, Message string
					Rows                    int64
				}
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if body.Total == nil || *body.Total != c.total || body.Metric.Currency != c.currency || len(body.Warnings) != c.warnings {
				t.Fatalf("%s: %s, want total %v in %s with %d warnings", c.target, rec.Body.String(), c.total, c.currency, c.warnings)
			}
			if c.warnings > 0 {
				w := body.Warnings[0]
				if w.Code != "not_convertible" || w.Currency != "XX" || w.Rows != 1 || !strings.HasPrefix(w.Message, warn) {
					t.Errorf("warning %+v", w)
				}
			}
			if !strings.Contains(rec.Body.String(), `"warnings":[`) {
				t.Errorf("warnings is not a list: %s", rec.Body.String())
			}
		})
	}

	// The overview: the tile shows the value with the warning, the other tiles render.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/?"+period, nil))
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("overview %d", rec.Code)
	}
	tile := tileHTML(t, body, "revenue_gross")
	if !strings.Contains(tile, "€40") || !strings.Contains(tile, `class="tile-warnings"`) || !strings.Contains(tile, warn) || strings.Contains(tile, "tile-error") {
		t.Errorf("revenue_gross tile: %s", tile)
	}
	if tile := tileHTML(t, body, "orders"); !strings.Contains(tile, "tile-value") || strings.Contains(tile, "tile-warnings") {
		t.Errorf("orders tile (a count of every order, nothing left out): %s", tile)
	}
	if strings.Contains(body, "several currencies") || strings.Contains(body, "internal error") {
		t.Errorf("the overview still reports the currency as an error")
	}

	// The KPI page: the headline with the warning, the trend and the breakdown render.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/kpi/revenue_gross?"+period, nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), warn) || strings.Contains(rec.Body.String(), `role="alert"`) {
		t.Fatalf("KPI page %d: %.2000s", rec.Code, rec.Body.String())
	}
}

// tileHTML is the <article> of metric name's tile in page.
func tileHTML(t *testing.T, page, name string) string {
	t.Helper()
	i := strings.Index(page, `id="tile-`+name+`"`)
	if i < 0 {
		t.Fatalf("no tile %s", name)
	}
	j := strings.Index(page[i:], "</article>")
	return page[i : i+j]
}
