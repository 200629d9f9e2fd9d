package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestToInclusiveCommands: --to is the last day included, in the report time zone, in
// metrics query and export metric, as on the dashboard: a finance user asking for 2025 with
// --to 2025-12-31 gets the order of 31 December 23:30 in Europe/Berlin (report.tz), and the
// manifest says 2025-01-01 to 2025-12-31. A snapshot metric needs no --from.
func TestToInclusiveCommands(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	t.Setenv("CONVERGE_REPORT_TZ", "Europe/Berlin")
	fixture, err := os.ReadFile(filepath.Join("..", "..", "metrics", "testdata", "year_end.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if out, code := converge(t, "", "--data-dir", data, "migrate"); code != 0 {
		t.Fatalf("migrate: %d\n%s", code, out)
	}
	for _, stmt := range strings.Split(string(fixture), ";\n") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if out, code := converge(t, stmt, "--data-dir", data, "sql", "-"); code != 0 {
			t.Fatalf("load fixture: %d\n%s", code, out)
		}
	}
	year := []string{"--data-dir", data, "metrics", "query", "revenue_gross", "--from", "2025-01-01", "--grain", "year", "--format", "csv"}
	for _, c := range []struct {
		to, want string
	}{
		{"2025-12-31", "revenue_gross,Europe/Berlin,total,1110,\n"}, // 1000 + 100 + 10: 31 December 23:30 included
		{"2025-12-30", "revenue_gross,Europe/Berlin,total,1100,\n"}, // without 31 December
	} {
		out, code := converge(t, "", append(year, "--to", c.to)...)
		if code != 0 || !strings.Contains(out, c.want) {
			t.Errorf("metrics query --to %s: %d, want %q:\n%s", c.to, code, c.want, out)
		}
	}

	csvPath := filepath.Join(dir, "revenue.csv")
	out, code := converge(t, "", "--data-dir", data, "export", "metric", "revenue_gross", "--from", "2025-01-01", "--to", "2025-12-31",
		"--grain", "month", "--raw", "--out", csvPath)
	if code != 0 {
		t.Fatalf("export metric: %d\n%s", code, out)
	}
	b, err := os.ReadFile(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\n2025-12-01,10,\n") || !strings.HasSuffix(string(b), "\nTotal,1110,\n") {
		t.Errorf("export metric --to 2025-12-31:\n%s", b)
	}
	m := readManifest(t, csvPath+".manifest.json")
	if m.Params.Get("from") != "2025-01-01" || m.Params.Get("to") != "2025-12-31" || m.TimeZone != "Europe/Berlin" {
		t.Errorf("manifest params %v, zone %s", m.Params, m.TimeZone)
	}

	out, code = converge(t, "", "--data-dir", data, "metrics", "query", "rfm_segments", "--to", "2025-12-31", "--format", "csv")
	if code != 0 || !strings.HasPrefix(out, "metric,tz,") || strings.Count(out, "\nrfm_segments,Europe/Berlin,") != 2 {
		t.Errorf("rfm_segments without --from: %d\n%s", code, out)
	}
	out, code = converge(t, "", "--data-dir", data, "metrics", "query", "revenue_gross", "--to", "2025-12-31")
	if code != 2 || !strings.Contains(out, "--from: required") {
		t.Errorf("revenue_gross without --from: %d\n%s", code, out)
	}
}
