package export

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

func TestMain(m *testing.M) { os.Exit(whtest.Main(m)) }

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// testdata/fixture.sql is the hand-built fixture (also loaded by
// cmd/converge's export test). All orders EUR, source shop:
//
//	p1 2025-11-10 ads      100      (comparison period, Oct–Dec 2025)
//	p2 2025-12-05 email     60
//	p3 2025-12-20 ads       50
//	o1 2026-01-05 ads      100
//	o2 2026-01-05 ads       50
//	o3 2026-01-20 organic  200
//	o4 2026-02-10 email     80
//	o5 2026-02-15 ads     3000
//	o6 2026-02-28 23:30 UTC organic 40   (1 March in Europe/Berlin)
//	o7 2026-03-10 ads      500 cancelled (not counted)
//	o8 2026-03-12 `+promo, "spring"` 20  (a channel with a comma, quotes, and a leading +)
//	o9 2026-03-20 ads       60
//
// aov = revenue / orders, by channel, months of 2026 Q1 in Europe/Berlin,
// compared with the previous three months, target 50:
//
//	ads      Jan 150/2 = 75 (Oct: none)  Feb 3000 (Nov 100: +2900 %)  Mar 60 (Dec 50: +20 %)
//	         total 3210/4 = 802.5 (Oct–Dec 150/2 = 75: +970 %)
//	email    Jan none, Feb 80, Mar none (Dec 60); total 80 (60: +33.33 %)
//	organic  Jan 200, Feb none, Mar 40; total 240/2 = 120 (none)
//	+promo…  Mar 20; total 20
func fixture(t testing.TB) (*warehouse.Store, *metrics.Registry) {
	t.Helper()
	st := whtest.Store(t)
	q, err := os.ReadFile(filepath.Join("testdata", "fixture.sql"))
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
	return st, reg
}

const aovQuery = "from=2026-01-01&to=2026-03-31&grain=month&tz=Europe/Berlin&compare=previous&by=channel"

func params(t testing.TB, reg *metrics.Registry, name, query string) metrics.Params {
	t.Helper()
	v, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	p, err := reg.ParseParams(name, v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	whtest.Golden(t, filepath.Join("testdata", name+".golden"), got, *update)
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// A source table with no rows has an empty watermark; one with rows names its latest load.
func TestWatermarks(t *testing.T) {
	st, _ := fixture(t)
	ws, err := watermarks(context.Background(), st, []string{"identities", "orders"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 2 || ws[0].Table != "identities" || !ws[0].Empty || ws[1].Table != "orders" || ws[1].Empty || ws[1].LatestLoadedAt == nil {
		t.Errorf("watermarks %+v, want identities empty and orders loaded", ws)
	}
}

// TestMetricCSV exports a KPI with breakdown, comparison and target in each
// variant and compares the bytes with hand-checked golden files.
func TestMetricCSV(t *testing.T) {
	st, reg := fixture(t)
	ctx := context.Background()
	p := params(t, reg, "aov", aovQuery)
	variants := []struct {
		name string
		o    Options
	}{
		{"aov_raw.csv", Options{Raw: true}},
		{"aov_csv_raw.csv", Options{Raw: true, CSVRaw: true}}, // for programs: "+promo…" as stored
		{"aov_formatted.csv", Options{}},
		{"aov_excel.csv", Options{Preset: "excel"}},
		{"aov_excel_de.csv", Options{Preset: "excel", Delimiter: ';', Decimal: ','}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			var buf bytes.Buffer
			m, err := Metric(ctx, reg, st, "aov", p, &buf, v.o)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, v.name, buf.Bytes())
			if m.SHA256 != sha(buf.Bytes()) || m.Bytes != int64(buf.Len()) {
				t.Errorf("manifest sha256 %s, %d bytes; the file's is %s, %d bytes", m.SHA256, m.Bytes, sha(buf.Bytes()), buf.Len())
			}
			if m.Rows != 16 || m.Truncated || m.Kind != "metric" || m.TimeZone != "Europe/Berlin" {
				t.Errorf("manifest rows %d truncated %v kind %s tz %s", m.Rows, m.Truncated, m.Kind, m.TimeZone)
			}
			var names []string
			for _, mv := range m.Metrics {
				if len(mv.Version) != 16 {
					t.Errorf("metric %s version %q", mv.Name, mv.Version)
				}
				names = append(names, mv.Name)
			}
			if strings.Join(names, ",") != "aov,orders,revenue_gross" {
				t.Errorf("manifest metrics %v, want aov and its inputs", names)
			}
			var tables []string
			for _, w := range m.Sources {
				tables = append(tables, w.Table)
				if w.Table == "orders" && (w.LatestLoadedAt == nil || w.LatestIngestRun != "" || w.Empty) {
					t.Errorf("orders watermark %+v: want the latest loaded_at (the fixture has no ingest run)", w)
				}
			}
			// aov = revenue_gross / orders, both over orders_latest: orders only (no identities).
			if strings.Join(tables, ",") != "orders" {
				t.Errorf("manifest sources %v, want orders", tables)
			}
			if got := strings.Join(m.Params["by"], ","); got != "channel" || m.Params.Get("compare") != "previous" ||
				m.Params.Get("from") != "2026-01-01" || m.Params.Get("to") != "2026-03-31" || m.Params.Get("tz") != "Europe/Berlin" {
				t.Errorf("manifest params %v", m.Params)
			}
		})
	}
}

// TestMetricDeterministic: the same export twice, and again from the
// manifest's parameters, gives the same bytes.
func TestMetricDeterministic(t *testing.T) {
	st, reg := fixture(t)
	ctx := context.Background()
	for _, o := range []Options{{Preset: "excel"}, {Format: XLSX}} {
		var a, b, c bytes.Buffer
		m1, err := Metric(ctx, reg, st, "aov", params(t, reg, "aov", aovQuery), &a, o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Metric(ctx, reg, st, "aov", params(t, reg, "aov", aovQuery), &b, o); err != nil {
			t.Fatal(err)
		}
		p, err := reg.ParseParams("aov", m1.Params)
		if err != nil {
			t.Fatalf("manifest params %v: %v", m1.Params, err)
		}
		m3, err := Metric(ctx, reg, st, "aov", p, &c, o)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) || !bytes.Equal(a.Bytes(), c.Bytes()) || m3.SHA256 != m1.SHA256 {
			t.Errorf("%s: exports of unchanged data differ (%d, %d, %d bytes)", o.Format, a.Len(), b.Len(), c.Len())
		}
	}
}

// TestMetricRowLimit: a limit that cuts the result is stated in the file,
// the manifest and the error.
func TestMetricRowLimit(t *testing.T) {
	st, reg := fixture(t)
	ctx := context.Background()
	p := params(t, reg, "aov", aovQuery)
	var buf bytes.Buffer
	m, err := Metric(ctx, reg, st, "aov", p, &buf, Options{MaxRows: 5})
	var te *TruncatedError
	if !errors.Is(err, ErrTruncated) || !errors.As(err, &te) || te.Rows != 5 || te.Limit != 5 {
		t.Fatalf("err = %v, want a TruncatedError at 5 rows", err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 7 {
		t.Fatalf("%d lines, want header + 5 rows + the note:\n%s", len(lines), buf.String())
	}
	if want := "TRUNCATED: first 5 rows of more; the export stopped at its row limit (max rows 5). This file is incomplete; see the manifest."; lines[6] != want {
		t.Errorf("last line %q, want %q", lines[6], want)
	}
	if !m.Truncated || m.Rows != 5 || m.RowLimit != 5 || m.SHA256 != sha(buf.Bytes()) {
		t.Errorf("manifest truncated %v rows %d limit %d", m.Truncated, m.Rows, m.RowLimit)
	}
	// A limit the result fits in is no truncation.
	buf.Reset()
	m, err = Metric(ctx, reg, st, "aov", p, &buf, Options{MaxRows: 16})
	if err != nil || m.Truncated || m.Rows != 16 || strings.Contains(buf.String(), "TRUNCATED") {
		t.Errorf("limit 16 of 16 rows: err %v, truncated %v, rows %d", err, m.Truncated, m.Rows)
	}
}

// TestMetricXLSX opens the XLSX export with excelize and checks its cells.
func TestMetricXLSX(t *testing.T) {
	st, reg := fixture(t)
	ctx := context.Background()
	p := params(t, reg, "aov", aovQuery)
	for _, raw := range []bool{false, true} {
		var buf bytes.Buffer
		m, err := Metric(ctx, reg, st, "aov", p, &buf, Options{Format: XLSX, Raw: raw, MaxRows: 9})
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("err = %v, want truncated at 9 rows", err)
		}
		if m.SHA256 != sha(buf.Bytes()) || m.Format != XLSX {
			t.Errorf("manifest sha256/format: %s %s", m.SHA256, m.Format)
		}
		f, err := excelize.OpenReader(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := f.GetRows(sheetName, excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 11 {
			t.Fatalf("raw=%v: %d rows, want header + 9 + note", raw, len(rows))
		}
		if got := strings.Join(rows[0], "|"); !strings.HasPrefix(got, "channel|Period") || !strings.HasSuffix(got, "Change (%)|Target (EUR)") {
			t.Errorf("header %q", got)
		}
		// ads, February: 3000 vs 100, +2900 %.
		row := rows[6]
		if row[0] != "ads" || row[2] != "3000" || row[4] != "100" || row[5] != "2900" || row[6] != "50" {
			t.Errorf("raw=%v ads February row %q", raw, row)
		}
		if !strings.HasPrefix(rows[10][0], "TRUNCATED: first 9 rows of more") {
			t.Errorf("last row %q", rows[10])
		}
		typ, _ := f.GetCellType(sheetName, "C7")
		if typ != excelize.CellTypeNumber && typ != excelize.CellTypeUnset {
			t.Errorf("C7 type %v, want a number", typ)
		}
		formatted, _ := f.GetCellValue(sheetName, "C7")
		period, _ := f.GetCellValue(sheetName, "B7")
		if raw {
			if formatted != "3000" || period != "2026-02-01" {
				t.Errorf("raw: C7 shows %q, B7 %q", formatted, period)
			}
		} else if formatted != "3,000.00" || period != "2026-02" {
			t.Errorf("formatted: C7 shows %q, B7 %q; want the metric's format #,##0.00 and the month label", formatted, period)
		}
		f.Close()
	}
}

// TestSQLExport exports a query's rows through the read-only console.
func TestSQLExport(t *testing.T) {
	st, _ := fixture(t)
	ctx := context.Background()
	berlin, _ := time.LoadLocation("Europe/Berlin")
	q := "SELECT order_id, ordered_at, revenue, cost, channel, toDate(ordered_at) AS day, status = 'cancelled' AS cancelled, [1, 2] AS a FROM orders WHERE order_id IN ('o1', 'o5', 'o8') ORDER BY order_id"
	cases := []struct {
		o    Options
		want string
	}{
		{Options{Raw: true, TZ: berlin}, "order_id,ordered_at,revenue,cost,channel,day,cancelled,a\n" +
			"o1,2026-01-05T11:00:00.000+01:00,100.0000,60.0000,ads,2026-01-05,0,\"[1,2]\"\n" +
			"o5,2026-02-15T13:00:00.000+01:00,3000.0000,2000.0000,ads,2026-02-15,0,\"[1,2]\"\n" +
			"o8,2026-03-12T13:00:00.000+01:00,20.0000,10.0000,\"'+promo, \"\"spring\"\"\",2026-03-12,0,\"[1,2]\"\n"},
		// Raw CSV for programs: the text as stored.
		{Options{Raw: true, CSVRaw: true, TZ: berlin}, "order_id,ordered_at,revenue,cost,channel,day,cancelled,a\n" +
			"o1,2026-01-05T11:00:00.000+01:00,100.0000,60.0000,ads,2026-01-05,0,\"[1,2]\"\n" +
			"o5,2026-02-15T13:00:00.000+01:00,3000.0000,2000.0000,ads,2026-02-15,0,\"[1,2]\"\n" +
			"o8,2026-03-12T13:00:00.000+01:00,20.0000,10.0000,\"+promo, \"\"spring\"\"\",2026-03-12,0,\"[1,2]\"\n"},
		{Options{TZ: berlin, Preset: "excel", Delimiter: ';', Decimal: ','}, "\ufefforder_id;ordered_at (Europe/Berlin);revenue;cost;channel;day;cancelled;a\r\n" +
			"o1;2026-01-05 11:00:00.000;100,0000;60,0000;ads;2026-01-05;0;[1,2]\r\n" +
			"o5;2026-02-15 13:00:00.000;3.000,0000;2.000,0000;ads;2026-02-15;0;[1,2]\r\n" +
			"o8;2026-03-12 13:00:00.000;20,0000;10,0000;\"'+promo, \"\"spring\"\"\";2026-03-12;0;[1,2]\r\n"},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		m, err := SQL(ctx, st, warehouse.Console{}, q, &buf, c.o)
		if err != nil {
			t.Fatal(err)
		}
		if buf.String() != c.want {
			t.Errorf("got\n%q\nwant\n%q", buf.String(), c.want)
		}
		if m.Rows != 3 || m.Kind != "sql" || m.Query != q || m.SHA256 != sha(buf.Bytes()) || len(m.Sources) != 1 || m.Sources[0].Table != "orders" {
			t.Errorf("manifest %+v", m)
		}
	}

	// XLSX: instants as date-times (the wall clock in the report zone),
	// Decimals as numbers, dates as dates.
	var xb bytes.Buffer
	if _, err := SQL(ctx, st, warehouse.Console{}, q, &xb, Options{Format: XLSX, TZ: berlin}); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&xb)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for cellRef, want := range map[string]string{"A1": "order_id", "B1": "ordered_at (Europe/Berlin)", "B2": "2026-01-05 11:00:00.000",
		"C3": "3000", "F4": "2026-03-12", "E4": `+promo, "spring"`, "H2": "[1,2]"} {
		if got, _ := f.GetCellValue(sheetName, cellRef); got != want {
			t.Errorf("xlsx %s = %q, want %q", cellRef, got, want)
		}
	}
	if typ, _ := f.GetCellType(sheetName, "C3"); typ == excelize.CellTypeSharedString || typ == excelize.CellTypeInlineString {
		t.Errorf("xlsx C3 is text, want a number")
	}

	// Refused before a byte is written.
	var buf bytes.Buffer
	_, err = SQL(ctx, st, warehouse.Console{}, "SELECT * FROM file('/etc/passwd', 'LineAsString')", &buf, Options{})
	var re *warehouse.RefusedError
	if !errors.As(err, &re) || buf.Len() != 0 {
		t.Errorf("file(): err %v, %d bytes written", err, buf.Len())
	}

	// The row limit is stated.
	buf.Reset()
	m, err := SQL(ctx, st, warehouse.Console{}, "SELECT number FROM numbers(100)", &buf, Options{MaxRows: 10})
	if !errors.Is(err, ErrTruncated) || m.Rows != 10 || !m.Truncated ||
		!strings.HasSuffix(buf.String(), "\n9\nTRUNCATED: first 10 rows of more; the export stopped at its row limit (max rows 10). This file is incomplete; see the manifest.\n") {
		t.Errorf("limit: err %v rows %d\n%s", err, m.Rows, buf.String())
	}
}

func TestNumberText(t *testing.T) {
	scaled := []struct {
		coef  int64
		scale int
		want  string
	}{{5, 2, "0.05"}, {-5, 2, "-0.05"}, {12345, 2, "123.45"}, {-100, 0, "-100"}, {100, 4, "0.0100"}, {0, 2, "0.00"}}
	for _, c := range scaled {
		if got := string(appendScaled(nil, c.coef, c.scale)); got != c.want {
			t.Errorf("appendScaled(%d, %d) = %q, want %q", c.coef, c.scale, got, c.want)
		}
	}
	grouped := []struct{ in, dot, comma string }{
		{"1234567.891", "1,234,567.891", "1.234.567,891"}, {"-1234", "-1,234", "-1.234"}, {"999", "999", "999"}, {"-0.5", "-0.5", "-0,5"},
	}
	for _, c := range grouped {
		if got := string(appendNumber(nil, c.in, '.', ',')); got != c.dot {
			t.Errorf("appendNumber(%q, .) = %q, want %q", c.in, got, c.dot)
		}
		if got := string(appendNumber(nil, []byte(c.in), ',', '.')); got != c.comma {
			t.Errorf("appendNumber(%q, ,) = %q, want %q", c.in, got, c.comma)
		}
	}
	metric := []struct {
		v            float64
		format, unit string
		want         string
	}{
		{0.125, "0.0", "percent", "12.5%"}, {0.12345, "0.00%", "ratio", "12.35%"}, {2.675, "0.00", "ratio", "2.68"},
		{-0.004, "0.00", "ratio", "0.00"}, {1234567.5, "#,##0", "count", "1,234,568"}, {31.25, "", "hours", "31.3"},
	}
	for _, c := range metric {
		if got := string(appendMetricNumber(nil, c.v, parseNumFormat(c.format, c.unit), '.', ',')); got != c.want {
			t.Errorf("%v as %q (%s) = %q, want %q", c.v, c.format, c.unit, got, c.want)
		}
	}
	labels := []struct {
		day, grain string
		fy         time.Month
		want       string
	}{
		{"2026-01-05", "week", time.January, "2026-01-05"}, {"2026-04-01", "quarter", time.January, "2026-Q2"},
		{"2026-04-01", "quarter", time.April, "2026-04–2026-06"}, {"2026-04-01", "year", time.April, "2026-04–2027-03"},
		{"2026-01-01", "year", time.January, "2026"}, {"2026-02-01", "month", time.April, "2026-02"},
	}
	for _, c := range labels {
		if got := periodLabel(c.day, c.grain, c.fy, false); got != c.want {
			t.Errorf("periodLabel(%s, %s, FY %v) = %q, want %q", c.day, c.grain, c.fy, got, c.want)
		}
	}
}

// TestMetricPercent: the metrics layer gives a percent metric as 0–100; the
// export writes it as a fraction (raw) or with a % sign (formatted), and its
// change in percentage points. gross_margin_pct, January 2026 in Berlin:
// revenue 350, cost 60 + 50 × 0.7 + 120 = 215, margin 135: 38.571… %;
// against November's 40 / 100: −1.4 pp; February: 3080 − 2040 = 1040 of
// 3080: 33.766… %, against December's 48 / 110: 43.6 %, −9.9 pp.
func TestMetricPercent(t *testing.T) {
	st, reg := fixture(t)
	p := params(t, reg, "gross_margin_pct", "from=2026-01-01&to=2026-02-28&grain=month&tz=Europe/Berlin&compare=previous")
	cases := []struct {
		raw  bool
		want []string
	}{
		{false, []string{`"Period (month, Europe/Berlin)",Gross margin % (%),Comparison period,"Gross margin %, previous period (%)",Change (pp),Target (%)`,
			"2026-01,38.6%,2025-11,40.0%,-1.4,", "2026-02,33.8%,2025-12,43.6%,-9.9,"}},
		{true, []string{`"Period start (month, Europe/Berlin)",Gross margin % (fraction),Comparison period,"Gross margin %, previous period (fraction)",Change (pp),Target (fraction)`,
			"2026-01-01,0.385714285714,2025-11-01,0.4,-1.4285714286000006,"}},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		if _, err := Metric(context.Background(), reg, st, "gross_margin_pct", p, &buf, Options{Raw: c.raw}); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(buf.String(), "\n")
		for i, want := range c.want {
			if lines[i] != want {
				t.Errorf("raw=%v line %d = %q, want %q", c.raw, i, lines[i], want)
			}
		}
	}
}
