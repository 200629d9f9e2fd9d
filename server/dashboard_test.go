package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// newDashServer is a server with the fake metrics; today is 14 March 2026 (UTC).
func newDashServer(t *testing.T, m Metrics, cfg Config) *Server {
	t.Helper()
	s, _ := newTestServerCfg(t, cfg, Deps{Store: okStore(), Metrics: m, Version: "v1.2.3-test"})
	s.now = func() time.Time { return time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC) }
	return s
}

func newTestServerCfg(t *testing.T, cfg Config, deps Deps) (*Server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	deps.Log = slogTo(logs)
	return asAdmin(New(cfg, deps)), logs
}

func day(s string, loc *time.Location) time.Time {
	t, err := time.ParseInLocation(dateLayout, s, loc)
	if err != nil {
		panic(err)
	}
	return t
}

func TestOverview(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	tests := []struct {
		name       string
		target     string
		setup      func(m *fakeMetrics)
		cfg        Config
		wantStatus int
		want       []string
		notWant    []string
		// wantQuery is what the fake must have received for "revenue".
		wantQuery *MetricQuery
	}{
		{
			name: "tiles grouped by owner", target: "/", wantStatus: 200,
			want: []string{"<h1>Overview</h1>", `id="group-cfo"`, `id="group-cmo"`, `id="group-coo"`, `id="group-cco"`,
				`id="tile-revenue"`, "Revenue", "€", `class="change good"`, "▲", "(better)", "vs previous period",
				"Data as of", "14 Mar 2026 09:30 UTC", "Target", `data-option="{`, "Data table",
				"Times in", "UTC", "Definitions that do not validate", "unknown unit", `hx-get="/tiles/revenue?`,
				`data-live="/events/live"`, "/static/js/echarts-5.6.0.min.js?v=", "/static/js/app.js?v=", `href="/kpi/revenue?`},
			notWant: []string{"cdn", "jsdelivr", "<script>", "onclick"},
			wantQuery: &MetricQuery{From: day("2026-02-13", time.UTC), To: day("2026-03-15", time.UTC), Grain: "day", TZ: "UTC",
				Compare: "previous", Filters: map[string]string{}},
		},
		{
			name: "filters from the URL reach the query", wantStatus: 200,
			target: "/?range=custom&from=2025-12-01&to=2025-12-31&grain=week&compare=year&tz=Europe/Berlin&f.channel=email&f.country=DE",
			want:   []string{"1 Dec 2025 – 31 Dec 2025, by week", "Europe/Berlin", "channel = <strong>email</strong>", "weeks start on Sunday"},
			wantQuery: &MetricQuery{From: day("2025-12-01", berlin), To: day("2026-01-01", berlin), Grain: "week", TZ: "Europe/Berlin",
				Compare: "year", Filters: map[string]string{"channel": "email", "country": "DE"}},
		},
		{
			name: "a filter a KPI lacks is not applied, and said", target: "/?f.channel=email", wantStatus: 200,
			want: []string{"Not filtered by channel"},
		},
		{
			name: "compare none", target: "/?compare=none", wantStatus: 200,
			notWant: []string{"vs previous period"},
			wantQuery: &MetricQuery{From: day("2026-02-13", time.UTC), To: day("2026-03-15", time.UTC), Grain: "day", TZ: "UTC",
				Compare: "", Filters: map[string]string{}},
		},
		{
			name: "4R view", target: "/?view=4r", wantStatus: 200,
			want:    []string{`id="group-recognize"`, `id="group-reach"`, `id="group-relationship"`, `id="group-return"`, `aria-current="true">By 4R`},
			notWant: []string{`id="group-cfo"`},
		},
		{
			name: "a failing tile shows its error, the page renders", target: "/", wantStatus: 200,
			setup: func(m *fakeMetrics) { m.fail["nps"] = errors.New("table survey_responses does not exist") },
			// The store's error is logged, not shown: the tile names the request ID.
			want:    []string{`tile-failed`, "an internal error; it is in the server log under request ID ", `id="tile-revenue"`, "€"},
			notWant: []string{"survey_responses"},
		},
		{
			name: "a slow tile times out within its budget", target: "/", wantStatus: 200,
			cfg:   Config{TileTimeout: 50 * time.Millisecond},
			setup: func(m *fakeMetrics) { m.slow["cac"] = true },
			want:  []string{"no answer within 50ms (time budget)", `id="tile-revenue"`},
		},
		{
			name: "a slow tile whose query finishes in the background says so", target: "/", wantStatus: 200,
			cfg:   Config{TileTimeout: 50 * time.Millisecond, FinishInBackground: true},
			setup: func(m *fakeMetrics) { m.slow["cac"] = true },
			want:  []string{"still computing after 50ms (time budget); it goes on in the background: reload in a minute.", `id="tile-revenue"`},
		},
		{
			name: "catalog fails", target: "/", wantStatus: 200,
			setup:   func(m *fakeMetrics) { m.catalogErr = errors.New("metrics folder unreadable") },
			want:    []string{"The list of KPIs could not be read: an internal error; it is in the server log under request ID "},
			notWant: []string{"metrics folder unreadable"},
		},
		{name: "bad range", target: "/?range=yesterday", wantStatus: 400, want: []string{`parameter &#34;range&#34;`, "this_month, last_30_days"}},
		{name: "bad grain", target: "/?grain=hour", wantStatus: 400, want: []string{"grain", "day, week, month, quarter, year"}},
		{name: "bad date", target: "/?from=2026-02-30&to=2026-03-01", wantStatus: 400, want: []string{"from", "YYYY-MM-DD"}},
		{name: "bad tz", target: "/?tz=Nowhere/City", wantStatus: 400, want: []string{"tz", "IANA"}},
		{name: "bad view", target: "/?view=grid", wantStatus: 400, want: []string{"view", "owner, 4r"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newFakeMetrics()
			if tt.setup != nil {
				tt.setup(m)
			}
			s := newDashServer(t, m, tt.cfg)
			start := time.Now()
			rec := do(t, s.Handler(), http.MethodGet, tt.target, nil)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body:\n%s", rec.Code, tt.wantStatus, rec.Body.String())
			}
			if tt.cfg.TileTimeout > 0 && time.Since(start) > 2*time.Second {
				t.Errorf("page took %s with a %s tile budget", time.Since(start), tt.cfg.TileTimeout)
			}
			body := rec.Body.String()
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %q", w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(body, w) {
					t.Errorf("body contains %q", w)
				}
			}
			if tt.wantQuery != nil {
				got, ok := m.lastQuery("revenue")
				if !ok {
					t.Fatal("revenue was not queried")
				}
				if !got.From.Equal(tt.wantQuery.From) || !got.To.Equal(tt.wantQuery.To) || got.Grain != tt.wantQuery.Grain ||
					got.TZ != tt.wantQuery.TZ || got.Compare != tt.wantQuery.Compare || got.By != tt.wantQuery.By ||
					!reflect.DeepEqual(got.Filters, tt.wantQuery.Filters) {
					t.Errorf("query\n got %+v\nwant %+v", got, *tt.wantQuery)
				}
			}
		})
	}
}

func TestOverviewTilesRunConcurrently(t *testing.T) {
	m := newFakeMetrics()
	for _, info := range m.catalog {
		m.slow[info.Name] = true // every tile waits for its whole budget
	}
	s := newDashServer(t, m, Config{TileTimeout: 200 * time.Millisecond})
	start := time.Now()
	rec := do(t, s.Handler(), http.MethodGet, "/", nil)
	took := time.Since(start)
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	// 8 valid KPIs one after another would take 1.6 s.
	if took > time.Second {
		t.Errorf("overview took %s: tiles are not concurrent", took)
	}
	if n := strings.Count(rec.Body.String(), "(time budget)"); n != 8 {
		t.Errorf("%d timed-out tiles, want 8", n)
	}
}

func TestNotConfigured(t *testing.T) {
	s := newDashServer(t, nil, Config{})
	tests := []struct {
		target     string
		wantStatus int
		want       string
	}{
		{"/", 200, "Metrics are not configured"},
		{"/kpi/revenue", 503, "Metrics are not configured"},
		{"/tiles/revenue", 503, "Metrics are not configured"},
		{"/api/v1/metrics", 503, `{"error":"Metrics are not configured on this server."}`},
		{"/api/v1/metrics/revenue", 503, `"error":"Metrics are not configured`},
	}
	for _, tt := range tests {
		rec := do(t, s.Handler(), http.MethodGet, tt.target, nil)
		if rec.Code != tt.wantStatus || !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("GET %s: %d, want %d with %q; body:\n%.400s", tt.target, rec.Code, tt.wantStatus, tt.want, rec.Body.String())
		}
	}
}

func TestKPIDetail(t *testing.T) {
	tests := []struct {
		name       string
		target     string
		wantStatus int
		want       []string
		wantBy     string
	}{
		{name: "default breakdown is the first dimension", target: "/kpi/revenue?range=year_to_date&grain=month", wantStatus: 200, wantBy: "channel",
			want: []string{"<h1>Revenue</h1>", "sum(net_amount)", "CFO", "v1", "Net revenue of orders.", `id="trend-revenue"`,
				`id="breakdown-revenue"`, "Previous period", "Target", "Jan 2026", "Feb 2026", "Mar 2026", "email", "search", "social",
				`href="/kpi/revenue.csv?`, "Download CSV", "Breakdown", "by channel", "Times in"}},
		{name: "breakdown by ?by=", target: "/kpi/revenue?by=country", wantStatus: 200, wantBy: "country",
			want: []string{`aria-current="true">country`}},
		{name: "KPI without dimensions", target: "/kpi/retention", wantStatus: 200, want: []string{"no dimensions to break down by", "35."}},
		{name: "unknown KPI", target: "/kpi/nope", wantStatus: 404, want: []string{"no KPI named"}},
		{name: "dimension it lacks", target: "/kpi/cac?by=country", wantStatus: 400, want: []string{"by", "dimensions of cac are channel"}},
		{name: "filter it lacks", target: "/kpi/cac?f.country=DE", wantStatus: 400, want: []string{"f.country"}},
		{name: "invalid definition", target: "/kpi/broken", wantStatus: 200, want: []string{"does not validate", "unknown unit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newFakeMetrics()
			s := newDashServer(t, m, Config{})
			rec := do(t, s.Handler(), http.MethodGet, tt.target, nil)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body:\n%s", rec.Code, tt.wantStatus, rec.Body.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(rec.Body.String(), w) {
					t.Errorf("body lacks %q", w)
				}
			}
			if tt.wantBy != "" {
				m.mu.Lock()
				qs := m.queries["revenue"]
				m.mu.Unlock()
				var bys []string
				for _, q := range qs {
					bys = append(bys, q.By)
				}
				if !strings.Contains(strings.Join(bys, ","), tt.wantBy) || len(qs) != 2 {
					t.Errorf("queries by %q, want the total and %q", bys, tt.wantBy)
				}
			}
		})
	}
}

func TestAPI(t *testing.T) {
	m := newFakeMetrics()
	s := newDashServer(t, m, Config{})

	rec := do(t, s.Handler(), http.MethodGet, "/api/v1/metrics", nil)
	var cat struct{ Metrics []metricJSON }
	if err := json.Unmarshal(rec.Body.Bytes(), &cat); err != nil || rec.Code != 200 {
		t.Fatalf("catalog: %d %v", rec.Code, err)
	}
	if len(cat.Metrics) != 9 || cat.Metrics[0].Name != "revenue" || cat.Metrics[8].Valid {
		t.Errorf("catalog %+v", cat.Metrics)
	}

	rec = do(t, s.Handler(), http.MethodGet, "/api/v1/metrics/revenue?range=last_year&grain=quarter&compare=year&by=channel&f.country=DE&tz=Europe/Berlin", nil)
	if rec.Code != 200 {
		t.Fatalf("metric: %d %s", rec.Code, rec.Body.String())
	}
	var res resultJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	// from and to as the request takes them (both days included), start and end the instants.
	if res.Query.From != "2025-01-01" || res.Query.To != "2025-12-31" || res.Query.Start != "2025-01-01T00:00:00+01:00" ||
		res.Query.End != "2026-01-01T00:00:00+01:00" || res.Query.Grain != "quarter" ||
		res.Query.By != "channel" || res.Query.Filters["country"] != "DE" || res.Total == nil || len(res.Series) != 4 {
		t.Errorf("result %+v", res)
	}
	if p := res.Series[0].Points[0]; p.Label != "2025-Q1" || p.Bucket != "2025-01-01T00:00:00+01:00" {
		t.Errorf("first point %+v", p)
	}
	q, _ := m.lastQuery("revenue")
	if q.Compare != "year" || q.By != "channel" || q.TZ != "Europe/Berlin" || !reflect.DeepEqual(q.Filters, map[string]string{"country": "DE"}) {
		t.Errorf("query %+v", q)
	}

	errs := []struct {
		target, param string
		status        int
	}{
		{"/api/v1/metrics/revenue?grain=hour", "grain", 400},
		{"/api/v1/metrics/revenue?from=2026-01-01&to=2025-01-01", "to", 400},
		{"/api/v1/metrics/revenue?by=plan", "by", 400},
		{"/api/v1/metrics/revenue?f.plan=gold", "f.plan", 400},
		{"/api/v1/metrics/revenue?format=xml", "format", 400},
		{"/api/v1/metrics/revenue?tz=Atlantis", "tz", 400},
		{"/api/v1/metrics/nope", "", 404},
	}
	for _, e := range errs {
		rec := do(t, s.Handler(), http.MethodGet, e.target, nil)
		var body apiError
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Errorf("%s: not JSON: %s", e.target, rec.Body.String())
			continue
		}
		if rec.Code != e.status || body.Param != e.param || body.Error == "" {
			t.Errorf("%s: %d %+v, want %d with param %q", e.target, rec.Code, body, e.status, e.param)
		}
	}

	m.slow["revenue"] = true
	s = newDashServer(t, m, Config{TileTimeout: 30 * time.Millisecond})
	if rec := do(t, s.Handler(), http.MethodGet, "/api/v1/metrics/revenue", nil); rec.Code != http.StatusGatewayTimeout {
		t.Errorf("slow metric: %d %s", rec.Code, rec.Body.String())
	}
}

func TestTilePartial(t *testing.T) {
	m := newFakeMetrics()
	s := newDashServer(t, m, Config{})
	rec := do(t, s.Handler(), http.MethodGet, "/tiles/cac?range=this_month&f.channel=search", nil)
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	body := rec.Body.String()
	if !strings.HasPrefix(body, "<article") || strings.Contains(body, "<html") || !strings.Contains(body, `id="tile-cac"`) {
		t.Errorf("partial:\n%s", body)
	}
	if q, _ := m.lastQuery("cac"); q.Filters["channel"] != "search" || q.From.Format(dateLayout) != "2026-03-01" {
		t.Errorf("query %+v", q)
	}
	if rec := do(t, s.Handler(), http.MethodGet, "/tiles/nope", nil); rec.Code != 404 {
		t.Errorf("unknown tile: %d", rec.Code)
	}
}

func TestLiveEvents(t *testing.T) {
	for _, withChanges := range []bool{true, false} {
		ch := &fakeChanges{}
		deps := Deps{Store: okStore(), Metrics: newFakeMetrics()}
		if withChanges {
			deps.Changes = ch
		}
		s, _ := newTestServerCfg(t, Config{KeepAlive: 50 * time.Millisecond}, deps)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx, ln) }()

		resp, err := http.Get("http://" + ln.Addr().String() + "/events/live")
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Errorf("Content-Type %q", ct)
		}
		r := bufio.NewReader(resp.Body)
		readUntil := func(want string) {
			t.Helper()
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					t.Fatalf("stream ended before %q: %v", want, err)
				}
				if strings.TrimSpace(line) == want {
					return
				}
				if !withChanges && strings.HasPrefix(line, "event:") {
					t.Fatalf("event without Changes: %q", line)
				}
			}
		}
		readUntil(": keep-alive")
		if withChanges {
			for ch.subscribers() == 0 {
				time.Sleep(5 * time.Millisecond)
			}
			ch.Notify()
			readUntil("event: data")
		} else {
			readUntil(": keep-alive")
		}
		// Shutdown ends the open stream at once: Run returns cleanly.
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("shutdown waited for the event stream")
		}
		resp.Body.Close()
		if withChanges && ch.subscribers() != 0 {
			t.Errorf("%d subscriptions left after the stream ended", ch.subscribers())
		}
	}
}

func TestStaticScripts(t *testing.T) {
	s := newDashServer(t, newFakeMetrics(), Config{})
	for _, name := range []string{"js/app.js", "js/echarts-5.6.0.min.js", "js/htmx-2.0.4.min.js"} {
		rec := do(t, s.Handler(), http.MethodGet, scriptURL(name), nil)
		if rec.Code != 200 || !strings.Contains(rec.Header().Get("Content-Type"), "javascript") {
			t.Errorf("%s: %d %q", name, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
}

func scriptURL(name string) string {
	for _, u := range scripts() {
		if strings.Contains(u, name+"?v=") {
			return u
		}
	}
	return "/static/" + name
}

func TestCatalogUnavailable(t *testing.T) {
	m := newFakeMetrics()
	m.catalogErr = errors.New("metrics folder unreadable")
	s := newDashServer(t, m, Config{})
	for _, target := range []string{"/kpi/revenue", "/tiles/revenue", "/api/v1/metrics/revenue", "/api/v1/metrics"} {
		rec := do(t, s.Handler(), http.MethodGet, target, nil)
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("%s: status %d", target, rec.Code)
		}
		// The reason is logged, not shown: the answer names the request ID it is logged under.
		if body := rec.Body.String(); strings.Contains(body, "metrics folder unreadable") ||
			!strings.Contains(body, "The list of KPIs could not be read: an internal error; it is in the server log under request ID "+rec.Header().Get(HeaderRequestID)) {
			t.Errorf("%s: body shows the reason or lacks the request ID:\n%.300s", target, body)
		}
	}
}
