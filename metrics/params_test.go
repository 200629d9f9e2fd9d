package metrics

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

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
		{"s String = a | a..z", "bounds a number or a date, not a String"},
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
