package metrics

import (
	"context"
	"net/url"
	"testing"

	"github.com/converge-dev/converge/warehouse/whtest"
)

// One person with several source ids is one customer (pitfall 7): KPIs
// read the *_resolved views, which map source ids through identities.
func TestKPIsUseCanonicalCustomers(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, source) VALUES
			('o1', 'C1', '2025-03-01 10:00:00', 40, 'EUR', 'shop'),
			('o2', 'hd-9', '2025-03-05 10:00:00', 60, 'EUR', 'helpdesk'),
			('o3', 'C2', '2025-03-07 10:00:00', 10, 'EUR', 'shop')`,
		`INSERT INTO identities (source, source_key, customer_id, rule) VALUES
			('shop', 'C1', 'C1', 'source_id'), ('helpdesk', 'hd-9', 'C1', 'phone'), ('shop', 'C2', 'C2', 'source_id')`,
	} {
		if err := st.Conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	r, err := New(ctx, Options{Store: st, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	// hd-9's order (03-05) is C1's second purchase, after o1 (03-01): a repeat purchase of C1.
	for metric, want := range map[string]float64{"active_customers": 2, "new_customers": 2, "orders": 3, "repeat_purchase_rate": 50, "revenue_gross": 110} {
		p, err := r.ParseParams(metric, url.Values{"from": {"2025-03-01"}, "to": {"2025-03-31"}, "grain": {"month"}})
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Query(ctx, metric, p)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Series) != 1 || res.Series[0].Total == nil || *res.Series[0].Total != want {
			t.Errorf("%s = %v, want %v (hd-9 is C1)", metric, res.Series, want)
		}
	}
}
