package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/converge-dev/converge/export"
)

// TestReportConfigErrors: a mistake in reports.* or smtp.* stops every command at start with a
// message that names the key.
func TestReportConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"bad cron", "reports:\n  schedules:\n    - {name: monthly, cron: '0 25 1 * *', report: finance-monthly}\n",
			nil, `reports.schedules[0].cron: "0 25 1 * *" is not a cron expression`},
		{"unknown report", "reports:\n  schedules:\n    - {name: a, cron: '0 6 1 * *', report: finance-weekly}\n",
			nil, `reports.schedules[0].report: unknown report "finance-weekly"`},
		{"bad zone", "reports:\n  schedules:\n    - {name: a, cron: '0 6 1 * *', report: finance-monthly}\n    - {name: b, cron: '0 6 1 * *', tz: Mars/Olympus, report: finance-monthly}\n",
			nil, `reports.schedules[1].tz: "Mars/Olympus" is not an IANA time zone`},
		{"unknown key in a schedule", "reports:\n  schedules:\n    - {name: a, cron: '0 6 1 * *', report: finance-monthly, when: monthly}\n",
			nil, "reports.schedules[0].when: unknown key"},
		{"not a list", "reports:\n  schedules: monthly\n", nil, "reports.schedules: a list of schedules in the config file"},
		{"password in the file", "smtp:\n  host: mail.example.com\n  password: hunter2\n", nil,
			"smtp.password: set it in the environment (CONVERGE_SMTP_PASSWORD), not in the file"},
		{"smtp from", "smtp:\n  host: mail.example.com\n", nil, `smtp.from: "" is not an e-mail address`},
		{"smtp port", "smtp:\n  host: mail.example.com\n  from: a@example.com\n", map[string]string{"CONVERGE_SMTP_PORT": "lots"}, "smtp.port"},
		{"tries", "reports:\n  tries: 0\n", nil, "reports.tries: 0 is not 1..10"},
		{"raw CSV with a workbook", "reports:\n  schedules:\n    - {name: a, cron: '0 6 1 * *', report: finance-monthly, format: xlsx, csv_raw: true}\n",
			nil, "reports.schedules[0].csv_raw: only for CSV"},
		{"metric without a metric", "reports:\n  schedules:\n    - name: weekly\n      cron: '0 7 * * MON'\n      report: metric\n      period: previous_week\n",
			nil, "reports.schedules[0].metric: required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			_, err := run(t, context.Background(), "--config", write(strings.ReplaceAll(c.name, " ", "_")+".yaml", c.yaml), "config", "keys")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
	// A good configuration: two schedules, listed with their next runs.
	good := write("good.yaml", `reports:
  dir: `+dir+`
  schedules:
    - name: finance
      cron: "0 6 1 * *"
      tz: Europe/Berlin
      report: finance-monthly
      format: xlsx
    - name: weekly-revenue
      cron: "0 7 * * MON"
      report: metric
      metric: revenue_gross
      period: previous_week
      params:
        by: channel
        filter: [country=DE]
      to: [sales@example.com]
smtp:
  host: mail.example.com
  from: Converge <reports@example.com>
  to: [cfo@example.com]
`)
	out, err := run(t, context.Background(), "--config", good, "reports", "list")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"finance         0 6 1 * *    Europe/Berlin  finance-monthly              xlsx", "06:00 CET  cfo@example.com",
		"weekly-revenue  0 7 * * MON  UTC            revenue_gross previous_week  csv", "07:00 UTC  sales@example.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("reports list lacks %q:\n%s", want, out)
		}
	}
}

// TestExportReport: `converge export --report finance-monthly` (and `export report`) writes the
// pack the export package's golden files hold, its manifest, and its wall time on stderr; a
// schedule runs once with `converge reports run`, and its run is recorded.
func TestExportReport(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if out, code := converge(t, "", "--data-dir", data, "migrate"); code != 0 {
		t.Fatalf("migrate: %d\n%s", code, out)
	}
	fixture, err := os.ReadFile(filepath.Join("..", "..", "export", "testdata", "finance.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for stmt := range strings.SplitSeq(string(fixture), ";\n") {
		if out, code := converge(t, stmt, "--data-dir", data, "sql", "-"); code != 0 {
			t.Fatalf("load fixture: %d\n%s", code, out)
		}
	}
	pack := filepath.Join(dir, "pack.zip")
	out, code := converge(t, "", "--data-dir", data, "--log-level", "warn", "export", "--report", "finance-monthly", "--month", "2026-05",
		"--tz", "Europe/Berlin", "--out", pack)
	if code != 0 || !strings.Contains(out, "finance pack 2026-05: wall time ") || !strings.Contains(out, pack+".manifest.json") {
		t.Fatalf("export --report: %d\n%s", code, out)
	}
	b, err := os.ReadFile(pack)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Name != "by_channel.csv" {
			continue
		}
		rc, _ := f.Open()
		got, _ := io.ReadAll(rc)
		rc.Close()
		want, err := os.ReadFile(filepath.Join("..", "..", "export", "testdata", "finance_by_channel_formatted.csv.golden"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("by_channel.csv\n%s\nwant (export/testdata/finance_by_channel_formatted.csv.golden)\n%s", got, want)
		}
	}
	var m export.PackManifest
	if mb, err := os.ReadFile(pack + ".manifest.json"); err != nil || json.Unmarshal(mb, &m) != nil {
		t.Fatalf("manifest: %v", err)
	}
	if m.SHA256 != sha256Hex(b) || m.File != "pack.zip" || !m.Reconciled || m.GeneratedAt.IsZero() {
		t.Errorf("manifest sha256 %s file %s", m.SHA256, m.File)
	}

	xlsx := filepath.Join(dir, "pack.xlsx")
	if out, code := converge(t, "", "--data-dir", data, "export", "report", "finance-monthly", "--month", "2026-05", "--out", xlsx); code != 0 {
		t.Fatalf("export report: %d\n%s", code, out)
	}
	if b, err := os.ReadFile(xlsx); err != nil || !bytes.HasPrefix(b, []byte("PK")) {
		t.Errorf("pack.xlsx: %v", err)
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"export", "--report", "finance-monthly", "--month", "2026-5", "--out", filepath.Join(dir, "x.zip")}, 2, `--month: "2026-5" is not a month YYYY-MM`},
		{[]string{"export", "--report", "finance-quarterly", "--month", "2026-05", "--out", filepath.Join(dir, "x.zip")}, 2, `--report: unknown report "finance-quarterly"`},
		{[]string{"export", "--report", "finance-monthly", "--month", "2026-05"}, 2, "--out: required"},
		{[]string{"export", "--report", "finance-monthly", "--month", "2026-05", "--roas-model", "best", "--out", filepath.Join(dir, "x.zip")}, 2, `--roas-model: "best" is not one of`},
		{[]string{"export", "--report", "finance-monthly", "--month", "2026-05", "--format", "zip", "--out", filepath.Join(dir, "x.xlsx")}, 2, "--format zip: --out"},
		{[]string{"export"}, 2, "say what to export"},
	} {
		out, code := converge(t, "", append([]string{"--data-dir", data}, c.args...)...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("%v: exit %d, want %d and %q:\n%s", c.args, code, c.code, c.want, out)
		}
	}

	// A schedule run now: the previous month of today (the fixture has no data then: an empty,
	// reconciled pack), recorded.
	cfg := filepath.Join(dir, "converge.yaml")
	if err := os.WriteFile(cfg, []byte("reports:\n  dir: "+filepath.Join(dir, "out")+"\n  schedules:\n    - {name: monthly, cron: '0 6 1 * *', report: finance-monthly}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = converge(t, "", "--config", cfg, "--data-dir", data, "--log-level", "warn", "reports", "run", "monthly")
	if code != 0 || !strings.Contains(out, "monthly: ok after 1 attempt(s)") || !strings.Contains(out, filepath.Join(dir, "out", "monthly_")) {
		t.Fatalf("reports run: %d\n%s", code, out)
	}
	out, code = converge(t, "", "--config", cfg, "--data-dir", data, "reports", "runs")
	if code != 0 || !strings.Contains(out, "monthly   manual") || !strings.Contains(out, " ok ") {
		t.Errorf("reports runs: %d\n%s", code, out)
	}
	if out, code := converge(t, "", "--config", cfg, "--data-dir", data, "reports", "run", "weekly"); code != 2 || !strings.Contains(out, `no schedule "weekly"`) {
		t.Errorf("unknown schedule: %d\n%s", code, out)
	}
}
