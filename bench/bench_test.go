package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

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
	rep, err := Run(ctx, Config{Store: st, Size: "small", Cold: 1, Warm: 2, PageCold: 2, IngestRows: 2000, Events: 2000,
		Metrics: []string{"revenue_gross", "ltv_cac"}, TempDir: t.TempDir()})
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
		"customer 360 first loads", "CSV export, 10M rows × 5 columns", "CSV export, RSS growth"} {
		r, ok := got[name]
		if !ok {
			t.Errorf("no %q in the report", name)
			continue
		}
		switch name {
		case "CSV orders, 2000 rows", "revenue_gross (simple)", "ltv_cac (derived)", "overview cold", "overview as opened, cold",
			"customer 360 first loads", "CSV export, 10M rows × 5 columns":
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
