package metrics

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/converge-dev/converge/warehouse/whtest"
)

// customHead is a custom metric's header up to its params.
const customHead = "-- name: x\n-- title: X\n-- description: d\n-- owner: CMO\n-- unit: count\n-- polarity: neutral\n-- kind: custom\n"

// A param's bounds are declared in its header ("| 1..365") and refused at load, with the file
// and line, when they make no sense.
func TestParamBoundsHeader(t *testing.T) {
	bad := []struct{ param, want string }{
		{"n Int64 = 30 | 1..", ""}, // one bound is enough
		{"n Int64 = 30 | ..365", ""},
		{"n Float64 = 7 | 0.1..365", ""},
		{"d Date = 2026-01-01 | 2000-01-01..2199-12-31", ""},
		{"n Int64 = 30 | 365..1", "the range 365..1 is empty"},
		{"n Int64 = 400 | 1..365", "default: 400 is out of range: n takes 1 to 365"},
		{"n Int64 = 30 | one..365", `bound "one" is not a Int64`},
		{"n Int64 = 30 | ..", "has no bound"},
		{"s String = a..z | a..z, b", ""}, // a String's list may hold ".."
		{"n Int32 = 3000000000", "not a Int32"},
		{"f Float64 = NaN", "not a Float64"},
	}
	for _, c := range bad {
		_, err := Parse("x.sql", []byte(customHead+"-- param: "+c.param+"\nSELECT 1"))
		if c.want == "" {
			if err != nil {
				t.Errorf("%q: %v", c.param, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Line != 8 || !strings.Contains(e.Reason, c.want) {
			t.Errorf("%q: %v, want line 8 and %q", c.param, err, c.want)
		}
	}
}

func TestParamCheck(t *testing.T) {
	p := Param{Name: "window_days", Type: "Int64", Min: "1", Max: "365"}
	h := Param{Name: "half_life_days", Type: "Float64", Min: "0.1"}
	d := Param{Name: "since", Type: "Date", Max: "2026-12-31"}
	cases := []struct {
		p    Param
		v    string
		want string // "" accepted
	}{
		{p, "1", ""}, {p, "365", ""}, {p, "30", ""},
		{p, "0", "0 is out of range: window_days takes 1 to 365"},
		{p, "100000", "100000 is out of range: window_days takes 1 to 365"},
		{p, "-7", "out of range"},
		{p, "7.5", `"7.5" is not a Int64`},
		{h, "0.1", ""}, {h, "1e3", ""},
		{h, "0", "0 is out of range: half_life_days takes at least 0.1"},
		{h, "inf", "not a Float64"},
		{d, "2026-12-31", ""},
		{d, "2027-01-01", "takes at most 2026-12-31"},
	}
	for _, c := range cases {
		err := c.p.Check(c.v)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s=%s: %v, want %q", c.p.Name, c.v, err, c.want)
		}
	}
}

// The built-ins' bounds hold for every caller: ParseParams (the CLI, the API's metric
// parameters, report schedules) and Registry.Query with Params built by hand (the pages and
// the exports), each a *ParamError naming the param.
func TestParamBoundsEveryCaller(t *testing.T) {
	r, err := New(context.Background(), Options{Store: whtest.Store(t), CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ metric, param, value, want string }{
		{"funnel_conversion", "window_days", "100000", "100000 is out of range: window_days takes 1 to 365"},
		{"funnel_conversion", "window_days", "0", "takes 1 to 365"},
		{"churn_rate", "window_days", "-1", "takes 1 to 3650"},
		{"roas", "lookback_days", "366", "takes 1 to 365"},
		{"roas", "half_life_days", "0", "takes 0.1 to 365"},
		{"marketing_roi", "half_life_days", "0", "takes 0.1 to 365"},
		{"engagement_score", "limit", "0", "takes 1 to 100000"},
	}
	for _, c := range cases {
		for _, how := range []string{"arg", "bare"} {
			v := url.Values{"from": {"2026-01-01"}, "to": {"2026-01-31"}}
			if how == "arg" {
				v.Set("arg", c.param+"="+c.value)
			} else {
				v.Set(c.param, c.value)
			}
			_, err := r.ParseParams(c.metric, v)
			var pe *ParamError
			if !errors.As(err, &pe) || pe.Param != c.param || !strings.Contains(pe.Reason, c.want) {
				t.Errorf("ParseParams %s %s: %v, want %s: %q", c.metric, v.Encode(), err, c.param, c.want)
			}
		}
		p, err := r.ParseParams(c.metric, url.Values{"from": {"2026-01-01"}, "to": {"2026-01-31"}})
		if err != nil {
			t.Fatal(err)
		}
		p.Args = map[string]string{c.param: c.value}
		_, err = r.Query(context.Background(), c.metric, p)
		var pe *ParamError
		if !errors.As(err, &pe) || pe.Param != c.param || !strings.Contains(pe.Reason, c.want) {
			t.Errorf("Query %s %s=%s: %v, want %q", c.metric, c.param, c.value, err, c.want)
		}
	}
}

// yearEnd is a store holding testdata/year_end.sql: orders around the turn of 2025 in Berlin.
func yearEnd(t *testing.T) *Registry {
	t.Helper()
	st := whtest.Store(t)
	q, err := os.ReadFile(filepath.Join("testdata", "year_end.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range strings.Split(string(q), ";\n") { // one statement a request
		if strings.TrimSpace(stmt) != "" {
			if err := st.Conn.Exec(context.Background(), stmt); err != nil {
				t.Fatal(err)
			}
		}
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	r, err := New(context.Background(), Options{Store: st, CacheTTL: -1, Defaults: Defaults{TZ: berlin}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// to is inclusive, as the dashboard's: a finance user asking for 2025 with to=2025-12-31 gets
// the order of 31 December 23:30 in the report time zone (Europe/Berlin, the registry's
// default), and not the one of 1 January 00:30 there. An RFC 3339 to includes that instant.
func TestToInclusive(t *testing.T) {
	r := yearEnd(t)
	cases := []struct {
		query string
		total float64 // revenue_gross over the range; 0: none
	}{
		{"from=2025-01-01&to=2025-12-31", 1110},                          // y1 + y2 + y3
		{"from=2025-01-01&to=2025-12-31&grain=year", 1110},               // one bucket
		{"from=2025-01-01&to=2025-12-30", 1100},                          // without 31 December
		{"from=2025-12-31&to=2025-12-31&grain=day", 10},                  // one day: from = to
		{"from=2025-01-01&to=2025-12-31&tz=UTC", 111},                    // y2 + y3 + y4 in UTC
		{"from=2025-12-31&to=2025-12-31T23:30:00%2B01:00&grain=day", 10}, // the instant of y3 is included
		{"from=2025-12-31&to=2025-12-31T23:29:59.999%2B01:00&grain=day", 0},
		{"from=2025-12-31T23:30:00%2B01:00&to=2025-12-31T23:30:00%2B01:00&grain=day", 10}, // one instant
	}
	for _, c := range cases {
		v, err := url.ParseQuery(c.query)
		if err != nil {
			t.Fatal(err)
		}
		p, err := r.ParseParams("revenue_gross", v)
		if err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		res, err := r.Query(context.Background(), "revenue_gross", p)
		if err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		var got float64
		if res.Series[0].Total != nil {
			got = *res.Series[0].Total
		}
		if got != c.total {
			t.Errorf("%s: revenue %v, want %v", c.query, got, c.total)
		}
		// Written back (a manifest's parameters), the same instants.
		back := p.Values()
		p2, err := r.ParseParams("revenue_gross", back)
		if err != nil || !p2.From.Equal(p.From) || !p2.To.Equal(p.To) {
			t.Errorf("%s: written back as %s: %v–%v, want %v–%v (%v)", c.query, back.Encode(), p2.From, p2.To, p.From, p.To, err)
		}
	}
	// December's bucket holds 31 December.
	p, _ := r.ParseParams("revenue_gross", url.Values{"from": {"2025-12-01"}, "to": {"2025-12-31"}, "grain": {"day"}})
	res, err := r.Query(context.Background(), "revenue_gross", p)
	if err != nil {
		t.Fatal(err)
	}
	pts := res.Series[0].Points
	if last := pts[len(pts)-1]; len(pts) != 31 || last.Bucket != "2025-12-31" || last.Value == nil || *last.Value != 10 {
		t.Errorf("December by day: %d buckets, the last %+v", len(pts), last)
	}
}

// Values writes whole days as days (what finance reads in a manifest) and other ranges as
// instants, the last one included; both read back to the same Params.
func TestParamValues(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, berlin).UTC() }
	cases := []struct {
		from, to         time.Time
		wantFrom, wantTo string
	}{
		{day(2025, 1, 1), day(2026, 1, 1), "2025-01-01", "2025-12-31"},
		{day(2026, 3, 29), day(2026, 3, 30), "2026-03-29", "2026-03-29"},                                      // 23 hours: the clocks go forward
		{day(2026, 1, 1).Add(time.Hour), day(2026, 2, 1), "2026-01-01T00:00:00Z", "2026-01-31T22:59:59.999Z"}, // 01:00 in Berlin: instants
	}
	for _, c := range cases {
		from, to := RangeValues(c.from, c.to, berlin)
		if from != c.wantFrom || to != c.wantTo {
			t.Errorf("RangeValues(%v, %v) = %s, %s; want %s, %s", c.from, c.to, from, to, c.wantFrom, c.wantTo)
		}
		d := &Definition{Name: "x", Kind: Simple}
		p, err := ParseParams(d, url.Values{"from": {from}, "to": {to}, "tz": {"Europe/Berlin"}}, Defaults{})
		if err != nil || !p.From.Equal(c.from) || !p.To.Equal(c.to) {
			t.Errorf("%s..%s read back as %v..%v (%v), want %v..%v", from, to, p.From, p.To, err, c.from, c.to)
		}
	}
}

// A snapshot metric (its SQL reads no {from}) needs no from: as of the end of to. Any other
// metric does, and says why.
func TestSnapshotNeedsNoFrom(t *testing.T) {
	r := yearEnd(t)
	for _, name := range []string{"rfm_segments", "rfm_best_customers", "consented_audience"} {
		d, _ := r.Get(name)
		if !d.Snapshot() {
			t.Errorf("%s is not a snapshot", name)
		}
		p, err := r.ParseParams(name, url.Values{"to": {"2025-12-31"}})
		if err != nil {
			t.Errorf("%s without from: %v", name, err)
			continue
		}
		if _, err := r.Query(context.Background(), name, p); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// rfm_segments as of the end of 31 December counts y3: c1 has two orders, c2 one (y4 is 2026).
	p, _ := r.ParseParams("rfm_segments", url.Values{"to": {"2025-12-31"}})
	res, err := r.Query(context.Background(), "rfm_segments", p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Table == nil || len(res.Table.Rows) != 2 {
		t.Fatalf("rfm_segments: %+v", res.Table)
	}
	for _, name := range []string{"revenue_gross", "funnel_conversion", "churn_rate", "aov"} {
		d, _ := r.Get(name)
		_, err := r.ParseParams(name, url.Values{"to": {"2025-12-31"}})
		var pe *ParamError
		if d.Snapshot() || !errors.As(err, &pe) || pe.Param != "from" || !strings.Contains(pe.Reason, "required") {
			t.Errorf("%s without from: %v", name, err)
		}
	}
}
