package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/ingest/events"
	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

var injectionPayloads = whtest.InjectionPayloads

// storeState is every table of the store's database with its row count.
func storeState(t *testing.T, st *warehouse.Store) map[string]uint64 {
	t.Helper()
	ctx := context.Background()
	rows, err := st.Conn.Query(ctx, "SELECT name, engine LIKE '%View', match(engine, '(Replacing|Collapsing|Summing|Aggregating)MergeTree') FROM system.tables WHERE database = currentDatabase() AND NOT is_temporary ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	var names []string
	final := map[string]bool{}
	for rows.Next() {
		var n string
		var view, merging bool
		if err := rows.Scan(&n, &view, &merging); err != nil {
			t.Fatal(err)
		}
		if view {
			out[n] = 0 // views (some take parameters) are only checked to exist
			continue
		}
		names = append(names, n)
		final[n] = merging
	}
	rows.Close()
	for _, n := range names {
		var c uint64
		// n is a table name read from the store's catalog, quoted as an identifier. Tables
		// whose merges combine rows are counted as their readers see them (FINAL), so that a
		// background merge during the test is no change.
		q := "SELECT count() FROM `" + strings.ReplaceAll(n, "`", "``") + "`"
		if final[n] {
			q += " FINAL"
		}
		if err := st.Conn.QueryRow(ctx, q).Scan(&c); err != nil {
			t.Fatalf("count %s: %v", n, err)
		}
		out[n] = c
	}
	return out
}

func sameState(t *testing.T, before, after map[string]uint64) {
	t.Helper()
	for n, c := range before {
		if a, ok := after[n]; !ok {
			t.Errorf("table %s is gone", n)
		} else if a != c {
			t.Errorf("table %s: %d rows, before %d", n, a, c)
		}
	}
	for n := range after {
		if _, ok := before[n]; !ok {
			t.Errorf("table %s appeared", n)
		}
	}
}

// injectionParam is one URL parameter of a route and what a payload in it must give.
type injectionParam struct {
	path  string     // the route
	query url.Values // the other parameters of every request
	param string     // the parameter; "path" puts the payload in the path after path
	free  bool       // free text: a payload is answered (200, same page as for an absent value) or refused (400)
	// sample: a page that queries every metric, so each answer takes seconds: a free-text
	// parameter gets one payload of each kind (quote, escape, unicode); every payload reaches
	// the same code through the other routes
	sample bool
}

// samplePayloads are the payloads a sample case sends.
var samplePayloads = []string{"drop table", "trailing backslash", "null marker", "unicode quotes"}

// TestInjectionURLParameters sends every payload in every URL parameter of every GET route of
// the dashboard, the data pages and the JSON API (routes.go; /events/live takes none, /healthz,
// /readyz and /about none that reach the store), over the demo store. A parameter that allows
// only some values answers 400 naming it; a free-text one (the dimension filters, the data
// pages' source) answers like for any value without rows, or 400 for text it refuses (control
// characters, too long); a name in the path answers 404. Nothing answers 5xx, no widget fails,
// and afterwards every table is there with its rows and no table appeared.
func TestInjectionURLParameters(t *testing.T) {
	st := demoStore(t)
	srv := demoServer(t, Deps{Data: ingest.NewCatalog(st)})
	before := storeState(t, st)
	lastYear := url.Values{"range": {"last_year"}}
	custom := url.Values{"range": {"custom"}, "from": {"2025-01-01"}, "to": {"2025-12-31"}}
	var cases []injectionParam
	for _, p := range []string{"/", "/kpi/revenue_gross", "/kpi/revenue_gross.csv", "/tiles/revenue_gross", "/channels",
		"/retention", "/funnel", "/api/v1/metrics/revenue_gross", "/api/v1/metrics/revenue_gross?format=csv"} {
		for _, q := range []string{"range", "from", "to", "grain", "compare", "tz", "by", "view", "f.channel", "f.<payload>"} {
			base := lastYear
			if q == "from" || q == "to" {
				base = custom
			}
			free := q == "f.channel"
			cases = append(cases, injectionParam{path: p, query: base, param: q, free: free, sample: free && (p == "/" || p == "/channels")})
		}
	}
	cases = append(cases,
		injectionParam{path: "/channels", query: lastYear, param: "level"}, injectionParam{path: "/channels", query: lastYear, param: "model"},
		injectionParam{path: "/channels", query: lastYear, param: "model2"}, injectionParam{path: "/funnel", query: lastYear, param: "window_days"},
		injectionParam{path: "/api/v1/metrics/revenue_gross", query: lastYear, param: "format"},
		injectionParam{path: "/about", param: "tz", free: true}, // only shown, never queried: any value renders the page
		injectionParam{path: "/kpi/", param: "path"}, injectionParam{path: "/tiles/", param: "path"},
		injectionParam{path: "/api/v1/metrics/", param: "path"}, injectionParam{path: "/static/", param: "path"},
	)
	for p, params := range map[string][]string{"/data": {"tz", "page", "source", "entity", "status"},
		"/data/quarantine": {"tz", "page", "run", "source", "entity", "code"}} {
		for _, q := range params {
			cases = append(cases, injectionParam{path: p, param: q, free: q == "source"})
		}
	}

	alerts := func(body string) int { return strings.Count(body, `role="alert"`) + strings.Count(body, `tile-error`) }
	for _, c := range cases {
		t.Run(c.path+" "+c.param, func(t *testing.T) {
			target := func(v string) string {
				if c.param == "path" {
					return c.path + url.PathEscape(v)
				}
				path, extra, _ := strings.Cut(c.path, "?")
				q, _ := url.ParseQuery(extra)
				for k, vs := range c.query {
					q[k] = vs
				}
				if c.param == "f.<payload>" {
					q.Set("f."+v, "x")
				} else {
					q.Set(c.param, v)
				}
				return path + "?" + q.Encode()
			}
			control := get(t, srv, target("nosuchvalue"))
			for _, p := range injectionPayloads {
				if c.sample && !slices.Contains(samplePayloads, p.Name) {
					continue
				}
				rec := get(t, srv, target(p.V))
				body := rec.Body.String()
				switch {
				case c.param == "path":
					if rec.Code != http.StatusNotFound {
						t.Errorf("%s: status %d, want 404", p.Name, rec.Code)
					}
				case rec.Code == http.StatusBadRequest:
					name := c.param
					if name == "f.<payload>" {
						name = "f."
					}
					if !strings.Contains(body, name) {
						t.Errorf("%s: 400 that does not name %s: %.300s", p.Name, name, body)
					}
				case rec.Code == http.StatusOK && c.free:
					if control.Code != http.StatusOK || alerts(body) != alerts(control.Body.String()) {
						t.Errorf("%s: status %d with %d alerts, for an absent value %d with %d: %.500s", p.Name, rec.Code, alerts(body),
							control.Code, alerts(control.Body.String()), body)
					}
					if c.path == "/api/v1/metrics/revenue_gross" && c.param == "f.channel" {
						var res resultJSON
						if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || res.Total != nil && *res.Total != 0 {
							t.Errorf("%s: total %v (%v), want none: no order has that channel", p.Name, res.Total, err)
						}
					}
				default:
					t.Errorf("%s: status %d: %.300s", p.Name, rec.Code, body)
				}
			}
		})
	}
	sameState(t, before, storeState(t, st))

	// The checks above can fail: a real channel has revenue, an error is a 400.
	var res resultJSON
	rec := get(t, srv, "/api/v1/metrics/revenue_gross?range=last_year&f.channel=email")
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || res.Total == nil || *res.Total <= 0 {
		t.Fatalf("control: email revenue %v (%v): %s", res.Total, err, rec.Body.String())
	}
}

// TestInjectionValuesRoundTrip stores every payload as data, through each path that writes
// (a file with a mapping whose constants and value map are payloads, the events API, the
// source name), and reads it back as a filter through the metrics layer, the JSON API and the
// events API's entity: each value arrives in the store exactly as sent and selects exactly its
// own rows, and nothing else in the store changes.
func TestInjectionValuesRoundTrip(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	tokens := events.NewTokens(st, time.Minute)
	token, _, err := tokens.Create(ctx, "test", events.ScopeIngest, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := events.New(st, tokens, events.Config{}, nil)
	defer svc.Close(ctx)
	reg, err := metrics.New(ctx, metrics.Options{Store: st, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := asAdmin(New(Config{TZ: "UTC", TileTimeout: time.Minute}, Deps{Store: fakeStore{}, Events: svc,
		Metrics: NewRegistryMetrics(reg, RegistryConfig{Currency: "EUR"})}))

	// Orders: one per payload, its channel the payload, revenue its index + 1; the mapping's
	// campaign constant and country map are payloads too. (A status is one of a closed list:
	// a mapping that maps onto a payload there is refused when it is read.)
	yamlQuote := func(s string) string { b, _ := json.Marshal(s); return string(b) } // JSON strings are YAML
	drop := injectionPayloads[0].V
	if _, err := ingest.ParseMapping("inject", []byte("entity: orders\nfields:\n  status: {column: status, map: {"+yamlQuote("1 OR 1=1")+": "+yamlQuote(drop)+"}}\n")); err == nil ||
		!strings.Contains(err.Error(), "is not a status of an order") {
		t.Fatalf("a status map onto a payload: %v, want it refused", err)
	}
	m, err := ingest.ParseMapping("inject", []byte("entity: orders\nsource: "+yamlQuote(drop)+"\nfields:\n"+
		"  order_id: {column: id}\n  ordered_at: {column: at}\n  revenue: {column: revenue}\n  currency: {value: EUR}\n"+
		"  channel: {column: channel}\n  campaign: {value: "+yamlQuote(drop)+"}\n"+
		"  country: {column: status, map: {"+yamlQuote("1 OR 1=1")+": "+yamlQuote(drop)+"}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := ingest.NewLoader(ctx, st, ingest.Options{Mapping: m, Format: "ndjson"}, "inject.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i, p := range injectionPayloads {
		rec, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("o%d", i), "at": "2026-03-01T10:00:00Z", "revenue": i + 1,
			"channel": p.V, "status": "1 OR 1=1"})
		b.Write(rec)
		b.WriteByte('\n')
	}
	if err := l.Load(ctx, strings.NewReader(b.String()), "inject.ndjson"); err != nil {
		t.Fatal(err)
	}
	sum, err := l.Close(ctx, nil)
	if err != nil || sum.Loaded != int64(len(injectionPayloads)) {
		t.Fatalf("load: %v %+v", err, sum)
	}
	var n uint64
	if err := st.Conn.QueryRow(ctx, "SELECT count() FROM orders FINAL WHERE source = {p:String} AND campaign = {p:String} AND country = upper({p:String})",
		clickhouse.Named("p", drop)).Scan(&n); err != nil || n != uint64(len(injectionPayloads)) {
		t.Fatalf("orders with the payload as source, campaign and country: %d (%v)", n, err)
	}

	// Touchpoints through the events API: each payload as customer and campaign.
	var ev strings.Builder
	for i, p := range injectionPayloads {
		rec, _ := json.Marshal(map[string]string{"event_id": fmt.Sprintf("e%d", i), "customer_id": p.V, "campaign": p.V,
			"occurred_at": "2026-03-01T10:00:00Z", "channel": "email", "kind": "open"})
		ev.Write(rec)
		ev.WriteByte('\n')
	}
	post := func(entity, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "/api/v1/events/"+entity, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	if code, body := post("touchpoints", ev.String()); code != http.StatusOK || !strings.Contains(body, fmt.Sprintf(`"accepted":%d`, len(injectionPayloads))) {
		t.Fatalf("events: %d %s", code, body)
	}
	before := storeState(t, st)
	for _, p := range injectionPayloads {
		if code, body := post(url.PathEscape(p.V), touch0); code != http.StatusNotFound {
			t.Errorf("events entity %s: %d %.200s", p.Name, code, body)
		}
	}

	from, to := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	for i, p := range injectionPayloads {
		t.Run(p.Name, func(t *testing.T) {
			var n uint64
			if err := st.Conn.QueryRow(ctx, "SELECT count() FROM touchpoints FINAL WHERE customer_id = {p:String} AND campaign = {p:String}",
				clickhouse.Named("p", p.V)).Scan(&n); err != nil || n != 1 {
				t.Errorf("touchpoints stored with the payload: %d (%v)", n, err)
			}
			// The metrics layer (what the API, the pages and `converge metrics query --filter` use).
			res, err := reg.Query(ctx, "revenue_gross", metrics.Params{From: from, To: to, Grain: metrics.Day, TZ: time.UTC,
				WeekStart: time.Monday, FiscalYearStart: time.January, Filters: []metrics.Filter{{Dim: "channel", Value: p.V}}})
			if err != nil {
				t.Fatalf("metrics: %v", err)
			}
			if tot := res.Series[0].Total; tot == nil || *tot != float64(i+1) {
				t.Errorf("metrics: revenue of channel %q = %v, want %d", p.V, tot, i+1)
			}
			// The JSON API: values the filters accept give the same answer.
			rec := get(t, srv, "/api/v1/metrics/revenue_gross?"+url.Values{"from": {"2026-03-01"}, "to": {"2026-03-01"}, "f.channel": {p.V}}.Encode())
			if rec.Code == http.StatusBadRequest && (len(p.V) > maxFilterValue || !validText(p.V)) {
				return
			}
			var out resultJSON
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code != http.StatusOK || out.Total == nil || *out.Total != float64(i+1) {
				t.Errorf("API: %d total %v (%v), want %d: %.300s", rec.Code, out.Total, err, i+1, rec.Body.String())
			}
		})
	}
	sameState(t, before, storeState(t, st))
}

const touch0 = `{"event_id":"x","occurred_at":"2026-03-01T10:00:00Z","channel":"email","kind":"open"}`
