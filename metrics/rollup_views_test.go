package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/metrics"
)

// viewReaders are the built-in custom metrics that read a view kept as a
// rollup (attribution), and the parameter values their rollup is built for.
var viewReaders = []string{"marketing_roi", "roas"}

// compareViews compares n random queries of each custom metric that reads
// the attribution view, every model at both levels, from its rollup and from
// raw rows; and checks the rollup is the path taken (a query of another
// lookback, or an offset the slots cannot hold, reads raw rows and says why).
func compareViews(t *testing.T, reg *metrics.Registry, rng *rand.Rand, n int) {
	t.Helper()
	ctx := context.Background()
	grains := []metrics.Grain{metrics.Day, metrics.Week, metrics.Month, metrics.Quarter, metrics.Year}
	models := []string{"first_touch", "last_touch", "linear", "u_shaped", "w_shaped", "time_decay"}
	first := time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)
	for _, name := range viewReaders {
		for i := 0; i < n; i++ {
			tz, _ := time.LoadLocation(zones[rng.IntN(len(zones))])
			from := first.AddDate(0, 0, rng.IntN(700))
			days := 1 + rng.IntN(400)
			p := metrics.Params{From: time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, tz),
				Grain: grains[rng.IntN(len(grains))], TZ: tz, WeekStart: time.Weekday(rng.IntN(2)), FiscalYearStart: time.Month(1 + rng.IntN(12)),
				Args: map[string]string{"model": models[rng.IntN(len(models))], "level": []string{"channel", "campaign"}[rng.IntN(2)]}}
			p.To = p.From.AddDate(0, 0, days)
			if p.Grain == metrics.Day && days > 120 {
				p.Grain = metrics.Week
			}
			if rng.IntN(3) == 0 {
				p.Compare = "previous"
			}
			label := fmt.Sprintf("%s %s..%s %s %s %v compare=%s", name, p.From.Format(time.DateOnly), p.To.Format(time.DateOnly), p.Grain, tz, p.Args, p.Compare)
			rolled, raw := rolledAndRaw(t, reg, name, p, label, "rollup_attribution")
			if diff := sameAnswer("ratio", raw, rolled); diff != "" {
				t.Errorf("%s: rollup differs from raw rows: %s", label, diff)
			}
		}
	}
	p := metrics.Params{From: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC),
		Grain: metrics.Month, TZ: time.UTC, WeekStart: time.Monday, FiscalYearStart: time.January, Args: map[string]string{"lookback_days": "60"}}
	kathmandu, _ := time.LoadLocation("Asia/Kathmandu")
	q := p
	q.Args, q.TZ = nil, kathmandu
	q.From, q.To = time.Date(2025, 1, 1, 0, 0, 0, 0, kathmandu), time.Date(2025, 4, 1, 0, 0, 0, 0, kathmandu)
	for _, c := range []metrics.Params{p, q} {
		e, err := reg.Explain(ctx, "roas", c)
		if err != nil {
			t.Fatal(err)
		}
		if leaf := e.Inputs[0]; leaf.Path != "raw" || leaf.Reason == "" || leaf.Rollup != "rollup_attribution" {
			t.Errorf("roas %v in %s: path %s (%q), rollup %q; want raw rows with a reason", c.Args, c.TZ, leaf.Path, leaf.Reason, leaf.Rollup)
		}
	}
}

// TestAttributionRollupResumes: a mutation of the touchpoints dirties every
// month of the attribution rollup; an upkeep killed in its second chunk of months leaves
// the rollup exact for what it holds and the months left listed, and the next
// round (another registry, as after a restart) recomputes only those, after
// which every model at both levels equals raw rows again.
func TestAttributionRollupResumes(t *testing.T) {
	ctx := context.Background()
	st, reg := smallDemo(t)
	if _, err := reg.UpkeepRollups(ctx); err != nil {
		t.Fatal(err)
	}
	var months uint64
	if err := st.Conn.QueryRow(ctx, "SELECT uniqExact(_partition_id) FROM orders").Scan(&months); err != nil {
		t.Fatal(err)
	}
	if months <= 24 {
		t.Fatalf("the demo's orders span %d months: too few for a second chunk", months)
	}
	// A touchpoint deleted by a mutation: which paths it was on is no longer
	// known, so every month is recomputed.
	if err := st.Conn.Exec(ctx, `ALTER TABLE touchpoints DELETE WHERE event_id = (SELECT min(event_id) FROM touchpoints WHERE customer_id != '')
		SETTINGS mutations_sync = 2`); err != nil {
		t.Fatal(err)
	}
	// Killed after the second chunk's partitions are replaced, before its
	// progress is written: the first chunk's is.
	boom := errors.New("killed")
	chunks := 0
	reg.SetRollupFault(func(step string) error {
		if step == "replaced rollup_attribution" {
			if chunks++; chunks == 2 {
				return boom
			}
		}
		return nil
	})
	if _, err := reg.UpkeepRollups(ctx); !errors.Is(err, boom) {
		t.Fatalf("upkeep with a fault in the attribution rollup: %v, want it to stop", err)
	}
	fresh, err := metrics.New(ctx, metrics.Options{Store: st, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	up, err := fresh.UpkeepRollups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if left := int(months) - 12; up.Partitions != left || len(up.Built) != 0 {
		t.Fatalf("resumed upkeep: %d partitions, built %v; want the %d months left, nothing rebuilt", up.Partitions, up.Built, left)
	}
	compareViews(t, fresh, rand.New(rand.NewPCG(7, 1)), 8)
}

// TestAttributionSlotsInPlace: new orders, a touchpoint that lands after the
// order it is attributed to (in the month before it), a re-sent order with
// another revenue, an order cancelled after the fact, and a touchpoint re-sent
// as another customer's are folded into the
// attribution rollup by rewriting only the slots they change (no month is
// recomputed); a slot whose only order was cancelled loses its rows; and
// every model at both levels equals raw rows afterwards. A kill after the
// slots were written, before the watermark moved, is caught up exactly.
func TestAttributionSlotsInPlace(t *testing.T) {
	ctx := context.Background()
	st, reg := smallDemo(t)
	if _, err := reg.UpkeepRollups(ctx); err != nil {
		t.Fatal(err)
	}
	var lone struct {
		slot          time.Time
		order, source string
	}
	// A slot with attribution rows and a single non-cancelled order.
	if err := st.Conn.QueryRow(ctx, `SELECT s, any(order_id), any(source) FROM (
		SELECT toStartOfInterval(ordered_at, toIntervalMinute(30), 'UTC') AS s, order_id, source FROM orders_resolved WHERE status != 'cancelled' AND customer_id != '')
		WHERE s IN (SELECT slot FROM rollup_attribution FINAL WHERE _deleted = 0)
		GROUP BY s HAVING count() = 1 ORDER BY s LIMIT 1`).Scan(&lone.slot, &lone.order, &lone.source); err != nil {
		t.Fatal(err)
	}
	var c struct{ customer, order string }
	if err := st.Conn.QueryRow(ctx, `SELECT customer_id, order_id FROM orders_resolved
		WHERE status != 'cancelled' AND customer_id != '' AND ordered_at >= '2025-06-05' AND ordered_at < '2025-07-01' ORDER BY order_id LIMIT 1`).Scan(&c.customer, &c.order); err != nil {
		t.Fatal(err)
	}
	// An August 2025 order with touchpoints of several channels in its
	// lookback, the earliest of a paid channel (ROI shows paid channels only);
	// that one will be re-sent as another customer's.
	var m struct{ event, source string }
	if err := st.Conn.QueryRow(ctx, `SELECT argMin(t.event_id, t.occurred_at), argMin(t.source, t.occurred_at)
		FROM orders_resolved AS o INNER JOIN touchpoints_resolved AS t ON t.customer_id = o.customer_id
		WHERE o.status != 'cancelled' AND o.customer_id NOT IN ('', {c:String}) AND o.ordered_at >= '2025-08-01' AND o.ordered_at < '2025-09-01'
		  AND t.occurred_at <= o.ordered_at AND t.occurred_at >= o.ordered_at - INTERVAL 30 DAY
		GROUP BY o.customer_id, o.order_id
		HAVING uniqExact(t.channel) > 1 AND argMin(t.channel, t.occurred_at) IN (SELECT channel FROM marketing_spend WHERE spend > 0)
		ORDER BY o.order_id LIMIT 1`,
		clickhouse.Named("c", c.customer)).Scan(&m.event, &m.source); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, status, channel, campaign, country, source) VALUES
		 ('slot-1','` + c.customer + `','2026-06-02 10:10:00',50,'EUR','completed','email','','DE','shop')`,
		`INSERT INTO touchpoints (event_id, customer_id, occurred_at, channel, campaign, kind, source) VALUES
		 ('slot-tp1','` + c.customer + `','2025-05-31 23:00:00','paid_social','retargeting','click','web'),
		 ('slot-tp2','` + c.customer + `','2026-06-01 08:00:00','email','newsletter','open','web')`,
		`INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, status, channel, campaign, country, source, loaded_at)
		 SELECT order_id, customer_id, ordered_at, revenue + 77, currency, status, channel, campaign, country, source, now64(3) + 60
		 FROM orders FINAL WHERE order_id = '` + c.order + `'`,
		`INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, status, channel, campaign, country, source, loaded_at)
		 SELECT order_id, customer_id, ordered_at, revenue, currency, 'cancelled', channel, campaign, country, source, now64(3) + 60
		 FROM orders FINAL WHERE order_id = '` + lone.order + `' AND source = '` + lone.source + `'`,
		// a touchpoint re-sent as another customer's: the order it left loses it
		`INSERT INTO touchpoints (event_id, customer_id, anonymous_id, occurred_at, channel, campaign, kind, source, loaded_at)
		 SELECT event_id, 'zz-moved', anonymous_id, occurred_at, channel, campaign, kind, source, now64(3) + 60
		 FROM touchpoints FINAL WHERE event_id = '` + m.event + `' AND source = '` + m.source + `'`,
	} {
		if err := st.Conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	slotsKilledThenCaughtUp(t, reg, "rollup_attribution", 200)
	var live uint64
	if err := st.Conn.QueryRow(ctx, "SELECT count() FROM rollup_attribution FINAL WHERE slot = {s:DateTime('UTC')} AND _deleted = 0",
		clickhouse.Named("s", lone.slot.UTC().Format(time.DateTime))).Scan(&live); err != nil {
		t.Fatal(err)
	}
	if live != 0 {
		t.Errorf("slot %s: %d attribution rows after its only order was cancelled, want none", lone.slot, live)
	}
	compareViews(t, reg, rand.New(rand.NewPCG(9, 1)), 8)
	// The touchpoint before an order of the month after it (June), and the one
	// that left its order (August): their shares moved.
	for _, model := range []string{"first_touch", "linear"} {
		p := metrics.Params{From: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC),
			Grain: metrics.Day, TZ: time.UTC, WeekStart: time.Monday, FiscalYearStart: time.January, Args: map[string]string{"model": model, "level": "campaign"}}
		rolled, err := reg.Query(ctx, "marketing_roi", p)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := reg.Query(metrics.RawRows(ctx), "marketing_roi", p)
		if err != nil {
			t.Fatal(err)
		}
		if diff := sameAnswer("ratio", raw, rolled); diff != "" {
			t.Errorf("marketing_roi %s June to August 2025 by day: %s", model, diff)
		}
	}
}

// rolledAndRaw answers name over p from its rollup (Explain must name table as the path) and
// from raw rows; raw rows with nothing in them fail the test, which would prove nothing.
func rolledAndRaw(t *testing.T, reg *metrics.Registry, name string, p metrics.Params, label, table string) (rolled, raw *metrics.Result) {
	t.Helper()
	ctx := context.Background()
	e, err := reg.Explain(ctx, name, p)
	if err != nil {
		t.Fatal(err)
	}
	if leaf := e.Inputs[0]; leaf.Path != "rollup" || !slices.Contains(leaf.Tables, table) {
		t.Fatalf("%s: path %s %v (%s), want the rollup %s", label, leaf.Path, leaf.Tables, leaf.Reason, table)
	}
	if rolled, err = reg.Query(ctx, name, p); err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	if raw, err = reg.Query(metrics.RawRows(ctx), name, p); err != nil {
		t.Fatalf("%s (raw): %v", label, err)
	}
	if len(raw.Series) == 0 && (raw.Table == nil || len(raw.Table.Rows) == 0) {
		t.Fatalf("%s: nothing from raw rows: the comparison would prove nothing", label)
	}
	return rolled, raw
}
