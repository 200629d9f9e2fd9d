package metrics

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"testing"

	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// attributionSQL is a fixture computed by hand below. All amounts EUR.
//
// Customer A's path (30-day lookback before order A1, 2026-01-06 10:00,
// revenue 1000, cost 600, gross profit 400):
//
//	1 2026-01-02 search / brand    click   first touch
//	2 2026-01-03 social / retarget signup  lead (first signup)
//	3 2026-01-04 email  /          open    another touch
//	4 2026-01-05 search / generic  click   last touch
//
// W-shaped: the three key touches (1, 2, 4) share 90 % (30 % each), the
// other one 10 %; linear: 25 % each. So search gets 60 % (W) or 50 %
// (linear), social 30 % or 25 %, email 10 % or 25 %.
// Customer B: social / retarget click 2026-02-10, order B1 2026-02-11,
// revenue 200, cost unknown (gross profit 60 at the 30 % default margin):
// all to social. Customer C: organic visit, order C1 2026-02-21, revenue
// 500, cost 250: all to organic, which has no spend (not a paid channel).
//
// Spend: search / brand 200 (Jan), search / generic 300 (Feb),
// social / retarget 100 (Jan) and 300 (Feb), email without a campaign 50
// (Jan): 950 in all.
var attributionSQL = []string{
	`INSERT INTO touchpoints (event_id, customer_id, occurred_at, channel, campaign, kind, source) VALUES
	 ('a1','A','2026-01-02 10:00:00','search','brand','click','web'),
	 ('a2','A','2026-01-03 10:00:00','social','retarget','signup','web'),
	 ('a3','A','2026-01-04 10:00:00','email','','open','web'),
	 ('a4','A','2026-01-05 10:00:00','search','generic','click','web'),
	 ('b1','B','2026-02-10 10:00:00','social','retarget','click','web'),
	 ('c1','C','2026-02-20 10:00:00','organic','','visit','web')`,
	`INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, cost, status, channel, source) VALUES
	 ('A1','A','2026-01-06 10:00:00',1000,'EUR',600, 'completed','search','shop'),
	 ('B1','B','2026-02-11 10:00:00', 200,'EUR',NULL,'completed','social','shop'),
	 ('C1','C','2026-02-21 10:00:00', 500,'EUR',250, 'completed','organic','shop')`,
	`INSERT INTO marketing_spend (date, channel, campaign, spend, currency, source) VALUES
	 ('2026-01-01','search','brand',   200,'EUR','ads'),
	 ('2026-02-01','search','generic', 300,'EUR','ads'),
	 ('2026-01-15','social','retarget',100,'EUR','ads'),
	 ('2026-02-15','social','retarget',300,'EUR','ads'),
	 ('2026-01-20','email', '',         50,'EUR','mail')`,
}

func attributionStore(t *testing.T) *warehouse.Store {
	t.Helper()
	st := whtest.Store(t)
	for _, q := range attributionSQL {
		if err := st.Conn.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// ROAS and marketing ROI have whole-range totals that are ratios of sums over
// the range (never sums or averages of the buckets' ratios), per dim and over
// all paid channels (the series without a dim); W-shaped differs from linear
// where a path has a lead touch and another touch.
func TestAttributionTotals(t *testing.T) {
	r, err := New(context.Background(), Options{Store: attributionStore(t), CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		total  float64
		points []float64 // by month; NaN: no value
	}
	nan := math.NaN()
	cases := []struct {
		name, metric, query string
		want                map[string]want
		compare             map[string]float64 // dim → CompareTotal
	}{
		{
			// search: 60 % of 1000 / (200 + 300) = 1.2, though its months are 3.0 (600/200) and 0
			// (sum 3, mean 1.5). social: (300 + 200) / 400 = 1.25; months 3.0 and 0.667 (mean 1.83).
			// email: 100 / 50. organic: no cost, no value. All: revenue of paid channels
			// (1000 + 200) / 950 = 1.2632; January 1000 / 350, February 200 / 600.
			name: "roas w_shaped", metric: "roas", query: "model=w_shaped",
			want: map[string]want{
				"search":  {1.2, []float64{3, 0}},
				"social":  {1.25, []float64{3, 200. / 300}},
				"email":   {2, []float64{2, nan}},
				"organic": {nan, []float64{nan, nan}},
				"":        {1200. / 950, []float64{1000. / 350, 200. / 600}},
			},
		},
		{
			// search 50 %: 500 / 500; social 250 + 200 over 400; email 250 / 50.
			name: "roas linear", metric: "roas", query: "model=linear",
			want: map[string]want{
				"search": {1, []float64{500. / 200, 0}},
				"social": {450. / 400, []float64{2.5, 200. / 300}},
				"email":  {5, []float64{5, nan}},
				"":       {1200. / 950, []float64{1000. / 350, 200. / 600}},
			},
		},
		{
			// Gross profit: A1 400 (W: search 240, social 120, email 40), B1 60 (social).
			// search (240 − 500) / 500; social (180 − 400) / 400; email (40 − 50) / 50;
			// all (460 − 950) / 950; January (400 − 350) / 350, February (60 − 600) / 600.
			name: "marketing_roi w_shaped", metric: "marketing_roi", query: "model=w_shaped",
			want: map[string]want{
				"search": {-0.52, []float64{(240. - 200) / 200, -1}},
				"social": {-0.55, []float64{(120. - 100) / 100, (60. - 300) / 300}},
				"email":  {-0.2, []float64{-0.2, nan}},
				"":       {(460. - 950) / 950, []float64{(400. - 350) / 350, (60. - 600) / 600}},
			},
		},
		{
			// Linear: search 200, social 100 + 60, email 100.
			name: "marketing_roi linear", metric: "marketing_roi", query: "model=linear",
			want: map[string]want{
				"search": {-0.6, []float64{0, -1}},
				"social": {-0.6, []float64{0, -0.8}},
				"email":  {1, []float64{1, nan}},
			},
		},
		{
			// By campaign, W-shaped: brand has the first touch (300 / 200), generic the last
			// (300 / 300); the email touch has no campaign.
			name: "roas w_shaped by campaign", metric: "roas", query: "model=w_shaped&level=campaign",
			want: map[string]want{
				"search / brand":    {1.5, []float64{1.5, nan}},
				"search / generic":  {1, []float64{nan, 0}},
				"social / retarget": {1.25, []float64{3, 200. / 300}},
				"email / ":          {2, []float64{2, nan}},
				"organic / ":        {nan, []float64{nan, nan}},
				"":                  {1200. / 950, []float64{1000. / 350, 200. / 600}},
			},
		},
		{
			// The comparison period has its own total: February against January.
			name: "roas w_shaped february vs january", metric: "roas",
			query: "model=w_shaped&from=2026-02-01&to=2026-02-28&compare=previous",
			want: map[string]want{
				"social": {200. / 300, []float64{200. / 300}},
				"":       {200. / 600, []float64{200. / 600}},
			},
			compare: map[string]float64{"social": 3, "search": 3, "": 1000. / 350},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, _ := url.ParseQuery("from=2026-01-01&to=2026-02-28&grain=month&" + c.query)
			for k, x := range v { // the case's own from/to win
				v[k] = x[len(x)-1:]
			}
			p, err := r.ParseParams(c.metric, v)
			if err != nil {
				t.Fatal(err)
			}
			res, err := r.Query(context.Background(), c.metric, p)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]Series{}
			for _, s := range res.Series {
				got[s.Dim] = s
			}
			for dim, w := range c.want {
				s, ok := got[dim]
				if !ok {
					t.Errorf("no series %q (have %v)", dim, keys(got))
					continue
				}
				if !near(s.Total, w.total) {
					t.Errorf("%q total %s, want %.4f", dim, show(s.Total), w.total)
				}
				if len(s.Points) != len(w.points) {
					t.Fatalf("%q: %d points, want %d", dim, len(s.Points), len(w.points))
				}
				for i, pt := range s.Points {
					if !near(pt.Value, w.points[i]) {
						t.Errorf("%q %s: %s, want %.4f", dim, pt.Bucket, show(pt.Value), w.points[i])
					}
				}
			}
			for dim, w := range c.compare {
				if s := got[dim]; !near(s.CompareTotal, w) {
					t.Errorf("%q compare total %s, want %.4f", dim, show(s.CompareTotal), w)
				}
			}
		})
	}
}

// near compares with a NaN meaning "no value".
func near(got *float64, want float64) bool {
	if math.IsNaN(want) {
		return got == nil
	}
	return got != nil && math.Abs(*got-want) < 1e-9
}

func show(v *float64) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprintf("%.6f", *v)
}

func keys(m map[string]Series) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
