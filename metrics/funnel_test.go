package metrics

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/converge-dev/converge/warehouse/whtest"
)

// TestFunnelByChannel checks funnel_conversion's breakdown=channel on a hand-computed fixture
// of its own (the shared fixture's touchpoints feed attribution and engagement goldens).
// Range March 2026; a person's channel is the channel of their first touch.
//
//	a1  03-02 10:00 ads click, 10:05 signup; orders 03-05, 03-20        ads     1 2 3 4 (repeat 15 days later)
//	a2  03-03 09:00 x1 social visit and x2 ads click (same instant:      social  1 2 3   (one order)
//	    the smaller event id, x1, wins); signup 03-04; order 03-10
//	anon-1 (anonymous) 03-05 ads visit                                   ads     1       (cannot sign up anonymously)
//	a4  02-20 ads click, 03-06 signup                                    —       first touch before the range: not counted
//	a5  03-07 visit without a channel; signup 04-20 (44 days)            (none)  1       (window 60: 1 2)
//	a6  03-08 email open, 03-09 signup; order 03-01 (before first touch)  email   1 2     (that order is not a conversion)
//	a7  03-10 ads click and signup; orders 03-15 twice, 05-01            ads     1 2 3   (window 60: 1 2 3 4)
//
// window 30: ads 3 2 2 1, social 1 1 1 0, (none) 1 0 0 0, email 1 1 0 0; overall 6 4 3 1.
// window 60: ads 3 2 2 2, social 1 1 1 0, (none) 1 1 0 0, email 1 1 0 0; overall 6 5 3 2.
func TestFunnelByChannel(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO touchpoints (event_id, customer_id, anonymous_id, occurred_at, channel, kind, source) VALUES
		 ('a1-1','a1','',      '2026-03-02 10:00:00','ads','click','web'),
		 ('a1-2','a1','',      '2026-03-02 10:05:00','ads','signup','web'),
		 ('x2',  'a2','',      '2026-03-03 09:00:00','ads','click','web'),
		 ('x1',  'a2','',      '2026-03-03 09:00:00','social','visit','web'),
		 ('a2-3','a2','',      '2026-03-04 09:00:00','social','signup','web'),
		 ('n1',  '',  'anon-1','2026-03-05 12:00:00','ads','visit','web'),
		 ('a4-1','a4','',      '2026-02-20 12:00:00','ads','click','web'),
		 ('a4-2','a4','',      '2026-03-06 12:00:00','ads','signup','web'),
		 ('a5-1','a5','',      '2026-03-07 12:00:00','','visit','web'),
		 ('a5-2','a5','',      '2026-04-20 12:00:00','','signup','web'),
		 ('a6-1','a6','',      '2026-03-08 12:00:00','email','open','web'),
		 ('a6-2','a6','',      '2026-03-09 12:00:00','email','signup','web'),
		 ('a7-1','a7','',      '2026-03-10 08:00:00','ads','click','web'),
		 ('a7-2','a7','',      '2026-03-10 08:10:00','ads','signup','web')`,
		`INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, status, source) VALUES
		 ('o1','a1','2026-03-05 12:00:00',10,'EUR','completed','shop'),
		 ('o2','a1','2026-03-20 12:00:00',10,'EUR','completed','shop'),
		 ('o3','a2','2026-03-10 12:00:00',10,'EUR','completed','shop'),
		 ('o4','a6','2026-03-01 12:00:00',10,'EUR','completed','shop'),
		 ('o5','a7','2026-03-15 09:00:00',10,'EUR','completed','shop'),
		 ('o6','a7','2026-03-15 18:00:00',10,'EUR','completed','shop'),
		 ('o7','a7','2026-05-01 12:00:00',10,'EUR','completed','shop')`,
	} {
		if err := st.Conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	r, err := New(ctx, Options{Store: st, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	run := func(query string) *Table {
		t.Helper()
		p, err := r.ParseParams("funnel_conversion", mustQuery(query))
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Query(ctx, "funnel_conversion", p)
		if err != nil {
			t.Fatal(err)
		}
		if res.Table == nil {
			t.Fatalf("%s: not a table", query)
		}
		return res.Table
	}
	// funnel renders the table as "channel: people/prev%/start% …" per line.
	funnel := func(query string) string {
		t.Helper()
		tab := run("from=2026-03-01&to=2026-03-31&" + query)
		if got := strings.Join(tab.Columns, ","); got != "stage,name,people,rate_from_previous_pct,rate_from_start_pct,channel" {
			t.Fatalf("columns %s", got)
		}
		var b strings.Builder
		last := "-"
		for _, row := range tab.Rows {
			if row[5] != last {
				if last != "-" {
					b.WriteString("\n")
				}
				fmt.Fprintf(&b, "%s:", row[5])
				last = row[5].(string)
			}
			pct := func(v any) string {
				if v == nil {
					return "null"
				}
				return fmt.Sprintf("%.1f", v)
			}
			fmt.Fprintf(&b, " %s %d/%s/%s", row[1], row[2], pct(row[3]), pct(row[4]))
		}
		return b.String()
	}
	cases := []struct{ query, want string }{
		{"window_days=30", `: touched 6/100.0/100.0 signed_up 4/66.7/66.7 first_order 3/75.0/50.0 repeat 1/33.3/16.7`},
		{"window_days=30&breakdown=channel", `(none): touched 1/100.0/100.0 signed_up 0/0.0/0.0 first_order 0/null/0.0 repeat 0/null/0.0
ads: touched 3/100.0/100.0 signed_up 2/66.7/66.7 first_order 2/100.0/66.7 repeat 1/50.0/33.3
email: touched 1/100.0/100.0 signed_up 1/100.0/100.0 first_order 0/0.0/0.0 repeat 0/null/0.0
social: touched 1/100.0/100.0 signed_up 1/100.0/100.0 first_order 1/100.0/100.0 repeat 0/0.0/0.0`},
		{"window_days=60", `: touched 6/100.0/100.0 signed_up 5/83.3/83.3 first_order 3/60.0/50.0 repeat 2/66.7/33.3`},
		{"window_days=60&breakdown=channel", `(none): touched 1/100.0/100.0 signed_up 1/100.0/100.0 first_order 0/0.0/0.0 repeat 0/null/0.0
ads: touched 3/100.0/100.0 signed_up 2/66.7/66.7 first_order 2/100.0/66.7 repeat 2/100.0/66.7
email: touched 1/100.0/100.0 signed_up 1/100.0/100.0 first_order 0/0.0/0.0 repeat 0/null/0.0
social: touched 1/100.0/100.0 signed_up 1/100.0/100.0 first_order 1/100.0/100.0 repeat 0/0.0/0.0`},
	}
	for _, c := range cases {
		if got := funnel(c.query); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.query, got, c.want)
		}
	}

	// No touch in the range: the overall funnel is four stages of nobody, the breakdown is empty.
	for query, want := range map[string]int{"breakdown=none": 4, "breakdown=channel": 0} {
		tab := run("from=2025-01-01&to=2025-01-31&" + query)
		if len(tab.Rows) != want {
			t.Errorf("empty range, %s: %d rows %v, want %d", query, len(tab.Rows), tab.Rows, want)
		}
		for _, row := range tab.Rows {
			if row[2] != int64(0) {
				t.Errorf("empty range, %s: row %v", query, row)
			}
		}
	}

	// An unknown breakdown names the parameter and what it allows.
	_, err = r.ParseParams("funnel_conversion", mustQuery("from=2026-03-01&to=2026-03-31&breakdown=country"))
	if err == nil || !strings.Contains(err.Error(), "breakdown") || !strings.Contains(err.Error(), "none, channel") {
		t.Errorf("breakdown=country: %v", err)
	}
}
