package server

import (
	"context"
	"errors"
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/converge-dev/converge/views"
)

// failingMetrics fails the queries fail picks and passes the others on.
type failingMetrics struct {
	Metrics
	fail func(ctx context.Context, name string, q MetricQuery) error
}

func (m failingMetrics) Query(ctx context.Context, name string, q MetricQuery) (*MetricResult, error) {
	if err := m.fail(ctx, name, q); err != nil {
		return nil, err
	}
	return m.Metrics.Query(ctx, name, q)
}

// warm reads m's catalog once without a time limit, as serve does before it listens: a cold
// catalog asks every custom metric for its shape, which on a loaded machine takes longer than
// a page's catalog budget.
func warm(t *testing.T, m Metrics) {
	t.Helper()
	if _, err := m.Catalog(context.Background()); err != nil {
		t.Fatal(err)
	}
}

var (
	channelTableRe = regexp.MustCompile(`(?s)<div class="table-wrap channel-table">.*?</table>`)
	rowRe          = regexp.MustCompile(`(?s)<tr>(.*?)</tr>`)
	cellRe         = regexp.MustCompile(`(?s)<t[hd][^>]*>(.*?)</t[hd]>`)
	tagRe          = regexp.MustCompile(`<[^>]+>`)
)

// channelCells reads the channel table of a page: its header row (units dropped), then one map
// per body or totals row from column head to cell text, keyed by the row's first key cells.
func channelCells(t *testing.T, body string) (head []string, rows map[string]map[string]string) {
	t.Helper()
	table := channelTableRe.FindString(body)
	if table == "" {
		t.Fatal("no channel table")
	}
	rows = map[string]map[string]string{}
	for i, tr := range rowRe.FindAllStringSubmatch(table, -1) {
		var cells []string
		for _, c := range cellRe.FindAllStringSubmatch(tr[1], -1) {
			text := c[1]
			if i == 0 {
				text = regexp.MustCompile(`(?s)<span class="unit">.*?</span>`).ReplaceAllString(text, "")
			}
			cells = append(cells, strings.Join(strings.Fields(html.UnescapeString(tagRe.ReplaceAllString(text, ""))), " "))
		}
		if i == 0 {
			head = cells
			continue
		}
		keys := 1
		if len(head) > 1 && head[1] == "Campaign" {
			keys = 2
		}
		row := map[string]string{}
		for j, h := range head {
			if j < len(cells) {
				row[h] = cells[j]
			}
		}
		rows[strings.Join(cells[:keys], " / ")] = row
	}
	return head, rows
}

// The channels page over the demo company: figures from the metrics layer, models applied,
// the campaign level, filters, parameters validated, failed widgets shown.
func TestChannelsDemo(t *testing.T) {
	demo := demoMetrics(t)
	warm(t, demo)
	const period = "/channels?range=custom&from=2026-01-01&to=2026-06-30"
	// What the metrics layer says for the same range, to compare the page with.
	v, _ := url.ParseQuery(strings.TrimPrefix(period, "/channels?"))
	f, err := parseFilters(v, demoServer(t, Deps{Metrics: demo}).now(), filterDefaults{TZ: "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	ask := func(name, by string, args map[string]string) *MetricResult {
		t.Helper()
		q := f.Query([]string{"channel", "channel_campaign"}, by)
		q.Args = args
		res, err := demo.Query(context.Background(), name, q)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	seriesTotal := func(res *MetricResult, key string) *float64 {
		for _, s := range res.Series {
			if s.Key == key {
				return s.Total
			}
		}
		t.Fatalf("%s has no series %q", res.Info.Name, key)
		return nil
	}
	spend := ask("marketing_spend", "", nil).Total
	searchSpend := seriesTotal(ask("marketing_spend", "channel", nil), "paid_search")
	linear := ask("roas", "", map[string]string{"model": "linear", "level": "channel"})
	decay := ask("roas", "", map[string]string{"model": "time_decay", "level": "channel"})
	brand := seriesTotal(ask("roas", "", map[string]string{"model": "last_touch", "level": "campaign"}), "paid_search / brand")
	eur := func(v *float64) string { return views.FormatValue(v, "currency", "EUR") }
	ratio := func(v *float64) string { return views.FormatValue(v, "ratio", "") }
	if ratio(seriesTotal(linear, "paid_search")) == ratio(seriesTotal(decay, "paid_search")) {
		t.Fatalf("linear and time decay give paid_search the same ROAS %s: the demo cannot tell the models apart", ratio(seriesTotal(linear, "paid_search")))
	}

	boom := errors.New("attribution view unreachable")
	tests := []struct {
		name    string
		target  string
		fail    func(ctx context.Context, name string, q MetricQuery) error
		budget  time.Duration // the widgets' budget; default demoServer's
		status  int
		want    []string
		notWant []string
		// cells: row key → column head → cell text.
		cells map[string]map[string]string
		head  []string
	}{
		{
			name: "two models side by side", target: period + "&model=linear&model2=time_decay", status: 200,
			head: []string{"Channel", "Spend", "New customers", "CAC (paid)", "ROAS (Linear)", "ROAS (Time decay)",
				"Marketing ROI (Linear)", "Marketing ROI (Time decay)"},
			cells: map[string]map[string]string{
				"paid_search": {"Spend": eur(searchSpend), "ROAS (Linear)": ratio(seriesTotal(linear, "paid_search")),
					"ROAS (Time decay)": ratio(seriesTotal(decay, "paid_search"))},
				// Organic channels have no spend: no CAC, ROAS or ROI.
				"direct": {"Spend": "–", "CAC (paid)": "–", "ROAS (Linear)": "–"},
				"Total": {"Spend": eur(spend), "ROAS (Linear)": ratio(seriesTotal(linear, "")),
					"ROAS (Time decay)": ratio(seriesTotal(decay, ""))},
			},
			want: []string{`aria-current="page">Channels</a>`, `id="roas-by-channel"`, `data-option="{`, `<th scope="row">Previous period</th>`,
				// The level switch keeps the models and the filters.
				`href="/channels?from=2026-01-01&amp;level=campaign&amp;model=linear&amp;model2=time_decay&amp;range=custom&amp;to=2026-06-30&amp;tz=UTC"`,
				`<option value="linear" selected>`, `<option value="time_decay" selected>`, `type="hidden" name="model2" value="time_decay"`},
		},
		{
			name: "default model is last touch, one model", target: period, status: 200,
			head: []string{"Channel", "Spend", "New customers", "CAC (paid)", "ROAS (Last touch)", "Marketing ROI (Last touch)"},
		},
		{
			name: "campaign level", target: period + "&level=campaign&compare=none", status: 200,
			head: []string{"Channel", "Campaign", "Spend", "New customers", "CAC (paid)", "ROAS (Last touch)", "Marketing ROI (Last touch)"},
			cells: map[string]map[string]string{
				"paid_search / brand":    {"ROAS (Last touch)": ratio(brand)},
				"direct / (no campaign)": {"Spend": "–"},
			},
			want:    []string{`id="roas-by-campaign"`, `aria-current="true">By campaign`},
			notWant: []string{`<th scope="row">Previous period</th>`},
		},
		{
			name: "a channel filter keeps its rows; ROAS totals are not shown", target: period + "&f.channel=paid_search&f.country=DE", status: 200,
			cells: map[string]map[string]string{
				"paid_search": {"Spend": eur(searchSpend)},
				"Total":       {"Spend": eur(searchSpend), "ROAS (Last touch)": "–"},
			},
			want: []string{"not shown while the rows are filtered", "Not filtered by country = DE: Spend, CAC (paid), ROAS (Last touch)",
				// Removed by a button of the filter form, which carries the other filter.
				`<input type="hidden" name="f.country" value="DE">`,
				`<button type="submit" class="link-button" name="drop" value="channel" aria-label="Remove filter channel">`},
			notWant: []string{"<th scope=\"row\">direct</th>"},
		},
		{
			name: "a failing widget shows its error, the others their numbers", target: period + "&model=linear&model2=time_decay", status: 200,
			fail: func(_ context.Context, name string, q MetricQuery) error {
				if name == "roas" && q.Args["model"] == "time_decay" {
					return boom
				}
				return nil
			},
			cells: map[string]map[string]string{
				"paid_search": {"ROAS (Linear)": ratio(seriesTotal(linear, "paid_search")), "ROAS (Time decay)": "–"},
			},
			// The store's error is logged, not shown: the widget names the request ID.
			want:    []string{"<strong>ROAS (Time decay)</strong>: an internal error; it is in the server log under request ID ", `class="failed"`},
			notWant: []string{"attribution view unreachable"},
		},
		{
			name: "a widget over its budget says so", target: period + "&model=linear&model2=time_decay", status: 200,
			budget: 300 * time.Millisecond,
			fail: func(ctx context.Context, name string, q MetricQuery) error {
				if name == "marketing_roi" && q.Args["model"] == "linear" {
					<-ctx.Done()
					return ctx.Err()
				}
				return nil
			},
			want: []string{"<strong>Marketing ROI (Linear)</strong>: no answer within 300ms (time budget)"},
		},
		{name: "bad model", target: "/channels?model=magic", status: 400,
			want: []string{`Invalid value &#34;magic&#34; for parameter &#34;model&#34;: allowed are last_touch, first_touch, linear, u_shaped, w_shaped, time_decay.`}},
		{name: "bad second model", target: "/channels?model2=best", status: 400, want: []string{`parameter &#34;model2&#34;`, "leave it empty"}},
		{name: "the same model twice", target: "/channels?model=linear&model2=linear", status: 400,
			want: []string{`parameter &#34;model2&#34;: it is the same model as &#34;model&#34;`}},
		{name: "bad level", target: "/channels?level=country", status: 400, want: []string{`parameter &#34;level&#34;: allowed are channel, campaign.`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := demo
			if tt.fail != nil {
				m = failingMetrics{Metrics: demo, fail: tt.fail}
			}
			srv := demoServer(t, Deps{Metrics: m})
			if tt.budget > 0 {
				srv.cfg.TileTimeout = tt.budget
			}
			rec := get(t, srv, tt.target)
			body := rec.Body.String()
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d:\n%s", rec.Code, tt.status, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(body, w) {
					t.Errorf("page has %q", w)
				}
			}
			if tt.status != 200 {
				return
			}
			if tt.fail == nil && strings.Contains(body, "Not available:") {
				t.Errorf("a widget failed:\n%s", body)
			}
			head, rows := channelCells(t, body)
			if tt.head != nil && strings.Join(head, "|") != strings.Join(tt.head, "|") {
				t.Errorf("columns %q, want %q", head, tt.head)
			}
			for key, want := range tt.cells {
				row, ok := rows[key]
				if !ok {
					t.Errorf("no row %q", key)
					continue
				}
				for col, w := range want {
					if row[col] != w {
						t.Errorf("%s / %s = %q, want %q", key, col, row[col], w)
					}
				}
			}
		})
	}
}

// The browser shows the channels page of the demo company: the bar chart drawn with a series
// per model, the table, and the model picker that applies on change.
func TestBrowserChannels(t *testing.T) {
	demo := demoMetrics(t)
	warm(t, demo)
	base := serveOnLoopback(t, demoServer(t, Deps{Metrics: demo}))
	bctx := newBrowser(t, 1440, 1000)
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/channels?range=custom&from=2026-01-01&to=2026-06-30&model=linear&model2=time_decay")); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(bctx, `!!document.querySelector('#roas-by-channel[data-ready] svg')`); err != nil {
		t.Fatal(err)
	}
	series, err := chromedp.Run(bctx, chromedp.Evaluate[int](`echarts.getInstanceByDom(document.getElementById('roas-by-channel')).getOption().series.length`))
	if err != nil || series != 2 {
		t.Errorf("ROAS chart has %d series (%v), want one per model", series, err)
	}
	cell, err := chromedp.Run(bctx, chromedp.TextContent(chromedp.CSS(`.channel-table tfoot tr:first-child td:nth-child(5)`)))
	if err != nil || !strings.HasSuffix(strings.TrimSpace(cell), "×") {
		t.Errorf("total ROAS cell %q (%v)", cell, err)
	}
	screenshot(t, bctx, "channels")

	// Picking another model applies it (app.js submits the picker).
	if err := chromedp.Do(bctx, chromedp.SetValue(chromedp.CSS(`select[name=model]`), "w_shaped")); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(bctx, `location.search.includes('model=w_shaped') && location.search.includes('model2=time_decay') && location.search.includes('from=2026-01-01') && !!document.querySelector('#roas-by-channel[data-ready] svg')`); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(820, 1180), chromedp.Navigate(base+"/channels?range=custom&from=2026-01-01&to=2026-06-30&level=campaign")); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(bctx, `!!document.querySelector('#roas-by-campaign[data-ready] svg')`); err != nil {
		t.Fatal(err)
	}
	screenshot(t, bctx, "channels-campaign-tablet")
}
