package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// The metrics commands that need no store: list, show and the parameter
// checks of query (made before the store is opened).
func TestMetricsCommands(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.sql")
	if err := os.WriteFile(bad, []byte("-- name: bad\n-- colour: red\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, context.Background(), "metrics", "list", "--metrics-dir", dir)
	if err != nil || !strings.Contains(out, "revenue_net") || !strings.Contains(out, bad+":2: unknown header key \"colour\"") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, err = run(t, context.Background(), "metrics", "show", "aov")
	if err != nil || !strings.Contains(out, "formula:     revenue_gross / orders") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	out, err = run(t, context.Background(), "metrics", "show", "funnel_conversion")
	if err != nil || !strings.Contains(out, "param:       window_days Int64 = 30 | 1 to 365") {
		t.Fatalf("show funnel_conversion: %v\n%s", err, out)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"metrics", "show", "nope"}, `unknown metric "nope"`},
		{[]string{"metrics", "query", "nope", "--from", "2026-01-01", "--to", "2026-01-31"}, `unknown metric "nope"`},
		{[]string{"metrics", "query", "aov", "--from", "2026-02-01", "--to", "2025-12-31"}, "--from: 2026-02-01 is after to 2025-12-31 (both are included"},
		{[]string{"metrics", "query", "aov", "--from", "2026-01-01", "--to", "2026-01-31", "--grain", "decade"}, "--grain:"},
		{[]string{"metrics", "query", "aov", "--from", "2026-01-01", "--to", "2026-01-31", "--by", "colour"}, `--by: aov has no dimension "colour"`},
		{[]string{"metrics", "query", "aov", "--from", "2026-01-01", "--to", "2026-01-31", "--filter", "colour=red"}, `--filter: aov has no dimension "colour"`},
		{[]string{"metrics", "query", "roas", "--from", "2026-01-01", "--to", "2026-01-31", "--arg", "model=magic"}, `--arg model: "magic" is not one of`},
		{[]string{"metrics", "query", "aov", "--from", "2026-01-01", "--to", "2026-01-31", "--fiscal-year-start", "0"}, "--fiscal-year-start:"},
		// The metric's own bounds (1..365, as the funnel page), whichever way the param is given.
		{[]string{"metrics", "query", "funnel_conversion", "--from", "2026-01-01", "--to", "2026-01-31", "--arg", "window_days=100000"},
			"--arg window_days: 100000 is out of range: window_days takes 1 to 365"},
		{[]string{"metrics", "query", "roas", "--from", "2026-01-01", "--to", "2026-01-31", "--arg", "half_life_days=0"},
			"--arg half_life_days: 0 is out of range: half_life_days takes 0.1 to 365"},
		{[]string{"metrics", "query", "aov", "--from", "2026-01-01", "--to", "2026-01-31", "--format", "xml"}, "--format"},
	}
	for _, c := range cases {
		_, err := run(t, context.Background(), c.args...)
		var ue usageError
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.args, err, c.want)
		} else if !errorsAs(err, &ue) {
			t.Errorf("%v: %v is not a usage error (exit 2)", c.args, err)
		}
	}
}

func errorsAs(err error, ue *usageError) bool {
	u, ok := err.(usageError)
	if ok {
		*ue = u
	}
	return ok
}

func TestWriteResult(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	res := &metrics.Result{Metric: "aov", Title: "Average order value", Unit: "currency", TZ: "Europe/Berlin", Grain: metrics.Month,
		From: time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC), To: time.Date(2026, 2, 28, 23, 0, 0, 0, time.UTC), Compare: "year", Target: f(50),
		Series: []metrics.Series{{Points: []metrics.Point{
			{Bucket: "2026-01-01", Value: f(116.6666), CompareBucket: "2025-01-01", Compare: f(100), Target: f(50)},
			{Bucket: "2026-02-01", Value: nil, CompareBucket: "2025-02-01", Compare: f(80)},
		}, Total: f(106.25), CompareTotal: f(90)}}}
	var b bytes.Buffer
	if err := writeResult(&b, "csv", res, writeOptions{guard: true}); err != nil {
		t.Fatal(err)
	}
	want := "metric,tz,bucket,value,compare_bucket,compare,change_pct,target\n" +
		"aov,Europe/Berlin,2026-01-01,116.6666,2025-01-01,100,16.666600000000003,50\n" +
		"aov,Europe/Berlin,2026-02-01,,2025-02-01,80,,\n" +
		"aov,Europe/Berlin,total,106.25,,90,18.055555555555557,50\n"
	if b.String() != want {
		t.Errorf("csv:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := writeResult(&b, "table", res, writeOptions{guard: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "2026-01-01 to 2026-02-28 (both included) by month, time zone Europe/Berlin") || !strings.Contains(b.String(), "116.67") {
		t.Errorf("table:\n%s", b.String())
	}
	b.Reset()
	if err := writeResult(&b, "table", res, writeOptions{snapshot: true}); err != nil || !strings.Contains(b.String(), "as of the end of 2026-02-28, time zone Europe/Berlin") {
		t.Errorf("snapshot table: %v\n%s", err, b.String())
	}
	// JSON: from and to as --from and --to take them, and the instants they stand for.
	b.Reset()
	if err := writeResult(&b, "json", res, writeOptions{guard: true}); err != nil {
		t.Fatal(err)
	}
	var j struct {
		From, To   string
		Start, End time.Time
		Metric     string
	}
	if err := json.Unmarshal(b.Bytes(), &j); err != nil || j.From != "2026-01-01" || j.To != "2026-02-28" || j.Metric != "aov" ||
		!j.Start.Equal(res.From) || !j.End.Equal(res.To) {
		t.Errorf("json %+v %v:\n%s", j, err, b.String())
	}
}

// The CSV of metrics query guards its text cells (a dimension value, a table's text column)
// against being run as a formula, not its numbers (-12.5 stays a number); --csv-raw writes the
// text as stored.
func TestWriteResultFormulaGuard(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	series := &metrics.Result{Metric: "revenue_gross", TZ: "UTC", By: "channel",
		Series: []metrics.Series{{Dim: "=HYPERLINK(\"https://evil.example\")", Points: []metrics.Point{{Bucket: "2026-01-01", Value: f(-12.5)}}}}}
	table := &metrics.Result{Metric: "rfm_segments", TZ: "UTC", Table: &metrics.Table{Columns: []string{"segment", "@customers", "net"},
		Rows: [][]any{{"+cmd|' /C calc'!A0", int64(-3), -12.5}, {"-12.5", int64(1), 2.0}}}}
	cases := []struct {
		res   *metrics.Result
		guard bool
		want  string
	}{
		{series, true, "metric,tz,bucket,dim,value,target\nrevenue_gross,UTC,2026-01-01,\"'=HYPERLINK(\"\"https://evil.example\"\")\",-12.5,\n"},
		{series, false, "metric,tz,bucket,dim,value,target\nrevenue_gross,UTC,2026-01-01,\"=HYPERLINK(\"\"https://evil.example\"\")\",-12.5,\n"},
		{table, true, "metric,tz,segment,'@customers,net\nrfm_segments,UTC,'+cmd|' /C calc'!A0,-3,-12.5\nrfm_segments,UTC,'-12.5,1,2\n"},
		{table, false, "metric,tz,segment,@customers,net\nrfm_segments,UTC,+cmd|' /C calc'!A0,-3,-12.5\nrfm_segments,UTC,-12.5,1,2\n"},
	}
	for i, c := range cases {
		var b bytes.Buffer
		if err := writeResult(&b, "csv", c.res, writeOptions{guard: c.guard}); err != nil {
			t.Fatal(err)
		}
		if b.String() != c.want {
			t.Errorf("case %d:\n%s\nwant:\n%s", i, b.String(), c.want)
		}
	}
	_, err := run(t, context.Background(), "metrics", "query", "aov", "--from", "2026-01-01", "--to", "2026-01-31", "--csv-raw")
	if err == nil || !strings.Contains(err.Error(), "--csv-raw: goes with --format csv") {
		t.Errorf("--csv-raw with the table format: %v", err)
	}
}

// Injection payloads in every flag of `converge metrics query` are usage errors naming the
// flag, found before the store is opened. (A payload as a --filter value of a real dimension
// is a value: the metrics layer binds it, see server's TestInjectionValuesRoundTrip, which
// runs the same ParseParams and Registry.Query as this command.)
func TestMetricsQueryInjection(t *testing.T) {
	base := []string{"metrics", "query", "roas", "--from", "2026-01-01", "--to", "2026-01-31"}
	flags := []struct{ flag, prefix string }{
		{"--from", ""}, {"--to", ""}, {"--grain", ""}, {"--by", ""}, {"--compare", ""}, {"--tz", ""},
		{"--week-start", ""}, {"--fiscal-year-start", ""}, {"--format", ""},
		{"--filter", ""}, {"--filter", "="}, {"--arg", "model="}, {"--arg", "level="}, {"--arg", "lookback_days="},
		{"--arg", "half_life_days="}, {"--arg", ""},
	}
	for _, f := range flags {
		for _, p := range whtest.InjectionPayloads {
			value := f.prefix + p.V
			if f.prefix == "=" {
				value = p.V + "=x" // the payload as the dimension
			}
			if f.flag == "--arg" && f.prefix == "" {
				value = p.V + "=1" // the payload as the param name
			}
			args := append(append([]string(nil), base...), f.flag, value)
			_, err := run(t, context.Background(), args...)
			var ue usageError
			if err == nil || !errorsAs(err, &ue) {
				t.Errorf("%s %s: %v, want a usage error", f.flag, p.Name, err)
				continue
			}
			want := f.flag // an --arg error names the param too: "--arg model: …"
			if f.flag == "--arg" && f.prefix != "" {
				want = "--arg " + strings.TrimSuffix(f.prefix, "=")
			}
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("%s %s: %q does not start with %s", f.flag, p.Name, err, want)
			}
		}
	}
}
