package metrics

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/converge-dev/converge/warehouse/whtest"
)

const goodHead = `-- name: big_orders
-- title: Big orders
-- description: orders of 100 or more
-- owner: CFO
-- unit: count
-- polarity: higher_is_better
-- kind: simple
-- time: ordered_at
-- measure: count()
-- dimensions: channel
`

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, src string
		line      int
		want      string
	}{
		{"unknown key", "-- name: x\n-- colour: red\n", 2, `unknown header key "colour"`},
		{"missing field", "-- name: x\n-- title: X\nSELECT 1", 3, `missing header field "description"`},
		{"bad unit", "-- name: x\n-- unit: parsecs\n", 2, "unit"},
		{"bad name", "-- name: x-y\n", 1, "not an identifier"},
		{"bad dimension", goodHead[:strings.Index(goodHead, "-- dimensions")] + "-- dimensions: a b\nSELECT 1", 10, "dimension"},
		{"simple without measure", strings.Replace(goodHead, "-- measure: count()\n", "", 1) + "SELECT 1", 7, "measure"},
		{"simple with params", goodHead + "SELECT * FROM orders WHERE ordered_at > {from:DateTime64(3, 'UTC')}", 11, "no {parameters}"},
		{"derived with body", "-- name: x\n-- title: X\n-- description: d\n-- owner: CFO\n-- unit: ratio\n-- polarity: neutral\n-- kind: ratio\n-- formula: a / b\nSELECT 1", 9, "no SQL body"},
		{"bad formula", "-- name: x\n-- title: X\n-- description: d\n-- owner: CFO\n-- unit: ratio\n-- polarity: neutral\n-- kind: ratio\n-- formula: a / (b\n", 8, "formula"},
		{"custom undeclared param", "-- name: x\n-- title: X\n-- description: d\n-- owner: CFO\n-- unit: count\n-- polarity: neutral\n-- kind: custom\nSELECT 1\nWHERE {who:String} = ''", 9, "{who}"},
		{"score without components", "-- name: x\n-- title: X\n-- description: d\n-- owner: CFO\n-- unit: score\n-- polarity: neutral\n-- kind: score\n", 7, "at least one"},
		{"bad component", "-- name: x\n-- title: X\n-- description: d\n-- owner: CFO\n-- unit: score\n-- polarity: neutral\n-- kind: score\n-- component: nps weight=1 min=5 max=5\n", 8, "min and max are equal"},
		{"bad param default", "-- name: x\n-- title: X\n-- description: d\n-- owner: CFO\n-- unit: count\n-- polarity: neutral\n-- kind: custom\n-- param: n Int64 = many\nSELECT 1", 8, "not a Int64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("f.sql", []byte(c.src))
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("got %v, want an *Error", err)
			}
			if e.Line != c.line || !strings.Contains(e.Reason, c.want) {
				t.Errorf("got %v, want line %d and %q", err, c.line, c.want)
			}
		})
	}
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestUserFolderErrors: errors found against the store and in the graph of
// derived metrics name the file and line, and refuse only that file.
func TestUserFolderErrors(t *testing.T) {
	st := fixture(t)
	dir := t.TempDir()
	ratio := func(name, formula, dims string) string {
		return "-- name: " + name + "\n-- title: T\n-- description: d\n-- owner: CFO\n-- unit: ratio\n-- polarity: neutral\n-- kind: ratio\n-- formula: " + formula + "\n" + dims
	}
	writeFile(t, dir, "ok.sql", goodHead+"SELECT * FROM orders FINAL WHERE revenue >= 100")
	writeFile(t, dir, "unknown_col.sql", strings.Replace(goodHead, "big_orders", "u1", 1)+"SELECT ordered_at, revenue FROM orders FINAL")
	writeFile(t, dir, "unknown_time.sql", strings.Replace(strings.Replace(goodHead, "big_orders", "u2", 1), "time: ordered_at", "time: placed_at", 1)+"SELECT * FROM orders FINAL")
	writeFile(t, dir, "bad_sql.sql", strings.Replace(goodHead, "big_orders", "u3", 1)+"SELECT * FROM orderz FINAL")
	writeFile(t, dir, "bad_measure.sql", strings.Replace(strings.Replace(goodHead, "big_orders", "u4", 1), "count()", "sum(nope)", 1)+"SELECT * FROM orders FINAL")
	writeFile(t, dir, "cycle_a.sql", ratio("cyc_a", "cyc_b / orders", ""))
	writeFile(t, dir, "cycle_b.sql", ratio("cyc_b", "cyc_a * 2", ""))
	writeFile(t, dir, "unknown_metric.sql", ratio("u5", "orders / nothing_here", ""))
	writeFile(t, dir, "unknown_dim.sql", ratio("u6", "revenue_gross / orders", "-- dimensions: priority\n"))
	writeFile(t, dir, "dup.sql", strings.Replace(goodHead, "big_orders", "orders", 1)+"SELECT * FROM orders FINAL")
	r, err := New(context.Background(), Options{Store: st, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"unknown_col.sql":    `unknown_col.sql:10: unknown column "channel" for dimension "channel"`,
		"unknown_time.sql":   `unknown_time.sql:8: unknown column "placed_at"`,
		"bad_sql.sql":        `bad_sql.sql:11: model SQL:`,
		"bad_measure.sql":    `bad_measure.sql:9: measure:`,
		"cycle_b.sql":        `cycle between derived metrics`,
		"unknown_metric.sql": `unknown_metric.sql:8: formula reads unknown metric "nothing_here"`,
		"unknown_dim.sql":    `unknown_dim.sql:9: unknown dimension "priority"`,
		"dup.sql":            `dup.sql:1: metric "orders" is already defined in builtin:orders.sql`,
	}
	errs := r.Errors()
	all := ""
	for _, e := range errs {
		all += e.Error() + "\n"
	}
	for f, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("no error %q for %s in:\n%s", w, f, all)
		}
	}
	if _, ok := r.Get("big_orders"); !ok {
		t.Error("the valid user metric was not loaded")
	}
	if n := len(r.Check(context.Background())); n != len(errs) {
		t.Errorf("Check found %d errors, want the %d refused files only", n, len(errs))
	}
}

// TestHotReload: a running registry picks up a new file, refuses an invalid
// edit while the last good version keeps serving, and takes the fix.
func TestHotReload(t *testing.T) {
	st := fixture(t)
	dir := t.TempDir()
	path := writeFile(t, dir, "big.sql", goodHead+"SELECT * FROM orders FINAL WHERE revenue >= 100")
	r, err := New(context.Background(), Options{Store: st, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { _ = r.Watch(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	time.Sleep(50 * time.Millisecond) // let the watcher start
	v0 := mustGet(t, r, "big_orders").Version
	query := func() float64 {
		v, _ := url.ParseQuery("from=2026-01-01&to=2026-03-31&grain=quarter")
		p, err := r.ParseParams("big_orders", v)
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Query(context.Background(), "big_orders", p)
		if err != nil {
			t.Fatal(err)
		}
		return *res.Series[0].Total
	}
	if got := query(); got != 4 { // o1 o3 o5 o7(cancelled rows are in this model)
		t.Errorf("big_orders = %v, want 4", got)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if cond() {
				return
			}
		}
		t.Fatalf("timed out waiting for %s", what)
	}
	// Invalid edit: refused, old version serves.
	writeFile(t, dir, "big.sql", goodHead+"SELECT * FROM orders FINAL WHERE revenu >= 100")
	waitFor("the error", func() bool { return len(r.Errors()) == 1 })
	if e := r.Errors()[0].Error(); !strings.Contains(e, path+":11:") || !strings.Contains(e, "last good version "+v0) {
		t.Errorf("error = %s", e)
	}
	if mustGet(t, r, "big_orders").Version != v0 {
		t.Error("the last good version was replaced by an invalid one")
	}
	if got := query(); got != 4 {
		t.Errorf("big_orders = %v, want 4 from the last good version", got)
	}
	// Fix: picked up, error gone.
	writeFile(t, dir, "big.sql", goodHead+"SELECT * FROM orders FINAL WHERE revenue >= 200")
	waitFor("the new version", func() bool { return mustGet(t, r, "big_orders").Version != v0 && len(r.Errors()) == 0 })
	if got := query(); got != 3 { // o3 o5 o7
		t.Errorf("big_orders = %v, want 3", got)
	}
	// New file.
	writeFile(t, dir, "more.sql", strings.Replace(goodHead, "big_orders", "all_rows", 1)+"SELECT * FROM orders FINAL")
	waitFor("the new file", func() bool { _, ok := r.Get("all_rows"); return ok })
	// Removed file.
	os.Remove(filepath.Join(dir, "more.sql"))
	waitFor("the removal", func() bool { _, ok := r.Get("all_rows"); return !ok })
}

func mustGet(t *testing.T, r *Registry, name string) *Definition {
	t.Helper()
	d, ok := r.Get(name)
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	return d
}

func TestParamErrors(t *testing.T) {
	r, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ metric, query, want string }{
		{"orders", "from=2026-01-01&to=2026-01-31&grain=fortnight", `grain: "fortnight" is not one of day, week, month, quarter, year`},
		{"orders", "from=2026-02-01&to=2025-12-31", "from: 2026-02-01 is after to 2025-12-31 (both are included: from=to is one day)"},
		{"orders", "from=2026-13-01&to=2026-12-31", `from: "2026-13-01" is not a date`},
		{"orders", "to=2026-12-31", "from: required"},
		{"orders", "from=2020-01-01&to=2025-12-31&grain=day", "to: range too large: more than 1200 day buckets"},
		{"orders", "from=2026-01-01&to=2026-01-31&by=colour", `by: orders has no dimension "colour" (one of channel, campaign, country, currency, source)`},
		{"orders", "from=2026-01-01&to=2026-01-31&filter=colour=red", `filter: orders has no dimension "colour"`},
		{"orders", "from=2026-01-01&to=2026-01-31&filter=channel", `filter: "channel" is not DIM=VALUE`},
		{"orders", "from=2026-01-01&to=2026-01-31&compare=lastweek", `compare: "lastweek" is not previous or year`},
		{"orders", "from=2026-01-01&to=2026-01-31&tz=Mars/Olympus", `tz: "Mars/Olympus" is not an IANA time zone`},
		{"orders", "from=2026-01-01&to=2026-01-31&fiscal_year_start=13", "fiscal_year_start"},
		{"orders", "from=2026-01-01&to=2026-01-31&week_start=friday", "week_start"},
		{"orders", "from=2026-01-01&to=2026-01-31&colour=red", "colour: unknown parameter"},
		{"roas", "from=2026-01-01&to=2026-01-31&model=magic", `model: "magic" is not one of first_touch`},
		{"churn_rate", "from=2026-01-01&to=2026-01-31&window_days=soon", `window_days: "soon" is not a Int64`},
		{"nothing", "from=2026-01-01&to=2026-01-31", `metric: unknown metric "nothing"`},
	}
	for _, c := range cases {
		v, _ := url.ParseQuery(c.query)
		_, err := r.ParseParams(c.metric, v)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s?%s: got %v, want %q", c.metric, c.query, err, c.want)
		}
	}
}

// TestBuckets pins the Go bucket calendar (which must agree with the SQL):
// week start, fiscal quarters and years.
func TestBuckets(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	d := func(s string) time.Time { t, _ := time.Parse(time.DateOnly, s); return t }
	cases := []struct {
		p    Params
		want []string
	}{
		{Params{From: d("2026-01-01"), To: d("2026-01-15"), Grain: Week, TZ: time.UTC, WeekStart: time.Monday, FiscalYearStart: 1}, []string{"2025-12-29", "2026-01-05", "2026-01-12"}},
		{Params{From: d("2026-01-01"), To: d("2026-01-15"), Grain: Week, TZ: time.UTC, WeekStart: time.Sunday, FiscalYearStart: 1}, []string{"2025-12-28", "2026-01-04", "2026-01-11"}},
		{Params{From: d("2026-01-01"), To: d("2026-07-01"), Grain: Quarter, TZ: time.UTC, FiscalYearStart: 2}, []string{"2025-11-01", "2026-02-01", "2026-05-01"}},
		{Params{From: d("2026-01-01"), To: d("2027-01-01"), Grain: Year, TZ: time.UTC, FiscalYearStart: 4}, []string{"2025-04-01", "2026-04-01"}},
		{Params{From: time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC), To: time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC), Grain: Month, TZ: berlin, FiscalYearStart: 1}, []string{"2026-01-01"}},
	}
	for _, c := range cases {
		var got []string
		for _, b := range buckets(c.p) {
			got = append(got, b.Format(time.DateOnly))
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s %v: got %v, want %v", c.p.Grain, c.p.From, got, c.want)
		}
	}
}

// TestSQLBucketsAgree: the SQL bucket of a day equals the Go one, for every
// grain, week start and a fiscal year starting in April.
func TestSQLBucketsAgree(t *testing.T) {
	st := fixture(t)
	r, err := New(context.Background(), Options{Store: st, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range Grains {
		for _, ws := range []string{"monday", "sunday"} {
			v := url.Values{"from": {"2025-12-20"}, "to": {"2026-04-09"}, "grain": {string(g)}, "week_start": {ws}, "fiscal_year_start": {"4"}, "tz": {"America/New_York"}}
			p, err := r.ParseParams("orders", v)
			if err != nil {
				t.Fatal(err)
			}
			res, err := r.Query(context.Background(), "orders", p)
			if err != nil {
				t.Fatal(err)
			}
			var sum float64
			for _, pt := range res.Series[0].Points {
				sum += *pt.Value
			}
			// Every order lands in a bucket the Go calendar knows: nothing is lost.
			if sum != *res.Series[0].Total {
				t.Errorf("%s %s: buckets sum to %v, total %v", g, ws, sum, *res.Series[0].Total)
			}
		}
	}
}

func TestCache(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	if err := loadFixture(ctx, st); err != nil {
		t.Fatal(err)
	}
	r, err := New(ctx, Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := url.ParseQuery("from=2026-01-01&to=2026-03-31&grain=month")
	p, _ := r.ParseParams("revenue_gross", v)
	a, err := r.Query(ctx, "revenue_gross", p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Query(ctx, "revenue_gross", p)
	if err != nil {
		t.Fatal(err)
	}
	if a.Cached || !b.Cached {
		t.Errorf("cached: first %v second %v, want false true", a.Cached, b.Cached)
	}
	if err := st.Conn.Exec(ctx, `INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, source) VALUES ('o10','c1','2026-03-30 10:00:00',1,'EUR','shop')`); err != nil {
		t.Fatal(err)
	}
	c, err := r.Query(ctx, "revenue_gross", p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Cached || *c.Series[0].Total != 851 {
		t.Errorf("after an insert: cached %v total %v, want false 851", c.Cached, *c.Series[0].Total)
	}

	// A second currency: amounts are never added across currencies. The answer is in the
	// report currency, and names the rows it leaves out.
	if err := st.Conn.Exec(ctx, `INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, source) VALUES ('o11','c1','2026-03-30 10:00:00',7,'USD','shop')`); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"revenue_gross", "revenue_net", "aov"} {
		p, _ := r.ParseParams(name, v)
		res, err := r.Query(ctx, name, p)
		if err != nil {
			t.Fatalf("%s in two currencies: %v", name, err)
		}
		if len(res.Warnings) != 1 || res.Warnings[0].Currency != "USD" || res.Warnings[0].Rows != 1 || res.Currency != "EUR" {
			t.Errorf("%s in two currencies: warnings %+v currency %q, want the USD order named, the answer in EUR", name, res.Warnings, res.Currency)
		}
	}
	if res, _ := r.Query(ctx, "revenue_gross", p); res == nil || *res.Series[0].Total != 851 {
		t.Errorf("revenue_gross with a USD order: %+v, want the EUR orders' 851", res)
	}
	v2, _ := url.ParseQuery("from=2026-01-01&to=2026-03-31&grain=month&filter=currency=USD")
	p2, _ := r.ParseParams("revenue_net", v2)
	if res, err := r.Query(ctx, "revenue_net", p2); err != nil || *res.Series[0].Total != 7 {
		t.Errorf("revenue_net in USD: %v %v, want 7", err, res)
	}
}

func TestSources(t *testing.T) {
	r, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		// *_resolved views read their base table and identities; orders_latest reads orders only
		// (revenue_net = revenue_gross − refunds, which never look at the customer).
		"revenue_net":        "orders,refunds",
		"churn_rate":         "identities,orders",
		"roas":               "identities,marketing_spend,orders,touchpoints",
		"consented_audience": "consents,customers,identities",
		"ltv_cac":            "identities,marketing_spend,orders,refunds",
		"engagement_score":   "customers,identities,orders,survey_responses,tickets,touchpoints",
	} {
		if got := strings.Join(r.Sources(name), ","); got != want {
			t.Errorf("%s reads %s, want %s", name, got, want)
		}
	}
	d := &Definition{SQL: "SELECT x -- counted from to_day on, joined from orders\nFROM refunds"}
	if got := strings.Join(d.Tables(), ","); got != "refunds" {
		t.Errorf("a query with a comment naming no table reads %s, want refunds", got)
	}
}
