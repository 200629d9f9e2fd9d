package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/converge-dev/converge/warehouse/whtest"
)

// TestCacheKeyedByData: an answer stays cached through a merge of the facts
// (raw path and rollup path), an insert into a table the metric does not
// read leaves a rolled-up answer cached, and an insert it folds in is
// computed anew, from the rollup, once an upkeep round has run.
func TestCacheKeyedByData(t *testing.T) {
	ctx := context.Background()
	st := whtest.Store(t)
	if err := loadFixture(ctx, st); err != nil {
		t.Fatal(err)
	}
	r, err := New(ctx, Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	p := Params{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC),
		Grain: Month, TZ: time.UTC, WeekStart: time.Monday, FiscalYearStart: time.January}
	exec := func(q string) {
		t.Helper()
		if err := st.Conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	computed := func(name string, want int64, why string) {
		t.Helper()
		before := r.computed.Load()
		if _, err := r.Query(ctx, name, p); err != nil {
			t.Fatal(err)
		}
		if got := r.computed.Load() - before; got != want {
			t.Fatalf("%s %s: computed %d times, want %d", name, why, got, want)
		}
	}
	computed("refunds", 1, "first") // raw rows (its model joins)
	exec("INSERT INTO orders (order_id, ordered_at, revenue, currency, source) VALUES ('m1', '2026-01-07 10:00:00', 1, 'EUR', 'shop')")
	exec("OPTIMIZE TABLE orders FINAL")
	computed("refunds", 1, "after an insert into orders") // orders changed: computed anew
	exec("OPTIMIZE TABLE orders FINAL")
	exec("OPTIMIZE TABLE refunds FINAL")
	computed("refunds", 0, "after merges only")

	if _, err := r.UpkeepRollups(ctx); err != nil {
		t.Fatal(err)
	}
	computed("orders", 1, "first from its rollup")
	exec("OPTIMIZE TABLE rollup_orders FINAL")
	exec("INSERT INTO tickets (ticket_id, opened_at, source) VALUES ('k9', '2026-01-08 10:00:00', 'desk')")
	if _, err := r.UpkeepRollups(ctx); err != nil {
		t.Fatal(err)
	}
	computed("orders", 0, "after a merge of its rollup and a ticket")
	exec("INSERT INTO orders (order_id, ordered_at, revenue, currency, status, source) VALUES ('m2', '2026-02-07 10:00:00', 1, 'EUR', 'completed', 'shop')")
	if _, err := r.UpkeepRollups(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := r.Query(ctx, "orders", p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Cached || len(res.Series) == 0 || res.Series[0].Total == nil || *res.Series[0].Total != 10 {
		t.Fatalf("orders after a new order folded in: cached %v, total %v; want 10, computed", res.Cached, totalOf(res))
	}
}

func totalOf(res *Result) any {
	if len(res.Series) == 0 || res.Series[0].Total == nil {
		return nil
	}
	return *res.Series[0].Total
}

// TestRollupFailureFallsBack: a rollup whose build fails is marked failed
// with the metric and the reason, and its metric answers from raw rows.
func TestRollupFailureFallsBack(t *testing.T) {
	ctx := context.Background()
	st := whtest.Store(t)
	if err := loadFixture(ctx, st); err != nil {
		t.Fatal(err)
	}
	r, err := New(ctx, Options{Store: st, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	r.SetRollupFault(func(step string) error {
		if step == "recompute" {
			return errors.New("disk full")
		}
		return nil
	})
	if _, err := r.UpkeepRollups(ctx); err == nil || !strings.Contains(err.Error(), "metric orders") || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("upkeep: %v, want an error naming the metric and the reason", err)
	}
	p := Params{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC),
		Grain: Month, TZ: time.UTC, WeekStart: time.Monday, FiscalYearStart: time.January}
	e, err := r.Explain(ctx, "orders", p)
	if err != nil {
		t.Fatal(err)
	}
	if e.Inputs[0].Path != "raw" || e.Inputs[0].Status != RollupFailed || !strings.Contains(e.Inputs[0].Reason, "disk full") {
		t.Fatalf("explain %+v, want raw rows because the rollup failed", e.Inputs[0])
	}
	res, err := r.Query(ctx, "orders", p)
	if err != nil || totalOf(res) != 8.0 {
		t.Fatalf("orders after a failed rollup: %v, %v; want 8 from raw rows", totalOf(res), err)
	}
	r.SetRollupFault(nil)
	if _, err := r.UpkeepRollups(ctx); err != nil {
		t.Fatal(err)
	}
	if e, _ := r.Explain(ctx, "orders", p); e.Inputs[0].Path != "rollup" {
		t.Fatalf("after a good round: %+v, want the rollup", e.Inputs[0])
	}
}
