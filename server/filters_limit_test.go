package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// manyFilters is a query with n dimension filters f.d01…, every one as long as the others.
func manyFilters(n int) string {
	q := url.Values{"range": {"last_30_days"}}
	for i := 1; i <= n; i++ {
		q.Set(fmt.Sprintf("f.d%04d", i), "value")
	}
	return q.Encode()
}

func TestFilterLimit(t *testing.T) {
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	q, _ := url.ParseQuery(manyFilters(maxFilters))
	q.Set("f.empty", "") // an empty field means "all": not a filter
	if f, err := parseFilters(q, now, filterDefaults{TZ: "UTC"}); err != nil || len(f.Dims) != maxFilters {
		t.Fatalf("%d filters: %d, %v", maxFilters, len(f.Dims), err)
	}
	q, _ = url.ParseQuery(manyFilters(3000))
	_, err := parseFilters(q, now, filterDefaults{TZ: "UTC"})
	var pe *paramError
	if !errors.As(err, &pe) || pe.Param != "f.d0021" ||
		pe.Msg != `Too many filters: the link has 3000 dimension filters (f.<dimension>=value), at most 20 are allowed; "f.d0021" and those after it (by name) are too many. Remove some.` {
		t.Fatalf("3000 filters: %v", err)
	}
	checkParamError(t, "3000 filters", q, err)
}

// The issue #15 attack: 3,000 filters gave a 125 MB page. Now they are refused in a small page,
// and a page grows by the same number of bytes with each filter (it was quadratic: each
// filter's remove link repeated every other filter).
func TestFilterPageLinear(t *testing.T) {
	srv, _ := newTestServerCfg(t, Config{TZ: "UTC", TileTimeout: 5 * time.Second}, Deps{Store: okStore(), Metrics: newFakeMetrics()})
	size := func(path string, n int) int {
		t.Helper()
		rec := do(t, srv.Handler(), http.MethodGet, path+"?"+manyFilters(n), nil)
		if rec.Code != http.StatusOK && !(path != "/" && rec.Code == http.StatusBadRequest) {
			t.Fatalf("%s with %d filters: %d %.300s", path, n, rec.Code, rec.Body.String())
		}
		return rec.Body.Len()
	}
	rec := do(t, srv.Handler(), http.MethodGet, "/?"+manyFilters(3000), nil)
	if rec.Code != http.StatusBadRequest || rec.Body.Len() > 20_000 || !strings.Contains(rec.Body.String(), "Too many filters") {
		t.Fatalf("3000 filters: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	s0, s5, s10, s20 := size("/", 0), size("/", 5), size("/", 10), size("/", 20)
	perFilter := (s10 - s5) / 5
	for _, c := range []struct{ from, to, n int }{{s0, s5, 5}, {s5, s10, 5}, {s10, s20, 10}} {
		// The first filter adds a list and the page's notes; then each adds the same.
		if got := (c.to - c.from) / c.n; c.from != s0 && got != perFilter {
			t.Errorf("overview: %d bytes per filter from %d filters on, want %d (sizes %d %d %d %d)", got, c.n, perFilter, s0, s5, s10, s20)
		}
	}
	if perFilter <= 0 || s20-s10 > 2*(s10-s0) {
		t.Errorf("overview sizes %d %d %d %d: not linear", s0, s5, s10, s20)
	}
	// The remove controls are buttons of the form, one short one per filter.
	body := do(t, srv.Handler(), http.MethodGet, "/?"+manyFilters(3), nil).Body.String()
	if strings.Count(body, `name="drop"`) != 3 || !strings.Contains(body, `name="drop" value="d0002"`) {
		t.Errorf("no remove buttons: %s", body)
	}
}

// A remove button submits the filter form with drop=<dimension>: the page answers with the
// same view, page parameters and other filters kept, without that filter.
func TestFilterDrop(t *testing.T) {
	srv, _ := newTestServerCfg(t, Config{TZ: "UTC"}, Deps{Store: okStore(), Metrics: newFakeMetrics()})
	for _, c := range []struct{ target, want string }{
		{"/?range=year_to_date&f.channel=email&f.country=DE&drop=channel", "/?f.country=DE&range=year_to_date"},
		{"/channels?level=campaign&model=linear&f.channel=email&drop=channel", "/channels?level=campaign&model=linear"},
		{"/kpi/revenue?f.channel=email&f.country=DE&drop=channel&drop=country", "/kpi/revenue"},
		{"/?drop=nothing", "/"},
	} {
		rec := do(t, srv.Handler(), http.MethodGet, c.target, nil)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != c.want {
			t.Errorf("%s: %d to %q, want %q", c.target, rec.Code, rec.Header().Get("Location"), c.want)
		}
	}
}
