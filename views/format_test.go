package views

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func f(v float64) *float64 { return &v }

func TestFormatValue(t *testing.T) {
	tests := []struct {
		v              *float64
		unit, currency string
		want           string
	}{
		{nil, "count", "", NoData},
		{f(1234567.891), "currency", "EUR", "€1,234,568"},
		{f(12.5), "currency", "EUR", "€12.50"},
		{f(-2500), "currency", "USD", "-$2,500"},
		{f(999.999), "currency", "GBP", "£1,000.00"},
		{f(1500), "currency", "SEK", "SEK 1,500"},
		{f(0.1234), "percent", "", "12.3%"},
		{f(-0.05), "percent", "", "-5.0%"},
		{f(12345), "count", "", "12,345"},
		{f(0), "count", "", "0"},
		{f(3.2), "ratio", "", "3.20×"},
		{f(41.04), "score", "", "41.0"},
		{f(42), "minutes", "", "42 min"},
		{f(125), "minutes", "", "2 h 05 min"},
		{f(7.5), "hours", "", "7 h 30 min"},
		{f(72), "hours", "", "3.0 days"},
		{f(1), "days", "", "1 day"},
		{f(3.25), "days", "", "3.3 days"},
		{f(2.5), "months", "", "2.5 months"},
		{f(1234.5), "", "", "1,234.50"},
		{f(-1234567), "count", "", "-1,234,567"},
	}
	for _, tt := range tests {
		if got := FormatValue(tt.v, tt.unit, tt.currency); got != tt.want {
			t.Errorf("FormatValue(%v, %s, %s) = %q, want %q", deref(tt.v), tt.unit, tt.currency, got, tt.want)
		}
	}
}

func deref(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}

func TestComputeChange(t *testing.T) {
	tests := []struct {
		name          string
		cur, cmp      *float64
		unit          string
		polarity      string
		text, arrow   string
		class, judged string
	}{
		{"up is good", f(110), f(100), "count", "higher_is_better", "+10.0%", "▲", "good", "better"},
		{"up is bad", f(110), f(100), "currency", "lower_is_better", "+10.0%", "▲", "bad", "worse"},
		{"down is good", f(90), f(100), "hours", "lower_is_better", "-10.0%", "▼", "good", "better"},
		{"neutral", f(90), f(100), "count", "neutral", "-10.0%", "▼", "neutral", ""},
		{"percent in points", f(0.35), f(0.342), "percent", "higher_is_better", "+0.8 pp", "▲", "good", "better"},
		{"from zero", f(5), f(0), "count", "higher_is_better", "+5", "▲", "good", "better"},
		{"no change", f(5), f(5), "count", "higher_is_better", "no change", "→", "neutral", ""},
		{"missing", f(5), nil, "count", "higher_is_better", NoData, "", "neutral", ""},
	}
	for _, tt := range tests {
		c := ComputeChange(tt.cur, tt.cmp, tt.unit, "EUR", tt.polarity)
		if c.Text != tt.text || c.Arrow != tt.arrow || c.Class != tt.class || c.Verdict != tt.judged {
			t.Errorf("%s: %+v", tt.name, c)
		}
	}
}

func TestTargetStatus(t *testing.T) {
	if s, ok := TargetStatus(f(10), f(8), "higher_is_better"); !ok || s.Class != "good" {
		t.Errorf("higher above target: %+v", s)
	}
	if s, _ := TargetStatus(f(10), f(8), "lower_is_better"); s.Class != "bad" || s.Text != "Above target" {
		t.Errorf("lower above target: %+v", s)
	}
	if _, ok := TargetStatus(f(10), nil, "higher_is_better"); ok {
		t.Error("status without a target")
	}
}

func TestBucketLabels(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	b := time.Date(2026, 4, 1, 4, 0, 0, 0, time.UTC) // midnight 1 April in New York
	for _, tt := range []struct{ grain, label, csv string }{
		{"day", "1 Apr 2026", "2026-04-01"},
		{"week", "week of 1 Apr 2026", "2026-04-01"},
		{"month", "Apr 2026", "2026-04"},
		{"quarter", "Q2 2026", "2026-Q2"},
		{"year", "2026", "2026"},
	} {
		if got := BucketLabel(b, tt.grain, ny); got != tt.label {
			t.Errorf("BucketLabel %s = %q, want %q", tt.grain, got, tt.label)
		}
		if got := BucketCSV(b, tt.grain, ny); got != tt.csv {
			t.Errorf("BucketCSV %s = %q, want %q", tt.grain, got, tt.csv)
		}
	}
}

func TestChartOptions(t *testing.T) {
	opts := []string{
		SparklineOption([]*float64{f(1), nil, f(3)}),
		LineOption([]string{"a", "b"}, []Series{{Name: "v", Values: []*float64{f(1), nil}}, {Name: "t", Style: "target", Values: []*float64{f(2), f(2)}}}),
	}
	for _, o := range opts {
		var m map[string]any
		if err := json.Unmarshal([]byte(o), &m); err != nil {
			t.Fatalf("option is not JSON: %v\n%s", err, o)
		}
		if _, ok := m["series"]; !ok {
			t.Errorf("option without series: %s", o)
		}
		// No CDN (go-echarts' AssetsHost), no JavaScript functions.
		for _, bad := range []string{"http", "cdn", "function"} {
			if strings.Contains(strings.ToLower(o), bad) {
				t.Errorf("option contains %q: %s", bad, o)
			}
		}
		if !strings.Contains(o, `"-"`) {
			t.Errorf("a missing value is not a gap: %s", o)
		}
	}
}

func TestTileRendering(t *testing.T) {
	tile := TileView{Name: "cac", Title: "CAC", Unit: "currency", Currency: "EUR", Polarity: "lower_is_better",
		Href: "/kpi/cac?range=this_month", RefreshURL: "/tiles/cac?range=this_month", Value: f(90), Compare: f(100), Target: f(95),
		CompareLabel: "vs previous period", Freshness: "14 Mar 2026 09:30 UTC"}
	html := render(t, Tile(tile))
	for _, w := range []string{`id="tile-cac"`, "€90.00", "▼", "-10.0%", "(better)", `class="change good"`, "On target", "Data as of", `hx-get="/tiles/cac?range=this_month"`} {
		if !strings.Contains(html, w) {
			t.Errorf("tile lacks %q:\n%s", w, html)
		}
	}
	tile.Error = "timeout <b>"
	html = render(t, Tile(tile))
	if !strings.Contains(html, "timeout &lt;b&gt;") || !strings.Contains(html, `role="alert"`) || strings.Contains(html, "€90.00") {
		t.Errorf("error tile:\n%s", html)
	}
}
