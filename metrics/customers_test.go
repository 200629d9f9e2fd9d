package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// customersFixture is one person with three source ids, another person, a fact-only id and a
// CLV snapshot of eleven customers:
//
//	S1  shop S1 (anna.berg@example.org, +49 151 1234 5678, first seen 2025-01-01),
//	    crm crm-9 (same e-mail, 2025-02-01), helpdesk hd-1 (0049…, no first-seen time, matched to hd-1 first,
//	    re-matched to S1 later), web dup-7 (explicit)
//	S2  shop S2 (bob@example.org); ads dup-7 (so "dup-7" is ambiguous)
//	S3  shop S3 (back\slash@example.org)
//	anon-9  a touchpoint only, no identity
//
// Facts of S1: orders o1 (shop S1, 100), o2 (shop S1, cancelled), o3 (crm crm-9, 70, refund
// 10), o4 (pos S1: no identity for (pos, S1), so it stays S1, 30); not S1: o5 (pos crm-9: no
// identity, stays crm-9) and o6 (S2).
func customersFixture(t *testing.T) *warehouse.Store {
	t.Helper()
	st := whtest.Store(t)
	for _, q := range []string{
		`INSERT INTO customers (customer_id, email, phone, first_seen_at, acquisition_channel, country, segment, source, updated_at) VALUES
		 ('S1','anna.berg@example.org','+49 151 1234 5678','2025-01-01 00:00:00','paid_search','DE','consumer','shop','2025-01-01 00:00:00'),
		 ('crm-9','anna.berg@example.org','','2025-02-01 00:00:00','','DE','club','crm','2025-03-01 00:00:00'),
		 ('hd-1','','004915112345678','1970-01-01 00:00:00','','','','helpdesk','2025-03-01 00:00:00'),
		 ('S2','bob@example.org','','2025-01-05 00:00:00','','FR','','shop','2025-01-05 00:00:00'),
		 ('S3','back\\slash@example.org','','2025-01-06 00:00:00','','NL','','shop','2025-01-06 00:00:00')`,
		`INSERT INTO identities (source, source_key, customer_id, rule, matched_at) VALUES
		 ('shop','S1','S1','email','2025-04-01 00:00:00'),
		 ('crm','crm-9','S1','email','2025-04-01 00:00:00'),
		 ('helpdesk','hd-1','hd-1','source_id','2025-03-02 00:00:00'),
		 ('helpdesk','hd-1','S1','phone','2025-04-01 00:00:00'),
		 ('web','dup-7','S1','explicit','2025-04-01 00:00:00'),
		 ('shop','S2','S2','source_id','2025-04-01 00:00:00'),
		 ('ads','dup-7','S2','explicit','2025-04-01 00:00:00'),
		 ('shop','S3','S3','source_id','2025-04-01 00:00:00')`,
		`INSERT INTO orders (order_id, customer_id, ordered_at, revenue, refund, currency, status, source) VALUES
		 ('o1','S1','2026-01-10 10:00:00',100,0,'EUR','completed','shop'),
		 ('o2','S1','2026-02-10 10:00:00',50,0,'EUR','cancelled','shop'),
		 ('o3','crm-9','2026-03-01 10:00:00',70,10,'EUR','completed','crm'),
		 ('o4','S1','2026-03-05 10:00:00',30,0,'EUR','completed','pos'),
		 ('o5','crm-9','2026-03-06 10:00:00',999,0,'EUR','completed','pos'),
		 ('o6','S2','2026-03-07 10:00:00',999,0,'EUR','completed','shop')`,
		`INSERT INTO touchpoints (event_id, customer_id, occurred_at, channel, kind, source) VALUES
		 ('e1','S1','2026-01-09 10:00:00','email','open','web'),
		 ('e2','crm-9','2026-01-08 10:00:00','email','click','crm'),
		 ('e3','crm-9','2026-01-07 10:00:00','email','click','web'),
		 ('e4','anon-9','2026-01-07 10:00:00','direct','visit','web')`,
		`INSERT INTO tickets (ticket_id, customer_id, opened_at, first_response_at, resolved_at, channel, status, csat, source) VALUES
		 ('t1','hd-1','2026-02-01 08:00:00','2026-02-01 09:00:00','2026-02-02 08:00:00','phone','solved',4,'helpdesk'),
		 ('t2','S1','2026-03-01 08:00:00',NULL,NULL,'email','open',NULL,'shop')`,
		`INSERT INTO survey_responses (response_id, customer_id, answered_at, kind, score, comment, source) VALUES
		 ('s1','S1','2026-02-03 10:00:00','nps',9,'quick help','survey')`,
		`INSERT INTO consents (customer_id, channel, purpose, granted, source_system, recorded_at, source) VALUES
		 ('S1','email','marketing',true,'shop','2026-01-01 00:00:00','shop'),
		 ('S1','sms','marketing',true,'shop','2026-01-01 00:00:00','shop'),
		 ('S1','email','marketing',false,'email','2026-02-01 00:00:00','email'),
		 ('crm-9','email','marketing',true,'crm','2026-03-01 00:00:00','crm')`,
		`INSERT INTO rewards (reward_id, customer_id, granted_at, kind, amount, currency, source) VALUES
		 ('w1','S1','2026-01-15 00:00:00','voucher',5,'EUR','shop'),
		 ('w2','crm-9','2026-02-15 00:00:00','gift',10,'EUR','crm')`,
		// Snapshot 2026-03-31 (with parameters) of eleven customers, and an older one of S1 without.
		`INSERT INTO customer_value (customer_id, as_of, model, model_version, calibration_end, unit, x, t_x, T, expected_purchases, p_alive, expected_spend, clv, currency, horizon_months, discount_rate) VALUES
		 ('S1','2026-03-31','bgnbd_gg','1','2026-03-31','week',2,7,15,1.5,0.8,60,50,'EUR',12,0),
		 ('S1','2026-02-28','bgnbd_gg','1','2026-02-28','week',1,4,11,1.2,0.9,60,45,'EUR',12,0),
		 ('v01','2026-03-31','bgnbd_gg','1','2026-03-31','week',1,5,30,1,0.5,50,100,'EUR',12,0),
		 ('v02','2026-03-31','bgnbd_gg','1','2026-03-31','week',1,5,30,1,0.5,50,200,'EUR',12,0),
		 ('v03','2026-03-31','bgnbd_gg','1','2026-03-31','week',1,5,30,1,0.5,50,300,'EUR',12,0),
		 ('v04','2026-03-31','bgnbd_gg','1','2026-03-31','week',1,5,30,1,0.5,50,400,'EUR',12,0),
		 ('v05','2026-03-31','bgnbd_gg','1','2026-03-31','week',1,5,30,1,0.5,50,500,'EUR',12,0),
		 ('v06','2026-03-31','bgnbd_gg','1','2026-03-31','week',1,5,30,1,0.5,50,600,'EUR',12,0),
		 ('v07','2026-03-31','bgnbd_gg','1','2026-03-31','week',5,10,30,1,0.2,50,700,'EUR',12,0),
		 ('v08','2026-03-31','bgnbd_gg','1','2026-03-31','week',0,0,30,1,1,50,800,'EUR',12,0),
		 ('v09','2026-03-31','bgnbd_gg','1','2026-03-31','week',5,29.9,30,4,0.94,50,900,'EUR',12,0),
		 ('v10','2026-03-31','bgnbd_gg','1','2026-03-31','week',5,10,30,2,0.1,50,1000,'EUR',12,0)`,
		`INSERT INTO clv_fits (model, as_of, model_version, calibration_end, unit, currency, customers, r, alpha, a, b,
		  bgnbd_log_likelihood, gg_p, gg_q, gg_gamma, gg_log_likelihood, horizon_months, discount_rate) VALUES
		 ('bgnbd_gg','2026-03-31','1','2026-03-31','week','EUR',11,0.8,4,1,13,0,1,2,3,0,12,0)`,
	} {
		if err := st.Conn.Exec(context.Background(), q); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	return st
}

var fixtureFit = BGNBD{R: 0.8, Alpha: 4, A: 1, B: 13}

func matchIDs(l *List[CustomerMatch]) string {
	var ids []string
	for _, m := range l.Rows {
		ids = append(ids, m.ID)
	}
	return strings.Join(ids, ",")
}

func TestCustomers(t *testing.T) {
	st := customersFixture(t)
	c := NewCustomers(st)
	ctx := context.Background()
	today := time.Date(2026, 4, 10, 15, 0, 0, 0, time.UTC)

	t.Run("search", func(t *testing.T) {
		for _, tc := range []struct {
			q             string
			offset, limit int
			want          string
			total         int
		}{
			{"ANNA.BERG", 0, 10, "S1", 1},         // e-mail, case-insensitive
			{"crm-9", 0, 10, "S1", 1},             // a source key finds its customer
			{"HD-1", 0, 10, "S1", 1},              // key of another source, any case
			{"0151 1234 5678", 0, 10, "S1", 1},    // national phone number: both records' digits match
			{"example.org", 0, 10, "S1,S2,S3", 3}, // by id
			{"example.org", 1, 1, "S2", 3},        // a page
			{"example.org", 9, 5, "", 3},          // past the end: still counts the matches
			{`back\slash`, 0, 10, "S3", 1},        // a backslash is a character, not an escape
			{"o'neil", 0, 10, "", 0},              // a quote is a character
			{"bob@example.org", 0, 10, "S2", 1},   // exact e-mail
			{"s", 0, 10, "S1,S2,S3", 3},           // "s" is in every id
			{"2026", 0, 10, "", 0},                // four digits: a phone search, nothing matches
			{"nobody", 0, 10, "", 0},
		} {
			got, err := c.Search(ctx, tc.q, tc.offset, tc.limit)
			if err != nil {
				t.Fatalf("%q: %v", tc.q, err)
			}
			if ids := matchIDs(got); ids != tc.want || got.Total != tc.total {
				t.Errorf("search %q offset %d limit %d: %q of %d, want %q of %d", tc.q, tc.offset, tc.limit, ids, got.Total, tc.want, tc.total)
			}
		}
		// Exact matches come first, with the merged profile.
		got, err := c.Search(ctx, "s2", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Rows) == 0 || got.Rows[0].ID != "S2" || !got.Rows[0].Exact || got.Rows[0].Email != "bob@example.org" || got.Rows[0].Country != "FR" {
			t.Errorf("search s2: %+v", got.Rows)
		}
		for _, bad := range []string{"", "   ", strings.Repeat("x", MaxSearchQuery+1)} {
			var pe *ParamError
			if _, err := c.Search(ctx, bad, 0, 10); !errors.As(err, &pe) || pe.Param != "q" {
				t.Errorf("search %q: %v, want a ParamError on q", bad, err)
			}
		}
	})

	t.Run("resolve", func(t *testing.T) {
		ids, err := c.Resolve(ctx, "S1")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, in := range ids.Rows {
			got = append(got, in.Source+":"+in.Key+"="+in.Rule)
		}
		slices.Sort(got)
		if strings.Join(got, " ") != "crm:crm-9=email helpdesk:hd-1=phone shop:S1=email web:dup-7=explicit" || ids.Total != 4 {
			t.Errorf("identities of S1: %v (total %d)", got, ids.Total)
		}
		for _, tc := range []struct{ id, moved string }{{"crm-9", "S1"}, {"crm:crm-9", "S1"}, {"hd-1", "S1"}} {
			var me *MovedError
			if _, err := c.Resolve(ctx, tc.id); !errors.As(err, &me) || me.ID != tc.moved {
				t.Errorf("resolve %q: %v, want moved to %s", tc.id, err, tc.moved)
			}
		}
		var ae *AmbiguousError
		if _, err := c.Resolve(ctx, "dup-7"); !errors.As(err, &ae) || strings.Join(ae.IDs, ",") != "S1,S2" {
			t.Errorf("resolve dup-7: %v, want ambiguous S1,S2", err)
		}
		for _, id := range []string{"nope", "", "crm-"} {
			if _, err := c.Resolve(ctx, id); !errors.Is(err, ErrCustomerNotFound) {
				t.Errorf("resolve %q: %v, want not found", id, err)
			}
		}
		if ids, err := c.Resolve(ctx, "anon-9"); err != nil || ids.Total != 0 {
			t.Errorf("resolve anon-9 (facts only): %v %v", ids, err)
		}
	})

	t.Run("360", func(t *testing.T) {
		v, err := c.Profile360(ctx, "S1", Profile360Options{Limit: 50, Budget: 30 * time.Second, Today: today})
		if err != nil {
			t.Fatal(err)
		}
		for name, err := range map[string]error{"profile": v.Profile.Err, "orders": v.Orders.Err, "touchpoints": v.Touchpoints.Err,
			"tickets": v.Tickets.Err, "surveys": v.Surveys.Err, "consents": v.Consents.Err, "rewards": v.Rewards.Err, "values": v.Values.Err} {
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		p := v.Profile.Data
		if p == nil || p.Email != "anna.berg@example.org" || p.Phone != "+49 151 1234 5678" || p.Country != "DE" || p.Segment != "club" ||
			strings.Join(p.Sources, ",") != "crm,helpdesk,shop" || p.Records != 3 || p.AcquisitionChannel != "paid_search" ||
			!p.FirstSeen.Equal(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("profile %+v", p)
		}
		o := v.Orders.Data
		var orderIDs []string
		for _, r := range o.Rows {
			orderIDs = append(orderIDs, r.ID)
		}
		if strings.Join(orderIDs, ",") != "o4,o3,o2,o1" || o.Total != 4 || o.Orders != 3 || o.Revenue != 200 || o.Refund != 10 ||
			strings.Join(o.Currencies, ",") != "EUR" || o.First.Format(time.DateOnly) != "2026-01-10" || o.Last.Format(time.DateOnly) != "2026-03-05" {
			t.Errorf("orders %v total %d orders %d revenue %v refund %v %v %v–%v", orderIDs, o.Total, o.Orders, o.Revenue, o.Refund, o.Currencies, o.First, o.Last)
		}
		if tp := v.Touchpoints.Data; tp.Total != 2 || tp.Rows[0].Kind != "open" || tp.Rows[1].Source != "crm" {
			t.Errorf("touchpoints %+v", tp)
		}
		tk := v.Tickets.Data
		if tk.Total != 2 || tk.Rows[0].ID != "t2" || tk.Rows[0].FirstResponseAt != nil || tk.Rows[0].CSAT != nil ||
			tk.Rows[1].ID != "t1" || tk.Rows[1].CSAT == nil || *tk.Rows[1].CSAT != 4 || tk.Rows[1].ResolvedAt == nil {
			t.Errorf("tickets %+v", tk)
		}
		if sv := v.Surveys.Data; sv.Total != 1 || sv.Rows[0].Score != 9 || sv.Rows[0].Comment != "quick help" {
			t.Errorf("surveys %+v", sv)
		}
		cs := v.Consents.Data
		var cur []string
		for _, s := range cs.Current {
			cur = append(cur, s.Channel+"/"+s.Purpose+"="+map[bool]string{true: "granted", false: "withdrawn"}[s.Granted]+"@"+s.SourceSystem+" "+s.Since.Format(time.DateOnly))
		}
		if cs.History.Total != 4 || cs.History.Rows[0].SourceSystem != "crm" ||
			strings.Join(cur, "; ") != "email/marketing=granted@crm 2026-03-01; sms/marketing=granted@shop 2026-01-01" {
			t.Errorf("consents: history %d %+v, current %v", cs.History.Total, cs.History.Rows, cur)
		}
		if rw := v.Rewards.Data; rw.Total != 2 || rw.Amount != 15 || rw.Rows[0].ID != "w2" {
			t.Errorf("rewards %+v", rw)
		}
		vals := v.Values.Data
		if vals.Total != 2 || vals.Rows[0].AsOf.Format(time.DateOnly) != "2026-03-31" || vals.Rows[0].CLV != 50 ||
			vals.Rows[0].PAliveToday == nil || vals.Rows[1].PAliveToday != nil {
			t.Fatalf("values %+v", vals)
		}
		// P(alive) on 2026-04-10: T = 15 weeks + 10 days.
		want := fixtureFit.PAlive(CLVCustomer{X: 2, Tx: 7, T: 15 + 10.0/7})
		if got := *vals.Rows[0].PAliveToday; math.Abs(got-want) > 1e-12 || got >= fixtureFit.PAlive(CLVCustomer{X: 2, Tx: 7, T: 15}) {
			t.Errorf("P(alive) today %v, want %v (and below the snapshot's)", got, want)
		}

		// A short list says how many there are.
		v, err = c.Profile360(ctx, "S1", Profile360Options{Limit: 2, Budget: 30 * time.Second, Today: today})
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Orders.Data.Rows) != 2 || v.Orders.Data.Total != 4 || v.Orders.Data.Revenue != 200 || len(v.Consents.Data.History.Rows) != 2 ||
			v.Consents.Data.History.Total != 4 || len(v.Consents.Data.Current) != 2 {
			t.Errorf("limit 2: orders %d of %d (revenue %v), consents %d of %d, current %d", len(v.Orders.Data.Rows), v.Orders.Data.Total,
				v.Orders.Data.Revenue, len(v.Consents.Data.History.Rows), v.Consents.Data.History.Total, len(v.Consents.Data.Current))
		}

		// An id known from facts only: no profile, its touchpoint.
		v, err = c.Profile360(ctx, "anon-9", Profile360Options{Budget: 30 * time.Second, Today: today})
		if err != nil {
			t.Fatal(err)
		}
		if v.Profile.Err != nil || v.Profile.Data != nil || v.Touchpoints.Data.Total != 1 || v.Orders.Data.Total != 0 {
			t.Errorf("anon-9: profile %+v, touchpoints %d, orders %d", v.Profile, v.Touchpoints.Data.Total, v.Orders.Data.Total)
		}
		var me *MovedError
		if _, err := c.Profile360(ctx, "crm-9", Profile360Options{}); !errors.As(err, &me) || me.ID != "S1" {
			t.Errorf("360 of crm-9: %v, want moved to S1", err)
		}
	})

	t.Run("best and at risk", func(t *testing.T) {
		best, err := c.BestCustomers(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range best.Rows {
			ids = append(ids, r.ID)
		}
		if strings.Join(ids, ",") != "v10,v09,v08" || best.Total != 11 || best.Snapshot.AsOf.Format(time.DateOnly) != "2026-03-31" ||
			best.Snapshot.Model == nil || *best.Snapshot.Model != fixtureFit || best.Rows[0].Purchases != 6 {
			t.Errorf("best %v of %d, snapshot %+v", ids, best.Total, best.Snapshot)
		}
		risk, err := c.AtRisk(ctx, today, 10)
		if err != nil {
			t.Fatal(err)
		}
		// Top fifth: CLV ≥ 800 (exact 80th percentile of 11); v08 has no repeat purchase, v09
		// bought last week; v10 has not bought for 20 weeks.
		if risk.Threshold != 800 || risk.Total != 1 || len(risk.Rows) != 1 || risk.Rows[0].ID != "v10" {
			t.Fatalf("at risk %+v", risk)
		}
		r := risk.Rows[0]
		after := fixtureFit.PAlive(CLVCustomer{X: 5, Tx: 10, T: 10})
		now := fixtureFit.PAlive(CLVCustomer{X: 5, Tx: 10, T: 30 + 10.0/7})
		if math.Abs(r.PAliveAfterLast-after) > 1e-12 || math.Abs(r.PAliveToday-now) > 1e-12 || after-now < AtRiskMinDrop ||
			r.LastPurchase.Format(time.DateOnly) != "2025-11-11" || r.UsualGapDays != 14 || r.PAlive != 0.1 {
			t.Errorf("v10: %+v, want P(alive) %v → %v", r, after, now)
		}
		// An order after the calibration end: v10 is alive, not at risk.
		if err := st.Conn.Exec(ctx, `INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, source) VALUES ('o7','v10','2026-04-02 10:00:00',10,'EUR','shop')`); err != nil {
			t.Fatal(err)
		}
		if risk, err := c.AtRisk(ctx, today, 10); err != nil || risk.Total != 0 {
			t.Errorf("after v10 ordered: %+v %v", risk, err)
		}
		// Without parameters for the snapshot, at-risk says how to get them.
		if err := st.Conn.Exec(ctx, `TRUNCATE TABLE clv_fits`); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AtRisk(ctx, today, 10); err == nil || !strings.Contains(err.Error(), "converge clv fit --calibration-end 2026-03-31") {
			t.Errorf("at risk without parameters: %v", err)
		}
	})

	t.Run("failing section", func(t *testing.T) {
		if err := st.Conn.Exec(ctx, `DROP TABLE rewards`); err != nil {
			t.Fatal(err)
		}
		v, err := c.Profile360(ctx, "S1", Profile360Options{Budget: 30 * time.Second, Today: today})
		if err != nil {
			t.Fatal(err)
		}
		if v.Rewards.Err == nil || !strings.Contains(v.Rewards.Err.Error(), "customer_rewards") || v.Orders.Err != nil || v.Orders.Data.Total != 4 {
			t.Errorf("rewards error %v, orders %v (%d)", v.Rewards.Err, v.Orders.Err, v.Orders.Data.Total)
		}
	})

	t.Run("no snapshot", func(t *testing.T) {
		if _, err := NewCustomers(whtest.Store(t)).BestCustomers(ctx, 5); !errors.Is(err, ErrNoSnapshot) {
			t.Errorf("best without a snapshot: %v", err)
		}
	})
}

// TestWithin: a section that does not answer within its budget is abandoned.
func TestWithin(t *testing.T) {
	start := time.Now()
	_, err := Within(context.Background(), 50*time.Millisecond, func(ctx context.Context) (int, error) {
		time.Sleep(2 * time.Second) // ignores its context
		return 1, nil
	})
	if !errors.Is(err, ErrBudget) || time.Since(start) > time.Second {
		t.Errorf("err %v after %v", err, time.Since(start))
	}
	v, err := Within(context.Background(), time.Second, func(ctx context.Context) (int, error) { return 7, nil })
	if v != 7 || err != nil {
		t.Errorf("%v %v", v, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Within(ctx, time.Second, func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() }); !errors.Is(err, context.Canceled) || errors.Is(err, ErrBudget) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestSearchDigits(t *testing.T) {
	for q, want := range map[string]string{"0151 1234 5678": "15112345678", "+49 (151) 1234-5678": "4915112345678", "C0001": "", "12": "", "0049": "", "hd-1": ""} {
		if got := SearchDigits(q); got != want {
			t.Errorf("SearchDigits(%q) = %q, want %q", q, got, want)
		}
	}
}

// TestRFMSegments: every R×F cell is in exactly one segment.
func TestRFMSegments(t *testing.T) {
	for r := 1; r <= 5; r++ {
		for f := 1; f <= 5; f++ {
			n := 0
			for _, s := range RFMSegments {
				if r >= s.RMin && r <= s.RMax && f >= s.FMin && f <= s.FMax {
					n++
				}
			}
			if n != 1 || RFMSegmentOf(r, f) < 0 {
				t.Errorf("cell R%d F%d is in %d segments", r, f, n)
			}
		}
	}
	if RFMSegmentOf(5, 5) != 0 || RFMSegments[RFMSegmentOf(1, 1)].Name != "Hibernating" || RFMSegmentOf(0, 3) != -1 {
		t.Errorf("RFMSegmentOf")
	}
}

// TestCustomerFactsCurrentVersion: the customer 360 finds a customer's facts by the source ids
// stored on any version of a row, then keeps only rows whose current version belongs to the
// customer: a fact re-loaded under another customer leaves the first and joins the second,
// in every list, as the *_resolved views see it.
func TestCustomerFactsCurrentVersion(t *testing.T) {
	ctx := context.Background()
	st := customersFixture(t)
	c := NewCustomers(st)
	today := time.Date(2026, 4, 10, 12, 0, 0, 0, time.UTC)
	// Newer versions: o1, e1, t2, s1 and w1 move from S1 to S2; o6 moves from S2 to S1.
	for _, q := range []string{
		`INSERT INTO orders (order_id, customer_id, ordered_at, revenue, refund, currency, status, source, loaded_at) VALUES
		 ('o1','S2','2026-01-10 10:00:00',100,0,'EUR','completed','shop','2030-01-01 00:00:00'),
		 ('o6','S1','2026-03-07 10:00:00',999,0,'EUR','completed','shop','2030-01-01 00:00:00')`,
		`INSERT INTO touchpoints (event_id, customer_id, occurred_at, channel, kind, source, loaded_at) VALUES
		 ('e1','S2','2026-01-09 10:00:00','email','open','web','2030-01-01 00:00:00')`,
		`INSERT INTO tickets (ticket_id, customer_id, opened_at, channel, status, source, updated_at) VALUES
		 ('t2','S2','2026-03-01 08:00:00','email','solved','shop','2030-01-01 00:00:00')`,
		`INSERT INTO survey_responses (response_id, customer_id, answered_at, kind, score, source, loaded_at) VALUES
		 ('s1','S2','2026-02-03 10:00:00','nps',9,'survey','2030-01-01 00:00:00')`,
		`INSERT INTO rewards (reward_id, customer_id, granted_at, kind, amount, currency, source, loaded_at) VALUES
		 ('w1','S2','2026-01-15 00:00:00','voucher',5,'EUR','shop','2030-01-01 00:00:00')`,
	} {
		if err := st.Conn.Exec(ctx, q); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	ids := func(v *Customer360) string {
		var o, tp, tk, sv, rw []string
		for _, r := range v.Orders.Data.Rows {
			o = append(o, r.ID)
		}
		for _, r := range v.Touchpoints.Data.Rows {
			tp = append(tp, r.Source+"/"+r.Kind)
		}
		for _, r := range v.Tickets.Data.Rows {
			tk = append(tk, r.ID+"="+r.Status)
		}
		for _, r := range v.Surveys.Data.Rows {
			sv = append(sv, r.Kind)
		}
		for _, r := range v.Rewards.Data.Rows {
			rw = append(rw, r.ID)
		}
		return fmt.Sprintf("orders %v (%d, revenue %v) touchpoints %v (%d) tickets %v (%d) surveys %v (%d) rewards %v (%d, %v)",
			o, v.Orders.Data.Total, v.Orders.Data.Revenue, tp, v.Touchpoints.Data.Total, tk, v.Tickets.Data.Total,
			sv, v.Surveys.Data.Total, rw, v.Rewards.Data.Total, v.Rewards.Data.Amount)
	}
	for _, tc := range []struct{ id, want string }{
		{"S1", "orders [o6 o4 o3 o2] (4, revenue 1099) touchpoints [crm/click] (1) tickets [t1=solved] (1) surveys [] (0) rewards [w2] (1, 10)"},
		{"S2", "orders [o1] (1, revenue 100) touchpoints [web/open] (1) tickets [t2=solved] (1) surveys [nps] (1) rewards [w1] (1, 5)"},
	} {
		v, err := c.Profile360(ctx, tc.id, Profile360Options{Budget: 30 * time.Second, Today: today})
		if err != nil {
			t.Fatal(err)
		}
		for name, err := range map[string]error{"orders": v.Orders.Err, "touchpoints": v.Touchpoints.Err, "tickets": v.Tickets.Err,
			"surveys": v.Surveys.Err, "rewards": v.Rewards.Err} {
			if err != nil {
				t.Fatalf("%s %s: %v", tc.id, name, err)
			}
		}
		if got := ids(v); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.id, got, tc.want)
		}
		// The same counts as the *_resolved views.
		for _, q := range []struct {
			view string
			got  int
		}{{"orders_resolved", v.Orders.Data.Total}, {"touchpoints_resolved", v.Touchpoints.Data.Total}, {"tickets_resolved", v.Tickets.Data.Total},
			{"survey_responses_resolved", v.Surveys.Data.Total}, {"rewards_resolved", v.Rewards.Data.Total}} {
			var n uint64
			if err := st.Conn.QueryRow(ctx, "SELECT count() FROM "+q.view+" WHERE customer_id = {id:String}",
				clickhouse.Named("id", tc.id)).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if int(n) != q.got {
				t.Errorf("%s: %s has %d rows, the 360 %d", tc.id, q.view, n, q.got)
			}
		}
	}
}

// TestProfilesMatchView: Profiles reads customers_resolved's SELECT over only the records that
// can belong to the customers asked for; its answer is the view's, for every customer.
func TestProfilesMatchView(t *testing.T) {
	ctx := context.Background()
	st := customersFixture(t)
	// A record re-matched from S2 to S3, and one whose newest identity is itself again.
	if err := st.Conn.Exec(ctx, `INSERT INTO customers (customer_id, email, first_seen_at, country, segment, source, updated_at) VALUES
		('crm-3','s3@example.org','2024-12-01 00:00:00','BE','vip','crm','2025-02-01 00:00:00'),
		('crm-4','four@example.org','2024-11-01 00:00:00','AT','','crm','2025-02-01 00:00:00')`); err != nil {
		t.Fatal(err)
	}
	if err := st.Conn.Exec(ctx, `INSERT INTO identities (source, source_key, customer_id, rule, matched_at) VALUES
		('crm','crm-3','S2','email','2025-04-01 00:00:00'), ('crm','crm-3','S3','email','2025-05-01 00:00:00'),
		('crm','crm-4','S3','email','2025-04-01 00:00:00'), ('crm','crm-4','crm-4','source_id','2025-05-01 00:00:00')`); err != nil {
		t.Fatal(err)
	}
	rows, err := st.Conn.Query(ctx, `SELECT customer_id, email, phone, first_seen_at, acquisition_channel, acquisition_campaign, country, segment, sources, records
		FROM customers_resolved ORDER BY customer_id`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]CustomerProfile{}
	var all []string
	for rows.Next() {
		var (
			p CustomerProfile
			n uint64
		)
		if err := rows.Scan(&p.ID, &p.Email, &p.Phone, &p.FirstSeen, &p.AcquisitionChannel, &p.AcquisitionCampaign, &p.Country, &p.Segment, &p.Sources, &n); err != nil {
			t.Fatal(err)
		}
		p.Records = int(n)
		want[p.ID] = p
		all = append(all, p.ID)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if strings.Join(all, ",") != "S1,S2,S3,crm-4" {
		t.Fatalf("customers_resolved has %v", all)
	}
	if w := want["S3"]; w.Records != 2 || w.Segment != "vip" || w.Email != "s3@example.org" {
		t.Fatalf("the view's S3: %+v", w)
	}
	c := NewCustomers(st)
	got, err := c.Profiles(ctx, append(all, "nobody"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("profiles of %d customers, the view has %d", len(got), len(want))
	}
	for id, w := range want {
		if g, ok := got[id]; !ok || !reflect.DeepEqual(g, w) {
			t.Errorf("%s:\n got %+v\nwant %+v", id, g, w)
		}
		one, err := c.Profiles(ctx, []string{id})
		if err != nil || !reflect.DeepEqual(one[id], w) || len(one) != 1 {
			t.Errorf("%s alone: %+v %v", id, one, err)
		}
	}
}
