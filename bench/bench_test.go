package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/converge-dev/converge/ingest/demo"
	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

func TestMain(m *testing.M) { os.Exit(whtest.Main(m)) }

func demoStore(t testing.TB) *warehouse.Store {
	t.Helper()
	return whtest.Demo(t, func(ctx context.Context, st *warehouse.Store) error {
		_, err := demo.Load(ctx, st, demo.Config{Size: demo.Small, Seed: whtest.DemoSeed, End: whtest.DemoEnd}, demo.LoadOptions{})
		return err
	})
}

// The harness runs every step on the small demo and reports each measure with its engine-direct
// comparison where there is one; the table, the JSON and the Markdown say the same.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every benchmark step once")
	}
	st := demoStore(t)
	ctx := context.Background()
	// The rollups and stream steps have their own test (TestRollupsAndStream).
	var others []string
	for _, s := range Steps() {
		if s != "rollups" && s != "stream" {
			others = append(others, s)
		}
	}
	rep, err := Run(ctx, Config{Store: st, Size: "small", Cold: 1, Warm: 2, PageCold: 2, IngestRows: 2000, Events: 2000,
		Metrics: []string{"revenue_gross", "ltv_cac"}, TempDir: t.TempDir(), Steps: others})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Result{}
	for _, r := range rep.Results {
		got[r.Name] = r
		if r.Median <= 0 && r.Unit != "MiB" {
			t.Errorf("%s: median %v", r.Name, r.Median)
		}
	}
	for _, name := range []string{"process RSS at rest (store open)", "CSV orders, 2000 rows", "events API ack latency",
		"revenue_gross (simple)", "ltv_cac (derived)", "overview cold", "overview warm", "overview HTML",
		"overview as opened, cold", "overview as opened, warm",
		"customer 360 first loads", "CSV export, 10M rows × 5 columns", "CSV export, RSS growth",
		"channels as opened, cold", "funnel as opened, cold", "retention as opened, cold", "overview by 4R as opened, cold",
		"KPI detail (revenue_gross) as opened, cold", "customers as opened, cold", "funnel as opened, warm"} {
		r, ok := got[name]
		if !ok {
			t.Errorf("no %q in the report", name)
			continue
		}
		switch name {
		case "CSV orders, 2000 rows", "revenue_gross (simple)", "ltv_cac (derived)", "overview cold", "overview as opened, cold",
			"customer 360 first loads", "CSV export, 10M rows × 5 columns", "channels as opened, cold", "funnel as opened, cold",
			"retention as opened, cold", "overview by 4R as opened, cold", "KPI detail (revenue_gross) as opened, cold", "customers as opened, cold":
			if r.Direct <= 0 || r.Ratio <= 0 {
				t.Errorf("%s: engine direct %v, ratio %v", name, r.Direct, r.Ratio)
			}
		}
	}
	if g := got["CSV export, RSS growth"]; g.Median >= 95 {
		t.Errorf("a 10M-row export grew the process's RSS by %.1f MiB; want < 95 MiB (100 MB)", g.Median)
	}
	if ov := got["overview cold"]; !strings.Contains(ov.Note, "statements one after another") || !strings.Contains(ov.Note, "over the year") {
		t.Errorf("overview note: %q", ov.Note)
	}
	// A quick metric is answered more often than --cold says, so its median is not noise.
	if m := got["revenue_gross (simple)"]; m.N <= 1 || m.N > maxSamples {
		t.Errorf("revenue_gross: %d cold answers; want more than --cold 1 (a quick metric), at most %d", m.N, maxSamples)
	}
	if c := got["customer 360 first loads"]; c.N != 2 || !strings.Contains(c.Note, "cores busy") {
		t.Errorf("customer 360: %d first loads, note %q; want 2 (--cold-pages) and the cores busy", c.N, c.Note)
	}
	if ov := got["overview as opened, cold"]; ov.N != 2 || !strings.Contains(ov.Note, "last 30 days to ") {
		t.Errorf("overview as opened: %d loads, note %q; want 2 loads of the last 30 days", ov.N, ov.Note)
	}
	var table, md bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{table.String(), md.String()} {
		if !strings.Contains(out, "overview cold") || !strings.Contains(out, "CSV export") {
			t.Errorf("report lacks rows:\n%s", out)
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || len(back.Results) != len(rep.Results) {
		t.Errorf("JSON round trip: %v, %d results", err, len(back.Results))
	}

	// Only some steps, and a step that does not exist.
	rep, err = Run(ctx, Config{Store: st, Cold: 1, Steps: []string{"memory"}})
	if err != nil || len(rep.Results) != 1 {
		t.Fatalf("--steps memory: %v, %+v", err, rep)
	}
	if _, err := Run(ctx, Config{Store: st, Steps: []string{"overveiw"}}); err == nil || !strings.Contains(err.Error(), `no step "overveiw"`) {
		t.Errorf("unknown step: %v", err)
	}
}

// joinedMetric reads two fact tables: answered from raw rows, with the reason.
const joinedMetric = `-- name: refunded_revenue
-- title: Revenue of refunded orders
-- description: A model that joins refunds to orders.
-- owner: CFO
-- unit: currency
-- polarity: higher_is_better
-- kind: simple
-- time: ordered_at
-- measure: sum(revenue)
SELECT o.ordered_at AS ordered_at, o.revenue AS revenue
FROM orders_latest AS o INNER JOIN refunds AS r ON r.source = o.source AND r.order_id = o.order_id
`

// The rollups step compares each metric's raw and rollup paths (ratio where the answer took
// a rollup, none where it read raw rows either way, and the path named), sizes the rollups
// and times the upkeep after an ingest; the stream step loads the overview while events
// stream and measures how long an acknowledged order takes to reach the answers, and leaves
// the store as it found it.
func TestRollupsAndStream(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the rollups and stream steps")
	}
	st := demoStore(t)
	ctx := context.Background()
	count := func(q string) uint64 {
		t.Helper()
		var n uint64
		if err := st.Conn.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	orders, touches := count("SELECT count() FROM orders"), count("SELECT count() FROM touchpoints")
	// orders and revenue_gross roll up, aov is derived from them, a user's metric that joins
	// reads raw rows.
	mdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(mdir, "refunded_revenue.sql"), []byte(joinedMetric), 0o644); err != nil {
		t.Fatal(err)
	}
	mets := []string{"orders", "revenue_gross", "aov", "refunded_revenue"}
	rep, err := Run(ctx, Config{Store: st, Size: "small", RollupLoads: 1, MetricsDir: mdir, IngestRows: 1000, StreamFor: 3 * time.Second, StreamRate: 200,
		Metrics: mets, TempDir: t.TempDir(), Steps: []string{"rollups", "stream"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Result{}
	for _, r := range rep.Results {
		got[r.Name] = r
	}
	for _, name := range []string{"full rebuild", "rollups on disk vs raw tables", "upkeep per ingest", "speed-up raw/rollup, all metrics",
		"overview while events stream", "events streamed", "data-as-of lag of an order"} {
		if _, ok := got[name]; !ok {
			t.Errorf("no %q in the report", name)
		}
	}
	if r := got["rollups on disk vs raw tables"]; r.Median <= 0 || !strings.Contains(r.Note, "orders") {
		t.Errorf("rollup bytes: %.1f %% of the raw tables, note %q", r.Median, r.Note)
	}
	if r := got["upkeep per ingest"]; r.N != 3 || r.Median <= 0 || !strings.Contains(r.Note, "partitions folded in") {
		t.Errorf("upkeep per ingest: %+v", r)
	}
	for _, view := range []string{"last 30 days", "year"} {
		for name, want := range map[string]string{"orders (simple)": "rollup", "revenue_gross (simple)": "rollup", "aov (derived)": "rollup"} {
			r, ok := got[name+", "+view]
			switch {
			case !ok:
				t.Errorf("no %s over %s", name, view)
			case r.Path != want || r.Ratio <= 0 || r.Direct <= 0 || r.DirectP95 < r.Direct || r.P95 < r.Median || r.N < 1:
				t.Errorf("%s over %s: path %q (want %s), raw %v/%v ms, ratio %v, n %d", name, view, r.Path, want, r.Direct, r.DirectP95, r.Ratio, r.N)
			case !strings.Contains(r.Note, "rollup ") || !strings.Contains(r.Note, "ratio raw/rollup"):
				t.Errorf("%s over %s: note %q", name, view, r.Note)
			}
		}
	}
	// Metrics that are not rolled up say so and show no ratio.
	raws := 0
	for _, r := range rep.Results {
		if r.Group == "rollup" && r.Path == "raw" {
			raws++
			if r.Ratio != 0 || r.Direct != 0 || !strings.HasPrefix(r.Note, "raw rows either way: ") {
				t.Errorf("%s reads raw rows either way: ratio %v, raw %v, note %q", r.Name, r.Ratio, r.Direct, r.Note)
			}
		}
	}
	if raws == 0 {
		t.Errorf("no metric of %v read raw rows either way: %+v", mets, rep.Results)
	}
	if s := got["speed-up raw/rollup, all metrics"]; s.N != 2*len(mets) || !strings.Contains(s.Note, "paths: ") {
		t.Errorf("summary: %+v", s)
	}

	ov := got["overview while events stream"]
	if ov.N < 1 || ov.Median <= 0 || ov.Direct <= 0 || ov.Ratio <= 0 {
		t.Errorf("overview while streaming: %+v", ov)
	}
	if ev := got["events streamed"]; ev.N < 200 || ev.Median <= 0 {
		t.Errorf("events streamed: %+v", ev)
	}
	if lag := got["data-as-of lag of an order"]; lag.N < 1 || lag.Path != "rollup" || !strings.Contains(lag.Note, "max ") {
		t.Errorf("lag: %+v", lag)
	}
	// The streamed events are gone, and the rollups with them.
	if o, tp := count("SELECT count() FROM orders"), count("SELECT count() FROM touchpoints"); o != orders || tp != touches {
		t.Errorf("after the stream: %d orders, %d touchpoints; want %d and %d as before", o, tp, orders, touches)
	}
	if n := count("SELECT count() FROM orders WHERE source = '" + streamSource + "'"); n != 0 {
		t.Errorf("%d streamed orders left", n)
	}
}
