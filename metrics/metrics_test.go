package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/converge-dev/converge/warehouse/whtest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func registry(t *testing.T) *Registry {
	t.Helper()
	st := fixture(t)
	r, err := New(context.Background(), Options{Store: st, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// render prints a result compactly for golden files.
func render(res *Result) string {
	var b strings.Builder
	f := func(v *float64) string {
		if v == nil {
			return "null"
		}
		return fmt.Sprintf("%.4f", *v)
	}
	if res.Table != nil {
		fmt.Fprintln(&b, strings.Join(res.Table.Columns, " | "))
		for _, row := range res.Table.Rows {
			cells := make([]string, len(row))
			for i, c := range row {
				if x, ok := c.(float64); ok {
					cells[i] = fmt.Sprintf("%.4f", x)
				} else {
					cells[i] = fmt.Sprint(c)
				}
			}
			fmt.Fprintln(&b, strings.Join(cells, " | "))
		}
		return b.String()
	}
	for _, s := range res.Series {
		fmt.Fprintf(&b, "[%s] total=%s", s.Dim, f(s.Total))
		if res.Compare != "" {
			fmt.Fprintf(&b, " compare_total=%s", f(s.CompareTotal))
		}
		fmt.Fprintln(&b)
		for _, p := range s.Points {
			fmt.Fprintf(&b, "  %s %s", p.Bucket, f(p.Value))
			if res.Compare != "" {
				fmt.Fprintf(&b, " vs %s %s", p.CompareBucket, f(p.Compare))
			}
			if p.Target != nil {
				fmt.Fprintf(&b, " target %s", f(p.Target))
			}
			fmt.Fprintln(&b)
		}
	}
	return b.String()
}

// TestBuiltins computes every built-in over the fixture; the golden file
// holds the hand-checked values (the fixture comment lists the data).
func TestBuiltins(t *testing.T) {
	r := registry(t)
	cases := []struct{ metric, query string }{
		{"revenue_gross", "from=2026-01-01&to=2026-03-31&grain=month"},
		{"revenue_gross", "from=2026-01-01&to=2026-03-31&grain=month&tz=Europe/Berlin"},
		{"revenue_gross", "from=2026-01-01&to=2026-03-31&grain=quarter&by=channel"},
		{"revenue_gross", "from=2026-02-01&to=2026-03-31&grain=month&compare=previous"},
		{"revenue_gross", "from=2026-01-01&to=2026-03-31&grain=month&filter=country=FR"},
		{"refunds", "from=2026-01-01&to=2026-03-31&grain=month"},
		{"revenue_net", "from=2026-01-01&to=2026-03-31&grain=month"},
		{"cogs", "from=2026-01-01&to=2026-03-31&grain=month"},
		{"gross_margin", "from=2026-01-01&to=2026-03-31&grain=month"},
		{"gross_margin_pct", "from=2026-01-01&to=2026-03-31&grain=month"},
		{"orders", "from=2026-01-01&to=2026-03-31&grain=month"},
		{"aov", "from=2026-01-01&to=2026-03-31&grain=month"},
		{"new_customers", "from=2026-01-01&to=2026-03-31&grain=month"},
		{"active_customers", "from=2026-01-01&to=2026-03-31&grain=month"},
		{"active_customers", "from=2026-01-01&to=2026-03-31&grain=year"},
		{"repeat_purchase_rate", "from=2026-01-01&to=2026-03-31&grain=month"},
		{"marketing_spend", "from=2026-01-01&to=2026-03-31&grain=month"},
		{"cac_blended", "from=2026-01-01&to=2026-03-31&grain=month"},
		{"cac_blended", "from=2026-01-01&to=2026-03-31&grain=month&by=channel"},
		{"cac_paid", "from=2026-01-01&to=2026-03-31&grain=month"},
		{"aov", "from=2026-02-01&to=2026-03-31&grain=month&compare=year"},
		{"orders", "from=2026-01-01&to=2026-01-31&grain=week&week_start=sunday"},
		{"orders", "from=2026-01-01&to=2026-01-31&grain=week"},
		{"revenue_net", "from=2026-01-01&to=2026-03-31&grain=month&by=country&filter=channel=organic"},
		{"revenue_gross", "from=2026-01-01&to=2026-12-31&grain=year&fiscal_year_start=2"},
		{"revenue_gross", "from=2026-01-01&to=2026-03-31&grain=quarter&fiscal_year_start=2"},
	}
	var out bytes.Buffer
	for _, c := range cases {
		v, _ := url.ParseQuery(c.query)
		p, err := r.ParseParams(c.metric, v)
		if err != nil {
			t.Fatalf("%s %s: %v", c.metric, c.query, err)
		}
		res, err := r.Query(context.Background(), c.metric, p)
		if err != nil {
			t.Fatalf("%s %s: %v", c.metric, c.query, err)
		}
		fmt.Fprintf(&out, "## %s %s\n%s\n", c.metric, c.query, render(res))
	}
	golden(t, "builtins.golden", out.Bytes())
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	whtest.Golden(t, filepath.Join("testdata", name), got, *update)
}

func TestTargetSeries(t *testing.T) {
	d, err := Parse("t.sql", []byte(strings.Replace(goodHead, "-- kind:", "-- target: 2026-01-01=5, 2026-02-01=7\n-- kind:", 1)+"SELECT * FROM orders FINAL"))
	if err != nil {
		t.Fatal(err)
	}
	day := func(s string) time.Time { t, _ := time.Parse(time.DateOnly, s); return t }
	if v := d.Target.At(day("2026-02-01")); v == nil || *v != 7 {
		t.Errorf("target at 2026-02-01 = %v, want 7", v)
	}
	if v := d.Target.At(day("2026-03-01")); v != nil {
		t.Errorf("target at 2026-03-01 = %v, want none", *v)
	}
	// JSON of a result: the shape the API serves.
	b, _ := json.Marshal(Point{Bucket: "2026-01-01", Value: nil})
	if string(b) != `{"bucket":"2026-01-01","value":null}` {
		t.Errorf("point JSON %s", b)
	}
}

func TestCustomBuiltins(t *testing.T) {
	r := registry(t)
	cases := []struct{ metric, query string }{
		{"churn_rate", "from=2026-01-01&to=2026-03-31&grain=month&window_days=30"},
		{"cohort_retention", "from=2026-01-01&to=2026-03-31&grain=month"},
		{"consented_audience", "from=2026-01-01&to=2026-02-09"},
		{"consented_audience", "from=2026-01-01&to=2026-03-31"},
		{"rfm_segments", "from=2026-01-01&to=2026-03-31"},
		{"rfm_best_customers", "from=2026-01-01&to=2026-03-31"},
		{"nps", "from=2026-01-01&to=2026-02-28&grain=month"},
		{"csat", "from=2026-01-01&to=2026-02-28&grain=month"},
		{"tickets", "from=2026-01-01&to=2026-02-28&grain=month"},
		{"first_response_time", "from=2026-01-01&to=2026-02-28&grain=month"},
		{"resolution_time", "from=2026-01-01&to=2026-02-28&grain=month"},
		{"service_score", "from=2026-01-01&to=2026-02-28&grain=month"},
		{"rewards_per_customer", "from=2026-01-01&to=2026-02-28&grain=month"},
		{"clv_historic", "from=2026-01-01&to=2026-03-31&grain=month"},
		{"ltv_cac", "from=2026-01-01&to=2026-03-31&grain=month"},
		{"cac_payback_months", "from=2026-01-01&to=2026-03-31&grain=month"},
		{"cac_payback_months", "from=2026-01-01&to=2026-03-31&grain=quarter"},
		{"clv_predicted", "from=2026-01-01&to=2026-03-31&grain=month"},
		{"roas", "from=2026-01-01&to=2026-03-31&grain=month&model=last_touch"},
		{"roas", "from=2026-01-01&to=2026-03-31&grain=month&model=first_touch"},
		{"roas", "from=2026-01-01&to=2026-03-31&grain=month&model=linear"},
		{"roas", "from=2026-01-01&to=2026-03-31&grain=month&model=u_shaped"},
		{"roas", "from=2026-01-01&to=2026-03-31&grain=month&model=w_shaped"},
		{"roas", "from=2026-01-01&to=2026-03-31&grain=month&model=time_decay"},
		{"roas", "from=2026-01-01&to=2026-03-31&grain=quarter&model=last_touch&level=campaign"},
		{"marketing_roi", "from=2026-01-01&to=2026-03-31&grain=quarter&model=last_touch"},
		{"funnel_conversion", "from=2026-01-01&to=2026-03-31"},
		{"funnel_conversion", "from=2026-01-01&to=2026-03-31&breakdown=channel"},
		{"engagement_score", "from=2026-01-01&to=2026-03-31"},
	}
	var out bytes.Buffer
	for _, c := range cases {
		v, _ := url.ParseQuery(c.query)
		p, err := r.ParseParams(c.metric, v)
		if err != nil {
			t.Fatalf("%s %s: %v", c.metric, c.query, err)
		}
		res, err := r.Query(context.Background(), c.metric, p)
		if err != nil {
			t.Fatalf("%s %s: %v", c.metric, c.query, err)
		}
		fmt.Fprintf(&out, "## %s %s\n%s\n", c.metric, c.query, render(res))
	}
	golden(t, "custom.golden", out.Bytes())
}
