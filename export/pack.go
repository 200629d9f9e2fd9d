package export

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/xuri/excelize/v2"

	"github.com/converge-dev/converge/metrics"
	convsql "github.com/converge-dev/converge/sql"
	"github.com/converge-dev/converge/warehouse"
)

// PackManifest describes a report pack. The zip holds it as manifest.json
// without the fields that describe the zip itself (file, sha256, bytes,
// generated_at), so the same pack of unchanged data has the same bytes; the
// caller writes the whole manifest next to the file (FILE.manifest.json).
type PackManifest struct {
	Converge string `json:"converge,omitempty"` // converge's version
	Kind     string `json:"kind"`               // "report"
	Report   string `json:"report"`             // finance-monthly
	Month    string `json:"month"`              // YYYY-MM
	File     string `json:"file,omitempty"`     // the pack's file name (set by the caller)
	Format   string `json:"format"`             // zip (of CSV files) or xlsx
	SHA256   string `json:"sha256,omitempty"`   // of the whole file, hex
	Bytes    int64  `json:"bytes,omitempty"`
	TimeZone string `json:"time_zone"`
	Currency string `json:"currency"`
	// Margin is the gross margin assumed where an order's cost is unknown (report.default_margin).
	Margin float64 `json:"default_margin"`
	// Params are each table's metric query parameters, as metrics.ParseParams reads them (roas:
	// its own args besides those).
	Params map[string]url.Values `json:"params"`
	// Files are the pack's tables: the CSV files of the zip (with their checksums) or the
	// sheets of the workbook.
	Files   []PackFile      `json:"files"`
	Metrics []MetricVersion `json:"metrics"`
	Options ManifestOptions `json:"options"`
	Sources []Watermark     `json:"sources"`
	// Reconciled is whether every check of the reconciliation table holds; Unreconciled
	// lists the metrics whose check failed.
	Reconciled   bool     `json:"reconciled"`
	Unreconciled []string `json:"unreconciled,omitempty"`
	// Warnings name the rows the pack's values leave out (rows in a currency that cannot be
	// converted to the report currency), once each, sorted.
	Warnings    []string  `json:"warnings,omitempty"`
	Took        string    `json:"took,omitempty"` // wall time of the computation (outside the zip)
	GeneratedAt time.Time `json:"generated_at,omitzero"`
}

// PackFile is one table of a pack.
type PackFile struct {
	Name     string `json:"name"` // by_month.csv, or the sheet "By month"
	Rows     int    `json:"rows"` // data rows, not the header
	SHA256   string `json:"sha256,omitempty"`
	Bytes    int64  `json:"bytes,omitempty"`
	Contents string `json:"contents"`
}

// PackFormat is the pack format for o: xlsx for XLSX, else zip.
func PackFormat(o Options) string {
	if o.Format == XLSX {
		return "xlsx"
	}
	return "zip"
}

// FinancePack writes the monthly finance pack of pp.Month to w: a zip of
// CSV files (o.Format CSV, the default) and manifest.json, or an XLSX
// workbook with one sheet per table (o.Format XLSX). o.MaxRows does not
// apply (the tables are small).
//
// Tables, each in the report time zone pp.TZ and the report currency:
//
//	by_month        the month asked and the 12 before it (a year-on-year trend), one row
//	                each, one column per metric: gross and net revenue, refunds, cost,
//	                gross margin and %, marketing spend, new customers (all, paid), active
//	                customers, CAC blended and paid, historic CLV, LTV:CAC, CAC payback,
//	                ROAS (pp.ROASModel), predictive CLV
//	by_channel      the month asked: one row per channel, then "Total" (the month's values
//	                as in by_month); predictive CLV has no channel and is left out
//	reconciliation  per metric: the month's total against the sum of its channels (those
//	                that add up: amounts and new customers) or against the ratio of the
//	                month's totals it is (CAC, margin %, LTV:CAC, payback, CLV weighted by
//	                new customers); why the others (active customers, ROAS) do not add up;
//	                net revenue = gross − refunds and gross margin = gross − cost − refunds
//	metrics         the definitions used: name, title, unit, version, formula, description
//
// The metrics are computed between two readings of their source tables'
// watermarks, and again (three times at most) when a load lands in between.
// Nothing in the file changes between runs on unchanged data: the same
// pack gives the same bytes. A failed reconciliation is stated in the table
// and the manifest (Reconciled false), not an error.
func FinancePack(ctx context.Context, reg *metrics.Registry, st *warehouse.Store, pp PackParams, w io.Writer, o Options) (*PackManifest, error) {
	start := time.Now()
	o.MaxRows = 0
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if pp.TZ == nil {
		pp.TZ = time.UTC
	}
	if pp.ROASModel == "" {
		pp.ROASModel = "last_touch"
	}
	if pp.Month.Year == 0 {
		return nil, &metrics.ParamError{Param: "month", Reason: "required (YYYY-MM)"}
	}
	if err := checkROASModel(reg, pp.ROASModel); err != nil {
		return nil, err
	}
	var d *packData
	before, err := steady(ctx, st, packSources(reg), "finance pack", func() (err error) {
		d, err = financeData(ctx, reg, pp)
		return err
	})
	if err != nil {
		return nil, err
	}
	tables, failed := financeTables(d, pp, &o)
	m := &PackManifest{Converge: o.Version, Kind: "report", Report: FinanceMonthly, Month: pp.Month.String(), Format: PackFormat(o),
		TimeZone: pp.TZ.String(), Currency: o.Currency, Margin: pp.Margin, Params: d.params, Metrics: financeVersions(reg, d),
		Options: o.manifest(), Sources: before, Reconciled: len(failed) == 0, Unreconciled: failed, Files: []PackFile{},
		Warnings: d.warnings}
	if m.Margin == 0 {
		m.Margin = metrics.DefaultMargin
	}
	cw := newCounter(w)
	if o.Format == XLSX {
		err = writeWorkbook(cw, tables, &o, m)
	} else {
		// The zip's entries are dated at the end of the month, so the bytes do not depend on
		// when the pack was made.
		err = writeZip(cw, tables, &o, m, pp.Month.Add(1).Start(pp.TZ))
	}
	if err != nil {
		return nil, err
	}
	m.SHA256, m.Bytes = cw.sum(), cw.n
	m.Took = time.Since(start).Round(time.Millisecond).String()
	m.GeneratedAt = time.Now().UTC()
	return m, nil
}

// checkROASModel refuses an attribution model the roas metric does not declare.
func checkROASModel(reg *metrics.Registry, model string) error {
	def, ok := reg.Get("roas")
	if !ok {
		return nil // financeData says roas is missing
	}
	for _, p := range def.Params {
		if p.Name == "model" && len(p.Allowed) > 0 && !slices.Contains(p.Allowed, model) {
			return &metrics.ParamError{Param: "roas_model", Reason: fmt.Sprintf("%q is not one of %s", model, strings.Join(p.Allowed, ", "))}
		}
	}
	return nil
}

// writeZip writes each table as a CSV entry, then manifest.json.
func writeZip(w io.Writer, tables []packTable, o *Options, m *PackManifest, modified time.Time) error {
	zw := zip.NewWriter(w)
	for _, t := range tables {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: t.file, Method: zip.Deflate, Modified: modified})
		if err != nil {
			return err
		}
		fc := newCounter(fw)
		n, _, _, err := writeRows(newCSVSink(fc, o), t.cols, &sliceSource{rows: t.rows}, 0, "")
		if err != nil {
			return fmt.Errorf("finance pack: %s: %w", t.file, err)
		}
		m.Files = append(m.Files, PackFile{Name: t.file, Rows: n, SHA256: fc.sum(), Bytes: fc.n, Contents: t.contents})
	}
	inner := *m
	inner.File, inner.SHA256, inner.Bytes, inner.Took, inner.GeneratedAt = "", "", 0, "", time.Time{}
	b, err := json.MarshalIndent(&inner, "", "  ")
	if err != nil {
		return err
	}
	fw, err := zw.CreateHeader(&zip.FileHeader{Name: "manifest.json", Method: zip.Deflate, Modified: modified})
	if err != nil {
		return err
	}
	if _, err := fw.Write(append(b, '\n')); err != nil {
		return err
	}
	return zw.Close()
}

// writeWorkbook writes each table as a sheet of one workbook.
func writeWorkbook(w io.Writer, tables []packTable, o *Options, m *PackManifest) error {
	f := excelize.NewFile()
	defer f.Close()
	for _, t := range tables {
		n, _, _, err := writeRows(newXLSXSheet(f, t.sheet, o), t.cols, &sliceSource{rows: t.rows}, 0, "")
		if err != nil {
			return fmt.Errorf("finance pack: sheet %s: %w", t.sheet, err)
		}
		m.Files = append(m.Files, PackFile{Name: t.sheet, Rows: n, Contents: t.contents})
	}
	// excelize writes the parts of several streamed sheets in no fixed order: put them in one.
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		return err
	}
	return canonicalZip(w, buf.Bytes())
}

// canonicalZip copies the zip b to w with its entries in a fixed order:
// [Content_Types].xml first (as Office writes it), then by name. The
// entries' bytes are copied as they are.
func canonicalZip(w io.Writer, b []byte) error {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return err
	}
	files := slices.Clone(zr.File)
	slices.SortFunc(files, func(a, b *zip.File) int {
		if (a.Name == "[Content_Types].xml") != (b.Name == "[Content_Types].xml") {
			if a.Name == "[Content_Types].xml" {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	zw := zip.NewWriter(w)
	for _, f := range files {
		if err := zw.Copy(f); err != nil {
			return err
		}
	}
	return zw.Close()
}

// PackMonths are the months that have orders (cancelled ones aside), in
// the report time zone tz, newest first; none for an empty store.
func PackMonths(ctx context.Context, st *warehouse.Store, tz *time.Location) ([]Month, error) {
	var first, last time.Time
	var n uint64
	qctx := clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{"tz": tz.String()}))
	if err := st.Conn.QueryRow(qctx, convsql.ExportQuery("pack_months")).Scan(&first, &last, &n); err != nil {
		return nil, fmt.Errorf("export: months with orders: %w", err)
	}
	if n == 0 {
		return nil, nil
	}
	var out []Month
	from := Month{first.Year(), first.Month()}
	for m := (Month{last.Year(), last.Month()}); m != from.Add(-1); m = m.Add(-1) {
		out = append(out, m)
	}
	return out, nil
}
