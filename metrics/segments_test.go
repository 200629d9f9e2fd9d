package metrics

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/converge-dev/converge/warehouse/whtest"
)

// TestRFMAndEngagement: ten customers, customer k with k weekly orders of
// 10·k, the last one 11−k days before the snapshot, so that k = 9 and 10
// score 555 (ntile of ten customers puts two in each quintile); and the
// engagement score is deterministic, within 0..100, and monotone: it rises
// when one of a customer's components improves, and no one else's rises.
func TestRFMAndEngagement(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	snap := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	var orders, custs []string
	for k := 1; k <= 10; k++ {
		id := fmt.Sprintf("k%02d", k)
		custs = append(custs, fmt.Sprintf("('%s','2025-01-01 00:00:00','shop')", id))
		for j := 0; j < k; j++ {
			at := snap.AddDate(0, 0, -(11-k)-7*j)
			orders = append(orders, fmt.Sprintf("('%s-%d','%s','%s',%d,'EUR','shop')", id, j, id, at.Format(time.DateTime), 10*k))
		}
	}
	for _, q := range []string{
		"INSERT INTO customers (customer_id, first_seen_at, source) VALUES " + strings.Join(custs, ","),
		"INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, source) VALUES " + strings.Join(orders, ","),
	} {
		if err := st.Conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	r, err := New(ctx, Options{Store: st, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	q := func(name, query string) *Result {
		t.Helper()
		p, err := r.ParseParams(name, mustQuery(query))
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Query(ctx, name, p)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	best := q("rfm_best_customers", "from=2026-01-01&to=2026-03-31")
	var ids []string
	for _, row := range best.Table.Rows {
		ids = append(ids, row[0].(string))
	}
	if strings.Join(ids, ",") != "k10,k09" {
		t.Errorf("best customers %v, want k10,k09", ids)
	}
	seg := q("rfm_segments", "from=2026-01-01&to=2026-03-31")
	if seg.Table.Rows[0][0] != "555" || seg.Table.Rows[0][4] != int64(2) {
		t.Errorf("first segment %v, want 555 with 2 customers", seg.Table.Rows[0])
	}

	score := func() map[string]float64 {
		res := q("engagement_score", "from=2025-01-01&to=2026-03-31")
		out := map[string]float64{}
		for _, row := range res.Table.Rows {
			s := row[1].(float64)
			if s < 0 || s > 100 {
				t.Fatalf("score %v out of 0..100", s)
			}
			out[row[0].(string)] = s
		}
		return out
	}
	before := score()
	if again := score(); fmt.Sprint(again) != fmt.Sprint(before) {
		t.Errorf("not deterministic: %v then %v", before, again)
	}
	// k03 clicks twice more: its score must not fall, and nobody else's may rise.
	if err := st.Conn.Exec(ctx, `INSERT INTO touchpoints (event_id, customer_id, occurred_at, channel, kind, source) VALUES
		('c1','k03','2026-03-01 00:00:00','email','click','web'), ('c2','k03','2026-03-02 00:00:00','email','click','web')`); err != nil {
		t.Fatal(err)
	}
	after := score()
	if after["k03"] <= before["k03"] {
		t.Errorf("k03 clicked more and its score went %v → %v", before["k03"], after["k03"])
	}
	for id, s := range after {
		if id != "k03" && s > before[id] {
			t.Errorf("%s rose %v → %v when another customer improved", id, before[id], s)
		}
	}
}

func mustQuery(s string) map[string][]string {
	out := map[string][]string{}
	for _, kv := range strings.Split(s, "&") {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = append(out[k], v)
	}
	return out
}
