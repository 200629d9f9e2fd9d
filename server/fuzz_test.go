package server

import (
	"context"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/metrics"
)

// Fuzz targets of the dashboard's URL parameters. `go test ./server` runs their seeds (and
// the committed corpus under testdata/fuzz) as ordinary tests; `make fuzz` explores each for a
// few seconds. Neither needs the store.

// filterSeeds are URL queries of the filter tests and of shared links.
var filterSeeds = []string{
	"", "range=this_month", "range=quarter_to_date&tz=Europe/Berlin", "range=last_fiscal_year&grain=quarter&compare=year",
	"range=custom&from=2025-12-01&to=2025-12-31", "from=2024-01-01&to=2025-12-31", "from=2026-03-01&to=2026-03-01",
	"compare=year&view=4r&by=channel&f.channel=email&f.country=DE&f.empty=", "range=yesterday", "from=2026-02-30&to=2026-03-01",
	"from=2026-03-02&to=2026-03-01", "from=2000-01-01&to=2030-01-01", "tz=Local", "tz=Mars/Olympus", "f.Channel=x", "f.channel=%00",
	"by=Channel", "grain=hour", "compare=never", "view=grid", "f.channel=%27%3B+DROP+TABLE+orders%3B+--&f.channel=email",
	"tz=America/St_Johns&range=year_to_date&f.campaign=%E2%80%99spring%E2%80%99", "range=custom&from=1900-01-01&to=1900-01-01",
	"level=campaign&model=linear&model2=u_shaped", "model=magic", "model=linear&model2=linear", "window_days=366", "window_days=30",
	"page=2&run=0b5f4c9e-0000-4000-8000-000000000000&source=shop&entity=orders&status=failed&code=bad_time", "page=0", "run=X",
}

// FuzzParseFilters: every query either is refused with a *paramError that names a parameter
// of the request (and the message names it too), or gives filters that are a valid view (a
// non-empty range of whole days in the report zone, at most 20 years, known grain, compare
// and view, identifier dimensions with printable values) and that survive the round trip
// through their canonical URL: parseFilters(f.Values()) = f.
func FuzzParseFilters(f *testing.F) {
	for _, s := range filterSeeds {
		f.Add(s, uint8(4))
	}
	now := time.Date(2026, 3, 14, 23, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, query string, fy uint8) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		d := filterDefaults{TZ: "UTC", FYStart: time.Month(fy % 14)}
		fl, err := parseFilters(q, now, d)
		if err != nil {
			checkParamError(t, query, q, err)
			return
		}
		if !fl.From.Before(fl.To) || fl.To.After(fl.From.AddDate(maxRangeYears, 0, 1)) {
			t.Fatalf("%q: range [%s, %s)", query, fl.From, fl.To)
		}
		for _, x := range []time.Time{fl.From, fl.To} {
			if x.Location() != fl.Loc || x.Hour() != 0 || x.Minute() != 0 || x.Second() != 0 {
				// a day whose midnight does not exist in the zone starts at the first instant of it
				if y, m, dd := x.Date(); time.Date(y, m, dd, 0, 0, 0, 0, fl.Loc) != x {
					t.Fatalf("%q: %s is not a day's start in %s", query, x, fl.Loc)
				}
			}
		}
		if !slices.Contains(rangeNames, fl.Range) || !slices.Contains(grainNames, fl.Grain) ||
			!slices.Contains(compareNames, fl.Compare) || !slices.Contains(viewNames, fl.View) {
			t.Fatalf("%q: accepted %+v", query, fl)
		}
		if fl.By != "" && !identRe.MatchString(fl.By) {
			t.Fatalf("%q: by %q", query, fl.By)
		}
		for k, v := range fl.Dims {
			if !identRe.MatchString(k) || v == "" || len(v) > maxFilterValue || !validText(v) {
				t.Fatalf("%q: filter %s=%q", query, k, v)
			}
		}
		back := fl.Values()
		f2, err := parseFilters(back, now, d)
		if err != nil {
			t.Fatalf("%q: canonical URL %s is refused: %v", query, back.Encode(), err)
		}
		if a, b := filterState(fl), filterState(f2); !reflect.DeepEqual(a, b) {
			t.Fatalf("%q: canonical URL %s gives other filters:\n%+v\n%+v", query, back.Encode(), a, b)
		}
	})
}

// filterState is f with its zone by name (locations are compared by name).
func filterState(f Filters) Filters {
	f.Loc = nil
	return f
}

// checkParamError asserts err is a *paramError about a parameter of q (or a required one) and
// that its message names that parameter.
func checkParamError(t *testing.T, query string, q url.Values, err error) {
	t.Helper()
	pe, ok := err.(*paramError)
	if !ok || pe.Param == "" || pe.Msg == "" {
		t.Fatalf("%q: error %#v is not a parameter error", query, err)
	}
	if !q.Has(pe.Param) && pe.Param != "from" && pe.Param != "to" && pe.Param != "tz" {
		t.Fatalf("%q: error names %q, not a parameter of the request", query, pe.Param)
	}
	if !strings.Contains(pe.Msg, strconv.Quote(pe.Param)) {
		t.Fatalf("%q: message %q does not name %q", query, pe.Msg, pe.Param)
	}
}

// FuzzPageParams covers the page-specific parameters: the channels page (level, model, model2),
// the funnel's window_days and the data pages (tz, page, run, source, entity, status, code).
// Each is refused with a *paramError naming it, or accepted as a value it allows; the channels
// parameters survive their round trip through the URL.
func FuzzPageParams(f *testing.F) {
	for _, s := range filterSeeds {
		f.Add(s)
	}
	gin.SetMode(gin.ReleaseMode)
	srv := &Server{cfg: Config{TZ: "UTC"}}
	window := builtinParam(f, "funnel_conversion", "window_days") // its bounds: 1..365
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		if p, err := parseChannelsParams(q); err != nil {
			checkParamError(t, query, q, err)
		} else {
			v := url.Values{}
			p.set(v)
			p2, err := parseChannelsParams(v)
			if err != nil || p2 != p || !slices.Contains(channelLevels, p.Level) || p.Model == p.Model2 {
				t.Fatalf("%q: channels %+v, written back %s: %+v %v", query, p, v.Encode(), p2, err)
			}
		}
		if n, err := parseWindowDays(q, window); err != nil {
			checkParamError(t, query, q, err)
		} else if n < 1 || n > 365 || window.Check(strconv.Itoa(n)) != nil {
			t.Fatalf("%q: window %d", query, n)
		}
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = httptest.NewRequest("GET", "/data/quarantine?"+q.Encode(), nil)
		p, err := srv.parseDataParams(c, "run", "source", "entity", "status", "code")
		if err != nil {
			checkParamError(t, query, q, err)
			return
		}
		if p.page < 1 || p.page > maxDataPage || p.loc == nil || (p.run != "" && !runIDRe.MatchString(p.run)) ||
			(p.code != "" && !identRe.MatchString(p.code)) || len(p.source) > maxFilterValue || !validText(p.source) {
			t.Fatalf("%q: data params %+v", query, p)
		}
	})
}

// builtinParam is param name of the built-in metric as the server sees it (registryMetrics).
func builtinParam(t testing.TB, metric, name string) *MetricParam {
	t.Helper()
	reg, err := metrics.New(context.Background(), metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, ok := reg.Get(metric)
	if !ok {
		t.Fatalf("no metric %s", metric)
	}
	info := (&registryMetrics{r: reg}).info(d)
	for i := range info.Params {
		if info.Params[i].Name == name {
			return &info.Params[i]
		}
	}
	t.Fatalf("%s has no param %s", metric, name)
	return nil
}
