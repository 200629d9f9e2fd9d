package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse/whtest"
)

func TestMain(m *testing.M) { os.Exit(whtest.Main(m)) }

// The real metrics layer behind the dashboard, on the embedded engine.
func TestRegistryMetrics(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	if err := st.Conn.Exec(ctx, `INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, source) VALUES
		('o1', 'C1', '2025-03-01 10:00:00', 40, 'EUR', 'shop'), ('o2', 'C1', '2025-03-09 10:00:00', 60, 'EUR', 'shop'),
		('o3', 'C2', '2025-03-10 10:00:00', 10, 'EUR', 'shop')`); err != nil {
		t.Fatal(err)
	}
	reg, err := metrics.New(ctx, metrics.Options{Store: st, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	m := NewRegistryMetrics(reg, RegistryConfig{Currency: "EUR", WeekStart: time.Monday})
	cat, err := m.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]MetricInfo{}
	for _, i := range cat {
		names[i.Name] = i
	}
	if _, ok := names["cohort_retention"]; ok {
		t.Error("the cohort matrix (a table) is offered as a tile")
	}
	rev, ok := names["revenue_gross"]
	if !ok || rev.Currency != "EUR" || rev.Group4R != "Return" || !rev.Valid {
		t.Fatalf("revenue_gross info %+v", rev)
	}
	q := MetricQuery{From: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC), Grain: "month", TZ: "UTC"}
	res, err := m.Query(ctx, "revenue_gross", q)
	if err != nil {
		t.Fatal(err)
	}
	if res.Total == nil || *res.Total != 110 || len(res.Series) != 1 || !res.Series[0].Points[0].Bucket.Equal(q.From) {
		t.Fatalf("revenue_gross %+v", res)
	}
	// Percentages reach the dashboard as fractions: 1 of 2 customers bought again.
	res, err = m.Query(ctx, "repeat_purchase_rate", q)
	if err != nil {
		t.Fatal(err)
	}
	if res.Total == nil || *res.Total != 0.5 {
		t.Fatalf("repeat_purchase_rate total %v", res.Total)
	}
	// The overview renders with real tiles.
	srv := asAdmin(New(Config{TZ: "UTC", WeekStart: time.Monday, TileTimeout: time.Minute}, Deps{Store: fakeStore{}, Metrics: m}))
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/?range=custom&from=2025-03-01&to=2025-03-31", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "Gross revenue") || !strings.Contains(rec.Body.String(), "€110") {
		t.Fatalf("overview %d: %.400s", rec.Code, rec.Body.String())
	}
}
