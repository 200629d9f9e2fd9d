package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse"
)

// purchaseReaders are the built-in custom metrics that read the purchases
// view (kept as rollup_purchases).
var purchaseReaders = []string{"churn_rate", "cohort_retention", "funnel_conversion"}

// purchaseZones add to zones one whose offset is not a whole or half hour:
// the purchases view's 15-minute slots still fall in one local day there.
var purchaseZones = append(slices.Clone(zones), "Asia/Kathmandu")

// comparePurchases compares n random queries of each metric that reads the
// purchases view (random zones, ranges that may start and end off any slot,
// grains and parameters) from its rollup and from raw rows, and, from raw
// rows, with the definitions as they were before they read the view
// (testdata/orders_defs: every order of orders_resolved).
func comparePurchases(t *testing.T, st *warehouse.Store, reg *metrics.Registry, rng *rand.Rand, n int, names ...string) {
	t.Helper()
	if len(names) == 0 {
		names = purchaseReaders
	}
	ctx := context.Background()
	old, err := metrics.New(ctx, metrics.Options{Store: st, Builtins: os.DirFS("testdata/orders_defs"), CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	grains := []metrics.Grain{metrics.Day, metrics.Week, metrics.Month, metrics.Quarter, metrics.Year}
	first := time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)
	for _, name := range names {
		for i := 0; i < n; i++ {
			tz, _ := time.LoadLocation(purchaseZones[rng.IntN(len(purchaseZones))])
			from := first.AddDate(0, 0, rng.IntN(700))
			days := 1 + rng.IntN(300)
			p := metrics.Params{From: time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, tz),
				Grain: grains[rng.IntN(len(grains))], TZ: tz, WeekStart: time.Weekday(rng.IntN(2)), FiscalYearStart: time.Month(1 + rng.IntN(12)),
				Args: map[string]string{}}
			p.To = p.From.AddDate(0, 0, days)
			if rng.IntN(3) == 0 { // an instant inside a slot, as an RFC 3339 bound gives
				p.From = p.From.Add(time.Duration(rng.IntN(24*3600)) * time.Second)
				p.To = p.To.Add(time.Duration(rng.IntN(24*3600))*time.Second + 7*time.Millisecond)
			}
			if p.Grain == metrics.Day && days > 90 {
				p.Grain = metrics.Month
			}
			switch name {
			case "churn_rate":
				p.Args["window_days"] = fmt.Sprint([]int{1, 7, 30, 90, 365}[rng.IntN(5)])
				if rng.IntN(3) == 0 {
					p.Compare = "previous"
				}
			case "funnel_conversion":
				p.Args["window_days"] = fmt.Sprint(1 + rng.IntN(60))
				p.Args["breakdown"] = []string{"none", "channel"}[rng.IntN(2)]
			}
			label := fmt.Sprintf("%s %s..%s %s %s %v compare=%s", name, p.From.Format(time.RFC3339Nano), p.To.Format(time.RFC3339Nano), p.Grain, tz, p.Args, p.Compare)
			rolled, raw := rolledAndRaw(t, reg, name, p, label, "rollup_purchases")
			before, err := old.Query(ctx, name, p)
			if err != nil {
				t.Fatalf("%s (every order): %v", label, err)
			}
			for _, c := range []struct {
				what string
				want *metrics.Result
			}{{"raw rows", raw}, {"the definition over every order", before}} {
				diff := sameAnswer("percent", c.want, rolled)
				if diff == "" {
					diff = sameTable(c.want.Table, rolled.Table)
				}
				if diff != "" {
					t.Errorf("%s: rollup differs from %s: %s", label, c.what, diff)
				}
			}
		}
	}
}

// sameTable compares two tables: equal columns and rows, floats to 1e-9 (relative).
func sameTable(want, got *metrics.Table) string {
	switch {
	case want == nil && got == nil:
		return ""
	case want == nil || got == nil:
		return fmt.Sprintf("table %v, raw rows %v", got != nil, want != nil)
	case !slices.Equal(want.Columns, got.Columns) || len(want.Rows) != len(got.Rows):
		return fmt.Sprintf("%v with %d rows, raw rows %v with %d", got.Columns, len(got.Rows), want.Columns, len(want.Rows))
	}
	for i, wr := range want.Rows {
		for j, w := range wr {
			g := got.Rows[i][j]
			wf, wok := asFloat(w)
			gf, gok := asFloat(g)
			if wok && gok {
				if math.Abs(wf-gf) > 1e-9*math.Max(1, math.Abs(wf)) {
					return fmt.Sprintf("row %d %s: %v, raw rows %v", i, want.Columns[j], gf, wf)
				}
				continue
			}
			if fmt.Sprint(w) != fmt.Sprint(g) {
				return fmt.Sprintf("row %d %s: %v, raw rows %v", i, want.Columns[j], g, w)
			}
		}
	}
	return ""
}

// asFloat is a table cell's float value (of a Float64 or a non-null Nullable(Float64)).
func asFloat(x any) (float64, bool) {
	switch v := x.(type) {
	case float64:
		return v, true
	case *float64:
		if v != nil {
			return *v, true
		}
	}
	return 0, false
}

// TestPurchasesSlotsInPlace: a new order, an order re-sent two hours later,
// one re-sent as cancelled and one re-sent as another customer's are folded
// into the purchases rollup by rewriting only the slots they change; the
// slots they left lose their rows; a kill after the slots were written,
// before the watermark moved, is caught up exactly; and the metrics reading
// purchases equal raw rows and their definitions over every order.
func TestPurchasesSlotsInPlace(t *testing.T) {
	ctx := context.Background()
	st, reg := smallDemo(t)
	if _, err := reg.UpkeepRollups(ctx); err != nil {
		t.Fatal(err)
	}
	// Three orders of customers with no other order in their slot.
	rows, err := st.Conn.Query(ctx, `SELECT any(order_id), any(source), any(customer_id), s FROM (
		SELECT toStartOfInterval(ordered_at, toIntervalMinute(15), 'UTC') AS s, order_id, source, customer_id FROM orders_resolved
		WHERE status != 'cancelled' AND customer_id != '' AND toMinute(ordered_at) < 40 AND toHour(ordered_at) < 20)
		GROUP BY s, customer_id HAVING count() = 1 ORDER BY s DESC LIMIT 3`)
	if err != nil {
		t.Fatal(err)
	}
	type order struct {
		id, source, customer string
		slot                 time.Time
	}
	var lone []order
	for rows.Next() {
		var o order
		if err := rows.Scan(&o.id, &o.source, &o.customer, &o.slot); err != nil {
			t.Fatal(err)
		}
		lone = append(lone, o)
	}
	if err := rows.Err(); err != nil || len(lone) != 3 {
		t.Fatalf("orders alone in their slot: %d (%v)", len(lone), err)
	}
	resend := func(o order, set string) string {
		return `INSERT INTO orders SELECT * REPLACE (` + set + `, now64(3) + 60 AS loaded_at)
		 FROM orders FINAL WHERE order_id = '` + o.id + `' AND source = '` + o.source + `'`
	}
	for _, q := range []string{
		`INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, status, channel, campaign, country, source) VALUES
		 ('buy-1','` + lone[0].customer + `','2026-06-02 10:10:00',50,'EUR','completed','email','','DE','shop')`,
		resend(lone[0], "ordered_at + INTERVAL 2 HOUR AS ordered_at"),
		resend(lone[1], "'cancelled' AS status"),
		resend(lone[2], "'zz-moved' AS customer_id"),
	} {
		if err := st.Conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	slotsKilledThenCaughtUp(t, reg, "rollup_purchases", 400)
	samePurchaseRows(t, st)
	for _, o := range lone {
		var n uint64
		if err := st.Conn.QueryRow(ctx, "SELECT count() FROM purchases_rollup WHERE slot = {s:DateTime('UTC')} AND customer_id = {c:String}",
			clickhouse.Named("s", o.slot.UTC().Format(time.DateTime)), clickhouse.Named("c", o.customer)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("slot %s of customer %s: %d rows after its only order left it, want none", o.slot, o.customer, n)
		}
	}
	comparePurchases(t, st, reg, rand.New(rand.NewPCG(11, 1)), 5)
	// Churn is computed from spells, not instant by instant as before, and cohorts in one pass
	// over the purchases: many more cases.
	comparePurchases(t, st, reg, rand.New(rand.NewPCG(12, 1)), 60, "churn_rate")
	comparePurchases(t, st, reg, rand.New(rand.NewPCG(13, 1)), 30, "cohort_retention")
}

// slotsKilledThenCaughtUp runs an upkeep killed right after it rewrote the
// slots of table, then one that catches up, which must rewrite between 1 and
// most slots in place and rebuild nothing.
func slotsKilledThenCaughtUp(t *testing.T, reg *metrics.Registry, table string, most int) {
	t.Helper()
	ctx := context.Background()
	boom := errors.New("killed")
	reg.SetRollupFault(func(step string) error {
		if step == "slots "+table {
			return boom
		}
		return nil
	})
	if _, err := reg.UpkeepRollups(ctx); !errors.Is(err, boom) {
		t.Fatalf("upkeep killed after rewriting the slots of %s: %v, want it to stop", table, err)
	}
	reg.SetRollupFault(nil)
	up, err := reg.UpkeepRollups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if up.Slots == 0 || up.Slots > most || len(up.Built) != 0 {
		t.Fatalf("upkeep: %d slots rewritten, built %v; want the few slots the facts changed, in place", up.Slots, up.Built)
	}
}

// samePurchaseRows: the rollup holds the purchases view's rows, every column
// (next_at too: a row before a slot that changed points at the new next row).
func samePurchaseRows(t *testing.T, st *warehouse.Store) {
	t.Helper()
	ctx := context.Background()
	sum := func(view string) (n, h uint64) {
		q := "SELECT count(), sum(cityHash64(slot, customer_id, first_at, last_at, orders, next_at)) FROM " + view
		if err := st.Conn.QueryRow(ctx, q).Scan(&n, &h); err != nil {
			t.Fatal(err)
		}
		return n, h
	}
	n1, h1 := sum("purchases")
	n2, h2 := sum("purchases_rollup")
	if n1 == n2 && h1 == h2 {
		return
	}
	rows, err := st.Conn.Query(ctx, `SELECT 'raw', * FROM (SELECT * FROM purchases EXCEPT SELECT * FROM purchases_rollup)
		UNION ALL SELECT 'rollup', * FROM (SELECT * FROM purchases_rollup EXCEPT SELECT * FROM purchases) ORDER BY 3, 2, 1 LIMIT 10`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var diff []string
	for rows.Next() {
		var side, customer string
		var slot, first, last, next time.Time
		var orders uint64
		if err := rows.Scan(&side, &slot, &customer, &first, &last, &orders, &next); err != nil {
			t.Fatal(err)
		}
		diff = append(diff, fmt.Sprintf("%s only: %s %s %s..%s %d next %s", side, customer, slot.Format(time.DateTime), first.Format(time.DateTime), last.Format(time.DateTime), orders, next.Format(time.DateTime)))
	}
	t.Fatalf("rollup_purchases: %d rows, the purchases view %d (or their values differ):\n%s", n2, n1, strings.Join(diff, "\n"))
}
