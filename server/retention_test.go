package server

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/converge-dev/converge/views"
)

// tableFailer wraps Metrics so that Table fails (or blocks until its context ends) for the
// queries fail picks; everything else goes to the real metrics layer.
type tableFailer struct {
	Metrics
	fail  func(name string, q MetricQuery) error
	block bool
}

func (m tableFailer) Table(ctx context.Context, name string, q MetricQuery) (*MetricTable, error) {
	if err := m.fail(name, q); err != nil {
		if m.block {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return nil, err
	}
	return m.Metrics.Table(ctx, name, q)
}

func count(n int64) string { x := float64(n); return views.FormatValue(&x, "count", "") }

func pct(p float64) string { x := p / 100; return views.FormatValue(&x, "percent", "") }

// directTable asks the demo's metrics layer for a table, as the pages should.
func directTable(t *testing.T, name string, q MetricQuery) *MetricTable {
	t.Helper()
	tab, err := demoMetrics(t).Table(context.Background(), name, q)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func utcDay(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

// attr reads the text of the element carrying a data attribute, e.g. data-cohorts.
func attr(t *testing.T, body, data string) string {
	t.Helper()
	m := regexp.MustCompile(data + `>([^<]*)<`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in the page", data)
	}
	return m[1]
}

// The retention page shows the cohort matrix of cohort_retention for the range: every cell, the
// cohort sizes (which add up to the new customers of the range), and the size-weighted average.
func TestRetentionPage(t *testing.T) {
	srv := demoServer(t, Deps{})
	cases := []struct {
		name, url, grain, from, to string
		cohorts                    []string // row labels expected, in order
		absent                     []string
		notes                      int
	}{
		{"last year by month (default)", "/retention?range=last_year", "month", "2025-01-01", "2026-01-01",
			[]string{"Jan 2025", "Feb 2025", "Dec 2025"}, []string{"Jan 2026", "Dec 2024"}, 0},
		{"another range: other cohorts", "/retention?range=custom&from=2026-01-01&to=2026-06-30", "month", "2026-01-01", "2026-07-01",
			[]string{"Jan 2026", "Jun 2026"}, []string{"Dec 2025", "Jan 2025"}, 0},
		{"quarters", "/retention?range=custom&from=2025-01-01&to=2026-06-30&grain=quarter", "quarter", "2025-01-01", "2026-07-01",
			[]string{"Q1 2025", "Q2 2026"}, []string{"Jan 2025"}, 0},
		{"weeks cut by the range", "/retention?range=custom&from=2026-01-01&to=2026-03-31&grain=week", "week", "2026-01-01", "2026-04-01",
			[]string{"week of 29 Dec 2025", "week of 30 Mar 2026"}, nil, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := get(t, srv, c.url)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			body := html.UnescapeString(rec.Body.String())
			q := MetricQuery{From: utcDay(c.from), To: utcDay(c.to), Grain: c.grain, TZ: "UTC"}
			tab := directTable(t, "cohort_retention", q)

			// Every row of the metric is a cell: its percentage, and its counts in the title.
			sizes := map[string]int64{}
			unit := capitalize(c.grain)
			for _, row := range tab.Rows {
				period, active, size := row[1].(int64), row[3].(int64), row[2].(int64)
				sizes[row[0].(string)] = size
				cell := fmt.Sprintf(`title="%s of %s customers ordered in %s %d">%s<`, count(active), count(size), c.grain, period, pct(row[4].(float64)))
				if !strings.Contains(body, cell) {
					t.Errorf("no cell %s", cell)
				}
				if !strings.Contains(body, fmt.Sprintf(`<th scope="col">%s %d</th>`, unit, period)) {
					t.Errorf("no column %s %d", unit, period)
				}
			}
			var total int64
			for _, n := range sizes {
				total += n
			}
			if got := attr(t, body, "data-cohorts"); got != strconv.Itoa(len(sizes)) {
				t.Errorf("cohorts %s, want %d", got, len(sizes))
			}
			if got := attr(t, body, "data-customers"); got != count(total) {
				t.Errorf("customers %s, want %s", got, count(total))
			}
			// The cohorts are the range's new customers (first order in the range), counted by
			// another metric.
			nc, err := demoMetrics(t).Query(context.Background(), "new_customers", q)
			if err != nil {
				t.Fatal(err)
			}
			if nc.Total == nil || int64(*nc.Total) != total {
				t.Errorf("cohort sizes add up to %d, new_customers says %v", total, nc.Total)
			}
			last := -1
			for _, l := range c.cohorts {
				i := strings.Index(body, `<th scope="row">`+l+`</th>`)
				if i < 0 {
					t.Errorf("no cohort %s", l)
				}
				if i < last {
					t.Errorf("cohort %s out of order", l)
				}
				last = i
			}
			for _, l := range c.absent {
				if strings.Contains(body, `<th scope="row">`+l+`</th>`) {
					t.Errorf("cohort %s shown, outside the range", l)
				}
			}
			if n := strings.Count(body, "data-note"); n != c.notes {
				t.Errorf("%d notes on cut cohorts or periods, want %d", n, c.notes)
			}
			if strings.Contains(body, `role="alert"`) {
				t.Errorf("error on the page")
			}
		})
	}
}

// The average curve is Σ ordered / Σ size over the cohorts that reached the period, checked
// here from the metric's rows for last year (monthly cohorts of 2025: cohort m reaches
// periods 0 … 12-m).
func TestRetentionAverageWeighted(t *testing.T) {
	srv := demoServer(t, Deps{})
	body := html.UnescapeString(get(t, srv, "/retention?range=last_year").Body.String())
	tab := directTable(t, "cohort_retention", MetricQuery{From: utcDay("2025-01-01"), To: utcDay("2026-01-01"), Grain: "month", TZ: "UTC"})
	sizes := map[string]int64{}
	active := map[int]int64{}
	for _, row := range tab.Rows {
		sizes[row[0].(string)] = row[2].(int64)
		active[int(row[1].(int64))] += row[3].(int64)
	}
	for k := 0; k < 12; k++ {
		var customers int64
		cohorts := 0
		for day, n := range sizes {
			if utcDay(day).AddDate(0, k, 0).Before(utcDay("2026-01-01")) {
				customers += n
				cohorts++
			}
		}
		want := 100 * float64(active[k]) / float64(customers)
		row := fmt.Sprintf(`<th scope="row">Month %d</th><td>%d</td><td>%s</td><td>%s</td><td>%s</td>`, k, cohorts, count(customers), count(active[k]), pct(want))
		if !strings.Contains(body, row) {
			t.Errorf("curve table lacks %s", row)
		}
		if k == 1 && attr(t, body, "data-second-period") != pct(want) {
			t.Errorf("headline after 1 month %s, want %s", attr(t, body, "data-second-period"), pct(want))
		}
		if cohorts != 12-k {
			t.Errorf("month %d reached by %d cohorts, want %d", k, cohorts, 12-k)
		}
	}
	for _, want := range []string{"weighted by", "All cohorts (weighted)", `data-grain-default`, "Cohorts are monthly by default"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestRetentionBadParams(t *testing.T) {
	srv := demoServer(t, Deps{})
	cases := []struct{ url, want string }{
		{"/retention?grain=fortnight", `Invalid value "fortnight" for parameter "grain": allowed are day, week, month, quarter, year.`},
		{"/retention?range=custom&from=2025-01-01&to=2025-12-31&grain=day", `The range 1 Jan 2025 – 31 Dec 2025 holds more than 120 day cohorts, the most the retention matrix shows: choose a shorter range or a coarser grain (e.g. grain=quarter).`},
		{"/retention?range=custom&from=2006-01-01&to=2025-12-31", `holds more than 120 month cohorts`},
		{"/retention?range=custom&from=2025-13-01&to=2025-12-31", `Invalid value "2025-13-01" for parameter "from": a date as YYYY-MM-DD.`},
		{"/retention?tz=Mars/Base", `Invalid value "Mars/Base" for parameter "tz"`},
	}
	for _, c := range cases {
		rec := get(t, srv, c.url)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", c.url, rec.Code)
			continue
		}
		if body := html.UnescapeString(rec.Body.String()); !strings.Contains(body, c.want) {
			t.Errorf("%s: page lacks %q", c.url, c.want)
		}
	}
}

// A failing or late matrix is an error on the page, which still renders.
func TestRetentionMetricFails(t *testing.T) {
	cases := []struct {
		name  string
		block bool
		want  string
	}{
		{"fails", false, "The cohort matrix could not be loaded: an internal error; it is in the server log under request ID "},
		{"too slow", true, "The cohort matrix could not be loaded: no answer within 50ms (time budget)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := tableFailer{Metrics: demoMetrics(t), block: c.block, fail: func(name string, q MetricQuery) error {
				return errors.New("store on fire")
			}}
			budget := 30 * time.Second // the role check reads the catalog first
			if c.block {
				budget = 50 * time.Millisecond
			}
			srv := asAdmin(New(Config{TZ: "UTC", TileTimeout: budget}, Deps{Store: fakeStore{}, Metrics: m}))
			rec := get(t, srv, "/retention?range=custom&from=2025-01-01&to=2025-12-31")
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			body := html.UnescapeString(rec.Body.String())
			if !strings.Contains(body, `<p class="alert" role="alert">`+c.want) {
				t.Errorf("no error widget %q in\n%s", c.want, body)
			}
			if strings.Contains(body, "store on fire") {
				t.Errorf("the store's error is shown")
			}
			if !strings.Contains(body, `<form class="filters"`) || strings.Contains(body, "cohort-matrix") {
				t.Errorf("page without its filters, or with a matrix")
			}
		})
	}
}

// funnelRow is the overall funnel table's row of a stage, from the metric's row st.
func funnelRow(stage int, label string, st []any) string {
	prev := views.NoData
	if stage > 1 {
		prev = pctOrDash(st[3])
	}
	return fmt.Sprintf(`<th scope="row">%d. %s</th><td>%s</td><td>%s</td><td>%s</td>`, stage, label, count(st[2].(int64)), prev, pctOrDash(st[4]))
}

func pctOrDash(v any) string {
	if f, ok := v.(float64); ok {
		return pct(f)
	}
	return views.NoData
}

// The funnel page shows funnel_conversion overall and by channel: the numbers of a direct query,
// stages that only shrink, channels that add up to the whole; window_days and the range apply.
func TestFunnelPage(t *testing.T) {
	srv := demoServer(t, Deps{})
	cases := []struct{ url, from, to, window string }{
		{"/funnel?range=last_year", "2025-01-01", "2026-01-01", "30"},
		{"/funnel?range=last_year&window_days=60", "2025-01-01", "2026-01-01", "60"},
		{"/funnel?range=custom&from=2026-03-01&to=2026-03-31&window_days=7", "2026-03-01", "2026-04-01", "7"},
	}
	firstStage := map[string]int64{}
	for _, c := range cases {
		t.Run(c.url, func(t *testing.T) {
			rec := get(t, srv, c.url)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			body := html.UnescapeString(rec.Body.String())
			q := MetricQuery{From: utcDay(c.from), To: utcDay(c.to), TZ: "UTC", Grain: "day",
				Args: map[string]string{"window_days": c.window, "breakdown": "none"}}
			overall := directTable(t, "funnel_conversion", q)
			q.Args["breakdown"] = "channel"
			channels := directTable(t, "funnel_conversion", q)

			if len(overall.Rows) != 4 {
				t.Fatalf("overall funnel %v", overall.Rows)
			}
			labels := []string{"Marketing touchpoint", "Signup", "First order", "Repeat order"}
			for i, row := range overall.Rows {
				if want := funnelRow(i+1, labels[i], row); !strings.Contains(body, want) {
					t.Errorf("no stage row %s", want)
				}
				if i > 0 && row[2].(int64) > overall.Rows[i-1][2].(int64) {
					t.Errorf("stage %d has more people than stage %d: %v", i+1, i, overall.Rows)
				}
			}
			if overall.Rows[0][2].(int64) == 0 || overall.Rows[3][2].(int64) == 0 {
				t.Errorf("an empty funnel proves little: %v", overall.Rows)
			}
			firstStage[c.url] = overall.Rows[0][2].(int64)

			// Channels: each a row with its four stages; together they are the overall funnel.
			sums := make([]int64, 4)
			for i := 0; i < len(channels.Rows); i += 4 {
				ch := channels.Rows[i][5].(string)
				cells := []string{ch}
				for k := 0; k < 4; k++ {
					n := channels.Rows[i+k][2].(int64)
					sums[k] += n
					cells = append(cells, count(n))
				}
				want := `<th scope="row">` + cells[0] + `</th><td>` + strings.Join(cells[1:], `</td><td>`) + `</td>`
				if !strings.Contains(body, want) {
					t.Errorf("no channel row %s", want)
				}
			}
			for k, row := range overall.Rows {
				if sums[k] != row[2].(int64) {
					t.Errorf("stage %d: channels add up to %d, overall %d", k+1, sums[k], row[2].(int64))
				}
			}
			if got := attr(t, body, "data-window"); got != c.window+" days" {
				t.Errorf("window %q", got)
			}
			if strings.Contains(body, `role="alert"`) {
				t.Errorf("error on the page")
			}
		})
	}
	if firstStage[cases[0].url] == firstStage[cases[2].url] {
		t.Errorf("another range, the same people touched: %d", firstStage[cases[0].url])
	}
}

func TestFunnelBadParams(t *testing.T) {
	srv := demoServer(t, Deps{})
	for _, v := range []string{"abc", "0", "366", "-7", "7.5", "1e2"} {
		rec := get(t, srv, "/funnel?window_days="+v)
		want := fmt.Sprintf(`Invalid value %q for parameter "window_days": a whole number of days from 1 to 365.`, v)
		if rec.Code != http.StatusBadRequest || !strings.Contains(html.UnescapeString(rec.Body.String()), want) {
			t.Errorf("window_days=%s: status %d, want 400 with %q", v, rec.Code, want)
		}
	}
	if rec := get(t, srv, "/funnel?range=yesterday"); rec.Code != http.StatusBadRequest {
		t.Errorf("range=yesterday: status %d", rec.Code)
	}
}

// One failing widget does not take the other down.
func TestFunnelMetricFails(t *testing.T) {
	m := tableFailer{Metrics: demoMetrics(t), fail: func(name string, q MetricQuery) error {
		if q.Args["breakdown"] == "channel" {
			return errors.New("no channels today")
		}
		return nil
	}}
	srv := demoServer(t, Deps{Metrics: m})
	rec := get(t, srv, "/funnel?range=last_year")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	body := html.UnescapeString(rec.Body.String())
	if !strings.Contains(body, `<p class="alert" role="alert">The funnel by channel could not be loaded: an internal error; it is in the server log under request ID `) ||
		strings.Contains(body, "no channels today") {
		t.Errorf("no error widget for the channels, or it shows the store's error")
	}
	if !strings.Contains(body, `id="funnel-overall"`) || !strings.Contains(body, "1. Marketing touchpoint") || strings.Contains(body, `id="funnel-channels"`) {
		t.Errorf("the overall funnel should render, the channel chart not")
	}
}

func TestCohortBuckets(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	at := func(s string) time.Time { d, _ := time.ParseInLocation(time.DateOnly, s, berlin); return d }
	cases := []struct {
		day, grain string
		week       time.Weekday
		fy         time.Month
		start      string
	}{
		{"2026-01-01", "week", time.Monday, time.January, "2025-12-29"},
		{"2026-01-01", "week", time.Sunday, time.January, "2025-12-28"},
		{"2026-01-04", "week", time.Sunday, time.January, "2026-01-04"},
		{"2026-03-31", "month", time.Monday, time.January, "2026-03-01"},
		{"2026-03-31", "quarter", time.Monday, time.January, "2026-01-01"},
		{"2026-03-31", "quarter", time.Monday, time.April, "2026-01-01"},
		{"2026-04-01", "quarter", time.Monday, time.April, "2026-04-01"},
		{"2026-02-15", "quarter", time.Monday, time.February, "2026-02-01"},
		{"2026-01-15", "quarter", time.Monday, time.February, "2025-11-01"},
		{"2026-03-31", "year", time.Monday, time.April, "2025-04-01"},
		{"2026-04-01", "year", time.Monday, time.April, "2026-04-01"},
		{"2026-03-31", "day", time.Monday, time.January, "2026-03-31"},
	}
	for _, c := range cases {
		if got := bucketStart(at(c.day), c.grain, c.week, c.fy).Format(time.DateOnly); got != c.start {
			t.Errorf("%s %s (weeks from %s, FY from %s): %s, want %s", c.day, c.grain, c.week, c.fy, got, c.start)
		}
	}
	counts := []struct {
		from, to, grain string
		want            int
	}{
		{"2025-01-01", "2026-01-01", "month", 12},
		{"2025-01-15", "2025-03-02", "month", 3},
		{"2026-01-01", "2026-04-01", "week", 14}, // 29 Dec … 30 Mar
		{"2025-01-01", "2026-01-01", "day", maxCohorts + 1},
	}
	for _, c := range counts {
		if got := countBuckets(at(c.from), at(c.to), c.grain, time.Monday, time.January); got != c.want {
			t.Errorf("%s – %s by %s: %d buckets, want %d", c.from, c.to, c.grain, got, c.want)
		}
	}
}

// Without a metrics layer both pages say so (503), with their filters.
func TestRetentionFunnelNotConfigured(t *testing.T) {
	srv := asAdmin(New(Config{TZ: "UTC"}, Deps{Store: fakeStore{}}))
	for _, u := range []string{"/retention", "/funnel"} {
		rec := get(t, srv, u)
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "Metrics are not configured") {
			t.Errorf("%s: status %d", u, rec.Code)
		}
	}
}

// A dimension filter from another page stays in the URL and is said not to apply.
func TestRetentionFunnelDimensionFilter(t *testing.T) {
	srv := demoServer(t, Deps{})
	for _, u := range []string{"/retention?range=last_year&f.channel=email", "/funnel?range=last_year&f.channel=email"} {
		rec := get(t, srv, u)
		body := rec.Body.String()
		if rec.Code != http.StatusOK || !strings.Contains(body, "Not filtered by channel: this page has no dimension filters.") ||
			!strings.Contains(body, `<input type="hidden" name="f.channel" value="email">`) {
			t.Errorf("%s: status %d, or no note, or the filter dropped from the form", u, rec.Code)
		}
	}
}
