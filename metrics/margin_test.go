package metrics

import (
	"context"
	"net/url"
	"testing"

	"github.com/converge-dev/converge/warehouse/whtest"
)

// Where an order's cost is unknown, cost of goods uses the configured gross
// margin (pitfall 5), bound as {default_margin}; a known cost is used as is.
func TestDefaultMarginSetting(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	if err := st.Conn.Exec(ctx, `INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, cost, source) VALUES
		('o1', 'C1', '2025-03-01 10:00:00', 100, 'EUR', NULL, 'shop'), ('o2', 'C2', '2025-03-02 10:00:00', 50, 'EUR', 20, 'shop')`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		margin, want float64
	}{{0, 70 + 20}, {0.4, 60 + 20}} {
		r, err := New(ctx, Options{Store: st, CacheTTL: -1, Defaults: Defaults{Margin: c.margin}})
		if err != nil {
			t.Fatal(err)
		}
		p, err := r.ParseParams("cogs", url.Values{"from": {"2025-03-01"}, "to": {"2025-03-31"}, "grain": {"month"}})
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Query(ctx, "cogs", p)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Series[0].Total; got == nil || *got < c.want-1e-9 || *got > c.want+1e-9 {
			t.Errorf("margin %v: cogs %v, want %v", c.margin, got, c.want)
		}
	}
}
