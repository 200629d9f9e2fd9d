package server

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseFilters(t *testing.T) {
	// Saturday 14 March 2026, 23:30 UTC: already Sunday 15 March in Berlin.
	now := time.Date(2026, 3, 14, 23, 30, 0, 0, time.UTC)
	defaults := filterDefaults{TZ: "UTC", FYStart: time.April}
	tests := []struct {
		name      string
		query     string
		defaults  *filterDefaults
		wantFrom  string // inclusive first day, in the report zone
		wantTo    string // exclusive day
		wantGrain string
		wantTZ    string
		check     func(t *testing.T, f Filters)
	}{
		{name: "default is last 30 days by day", query: "", wantFrom: "2026-02-13", wantTo: "2026-03-15", wantGrain: "day", wantTZ: "UTC"},
		{name: "this month", query: "range=this_month", wantFrom: "2026-03-01", wantTo: "2026-03-15", wantGrain: "day"},
		{name: "quarter to date", query: "range=quarter_to_date", wantFrom: "2026-01-01", wantTo: "2026-03-15", wantGrain: "week"},
		{name: "year to date", query: "range=year_to_date", wantFrom: "2026-01-01", wantTo: "2026-03-15", wantGrain: "week"},
		{name: "last year", query: "range=last_year", wantFrom: "2025-01-01", wantTo: "2026-01-01", wantGrain: "week"},
		{name: "fiscal year to date (April)", query: "range=fiscal_year_to_date", wantFrom: "2025-04-01", wantTo: "2026-03-15", wantGrain: "week"},
		{name: "last fiscal year (April)", query: "range=last_fiscal_year", wantFrom: "2024-04-01", wantTo: "2025-04-01", wantGrain: "week"},
		{name: "fiscal year = calendar year by default", query: "range=fiscal_year_to_date", defaults: &filterDefaults{}, wantFrom: "2026-01-01", wantTo: "2026-03-15", wantTZ: "UTC"},
		{name: "custom: to is inclusive in the URL, exclusive in the query", query: "range=custom&from=2025-12-01&to=2025-12-31", wantFrom: "2025-12-01", wantTo: "2026-01-01", wantGrain: "day"},
		{name: "from and to without range mean custom", query: "from=2024-01-01&to=2025-12-31", wantFrom: "2024-01-01", wantTo: "2026-01-01", wantGrain: "month",
			check: func(t *testing.T, f Filters) {
				if f.Range != rangeCustom {
					t.Errorf("range %q", f.Range)
				}
			}},
		{name: "a preset ignores from and to", query: "range=this_month&from=2020-01-01&to=2020-01-02", wantFrom: "2026-03-01", wantTo: "2026-03-15"},
		{name: "one day", query: "from=2026-03-01&to=2026-03-01", wantFrom: "2026-03-01", wantTo: "2026-03-02", wantGrain: "day"},
		{name: "tz moves today", query: "range=this_month&tz=Europe/Berlin", wantFrom: "2026-03-01", wantTo: "2026-03-16", wantTZ: "Europe/Berlin",
			check: func(t *testing.T, f Filters) {
				if got := f.From.Format(time.RFC3339); got != "2026-03-01T00:00:00+01:00" {
					t.Errorf("From %s, want midnight in Berlin", got)
				}
			}},
		{name: "default tz from the config", query: "", defaults: &filterDefaults{TZ: "America/New_York"}, wantTZ: "America/New_York", wantTo: "2026-03-15"},
		{name: "explicit grain", query: "range=year_to_date&grain=month", wantGrain: "month",
			check: func(t *testing.T, f Filters) {
				if f.Values().Get("grain") != "month" {
					t.Error("explicit grain not kept in the URL")
				}
			}},
		{name: "compare, view, by, dimension filters", query: "compare=year&view=4r&by=channel&f.channel=email&f.country=DE&f.empty=",
			check: func(t *testing.T, f Filters) {
				if f.Compare != "year" || f.View != "4r" || f.By != "channel" {
					t.Errorf("got compare %q view %q by %q", f.Compare, f.View, f.By)
				}
				want := map[string]string{"channel": "email", "country": "DE"}
				if !reflect.DeepEqual(f.Dims, want) {
					t.Errorf("dims %v, want %v", f.Dims, want)
				}
				q := f.Query([]string{"channel"}, "")
				if q.Compare != "year" || !reflect.DeepEqual(q.Filters, map[string]string{"channel": "email"}) {
					t.Errorf("query %+v", q)
				}
				if got := f.NotApplied([]string{"channel"}); !reflect.DeepEqual(got, []string{"country"}) {
					t.Errorf("NotApplied %v", got)
				}
			}},
		{name: "compare none", query: "compare=none",
			check: func(t *testing.T, f Filters) {
				if q := f.Query(nil, ""); q.Compare != "" {
					t.Errorf("MetricQuery.Compare %q, want empty", q.Compare)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			d := defaults
			if tt.defaults != nil {
				d = *tt.defaults
			}
			f, err := parseFilters(q, now, d)
			if err != nil {
				t.Fatalf("parseFilters(%q): %v", tt.query, err)
			}
			if tt.wantFrom != "" && f.From.Format(dateLayout) != tt.wantFrom {
				t.Errorf("From %s, want %s", f.From.Format(dateLayout), tt.wantFrom)
			}
			if tt.wantTo != "" && f.To.Format(dateLayout) != tt.wantTo {
				t.Errorf("To %s, want %s", f.To.Format(dateLayout), tt.wantTo)
			}
			if tt.wantGrain != "" && f.Grain != tt.wantGrain {
				t.Errorf("grain %s, want %s", f.Grain, tt.wantGrain)
			}
			if tt.wantTZ != "" && (f.TZ != tt.wantTZ || f.Loc.String() != tt.wantTZ) {
				t.Errorf("tz %s (%s), want %s", f.TZ, f.Loc, tt.wantTZ)
			}
			if f.From.Location() != f.Loc || f.From.Hour() != 0 || f.To.Hour() != 0 {
				t.Errorf("range [%s, %s) is not midnights in %s", f.From, f.To, f.Loc)
			}
			if tt.check != nil {
				tt.check(t, f)
			}
			// A link made from the filters opens the same view.
			again, err := parseFilters(f.Values(), now, d)
			if err != nil {
				t.Fatalf("round trip %q: %v", f.Values().Encode(), err)
			}
			if !again.From.Equal(f.From) || !again.To.Equal(f.To) || again.Grain != f.Grain || again.Compare != f.Compare ||
				again.TZ != f.TZ || again.View != f.View || again.By != f.By || !reflect.DeepEqual(again.Dims, f.Dims) {
				t.Errorf("round trip via %q changed the view", f.Values().Encode())
			}
		})
	}
}

func TestParseFiltersErrors(t *testing.T) {
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		query     string
		wantParam string
		wantMsg   string
	}{
		{"range=last_week", "range", "this_month, last_30_days"},
		{"range=custom", "from", "required"},
		{"range=custom&from=2026-01-01", "to", "required"},
		{"from=2026-13-01&to=2026-12-31", "from", "YYYY-MM-DD"},
		{"from=2026-01-01&to=31.12.2026", "to", "YYYY-MM-DD"},
		{"from=2026-02-01&to=2026-01-01", "to", "before"},
		{"from=1990-01-01&to=2026-01-01", "to", "too long"},
		{"grain=hour", "grain", "day, week, month, quarter, year"},
		{"compare=last", "compare", "previous, year, none"},
		{"tz=Mars/Olympus", "tz", "IANA"},
		{"tz=Local", "tz", "IANA"},
		{"view=grid", "view", "owner, 4r"},
		{"by=Channel%3Bdrop", "by", "dimension name"},
		{"f.Chan-nel=x", "f.Chan-nel", "dimension"},
		{"f.channel=" + strings.Repeat("x", 201), "f.channel", "at most 200"},
		{"f.channel=a%00b", "f.channel", "printable"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			_, err = parseFilters(q, now, filterDefaults{TZ: "UTC"})
			var pe *paramError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v, want a paramError", err)
			}
			if pe.Param != tt.wantParam || !strings.Contains(pe.Msg, tt.wantMsg) {
				t.Errorf("got param %q msg %q; want param %q and a message with %q", pe.Param, pe.Msg, tt.wantParam, tt.wantMsg)
			}
		})
	}
}
