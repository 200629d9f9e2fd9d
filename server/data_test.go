package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/views"
	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// dataFixture is a store with three runs, loaded through the real ingest path:
//
//	shop/orders     orders.csv: 10 good orders (lines 2–11), 61 bad times (lines 12–72, the
//	                last one's id is an HTML tag), 5 without currency (lines 73–77): 66 rejected
//	crm/customers   2 customers, with a column customers do not have (a warning of the run)
//	web/touchpoints an empty file: the run fails
//
// It returns the store and the run ids in load order.
func dataFixture(t *testing.T) (*warehouse.Store, []string) {
	t.Helper()
	st := whtest.Store(t)
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("order_id,customer_id,ordered_at,revenue,currency\n")
	for i := range 10 {
		fmt.Fprintf(&b, "g%d,c%d,2026-03-%02d 10:00:00,%d.50,EUR\n", i, i, i+1, 10+i)
	}
	for i := range 60 {
		fmt.Fprintf(&b, "t%d,c1,not a date %d,1,EUR\n", i, i)
	}
	b.WriteString("<script>alert(1)</script>,c1,never,1,EUR\n")
	for i := range 5 {
		fmt.Fprintf(&b, "m%d,c1,2026-03-01,1,\n", i)
	}
	files := []struct {
		name, body string
		opts       ingest.Options
		fails      bool
	}{
		{"orders.csv", b.String(), ingest.Options{Entity: "orders", Source: "shop"}, false},
		{"customers.csv", "customer_id,email,nickname\ncrm-1,a@example.com,A\ncrm-2,b@example.com,B\n", ingest.Options{Entity: "customers", Source: "crm"}, false},
		{"touchpoints.csv", "", ingest.Options{Entity: "touchpoints", Source: "web"}, true},
	}
	var ids []string
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, []byte(f.body), 0o644); err != nil {
			t.Fatal(err)
		}
		sum, err := ingest.LoadFile(context.Background(), st, p, f.opts, nil)
		if (err != nil) != f.fails {
			t.Fatalf("load %s: %v", f.name, err)
		}
		ids = append(ids, sum.RunID)
	}
	return st, ids
}

// badMetricsDir is a user metrics folder with one definition that does not validate.
func badMetricsDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	body := "-- name: broken_orders\n-- title: Broken orders\n-- owner: CFO\n-- unit: dollars\n-- kind: simple\n-- time: ordered_at\n-- measure: count()\nSELECT ordered_at FROM orders\n"
	if err := os.WriteFile(filepath.Join(dir, "broken_orders.sql"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// catalogMetrics is the real metrics layer over the demo store with badMetricsDir as the
// user folder.
func catalogMetrics(t testing.TB) Metrics {
	t.Helper()
	reg, err := metrics.New(context.Background(), metrics.Options{Store: demoStore(t), Dir: badMetricsDir(t), CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	return NewRegistryMetrics(reg, RegistryConfig{Currency: "EUR", WeekStart: time.Monday})
}

func dataServer(t *testing.T, cfg Config, st *warehouse.Store, m Metrics) *Server {
	t.Helper()
	if cfg.TZ == "" {
		cfg.TZ = "UTC"
	}
	if cfg.TileTimeout == 0 {
		cfg.TileTimeout = time.Minute // the first catalog asks every custom metric for its shape
	}
	var data Data
	if st != nil {
		data = ingest.NewCatalog(st)
	}
	return asAdmin(New(cfg, Deps{Store: fakeStore{}, Metrics: m, Data: data}))
}

func TestDataPages(t *testing.T) {
	st, ids := dataFixture(t)
	shopRun, crmRun, webRun := ids[0], ids[1], ids[2]
	srv := dataServer(t, Config{}, st, catalogMetrics(t))
	cases := []struct {
		name    string
		url     string
		status  int
		want    []string
		notWant []string
	}{
		{name: "data page", url: "/data", status: http.StatusOK, want: []string{
			// sources: rows stored, freshness, runs, rejected with a link to its records
			`<th scope="row">shop</th><td>orders</td><td class="num">10`, `badge-fresh">Fresh`,
			`href="/data/quarantine?entity=orders&amp;source=shop">66</a>`, `href="/data?entity=orders&amp;source=shop#runs">1 run</a> <span class="muted small">last: <span class="badge run-succeeded">succeeded</span>`,
			`<th scope="row">crm</th><td>customers</td><td class="num">2`,
			`<th scope="row">web</th><td>touchpoints</td><td class="num">0 </td><td><span class="badge badge-stale">Stale</span> never`,
			"more than 48 hours ago",
			// quarantine summary
			`<strong>66</strong> rejected records`, `href="/data/quarantine?code=bad_time"><code>bad_time</code> 61`,
			// runs, newest first, with where they came from and their counts
			"Showing 1–3 of 3 runs", `id="run-` + webRun, `id="run-` + shopRun, "orders.csv</code>", "empty file",
			`href="/data/quarantine?run=` + shopRun + `">66</a>`,
			`<span class="run-warning">columns not in customers: nickname (ignored)</span>`,
			// metric catalog: a series metric links to its KPI page; the invalid file shows its error
			`href="/kpi/orders">`, `<td>CFO</td>`, "broken_orders.sql:4: ", `badge-stale">Invalid`, "table</span>",
		}},
		{name: "runs by source", url: "/data?source=crm", status: http.StatusOK,
			want:    []string{"Showing 1–1 of 1 runs", `id="run-` + crmRun, `Source = <strong>crm</strong>`, `value="crm"`},
			notWant: []string{`id="run-` + shopRun, `id="run-` + webRun}},
		{name: "runs by status", url: "/data?status=failed", status: http.StatusOK,
			want: []string{"Showing 1–1 of 1 runs", `id="run-` + webRun, `<option value="failed" selected>`}, notWant: []string{`id="run-` + shopRun}},
		{name: "runs by entity", url: "/data?entity=orders&status=succeeded", status: http.StatusOK,
			want: []string{"Showing 1–1 of 1 runs", `id="run-` + shopRun}, notWant: []string{`id="run-` + crmRun}},
		{name: "no run matches", url: "/data?source=crm&entity=orders", status: http.StatusOK, want: []string{"No runs match these filters."}},
		{name: "runs page past the end", url: "/data?page=2", status: http.StatusOK,
			want: []string{"Page 2 is past the end: there are 3 runs on 1 pages.", `href="/data#runs">Go to the last page`}},
		{name: "times in the zone asked for", url: "/data?tz=Asia/Tokyo", status: http.StatusOK,
			want: []string{"Times in <abbr", "Asia/Tokyo", `href="/data/quarantine?tz=Asia%2FTokyo"`, `name="tz" value="Asia/Tokyo"`}},
		{name: "bad entity", url: "/data?entity=invoices", status: http.StatusBadRequest, want: []string{`Invalid value &#34;invoices&#34; for parameter &#34;entity&#34;`, "consents"}},
		{name: "bad status", url: "/data?status=done", status: http.StatusBadRequest, want: []string{"&#34;status&#34;", "running, committing, succeeded, failed"}},
		{name: "bad page", url: "/data?page=0", status: http.StatusBadRequest, want: []string{"&#34;page&#34;"}},
		{name: "page not a number", url: "/data?page=two", status: http.StatusBadRequest, want: []string{"&#34;page&#34;"}},
		{name: "bad zone", url: "/data?tz=Mars/Olympus", status: http.StatusBadRequest, want: []string{"&#34;tz&#34;"}},
		{name: "source with control characters", url: "/data?source=a%00b", status: http.StatusBadRequest, want: []string{"&#34;source&#34;"}},

		{name: "quarantine", url: "/data/quarantine", status: http.StatusOK, want: []string{
			"Showing 1–50 of 66 rejected records", "orders.csv:12</code>",
			"<code>ordered_at</code>", `&#34;not a date 0&#34; is not a time`, `<pre class="raw"><code>t0,c1,not a date 0,1,EUR</code></pre>`,
			// counts by reason code
			`<code>bad_time</code></a></th><td class="num">61</td>`, `<code>missing_field</code></a></th><td class="num">5</td>`,
			`href="/data/quarantine?page=2" rel="next"`, "Page 1 of 2", `href="/data/quarantine?run=` + shopRun + `"`,
		}, notWant: []string{"orders.csv:77<", `rel="prev"`}},
		{name: "quarantine page 2, raw record escaped", url: "/data/quarantine?page=2", status: http.StatusOK, want: []string{
			"Showing 51–66 of 66 rejected records", "orders.csv:72</code>", "orders.csv:77</code>",
			"&lt;script&gt;alert(1)&lt;/script&gt;,c1,never,1,EUR", `href="/data/quarantine" rel="prev"`,
			"<code>currency</code>", "required field is empty",
		}, notWant: []string{"<script>alert", "orders.csv:12<"}},
		{name: "quarantine by code", url: "/data/quarantine?code=missing_field", status: http.StatusOK, want: []string{
			"Showing 1–5 of 5 rejected records", "orders.csv:73</code>", "orders.csv:77</code>", `Reason code = <strong>missing_field</strong>`,
			`<tr aria-current="true"><th scope="row"><a href="/data/quarantine?code=missing_field"><code>missing_field</code>`,
			// the other codes stay listed with their counts, to switch to
			`<option value="bad_time">bad_time (61)</option>`,
		}, notWant: []string{"orders.csv:12<", `rel="next"`}},
		{name: "quarantine by run, source and entity", url: "/data/quarantine?run=" + shopRun + "&source=shop&entity=orders", status: http.StatusOK,
			want: []string{"Showing 1–50 of 66 rejected records", `value="` + shopRun + `"`}},
		{name: "quarantine of a run without rejects", url: "/data/quarantine?run=" + crmRun, status: http.StatusOK,
			want: []string{"No rejected records match these filters.", "No rejected records match these filters."}, notWant: []string{"orders.csv:"}},
		{name: "quarantine of another source", url: "/data/quarantine?source=crm", status: http.StatusOK,
			want: []string{"No rejected records match these filters."}, notWant: []string{"<pre class=\"raw\">"}},
		{name: "quarantine page past the end", url: "/data/quarantine?page=3", status: http.StatusOK,
			want: []string{"Page 3 is past the end: there are 66 rejected records on 2 pages.", `href="/data/quarantine?page=2">Go to the last page`}},
		{name: "bad run id", url: "/data/quarantine?run=%27%20OR%201%3D1", status: http.StatusBadRequest, want: []string{"&#34;run&#34;", "a run id"}},
		{name: "bad code", url: "/data/quarantine?code=Bad-Code", status: http.StatusBadRequest, want: []string{"&#34;code&#34;"}},
		{name: "bad quarantine entity", url: "/data/quarantine?entity=x", status: http.StatusBadRequest, want: []string{"&#34;entity&#34;"}},
		{name: "bad quarantine page", url: "/data/quarantine?page=-1", status: http.StatusBadRequest, want: []string{"&#34;page&#34;"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := get(t, srv, c.url)
			body := rec.Body.String()
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d\n%.2000s", rec.Code, c.status, body)
			}
			for _, w := range c.want {
				if !strings.Contains(body, w) {
					t.Errorf("lacks %q", w)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(body, w) {
					t.Errorf("has %q", w)
				}
			}
			if t.Failed() && testing.Verbose() {
				t.Log(body)
			}
		})
	}
}

// TestDataFreshness: a source is stale past Config.StaleAfter.
func TestDataFreshness(t *testing.T) {
	st, _ := dataFixture(t)
	srv := dataServer(t, Config{StaleAfter: time.Millisecond}, st, nil)
	time.Sleep(5 * time.Millisecond)
	body := get(t, srv, "/data").Body.String()
	if strings.Contains(body, "badge-fresh") || strings.Count(body, `badge-stale">Stale`) != 3 {
		t.Errorf("with a 1 ms threshold every source is stale:\n%s", body)
	}
	if !strings.Contains(body, "more than 1ms ago") {
		t.Errorf("the threshold is not stated")
	}
	// Without metrics the catalog says so; the rest of the page is there.
	if !strings.Contains(body, "Metrics are not configured on this server.") || !strings.Contains(body, "Showing 1–3 of 3 runs") {
		t.Errorf("without metrics:\n%s", body)
	}
}

// TestDataWidgetsFail: widgets that do not answer within the budget show their error; the
// page still renders.
func TestDataWidgetsFail(t *testing.T) {
	st, _ := dataFixture(t)
	srv := dataServer(t, Config{TileTimeout: time.Nanosecond}, st, newFakeMetrics())
	for _, u := range []string{"/data", "/data/quarantine"} {
		rec := get(t, srv, u)
		body := rec.Body.String()
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d", u, rec.Code)
		}
		n := strings.Count(body, `class="alert" role="alert"`)
		want := map[string]int{"/data": 5, "/data/quarantine": 2}[u] // data: sources, quarantine, runs, catalog, rollups
		if n != want || !strings.Contains(body, "time budget") {
			t.Errorf("%s: %d widget errors, want %d:\n%s", u, n, want, body)
		}
	}
}

// TestDataNotConfigured: without Deps.Data the data pages answer 503.
func TestDataNotConfigured(t *testing.T) {
	srv := dataServer(t, Config{}, nil, newFakeMetrics())
	for _, u := range []string{"/data", "/data/quarantine?code=x"} {
		rec := get(t, srv, u)
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "data pages are not configured") {
			t.Errorf("%s: %d %s", u, rec.Code, rec.Body.String())
		}
	}
	// The navigation links the page.
	if body := get(t, srv, "/").Body.String(); !strings.Contains(body, `href="/data"`) {
		t.Errorf("overview has no link to /data")
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{48 * time.Hour: "48 hours", time.Hour: "1 hour", 7 * 24 * time.Hour: "7 days",
		30 * time.Minute: "30 minutes", 90 * time.Second: "1m30s"} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestDataDemo: the data page over the demo company: every demo source with the rows its
// table holds, all fresh (just loaded), nothing rejected, every run succeeded.
func TestDataDemo(t *testing.T) {
	st := demoStore(t)
	srv := demoServer(t, Deps{Data: ingest.NewCatalog(st)})
	rec := get(t, srv, "/data")
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	pairs := [][2]string{{"ads", "marketing_spend"}, {"crm", "customers"}, {"email", "consents"}, {"helpdesk", "customers"},
		{"helpdesk", "tickets"}, {"shop", "consents"}, {"shop", "customers"}, {"shop", "orders"}, {"shop", "rewards"},
		{"shop", "tickets"}, {"survey", "survey_responses"}, {"web", "touchpoints"}}
	for _, p := range pairs {
		var n uint64
		// The entity is a fixed table name from the list above, not input.
		if err := st.Conn.QueryRow(context.Background(), "SELECT count() FROM "+p[1]+" FINAL WHERE source = {s:String}",
			clickhouse.Named("s", p[0])).Scan(&n); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`<th scope="row">%s</th><td>%s</td><td class="num">%s `, p[0], p[1], views.FormatCount(int64(n)))
		if n == 0 || !strings.Contains(body, want) {
			t.Errorf("lacks %q", want)
		}
	}
	if got := strings.Count(body, `badge-fresh">Fresh`); got != len(pairs) {
		t.Errorf("%d fresh sources, want %d", got, len(pairs))
	}
	for _, w := range []string{"<strong>0</strong> rejected records", "Showing 1–12 of 12 runs", "demo:small:seed=7"} {
		if !strings.Contains(body, w) {
			t.Errorf("lacks %q", w)
		}
	}
	if strings.Contains(body, "run-failed") || strings.Contains(body, noSourceLabel) {
		t.Errorf("a failed run or a run without its source")
	}
}
