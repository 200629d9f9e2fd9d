package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/converge-dev/converge/export"
)

// TestConvergeProcess is not a test: it runs converge with the arguments
// after "--" when CONVERGE_TEST_PROCESS=1, so a test can run commands in their
// own processes (the embedded engine opens one data directory per process).
func TestConvergeProcess(t *testing.T) {
	if os.Getenv("CONVERGE_TEST_PROCESS") != "1" {
		t.Skip("runs converge in a child process of another test")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	// As main: SIGTERM and SIGINT end the command gracefully.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot()
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "converge:", err)
		os.Exit(exitCode(err))
	}
	os.Exit(0)
}

// converge runs the command in a child process with stdin; it returns the
// combined output and the exit status.
func converge(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestConvergeProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "CONVERGE_TEST_PROCESS=1")
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0
}

// TestExportCommands: export metric and export sql write the file and its
// manifest; sql --read-only refuses writes and states its row limit.
func TestExportCommands(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	fixture, err := os.ReadFile(filepath.Join("..", "..", "export", "testdata", "fixture.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if out, code := converge(t, "", "--data-dir", data, "migrate"); code != 0 {
		t.Fatalf("migrate: %d\n%s", code, out)
	}
	if out, code := converge(t, string(fixture), "--data-dir", data, "sql", "-"); code != 0 {
		t.Fatalf("load fixture: %d\n%s", code, out)
	}

	// The KPI export is the golden file of the export package's test.
	csvPath := filepath.Join(dir, "aov.csv")
	out, code := converge(t, "", "--data-dir", data, "export", "metric", "aov", "--from", "2026-01-01", "--to", "2026-03-31",
		"--grain", "month", "--by", "channel", "--compare", "previous", "--tz", "Europe/Berlin", "--raw", "--out", csvPath)
	if code != 0 {
		t.Fatalf("export metric: %d\n%s", code, out)
	}
	got, err := os.ReadFile(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("..", "..", "export", "testdata", "aov_raw.csv.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("export metric wrote\n%s\nwant (export/testdata/aov_raw.csv.golden)\n%s", got, want)
	}
	m := readManifest(t, csvPath+".manifest.json")
	if m.SHA256 != sha256Hex(got) || m.File != "aov.csv" || m.Rows != 16 || m.Truncated || m.Params.Get("by") != "channel" {
		t.Errorf("manifest %+v", m)
	}
	// --csv-raw: the text as stored ("+promo, …" without the apostrophe that keeps Excel from
	// running it), for programs.
	rawPath := filepath.Join(dir, "aov_raw.csv")
	if out, code := converge(t, "", "--data-dir", data, "export", "metric", "aov", "--from", "2026-01-01", "--to", "2026-03-31",
		"--grain", "month", "--by", "channel", "--compare", "previous", "--tz", "Europe/Berlin", "--raw", "--csv-raw", "--out", rawPath); code != 0 {
		t.Fatalf("export metric --csv-raw: %d\n%s", code, out)
	}
	got, _ = os.ReadFile(rawPath)
	if want, _ := os.ReadFile(filepath.Join("..", "..", "export", "testdata", "aov_csv_raw.csv.golden")); !bytes.Equal(got, want) || !readManifest(t, rawPath+".manifest.json").Options.CSVRaw {
		t.Errorf("export metric --csv-raw wrote\n%s\nwant (export/testdata/aov_csv_raw.csv.golden)\n%s", got, want)
	}

	// A row limit: both files are written, and the exit status and the file say so.
	xlsxPath := filepath.Join(dir, "orders.xlsx")
	out, code = converge(t, "", "--data-dir", data, "export", "sql", "--read-only-query", "SELECT order_id, revenue FROM orders ORDER BY order_id",
		"--max-rows", "4", "--out", xlsxPath)
	if code != 1 || !strings.Contains(out, "TRUNCATED at 4 rows") || !strings.Contains(out, "the result has more than 4 rows") {
		t.Errorf("export sql with a limit: %d\n%s", code, out)
	}
	b, err := os.ReadFile(xlsxPath)
	if err != nil {
		t.Fatal(err)
	}
	m = readManifest(t, xlsxPath+".manifest.json")
	if m.SHA256 != sha256Hex(b) || m.Format != export.XLSX || !m.Truncated || m.Rows != 4 || m.RowLimit != 4 || m.Kind != "sql" {
		t.Errorf("xlsx manifest %+v", m)
	}

	cases := []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"sql", "--read-only", "--format", "csv", "SELECT count() FROM orders WHERE status != 'cancelled'"}, 0, "count()\n11\n"},
		{[]string{"sql", "--read-only", "--format", "csv", "--max-rows", "2", "SELECT order_id FROM orders ORDER BY order_id"}, 0, "first 2 rows of more (row limit 2"},
		{[]string{"sql", "--read-only", "DROP TABLE orders"}, 1, "DROP statements are not allowed"},
		{[]string{"sql", "--read-only", "SELECT 1; DROP TABLE orders"}, 1, "one statement at a time"},
		{[]string{"export", "sql", "--read-only-query", "SELECT * FROM url('http://example.com/', CSV)", "--out", filepath.Join(dir, "x.csv")}, 1, "function url() is not allowed"},
		{[]string{"export", "sql", "--read-only-query", "SELECT 1", "--decimal", ",", "--out", filepath.Join(dir, "x.csv")}, 2, "--decimal: ',' is also the delimiter"},
		{[]string{"export", "metric", "aov", "--from", "2026-01-01", "--to", "2026-03-31", "--by", "colour", "--out", filepath.Join(dir, "x.csv")}, 2, `--by: aov has no dimension "colour"`},
		{[]string{"export", "metric", "aov", "--from", "2026-01-01", "--to", "2026-03-31"}, 2, "--out: required"},
		{[]string{"export", "metric", "aov", "--from", "2026-01-01", "--to", "2026-03-31", "--csv-raw", "--preset", "excel", "--out", filepath.Join(dir, "x.csv")}, 2, "--csv-raw: raw CSV is for programs"},
		{[]string{"sql", "--format", "csv", "SELECT count() FROM orders"}, 0, "count()\n12\n"}, // nothing was dropped
	}
	for _, c := range cases {
		out, code := converge(t, "", append([]string{"--data-dir", data}, c.args...)...)
		if code != c.code || !strings.Contains(out, c.contains) {
			t.Errorf("%v: exit %d, want %d and %q:\n%s", c.args, code, c.code, c.contains, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.csv")); !os.IsNotExist(err) {
		t.Errorf("a refused export left x.csv: %v", err)
	}
}

func readManifest(t *testing.T, path string) export.Manifest {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m export.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
