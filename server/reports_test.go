package server

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/export"
	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/reports"
	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// reportsOver is the reports service over st (EUR, UTC) with a finance schedule and a weekly
// metric export, writing into a temporary folder.
func reportsOver(t testing.TB, st *warehouse.Store) *reports.Service {
	t.Helper()
	reg, err := metrics.New(context.Background(), metrics.Options{Store: st, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := reports.New(reg, st, reports.Config{Dir: t.TempDir(), TZ: time.UTC, Currency: "EUR", Version: "test", Schedules: []reports.Schedule{
		{Name: "finance-pack", Cron: "0 6 1 * *", TZ: mustLoad(t, "Europe/Berlin"), Report: reports.KindFinance, Format: "xlsx"},
		{Name: "weekly-revenue", Cron: "0 7 * * MON", Report: reports.KindMetric, Metric: "revenue_gross", Period: "previous_week",
			Params: map[string][]string{"by": {"channel"}}},
	}}, reports.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func zipEntries(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name], err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// amount reads a formatted number ("86,470.67").
func amount(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return f
}

// TestFinancePackDownload downloads May 2026 of the demo company: a zip whose revenue by
// channel sums to the month's gross revenue, which is the dashboard's figure for May; the same
// bytes twice; an XLSX with its four sheets, and its manifest.
func TestFinancePackDownload(t *testing.T) {
	svc := reportsOver(t, demoStore(t))
	srv := demoServer(t, Deps{Reports: svc})
	rec := get(t, srv, "/reports/finance-monthly?month=2026-05")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/zip" ||
		rec.Header().Get("Content-Disposition") != `attachment; filename="finance-monthly_2026-05.zip"` {
		t.Fatalf("zip: %d %v %.300s", rec.Code, rec.Header(), rec.Body.String())
	}
	body := rec.Body.Bytes()
	files := zipEntries(t, body)
	rows, err := csv.NewReader(bytes.NewReader(files["by_channel.csv"])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if rows[0][2] != "Gross revenue (EUR)" || rows[len(rows)-1][1] != "Total" || len(rows) < 5 {
		t.Fatalf("by_channel.csv: %v", rows)
	}
	var sum float64
	for _, r := range rows[1 : len(rows)-1] {
		sum += amount(t, r[2])
	}
	total := amount(t, rows[len(rows)-1][2])
	res, err := srv.metrics.Query(context.Background(), "revenue_gross", MetricQuery{From: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC),
		To: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), Grain: "month", TZ: "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	if total <= 0 || total-*res.Total > 0.005 || *res.Total-total > 0.005 || sum-total > 0.015 || total-sum > 0.015 {
		t.Errorf("gross revenue of May: total %.2f, channels sum to %.2f, the dashboard says %.2f", total, sum, *res.Total)
	}
	var inner export.PackManifest
	if err := json.Unmarshal(files["manifest.json"], &inner); err != nil || !inner.Reconciled || inner.Month != "2026-05" || inner.TimeZone != "UTC" {
		t.Errorf("manifest.json: %+v, %v", inner, err)
	}
	if again := get(t, srv, "/reports/finance-monthly?month=2026-05&format=zip"); !bytes.Equal(again.Body.Bytes(), body) {
		t.Errorf("two downloads of the same month differ")
	}

	x := get(t, srv, "/reports/finance-monthly?month=2026-05&format=xlsx")
	if x.Code != http.StatusOK || !strings.Contains(x.Header().Get("Content-Disposition"), "finance-monthly_2026-05.xlsx") {
		t.Fatalf("xlsx: %d %v", x.Code, x.Header())
	}
	f, err := excelize.OpenReader(bytes.NewReader(x.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := strings.Join(f.GetSheetList(), ","); got != "By month,By channel,Reconciliation,Metrics" {
		t.Errorf("sheets %s", got)
	}
	mr := get(t, srv, "/reports/finance-monthly?month=2026-05&format=xlsx&manifest=1")
	var m export.PackManifest
	if err := json.Unmarshal(mr.Body.Bytes(), &m); err != nil {
		t.Fatalf("manifest: %v %.200s", err, mr.Body.String())
	}
	sum256 := sha256.Sum256(x.Body.Bytes())
	if m.SHA256 != hex.EncodeToString(sum256[:]) || m.File != "finance-monthly_2026-05.xlsx" || m.Format != "xlsx" || len(m.Files) != 4 {
		t.Errorf("sidecar manifest %+v does not describe the XLSX download", m)
	}
}

// TestFinancePackBadParams: each bad parameter is a 400 that names it.
func TestFinancePackBadParams(t *testing.T) {
	srv := demoServer(t, Deps{Reports: reportsOver(t, whtest.Store(t))})
	for _, c := range []struct{ query, want string }{
		{"", `Invalid value &#34;&#34; for parameter &#34;month&#34;: a month YYYY-MM is required.`},
		{"month=2026-13", `parameter &#34;month&#34;`},
		{"month=May", `parameter &#34;month&#34;`},
		{"month=2026-08", "it has not begun (this is 2026-07 in UTC)"},
		{"month=2026-05&format=pdf", `Invalid value &#34;pdf&#34; for parameter &#34;format&#34;: allowed are zip, xlsx.`},
		{"month=2026-05&manifest=yes", `parameter &#34;manifest&#34;`},
		{"month=2026-05&tz=Europe/Berlin", `Unknown parameter &#34;tz&#34;`},
	} {
		rec := get(t, srv, "/reports/finance-monthly?"+c.query)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), c.want) {
			t.Errorf("%q: %d, want 400 with %q: %.300s", c.query, rec.Code, c.want, rec.Body.String())
		}
	}
	// The month in progress is fine.
	if rec := get(t, srv, "/reports/finance-monthly?month=2026-07"); rec.Code != http.StatusOK {
		t.Errorf("the current month: %d", rec.Code)
	}
	if rec := get(t, demoServer(t, Deps{}), "/reports"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("without reports: %d", rec.Code)
	}
}

// TestReportsPage lists the demo's months, newest first, June preselected (the last complete
// month), with links to each pack; an admin also sees the schedules and their next runs.
func TestReportsPage(t *testing.T) {
	srv := demoServer(t, Deps{Reports: reportsOver(t, demoStore(t))})
	rec := get(t, srv, "/reports")
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("reports: %d %.300s", rec.Code, body)
	}
	for _, want := range []string{
		`<option value="2026-06" selected>June 2026</option>`, `<option value="2026-05">May 2026</option>`,
		`action="/reports/finance-monthly"`, `href="/reports/finance-monthly?format=xlsx&amp;month=2026-06"`,
		`href="/reports/finance-monthly?format=zip&amp;month=2025-07"`, // the 12th month back
		"Amounts in EUR; months are calendar months in UTC",
		`<a href="/reports" aria-current="page">Reports</a>`,
		"Scheduled reports", "<th scope=\"row\">finance-pack</th>", "<code>0 6 1 * *</code>", "2026-08-01 06:00 CEST", // next: 1 August 06:00 in Berlin (today is 1 July, 12:00 UTC)
		"revenue_gross, previous week", "2026-07-06 07:00 UTC", "e-mail is off (smtp.host is not set)", "No run has been recorded yet.",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("reports page lacks %q", want)
		}
	}
	if strings.Index(body, `value="2026-06"`) > strings.Index(body, `value="2026-05"`) {
		t.Errorf("months are not newest first")
	}
	if strings.Contains(body, `href="/reports/finance-monthly?format=zip&amp;month=2025-06"`) {
		t.Errorf("more than 12 recent months are linked")
	}
}

// TestReportsAccess: executives may not download; a finance user may, and the download is in
// the audit log; only admins see the schedules and the recorded runs.
func TestReportsAccess(t *testing.T) {
	st := whtest.Store(t)
	svc := reportsOver(t, st)
	run, err := svc.RunNow(context.Background(), "finance-pack", "ops") // a real run, recorded: the pack of an empty store
	if err != nil || run.Status != reports.StatusOK {
		t.Fatalf("run %+v, %v", run, err)
	}
	env := newAccessEnv(t, Config{}, access.Config{}, Deps{Reports: svc})
	ctx := context.Background()
	exec, fin, adm := env.session(t, access.RoleExecutive), env.session(t, access.RoleFinance), env.session(t, access.RoleAdmin)
	for _, path := range []string{"/reports", "/reports/finance-monthly?month=2026-02"} {
		if rec := env.send(t, ctx, http.MethodGet, path, &exec, nil, nil); rec.Code != http.StatusForbidden {
			t.Errorf("executive %s: %d, want 403", path, rec.Code)
		}
	}
	rec := env.send(t, ctx, http.MethodGet, "/reports/finance-monthly?month=2026-02&format=xlsx", &fin, nil, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("finance download: %d %.300s", rec.Code, rec.Body.String())
	}
	sum := sha256.Sum256(rec.Body.Bytes())
	entries, _, err := env.svc.AuditLog(ctx, access.AuditQuery{Action: "export"})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Actor != "finance@test" || entries[0].Target != "finance-monthly/2026-02" ||
		!strings.Contains(entries[0].Detail, hex.EncodeToString(sum[:])) || !strings.Contains(entries[0].Detail, `"format":"xlsx"`) {
		t.Errorf("audit log %+v", entries)
	}
	page := env.send(t, ctx, http.MethodGet, "/reports", &fin, nil, nil).Body.String()
	if !strings.Contains(page, "Finance pack") || strings.Contains(page, "Scheduled reports") {
		t.Errorf("finance user's page: schedules shown or pack missing")
	}
	page = env.send(t, ctx, http.MethodGet, "/reports", &adm, nil, nil).Body.String()
	period := export.MonthOf(time.Now(), mustLoad(t, "Europe/Berlin")).Add(-1).String() // the run's: the month before today
	for _, want := range []string{"Scheduled reports", "finance-pack_" + period + ".xlsx", `<span class="badge run-succeeded">ok</span>`, "<td>manual</td>",
		"<td>" + period + "</td>"} {
		if !strings.Contains(page, want) {
			t.Errorf("admin's page lacks %q", want)
		}
	}
	if strings.Contains(env.send(t, ctx, http.MethodGet, "/", &exec, nil, nil).Body.String(), `href="/reports"`) {
		t.Errorf("an executive's navigation links to /reports")
	}
}
