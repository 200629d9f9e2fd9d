package export

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// testdata/finance.sql is the finance pack's hand-built fixture, all EUR. The
// month asked is May 2026 in Europe/Berlin (the trend: May 2025 to May 2026):
//
//	h1 c1 2025-04-10 ads 100 (cost 60): before the trend; c1 is not new in May
//	h2 c2 2025-05-20 email 90 (45)   h3 c3 2025-12-05 organic 120 (cost unknown)
//	h4 c4 2026-04-10 ads 250 (150), April spend ads 200
//	May:  m1 c1 ads 200 (120)        m2 c5 ads 100 (50), refund r1 20 on 15 May
//	      m3 c6 email 80 (unknown: 80 × 0.7 = 56)   m4 c7 organic 150 (90), 10 refunded on the order
//	      m5 c5 email 60 (30)        m6 anonymous, no channel, 40 (20)
//	      m8 c9 email 70 (35) at 2026-04-30 22:30 UTC = 1 May in Berlin
//	      r2: 5 refunded of an unknown order (no channel)
//	      not May: m7 c8 ads 500 at 2026-05-31 22:30 UTC = 1 June in Berlin; m9 cancelled
//	      spend ads 300 + 100, email 50; touchpoints: c1 ads 3 May, c5 ads 4 May and
//	      email 19 May, c6 email 5 May, c7 organic 9 May; predicted CLV c1 500, c5 300 (as of 31 May)
//
// May by channel (ads, email, organic, no channel → total):
//
//	gross revenue    300, 210, 150, 40 → 700        refunds 20, 0, 10, 5 → 35
//	net revenue      280, 210, 140, 35 → 665        cost 170, 121, 90, 20 → 401
//	gross margin     110, 89, 50, 15 → 264 (37.714… %)   spend 400, 50 → 450
//	new customers    c5 | c6, c9 | c7 → 4; paid (ads, email) 3
//	active           c1, c5 | c5, c6, c9 | c7 → 5 (the channels sum to 6: c5 is in two)
//	CAC blended      400, 25 → 450 / 4 = 112.5; paid 450 / 3 = 150
//	historic CLV     c5 100 + 60 − 80 − 20 = 60 | c6 24, c9 35 → 29.5 | c7 50 → 169 / 4 = 42.25
//	LTV:CAC          42.25 / 112.5 = 0.37555…;  payback 112.5 / (264 / 5) = 2.1306… months
//	ROAS last touch  ads (200 + 100) / 400 = 0.75; email (80 + 60) / 50 = 2.8; all 440 / 450
//	predictive CLV   (500 + 300) / 2 = 400
func financeFixture(t testing.TB) (*warehouse.Store, *metrics.Registry) {
	t.Helper()
	st := whtest.Store(t)
	q, err := os.ReadFile(filepath.Join("testdata", "finance.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for stmt := range strings.SplitSeq(string(q), ";\n") {
		if err := st.Conn.Exec(context.Background(), stmt); err != nil {
			t.Fatalf("%v\n%s", err, stmt)
		}
	}
	reg, err := metrics.New(context.Background(), metrics.Options{Store: st, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	return st, reg
}

var (
	may2026   = Month{2026, time.May}
	berlin, _ = time.LoadLocation("Europe/Berlin")
)

// unzip returns the zip's entries by name, and their names in order.
func unzip(t *testing.T, b []byte) (map[string][]byte, []string) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	var names []string
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name] = body
		names = append(names, f.Name)
	}
	return files, names
}

// TestFinancePackZip compares the pack's CSV files with hand-checked golden
// files, and the manifest inside with the files.
func TestFinancePackZip(t *testing.T) {
	st, reg := financeFixture(t)
	for _, raw := range []bool{false, true} {
		var buf bytes.Buffer
		m, err := FinancePack(context.Background(), reg, st, PackParams{Month: may2026, TZ: berlin}, &buf, Options{Raw: raw, Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		files, names := unzip(t, buf.Bytes())
		if want := "by_month.csv,by_channel.csv,reconciliation.csv,metrics.csv,manifest.json"; strings.Join(names, ",") != want {
			t.Fatalf("zip entries %v, want %s", names, want)
		}
		variant := "formatted"
		if raw {
			variant = "raw"
		}
		for _, name := range names[:3] {
			golden(t, "finance_"+strings.TrimSuffix(name, ".csv")+"_"+variant+".csv", files[name])
		}
		if m.SHA256 != sha(buf.Bytes()) || m.Bytes != int64(buf.Len()) || m.Format != "zip" || !m.Reconciled || m.Month != "2026-05" {
			t.Errorf("manifest: sha256 %s bytes %d format %s reconciled %v (%v) month %s", m.SHA256, m.Bytes, m.Format, m.Reconciled, m.Unreconciled, m.Month)
		}
		wantRows := map[string]int{"by_month.csv": 13, "by_channel.csv": 5, "reconciliation.csv": 19, "metrics.csv": 17}
		for _, f := range m.Files {
			if f.SHA256 != sha(files[f.Name]) || f.Bytes != int64(len(files[f.Name])) || f.Rows != wantRows[f.Name] {
				t.Errorf("manifest file %s: sha256 %s, %d bytes, %d rows; the entry has %s, %d bytes; want %d rows", f.Name, f.SHA256, f.Bytes, f.Rows,
					sha(files[f.Name]), len(files[f.Name]), wantRows[f.Name])
			}
		}
		var inner PackManifest
		if err := json.Unmarshal(files["manifest.json"], &inner); err != nil {
			t.Fatal(err)
		}
		if inner.SHA256 != "" || !inner.GeneratedAt.IsZero() || inner.Took != "" || len(inner.Files) != 4 || inner.Files[1] != m.Files[1] {
			t.Errorf("manifest.json must describe the tables, not the zip: %+v", inner)
		}
		// The periods as finance reads them, both days included, in the pack's zone.
		if p := inner.Params["by_month"]; p.Get("from") != "2025-05-01" || p.Get("to") != "2026-05-31" || p.Get("tz") != "Europe/Berlin" || p.Get("grain") != "month" ||
			inner.Params["by_channel"].Get("from") != "2026-05-01" || inner.Params["by_channel"].Get("to") != "2026-05-31" ||
			inner.Params["by_channel"].Get("by") != "channel" || inner.Params["roas"].Get("arg") != "level=channel" {
			t.Errorf("manifest params %v", inner.Params)
		}
		// Read back, they are the month's instants: [2026-05-01 00:00, 2026-06-01 00:00) in Berlin.
		if p, err := reg.ParseParams("revenue_gross", inner.Params["by_channel"]); err != nil ||
			!p.From.Equal(time.Date(2026, 4, 30, 22, 0, 0, 0, time.UTC)) || !p.To.Equal(time.Date(2026, 5, 31, 22, 0, 0, 0, time.UTC)) {
			t.Errorf("by_channel params read back: %v %v", p, err)
		}
		var metricNames, tables []string
		for _, v := range inner.Metrics {
			metricNames = append(metricNames, v.Name)
		}
		for _, w := range inner.Sources {
			tables = append(tables, w.Table)
		}
		for _, want := range []string{"revenue_gross", "roas", "clv_predicted", "cac_payback_months", "active_customers"} {
			if !slices.Contains(metricNames, want) {
				t.Errorf("manifest metrics %v lack %s", metricNames, want)
			}
		}
		for _, want := range []string{"orders", "refunds", "marketing_spend", "touchpoints", "customer_value"} {
			if !slices.Contains(tables, want) {
				t.Errorf("manifest sources %v lack %s", tables, want)
			}
		}
		// metrics.csv: one row per metric, with its version.
		defs := readCSV(t, files["metrics.csv"])
		if len(defs) != 18 || defs[1][0] != "revenue_gross" || len(defs[1][4]) != 16 {
			t.Errorf("metrics.csv: %d rows, first %v", len(defs), defs[1])
		}
	}
}

func readCSV(t *testing.T, b []byte) [][]string {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestFinancePackReconciles reads the raw by-channel table: the channels of
// the amounts and of new customers add up to the month's total, which is
// the hand-computed figure; those that do not add up (active customers, the
// ratios) are the figures computed by hand above.
func TestFinancePackReconciles(t *testing.T) {
	st, reg := financeFixture(t)
	var buf bytes.Buffer
	if _, err := FinancePack(context.Background(), reg, st, PackParams{Month: may2026, TZ: berlin}, &buf, Options{Raw: true}); err != nil {
		t.Fatal(err)
	}
	files, _ := unzip(t, buf.Bytes())
	rows := readCSV(t, files["by_channel.csv"])
	col := map[string]int{}
	for i, h := range rows[0] {
		if j := strings.LastIndex(h, " ("); j > 0 {
			h = h[:j]
		}
		col[h] = i
	}
	if got := []string{rows[1][1], rows[2][1], rows[3][1], rows[4][1], rows[5][1]}; strings.Join(got, "|") != "ads|email|organic|(no channel)|Total" {
		t.Fatalf("channels %v", got)
	}
	value := func(row []string, title string) float64 {
		i, ok := col[title]
		if !ok {
			t.Fatalf("no column %q in %v", title, rows[0])
		}
		if row[i] == "" {
			return -1
		}
		f, err := strconv.ParseFloat(row[i], 64)
		if err != nil {
			t.Fatalf("%s: %v", title, err)
		}
		return f
	}
	near := func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
	total := rows[5]
	// The channels that add up, and their hand-computed totals.
	for title, want := range map[string]float64{"Gross revenue": 700, "Refunds": 35, "Net revenue": 665, "Cost of goods sold": 401,
		"Gross margin": 264, "Marketing spend": 450, "New customers": 4, "New customers from paid channels": 3} {
		var sum float64
		for _, r := range rows[1:5] {
			if v := value(r, title); v >= 0 {
				sum += v
			}
		}
		if got := value(total, title); !near(got, want) || !near(sum, got) {
			t.Errorf("%s: total %v, channels sum to %v; want both %v", title, got, sum, want)
		}
	}
	// Those that do not.
	for title, want := range map[string]float64{"Active customers": 5, "Gross margin %": 0.377142857143, "CAC (blended)": 112.5, "CAC (paid)": 150,
		"Historic CLV (gross margin)": 42.25, "LTV:CAC": 42.25 / 112.5, "CAC payback": 112.5 / (264.0 / 5 / (31 / 30.4375)), "ROAS, last touch": 440.0 / 450} {
		if got := value(total, title); !near(got, want) && (got-want)/want > 1e-9 {
			t.Errorf("%s: total %v, want %v", title, got, want)
		}
	}
	if a, e := value(rows[1], "Active customers")+value(rows[2], "Active customers")+value(rows[3], "Active customers"), 6.0; a != e {
		t.Errorf("active customers of the channels sum to %v, want %v (c5 ordered through two)", a, e)
	}
	if v, w := value(rows[1], "ROAS, last touch"), value(rows[2], "ROAS, last touch"); v != 0.75 || v == w || w != 2.8 {
		t.Errorf("ROAS ads %v, email %v; want 0.75 and 2.8", v, w)
	}
	// The reconciliation table says the same.
	for _, r := range readCSV(t, files["reconciliation.csv"])[1:] {
		want := "yes"
		if slices.Contains([]string{"active_customers", "roas", "clv_predicted"}, r[0]) {
			want = "not additive"
		}
		if r[7] != want || !strings.HasPrefix(r[8], map[bool]string{true: "additive", false: "not additive"}[want == "yes" && r[1] == "sum of channels = month total"]) &&
			!strings.HasPrefix(r[8], "the definition") {
			t.Errorf("reconciliation row %v: want %q", r, want)
		}
	}
}

// TestReconciliationFails: a channel that does not add up is a NO in the
// table and named in the failed list.
func TestReconciliationFails(t *testing.T) {
	d := &packData{trend: map[string][]*float64{}, byChan: map[string]map[string]*float64{}, defs: map[string]*metrics.Definition{},
		chans: []string{"ads", "email"}}
	for _, pm := range financeMetrics {
		d.defs[pm.name] = &metrics.Definition{Name: pm.name, Unit: "currency"}
		d.trend[pm.name] = []*float64{ptr(100)}
		d.byChan[pm.name] = map[string]*float64{"ads": ptr(60), "email": ptr(40)}
	}
	d.byChan["refunds"]["email"] = ptr(39.99) // a cent missing
	d.trend["revenue_net"] = []*float64{ptr(0)}
	o := Options{}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	tab, failed := reconciliation(d, PackParams{Month: may2026, TZ: time.UTC}, &o)
	if !slices.Contains(failed, "refunds") || slices.Contains(failed, "revenue_gross") || !slices.Contains(failed, "revenue_net") {
		t.Errorf("failed %v, want refunds and revenue_net (100 ≠ 100 − 100) but not revenue_gross", failed)
	}
	for _, r := range tab.rows {
		if r[0].s == "refunds" && (r[7].s != "NO" || r[6].f != 0.01) {
			t.Errorf("refunds row: reconciles %q, difference %v", r[7].s, r[6].f)
		}
	}
}

// TestFinancePackDeterministic: the same pack twice gives the same bytes,
// zip and XLSX.
func TestFinancePackDeterministic(t *testing.T) {
	st, reg := financeFixture(t)
	for _, o := range []Options{{}, {Format: XLSX}, {Preset: "excel", Delimiter: ';', Decimal: ','}} {
		var a, b bytes.Buffer
		m1, err := FinancePack(context.Background(), reg, st, PackParams{Month: may2026, TZ: berlin}, &a, o)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := FinancePack(context.Background(), reg, st, PackParams{Month: may2026, TZ: berlin}, &b, o)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) || m1.SHA256 != m2.SHA256 {
			t.Errorf("%s: two packs of unchanged data differ (%d and %d bytes)", o.Format, a.Len(), b.Len())
		}
	}
}

// TestFinancePackXLSX: one sheet per table, typed cells in the metrics'
// formats.
func TestFinancePackXLSX(t *testing.T) {
	st, reg := financeFixture(t)
	var buf bytes.Buffer
	m, err := FinancePack(context.Background(), reg, st, PackParams{Month: may2026, TZ: berlin}, &buf, Options{Format: XLSX})
	if err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := strings.Join(f.GetSheetList(), ","); got != "By month,By channel,Reconciliation,Metrics" || m.Format != "xlsx" || len(m.Files) != 4 {
		t.Fatalf("sheets %s, manifest format %s files %d", got, m.Format, len(m.Files))
	}
	rows, err := f.GetRows("By channel")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 || rows[5][1] != "Total" || rows[5][0] != "2026-05" {
		t.Fatalf("By channel: %d rows, last %v", len(rows), rows[len(rows)-1])
	}
	// C6: gross revenue of the month, a number shown as #,##0.00; H6: gross margin %, as a percent.
	for ref, want := range map[string]string{"C1": "Gross revenue (EUR)", "C6": "700.00", "H6": "37.7%", "B2": "ads"} {
		if got, _ := f.GetCellValue("By channel", ref); got != want {
			t.Errorf("By channel %s = %q, want %q", ref, got, want)
		}
	}
	if typ, _ := f.GetCellType("By channel", "C6"); typ == excelize.CellTypeSharedString || typ == excelize.CellTypeInlineString {
		t.Errorf("C6 is text, want a number")
	}
	raw, _ := f.GetCellValue("By channel", "H6", excelize.Options{RawCellValue: true})
	if !strings.HasPrefix(raw, "0.37714285714") {
		t.Errorf("H6 holds %q, want the fraction 0.377…", raw)
	}
	months, _ := f.GetRows("By month")
	if len(months) != 14 || months[1][0] != "2025-05" || months[13][0] != "2026-05" {
		t.Errorf("By month: %d rows, %v … %v", len(months), months[1][0], months[len(months)-1][0])
	}
	recon, _ := f.GetRows("Reconciliation")
	if len(recon) != 20 {
		t.Errorf("Reconciliation: %d rows", len(recon))
	}
}

func TestParseMonth(t *testing.T) {
	for in, want := range map[string]Month{"2026-05": {2026, time.May}, "2000-01": {2000, time.January}} {
		if got, err := ParseMonth(in); err != nil || got != want {
			t.Errorf("ParseMonth(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "2026-5", "2026-13", "26-05", "1999-12", "2026-05-01", "May 2026"} {
		if _, err := ParseMonth(bad); err == nil {
			t.Errorf("ParseMonth(%q) accepted", bad)
		}
	}
	if got := (Month{2026, time.January}).Add(-1); got != (Month{2025, time.December}) {
		t.Errorf("January − 1 = %v", got)
	}
}
