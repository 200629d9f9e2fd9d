package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/converge-dev/converge/metrics"
)

// failingMetric is a user metric whose rollup fails to build on the export fixture (an order
// over 1000 makes its model throw), so status shows a failed rollup with its error.
const failingMetric = `-- name: big_revenue
-- title: Revenue that refuses big orders
-- description: Fails on an order over 1000.
-- owner: CFO
-- unit: count
-- polarity: higher_is_better
-- kind: simple
-- time: ordered_at
-- measure: sum(revenue)
SELECT order_id, ordered_at, revenue + throwIf(revenue > 1000, 'an order over 1000') AS revenue
FROM orders_latest
`

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

type statusJSON struct {
	Rollups []struct {
		Table, Metric, Status string
		Rows, Bytes           uint64
		Generation            uint64
		AsOf                  *time.Time `json:"as_of"`
		Lag                   float64    `json:"lag_seconds"`
		Error                 string
	}
	Raw []struct {
		Metric, Reason string
		Tables         []string
	}
}

func rollupsStatus(t *testing.T, args ...string) statusJSON {
	t.Helper()
	out, code := convergeOut(t, append(args, "rollups", "status", "--format", "json")...)
	var s statusJSON
	if code != 0 {
		t.Fatalf("rollups status: exit %d\n%s", code, out)
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("rollups status json: %v\n%s", err, out)
	}
	return s
}

// TestRollupsCommands: on a store no server holds, status lists every rollup (missing before
// the first upkeep) and the metrics read from raw rows with the reason; rebuild runs the upkeep
// itself until the rollup is ready; metrics explain then names the rollup, or raw rows and
// why; a failed rollup is shown with its error (status still exits 0, rebuild exits 1); a
// metric without a rollup or an unknown one is a usage error naming it.
func TestRollupsCommands(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	fixture, err := os.ReadFile(filepath.Join("..", "..", "export", "testdata", "fixture.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if out, code := converge(t, "", "--data-dir", data, "--log-level", "error", "migrate"); code != 0 {
		t.Fatalf("migrate: %d\n%s", code, out)
	}
	if out, code := converge(t, string(fixture), "--data-dir", data, "--log-level", "error", "sql", "-"); code != 0 {
		t.Fatalf("load fixture: %d\n%s", code, out)
	}
	mdir := filepath.Join(dir, "metrics")
	if err := os.MkdirAll(mdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mdir, "refunded_revenue.sql"), []byte(joinedMetric), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"--data-dir", data, "--log-level", "error", "--metrics-dir", mdir}
	// The view rollups (attribution, purchases, people) and the simple built-ins, each with one;
	// the joined metric and the custom built-ins that read no view kept as a rollup read raw rows.
	reg, err := metrics.New(context.Background(), metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	views := reg.ViewRollups()
	rolled := map[string]bool{}
	for _, v := range views {
		for _, name := range v.Readers {
			rolled[name] = true
		}
	}
	for _, name := range []string{"roas", "marketing_roi", "churn_rate", "cohort_retention", "funnel_conversion"} {
		if !rolled[name] {
			t.Fatalf("%s reads no view kept as a rollup: %+v", name, views)
		}
	}
	builtins, raws := len(views), 1
	for _, d := range reg.List() {
		switch {
		case d.Kind == metrics.Simple:
			builtins++
		case d.Kind == metrics.Custom && !rolled[d.Name]:
			raws++
		}
	}

	out, code := convergeOut(t, append(base, "rollups", "status")...)
	if code != 0 || !regexp.MustCompile(`(?m)^rollup_orders\s+orders\s+missing\s+0\s+0 B\s+0\s+-\s+-\s+-$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^refunded_revenue\s+orders,refunds\s+its model uses JOIN`).MatchString(out) {
		t.Fatalf("status before any upkeep: exit %d\n%s", code, out)
	}
	// Before the rollup is built, explain says the metric reads raw rows and why.
	out, code = convergeOut(t, append(base, "metrics", "explain", "orders", "--from", "2026-01-01", "--to", "2026-03-31")...)
	if code != 0 || !regexp.MustCompile(`(?m)^orders\s+raw\s+orders\s+rollup_orders\s+-\s+its rollup rollup_orders is not built yet$`).MatchString(out) {
		t.Fatalf("explain before the rollup: exit %d\n%s", code, out)
	}

	out, code = convergeOut(t, append(base, "rollups", "rebuild", "orders")...)
	if code != 0 || !strings.Contains(out, "marked for a rebuild: orders\n") ||
		!regexp.MustCompile(fmt.Sprintf(`(?m)^round 1: %d rollups, [1-9][0-9]* partitions recomputed, built .*rollup_orders.*, took `, builtins)).MatchString(out) {
		t.Fatalf("rebuild orders: exit %d\n%s", code, out)
	}
	s := rollupsStatus(t, base...)
	found := false
	for _, r := range s.Rollups {
		if r.Metric == "orders" {
			found = true
			if r.Status != "ready" || r.Table != "rollup_orders" || r.Rows == 0 || r.Bytes == 0 || r.AsOf == nil || r.Lag < 0 || r.Error != "" {
				t.Errorf("orders after rebuild: %+v", r)
			}
		}
	}
	if !found || len(s.Rollups) != builtins || len(s.Raw) != raws {
		t.Errorf("status: %d rollups (orders found %v), %d raw, want %d and %d", len(s.Rollups), found, len(s.Raw), builtins, raws)
	}

	// explain: a derived metric's inputs from their rollups; raw rows, and why, for a zone
	// the half-hour slots cannot answer and for a metric without a rollup.
	out, code = convergeOut(t, append(base, "metrics", "explain", "aov", "--from", "2026-01-01", "--to", "2026-03-31", "--by", "channel")...)
	if code != 0 || !strings.HasPrefix(out, "aov (derived): 2 metrics read from the store\n") ||
		!regexp.MustCompile(`(?m)^orders\s+rollup\s+rollup_orders\s+rollup_orders\s+ready\s+-$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^revenue_gross\s+rollup\s+rollup_revenue_gross\s+rollup_revenue_gross\s+ready\s+-$`).MatchString(out) {
		t.Errorf("explain aov: exit %d\n%s", code, out)
	}
	out, code = convergeOut(t, append(base, "metrics", "explain", "orders", "--from", "2026-01-01", "--to", "2026-03-31", "--tz", "Asia/Kathmandu", "--format", "json")...)
	var ex metrics.Explain
	if code != 0 || json.Unmarshal([]byte(out), &ex) != nil || len(ex.Inputs) != 1 || ex.Inputs[0].Path != "raw" ||
		!strings.Contains(ex.Inputs[0].Reason, "is not on a 30-minute boundary") || ex.Inputs[0].Rollup != "rollup_orders" || ex.Inputs[0].Status != "ready" {
		t.Errorf("explain in Asia/Kathmandu: exit %d %+v\n%s", code, ex, out)
	}
	out, code = convergeOut(t, append(base, "metrics", "explain", "refunded_revenue", "--from", "2026-01-01", "--to", "2026-03-31")...)
	if code != 0 || !regexp.MustCompile(`(?m)^refunded_revenue\s+raw\s+orders,refunds\s+-\s+-\s+its model uses JOIN`).MatchString(out) {
		t.Errorf("explain refunded_revenue: exit %d\n%s", code, out)
	}

	// A rollup that fails: rebuild exits 1 naming it and why; status shows it and exits 0.
	if err := os.WriteFile(filepath.Join(mdir, "big_revenue.sql"), []byte(failingMetric), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = convergeOut(t, append(base, "rollups", "rebuild", "big_revenue")...)
	if code != 1 || !strings.Contains(out, "rollup rebuild failed: big_revenue (rollup_big_revenue):") || !strings.Contains(out, "an order over 1000") {
		t.Errorf("rebuild of a failing rollup: exit %d\n%s", code, out)
	}
	out, code = convergeOut(t, append(base, "rollups", "status")...)
	if code != 0 || !regexp.MustCompile(`(?m)^rollup_big_revenue\s+big_revenue\s+failed\s+0\s+0 B\s+\d+\s+-\s+-\s+rollup rollup_big_revenue \(metric big_revenue\): .*an order over 1000`).MatchString(out) {
		t.Errorf("status with a failed rollup: exit %d\n%s", code, out)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"rollups", "rebuild", "aov"}, "aov has no rollup: a derived metric is computed from its inputs"},
		{[]string{"rollups", "rebuild", "refunded_revenue"}, "refunded_revenue has no rollup: its model uses JOIN"},
		{[]string{"rollups", "rebuild", "nope"}, `unknown metric "nope"`},
		{[]string{"rollups", "status", "--format", "xml"}, `--format: "xml" is not one of table, json`},
		{[]string{"metrics", "explain", "nope", "--from", "2026-01-01", "--to", "2026-01-31"}, `unknown metric "nope"`},
		{[]string{"metrics", "explain", "aov", "--from", "2026-01-01", "--to", "2026-01-31", "--by", "colour"}, `--by: aov has no dimension "colour"`},
	} {
		out, code := converge(t, "", append(base, c.args...)...)
		if code != 2 || !strings.Contains(out, c.want) {
			t.Errorf("%v: exit %d, want 2 and %q:\n%s", c.args, code, c.want, out)
		}
	}
}

// TestRollupsRebuildWhileServing: with converge serve on the data directory, rebuild marks the
// rollup and says the running server rebuilds it in the background; with --wait it returns
// once the server's upkeep made it ready again, and the pages kept serving meanwhile.
func TestRollupsRebuildWhileServing(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	fixture, err := os.ReadFile(filepath.Join("..", "..", "export", "testdata", "fixture.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if out, code := converge(t, "", "--data-dir", data, "--log-level", "error", "migrate"); code != 0 {
		t.Fatalf("migrate: %d\n%s", code, out)
	}
	if out, code := converge(t, string(fixture), "--data-dir", data, "--log-level", "error", "sql", "-"); code != 0 {
		t.Fatalf("load fixture: %d\n%s", code, out)
	}
	addr := freeAddr(t)
	srv := startChild(t, serveEnv(t, data, addr), "serve")
	waitReady(t, srv, "http://"+addr, time.Minute)
	base := []string{"--data-dir", data, "--log-level", "error"}

	out, code := convergeOut(t, append(base, "rollups", "rebuild", "orders")...)
	if code != 0 || !strings.Contains(out, "marked for a rebuild: orders\n") ||
		!regexp.MustCompile(`the running server \(converge serve, pid \d+\) rebuilds it in the background; its pages read raw rows for this metric meanwhile`).MatchString(out) ||
		strings.Contains(out, "round 1") {
		t.Fatalf("rebuild while serving: exit %d\n%s", code, out)
	}
	before := rollupsStatus(t, base...)
	out, code = convergeOut(t, append(base, "rollups", "rebuild", "orders", "--wait")...)
	if code != 0 || !strings.HasSuffix(out, "rebuilt: orders\n") {
		t.Fatalf("rebuild --wait while serving: exit %d\n%s", code, out)
	}
	after := rollupsStatus(t, base...)
	gen := func(s statusJSON) (uint64, string) {
		for _, r := range s.Rollups {
			if r.Metric == "orders" {
				return r.Generation, r.Status
			}
		}
		return 0, ""
	}
	g0, _ := gen(before)
	g1, st1 := gen(after)
	if st1 != "ready" || g1 <= g0 {
		t.Errorf("orders after rebuild --wait: %s generation %d (before the second rebuild %d)", st1, g1, g0)
	}
	if code, _ := httpGet("http://" + addr + "/readyz"); code != 200 {
		t.Errorf("server not ready after the rebuild: %d", code)
	}
	if code := srv.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("serve exit %d\n%s", code, srv.stderr.String())
	}
}
