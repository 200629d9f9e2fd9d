package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/ingest/demo"
	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// rolledUp are the built-in metrics whose models a rollup follows; the others
// must say why they read raw rows.
var rolledUp = []string{"active_customers", "clv_historic", "clv_predicted", "cogs", "csat", "first_response_time", "marketing_spend",
	"new_customers", "new_customers_paid", "nps", "orders", "refunds", "repeat_purchase_rate", "resolution_time", "revenue_gross", "rewarded_customers", "rewards_spend", "tickets"}

// TestRollupsExact: for every built-in metric, on the small demo, random
// ranges, grains, report time zones (whole and half-hour offsets),
// comparisons, filters and breakdowns give the same answer from the rollups
// as from raw rows: counts equal, money to the cent, ratios to 1e-9. It holds
// again after late orders, re-sent orders with new values, new answers and
// tickets, touchpoints arriving after their order, and an identity merge, folded in by one upkeep round; and after
// an upkeep that died halfway, then ran again.
func TestRollupsExact(t *testing.T) {
	ctx := context.Background()
	st, reg := smallDemo(t)
	up, err := reg.UpkeepRollups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(up.Built) != len(rolledUp)+3 || !slices.Contains(up.Built, "rollup_attribution") || !slices.Contains(up.Built, "rollup_purchases") || !slices.Contains(up.Built, "rollup_people") || up.Partitions == 0 {
		t.Fatalf("first upkeep built %v (%d partitions), want the %d rollups of %v, rollup_attribution, rollup_purchases and rollup_people", up.Built, up.Partitions, len(rolledUp), rolledUp)
	}
	checkPaths(t, reg)
	rng := rand.New(rand.NewPCG(16, 1))
	compareAll(t, reg, rng, 4)
	compareDistinct(t, st, reg, rng, 4)
	compareViews(t, reg, rng, 8)
	comparePurchases(t, st, reg, rng, 6)

	// Later facts: late orders in an old month, a re-sent order with another
	// revenue, new NPS answers, a ticket, and an identity merge that makes
	// two customers one.
	mutate(t, st)
	// Until the upkeep folds them in, the rollups answer for the facts they
	// hold (the comparison bites).
	sept := metrics.Params{From: time.Date(2024, 9, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2024, 10, 1, 0, 0, 0, 0, time.UTC),
		Grain: metrics.Month, TZ: time.UTC, WeekStart: time.Monday, FiscalYearStart: time.January}
	before, err := reg.Query(ctx, "revenue_gross", sept)
	if err != nil {
		t.Fatal(err)
	}
	after, err := reg.Query(metrics.RawRows(ctx), "revenue_gross", sept)
	if err != nil {
		t.Fatal(err)
	}
	if sameAnswer("currency", after, before) == "" {
		t.Fatalf("revenue_gross of September 2024 from the rollup before upkeep equals raw rows with a late order in it")
	}
	up, err = reg.UpkeepRollups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if up.Partitions == 0 || len(up.Built) != 0 {
		t.Fatalf("upkeep after new facts: %d partitions, built %v; want partitions recomputed, nothing rebuilt", up.Partitions, up.Built)
	}
	wholeRange(t, reg)
	samePurchaseRows(t, st)
	if d := peopleDiff(t, st); d != "" {
		t.Errorf("rollup_people after the later facts: %s", d)
	}
	compareAll(t, reg, rng, 3)
	compareDistinct(t, st, reg, rng, 3)
	compareViews(t, reg, rng, 6)
	comparePurchases(t, st, reg, rng, 4)

	// An upkeep that dies after replacing its first partitions leaves exact
	// rollups behind their facts; the next round catches up.
	if err := st.Conn.Exec(ctx, `INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, status, channel, campaign, country, source) VALUES
		('late-3','c-late','2024-11-02 08:15:00',17.5,'EUR','completed','email','','DE','shop'),
		('late-4','c-late','2026-05-30 22:45:00',3.25,'EUR','completed','email','','DE','shop')`); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("killed")
	reg.SetRollupFault(func(string) error { return boom })
	if _, err := reg.UpkeepRollups(ctx); !errors.Is(err, boom) {
		t.Fatalf("upkeep with a fault: %v, want it to stop", err)
	}
	reg.SetRollupFault(nil)
	fresh, err := metrics.New(ctx, metrics.Options{Store: st, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.UpkeepRollups(ctx); err != nil {
		t.Fatal(err)
	}
	checkPaths(t, fresh)
	compareAll(t, fresh, rng, 2)
	compareViews(t, fresh, rng, 4)
	comparePurchases(t, st, fresh, rng, 3)
}

// smallDemo is a store holding the small demo and a registry on it without
// an answer cache.
func smallDemo(t *testing.T) (*warehouse.Store, *metrics.Registry) {
	t.Helper()
	ctx := context.Background()
	st := whtest.Store(t)
	if _, err := demo.Load(ctx, st, demo.Config{Size: demo.Small, Seed: whtest.DemoSeed, End: whtest.DemoEnd}, demo.LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	reg, err := metrics.New(ctx, metrics.Options{Store: st, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	return st, reg
}

// checkPaths: the rolled-up metrics answer from their rollup, the others
// from raw rows with a reason.
func checkPaths(t *testing.T, reg *metrics.Registry) {
	t.Helper()
	p := metrics.Params{From: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC),
		Grain: metrics.Month, TZ: time.UTC, WeekStart: time.Monday, FiscalYearStart: time.January}
	for _, d := range reg.List() {
		if d.Kind != metrics.Simple {
			continue
		}
		e, err := reg.Explain(context.Background(), d.Name, p)
		if err != nil {
			t.Fatal(err)
		}
		leaf := e.Inputs[0]
		want := "raw"
		if slices.Contains(rolledUp, d.Name) {
			want = "rollup"
		}
		if leaf.Path != want || want == "raw" && leaf.Reason == "" {
			t.Errorf("%s: path %s (%s), want %s", d.Name, leaf.Path, leaf.Reason, want)
		}
	}
}

var zones = []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Adelaide", "America/St_Johns", "Pacific/Auckland"}

// compareAll compares n random queries of every defined metric, rollups against raw rows.
func compareAll(t *testing.T, reg *metrics.Registry, rng *rand.Rand, n int) {
	t.Helper()
	ctx := context.Background()
	for _, d := range reg.List() {
		if d.Kind == metrics.Custom {
			continue // a custom metric is its own query: raw rows either way
		}
		for i := 0; i < n; i++ {
			p := randomParams(rng)
			switch rng.IntN(3) {
			case 1:
				p.Compare = "previous"
			case 2:
				p.Compare = "year"
			}
			if len(d.Dimensions) > 0 && rng.IntN(2) == 0 {
				p.By = d.Dimensions[rng.IntN(len(d.Dimensions))].Name
			}
			randomFilter(t, reg, rng, d, &p)
			name := fmt.Sprintf("%s %s..%s %s %s by=%s filters=%v compare=%s", d.Name, p.From.Format(time.DateOnly), p.To.Format(time.DateOnly), p.Grain, p.TZ, p.By, p.Filters, p.Compare)
			rolled, err := reg.Query(ctx, d.Name, p)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			raw, err := reg.Query(metrics.RawRows(ctx), d.Name, p)
			if err != nil {
				t.Fatalf("%s (raw): %v", name, err)
			}
			if diff := sameAnswer(d.Unit, raw, rolled); diff != "" {
				t.Errorf("%s: rollup differs from raw rows: %s", name, diff)
			}
		}
	}
}

// randomParams is a random range of 1 to 400 days from July 2024 on, in a
// random zone, grain (weeks rather than more than 120 days), week start and
// fiscal year.
func randomParams(rng *rand.Rand) metrics.Params {
	grains := []metrics.Grain{metrics.Day, metrics.Week, metrics.Month, metrics.Quarter, metrics.Year}
	tz, _ := time.LoadLocation(zones[rng.IntN(len(zones))])
	from := time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rng.IntN(700))
	days := 1 + rng.IntN(400)
	p := metrics.Params{From: time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, tz),
		Grain: grains[rng.IntN(len(grains))], TZ: tz, WeekStart: time.Weekday(rng.IntN(2)), FiscalYearStart: time.Month(1 + rng.IntN(12))}
	p.To = p.From.AddDate(0, 0, days)
	if p.Grain == metrics.Day && days > 120 {
		p.Grain = metrics.Week
	}
	return p
}

// randomFilter, one time in three, filters p on one of d's dimensions by a
// value d has in p's range.
func randomFilter(t *testing.T, reg *metrics.Registry, rng *rand.Rand, d *metrics.Definition, p *metrics.Params) {
	t.Helper()
	if len(d.Dimensions) > 0 && rng.IntN(3) == 0 {
		dim := d.Dimensions[rng.IntN(len(d.Dimensions))].Name
		if v := someValue(t, reg, d.Name, dim, *p); v != "" {
			p.Filters = []metrics.Filter{{Dim: dim, Value: v}}
		}
	}
}

// someValue is a value of dim that d has in p's range (from raw rows).
func someValue(t *testing.T, reg *metrics.Registry, name, dim string, p metrics.Params) string {
	t.Helper()
	q := p
	q.By, q.Filters, q.Compare = dim, nil, ""
	res, err := reg.Query(metrics.RawRows(context.Background()), name, q)
	if err != nil {
		t.Fatalf("%s by %s: %v", name, dim, err)
	}
	if len(res.Series) == 0 {
		return ""
	}
	return res.Series[len(res.Series)/2].Dim
}

// sameAnswer compares two answers: counts equal, money to the cent, others to 1e-9 (relative).
func sameAnswer(unit string, want, got *metrics.Result) string {
	if len(want.Series) != len(got.Series) {
		return fmt.Sprintf("%d series, raw rows have %d", len(got.Series), len(want.Series))
	}
	if len(want.Warnings) != len(got.Warnings) {
		return fmt.Sprintf("warnings %v, raw rows %v", got.Warnings, want.Warnings)
	}
	for i, ws := range want.Series {
		gs := got.Series[i]
		if ws.Dim != gs.Dim || len(ws.Points) != len(gs.Points) {
			return fmt.Sprintf("series %q with %d points, raw rows %q with %d", gs.Dim, len(gs.Points), ws.Dim, len(ws.Points))
		}
		if d := sameValue(unit, ws.Total, gs.Total); d != "" {
			return fmt.Sprintf("%q total: %s", ws.Dim, d)
		}
		if d := sameValue(unit, ws.CompareTotal, gs.CompareTotal); d != "" {
			return fmt.Sprintf("%q comparison total: %s", ws.Dim, d)
		}
		for j, wp := range ws.Points {
			if d := sameValue(unit, wp.Value, gs.Points[j].Value); d != "" {
				return fmt.Sprintf("%q %s: %s", ws.Dim, wp.Bucket, d)
			}
			if d := sameValue(unit, wp.Compare, gs.Points[j].Compare); d != "" {
				return fmt.Sprintf("%q %s comparison: %s", ws.Dim, wp.Bucket, d)
			}
		}
	}
	return ""
}

func sameValue(unit string, want, got *float64) string {
	switch {
	case want == nil && got == nil:
		return ""
	case want == nil || got == nil:
		return fmt.Sprintf("%v, raw rows %v", show(got), show(want))
	}
	w, g := *want, *got
	ok := w == g
	switch unit {
	case "count":
		ok = w == g
	case "currency":
		ok = math.Abs(w-g) < 0.005
	default:
		ok = math.Abs(w-g) <= 1e-9*math.Max(1, math.Abs(w))
	}
	if !ok {
		return fmt.Sprintf("%v, raw rows %v", g, w)
	}
	return ""
}

func show(v *float64) string {
	if v == nil {
		return "none"
	}
	return fmt.Sprint(*v)
}

// mutate lands facts of every kind the upkeep must fold in exactly.
func mutate(t *testing.T, st *warehouse.Store) {
	t.Helper()
	ctx := context.Background()
	var some struct{ order, source, customer, other string }
	if err := st.Conn.QueryRow(ctx, "SELECT order_id, source, customer_id FROM orders FINAL WHERE status != 'cancelled' AND customer_id != '' ORDER BY order_id LIMIT 1").
		Scan(&some.order, &some.source, &some.customer); err != nil {
		t.Fatal(err)
	}
	if err := st.Conn.QueryRow(ctx, "SELECT customer_id FROM orders FINAL WHERE customer_id NOT IN ('', {c:String}) ORDER BY customer_id LIMIT 1",
		clickhouse.Named("c", some.customer)).Scan(&some.other); err != nil {
		t.Fatal(err)
	}
	stmts := []string{
		// late orders, in months folded in long ago
		`INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, cost, status, channel, campaign, country, source) VALUES
		 ('late-1','` + some.customer + `','2024-09-14 23:45:00',99.99,'EUR',40,'completed','ads','spring','DE','shop'),
		 ('late-2','c-new','2025-03-30 01:30:00',12.34,'EUR',NULL,'completed','organic','','FR','shop')`,
		// touchpoints landing after the order they are attributed to: one in the
		// month before it (its lookback reaches back there), one the same day
		`INSERT INTO touchpoints (event_id, customer_id, occurred_at, channel, campaign, kind, source) VALUES
		 ('late-tp1','` + some.customer + `','2024-08-25 10:00:00','paid_search','brand','click','web'),
		 ('late-tp2','` + some.customer + `','2024-09-14 20:00:00','email','newsletter','signup','web')`,
		// the same order re-sent with another revenue and channel: the newer load wins
		`INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, status, channel, campaign, country, source, loaded_at)
		 SELECT order_id, customer_id, ordered_at, revenue + 1000, currency, status, 'email', campaign, country, source, now64(3) + 60
		 FROM orders FINAL WHERE order_id = '` + some.order + `' AND source = '` + some.source + `'`,
		`INSERT INTO survey_responses (response_id, customer_id, answered_at, kind, score, channel, source) VALUES
		 ('late-s1','` + some.customer + `','2025-02-01 10:00:00','nps',10,'email','survey'),
		 ('late-s2','c-new','2025-02-01 10:30:00','csat',2,'email','survey')`,
		// a refund of an existing order, months after it
		`INSERT INTO refunds (refund_id, order_id, customer_id, refunded_at, amount, currency, source) VALUES
		 ('late-r1','` + some.order + `','` + some.customer + `','2026-06-01 09:00:00',5.5,'EUR','` + some.source + `')`,
		`INSERT INTO tickets (ticket_id, customer_id, opened_at, first_response_at, resolved_at, channel, status, priority, source) VALUES
		 ('late-t1','c-new','2025-04-01 08:00:00','2025-04-01 08:30:00',NULL,'chat','open','low','desk')`,
		// an order's refund taken back (re-sent with refund 0): its refund row goes
		`INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, refund, status, channel, campaign, country, source, loaded_at)
		 SELECT order_id, customer_id, ordered_at, revenue, currency, 0, status, channel, campaign, country, source, now64(3) + 60
		 FROM orders FINAL WHERE refund != 0 AND status != 'cancelled' ORDER BY order_id LIMIT 3`,
		// an order re-sent as another customer's: the customer it left (with
		// orders in other months) has a later first order now
		`INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, cost, refund, status, channel, campaign, country, source, loaded_at)
		 SELECT order_id, 'c-moved', ordered_at, revenue, currency, cost, refund, status, channel, campaign, country, source, now64(3) + 60
		 FROM orders FINAL WHERE (source, order_id) = (
		     SELECT argMin((source, order_id), ordered_at) FROM orders FINAL WHERE status != 'cancelled' AND customer_id NOT IN ('', '` + some.customer + `', '` + some.other + `')
		     GROUP BY customer_id HAVING uniqExact(toYYYYMM(ordered_at)) > 2 ORDER BY customer_id LIMIT 1)`,
		// an order re-sent as cancelled: it leaves the purchases of its slot
		`INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, cost, refund, status, channel, campaign, country, source, loaded_at)
		 SELECT order_id, customer_id, ordered_at, revenue, currency, cost, refund, 'cancelled', channel, campaign, country, source, now64(3) + 60
		 FROM orders FINAL WHERE status != 'cancelled' AND customer_id != '' AND order_id != '` + some.order + `' ORDER BY ordered_at DESC LIMIT 2`,
		// identity merge: the other customer's source id now resolves to the first one
		`INSERT INTO identities (source, source_key, customer_id, rule, matched_at)
		 SELECT source, source_key, '` + some.customer + `', 'email', now64(3) + 60 FROM identities FINAL WHERE customer_id = '` + some.other + `'`,
	}
	for _, q := range stmts {
		if err := st.Conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", strings.SplitN(q, "\n", 2)[0], err)
		}
	}
	resendTouchpoints(t, st)
	mergeIdentities(t, st)
}
