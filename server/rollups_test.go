package server

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// TestRollupsPages, on the real metrics layer: the KPI page's definition says how its values
// were computed (raw rows and why before the rollups are built; the rollup and its as-of
// after, per input of a derived metric); the data page's Rollups section lists each rollup's
// state; GET /api/rollups answers the same as JSON to analysts and admins, 403 to executives,
// and leaves out the rollups of metrics the person may not see.
func TestRollupsPages(t *testing.T) {
	ctx := context.Background()
	st := whtest.Store(t)
	if err := st.Conn.Exec(ctx, `INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, cost, status, channel, country, source) VALUES
		('o1','c1','2026-01-05 10:00:00',100,'EUR',60,'completed','ads','DE','shop'),
		('o2','c2','2026-01-20 12:00:00',200,'EUR',120,'completed','organic','FR','shop'),
		('o3','c1','2026-02-10 12:00:00',80,'EUR',40,'completed','email','DE','shop')`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, def := range map[string]string{"refunded_revenue.sql": joinedMetric, "finance_orders.sql": financeMetric} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(def), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reg, err := metrics.New(ctx, metrics.Options{Store: st, CacheTTL: -1, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	m := NewRegistryMetrics(reg, RegistryConfig{Currency: "EUR", WeekStart: time.Monday})
	env := newAccessEnv(t, Config{TZ: "UTC", WeekStart: time.Monday, TileTimeout: time.Minute}, access.Config{},
		Deps{Metrics: m, Data: ingest.NewCatalog(st)})
	analystSess, execSess := env.session(t, access.RoleAnalyst), env.session(t, access.RoleExecutive)
	page := func(target string, sess access.Session) (int, string) {
		rec := env.send(t, ctx, http.MethodGet, target, &sess, nil, nil)
		return rec.Code, rec.Body.String()
	}
	const rng = "?from=2026-01-01&to=2026-02-28&grain=month"

	code, body := page("/kpi/orders"+rng, execSess)
	if code != http.StatusOK || !strings.Contains(body, "<dt>Computed</dt>") ||
		!strings.Contains(body, "from raw rows: its rollup rollup_orders is not built yet") {
		t.Fatalf("KPI page before upkeep: %d\n%s", code, excerpt(body, "Computed"))
	}
	if _, err := reg.UpkeepRollups(ctx); err != nil {
		t.Fatal(err)
	}
	code, body = page("/kpi/aov"+rng, execSess)
	if code != http.StatusOK || !strings.Contains(body, "<code>orders</code> from rollup rollup_orders (as of ") ||
		!strings.Contains(body, "<code>revenue_gross</code> from rollup rollup_revenue_gross (as of ") {
		t.Fatalf("KPI page of a derived metric after upkeep: %d\n%s", code, excerpt(body, "Computed"))
	}
	code, body = page("/kpi/refunded_revenue"+rng, execSess)
	if code != http.StatusOK || !strings.Contains(body, "from raw rows: its model uses JOIN") {
		t.Fatalf("KPI page of a raw metric: %d\n%s", code, excerpt(body, "Computed"))
	}

	code, body = page("/data", analystSess)
	sec := excerpt(body, `id="rollups"`)
	if code != http.StatusOK || !strings.Contains(sec, `<h2 id="rollups-heading">Rollups</h2>`) ||
		!strings.Contains(sec, `<tr id="rollup-orders"><th scope="row"><code>rollup_orders</code></th><td>orders</td><td><span class="badge badge-fresh">ready</span></td>`) ||
		!strings.Contains(sec, `<li id="raw-refunded_revenue"><code>refunded_revenue</code> (orders, refunds): its model uses JOIN`) ||
		strings.Contains(sec, "finance_orders") {
		t.Fatalf("data page rollups section: %d\n%s\nraw: %s", code, sec, excerpt(body, `class="raw-metrics"`))
	}

	code, body = page("/api/rollups", analystSess)
	var rep struct {
		Rollups []rollupJSON    `json:"rollups"`
		Raw     []rawMetricJSON `json:"raw"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &rep) != nil {
		t.Fatalf("/api/rollups as analyst: %d %s", code, body)
	}
	ok := false
	for _, r := range rep.Rollups {
		if r.Metric == "orders" {
			ok = r.Status == "ready" && r.Table == "rollup_orders" && r.Rows > 0 && r.AsOf != nil && r.Generation > 0
		}
	}
	if !ok || len(rep.Raw) == 0 {
		t.Errorf("/api/rollups: orders not ready with rows, or no raw metrics: %s", body)
	}
	for _, r := range rep.Rollups {
		if r.Metric == "finance_orders" {
			t.Errorf("/api/rollups shows an analyst the rollup of a finance-only metric: %+v", r)
		}
	}
	// An admin sees every metric, that one's rollup too.
	code, body = page("/api/rollups", env.session(t, access.RoleAdmin))
	if code != http.StatusOK || !strings.Contains(body, `"rollup_finance_orders"`) {
		t.Errorf("/api/rollups as admin: %d, want rollup_finance_orders listed: %s", code, body)
	}
	if code, body := page("/api/rollups", execSess); code != http.StatusForbidden {
		t.Errorf("/api/rollups as executive: %d %s, want 403", code, body)
	}
}

// joinedMetric reads two fact tables: answered from raw rows, with the reason.
const joinedMetric = `-- name: refunded_revenue
-- title: Revenue of refunded orders
-- description: A model that joins refunds to orders.
-- owner: CFO
-- unit: currency
-- polarity: higher_is_better
-- kind: simple
-- time: ordered_at
-- measure: sum(revenue)
SELECT o.ordered_at AS ordered_at, o.revenue AS revenue
FROM orders_latest AS o INNER JOIN refunds AS r ON r.source = o.source AND r.order_id = o.order_id
`

// financeMetric is rolled up and seen by finance (and admins) only.
const financeMetric = `-- name: finance_orders
-- title: Orders (finance)
-- description: Orders, for finance only.
-- owner: CFO
-- unit: count
-- polarity: higher_is_better
-- kind: simple
-- time: ordered_at
-- measure: count()
-- roles: finance
SELECT ordered_at FROM orders_latest
`

// excerpt is body from the first marker on (a page's section, for failure messages).
func excerpt(body, marker string) string {
	i := strings.Index(body, marker)
	if i < 0 {
		return "(" + marker + " not found)"
	}
	return body[i:min(len(body), i+8000)]
}
