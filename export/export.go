// Package export writes reconcilable files for finance: a metric's result
// (value by bucket, breakdown, comparison, target, total), a read-only SQL
// query's rows, or a report pack (FinancePack: the monthly finance pack, a
// ZIP of CSV files or a workbook), as CSV or XLSX, each with a manifest that
// says what produced it. It imports warehouse (the store, the read-only console), metrics
// (definitions and results) and sql (its named queries); it is meant for
// cmd/converge and server, and imports neither.
//
// # Files
//
// CSV is UTF-8, RFC 4180 quoting (a field is quoted when it holds the
// delimiter, a quote, CR or LF, or starts or ends with a space), one header
// row, lines ending in LF (CRLF with CRLF or the excel preset). Options:
//
//	Raw        values for machines: full precision, no thousands separators, a
//	           percent as a fraction (0.125), bucket start dates (2026-01-01),
//	           instants in RFC 3339 with the report zone's offset
//	formatted  values as the dashboard shows them (the default): the metric's
//	           format ("#,##0.00", "0.0" …; a percent as 12.5%), thousands
//	           separators, periods labelled by grain (2026-01, 2026-Q1, 2026;
//	           a fiscal quarter or year as its months 2026-04–2026-06), instants
//	           as 2026-01-05 14:30:00 in the report zone
//	Delimiter  ',' (default), ';', tab or '|'
//	Decimal    '.' (default) or ','; the thousands separator is then '.' (and ','
//	           with '.'); the decimal separator may not be the delimiter
//	BOM        a UTF-8 byte order mark first, so Excel reads UTF-8
//	Preset     "excel": BOM + CRLF + the configured delimiter and decimal
//	           separator
//	CSVRaw     CSV for programs: text cells byte for byte, without the
//	           formula guard below
//
// CSV is meant for spreadsheets unless CSVRaw says otherwise, so a text cell
// a spreadsheet would run as a formula (starting with = + - @ tab or CR, as
// OWASP's CSV Injection page lists them: =HYPERLINK(…), +cmd|…) gets a
// leading apostrophe, in every CSV (metric, query, table, report pack) and in
// the header. Which cells are text is decided by the column's type, never by
// the value: numbers, Decimals, dates and instants are written as they are
// (-12.5 stays a number), a String column's "-12.5" is text and guarded. XLSX
// cells are typed (text is never a formula) and are not changed.
//
// Excel opens a CSV with the list separator and decimal symbol of the
// computer's region. In en-US, en-GB, en-AU, ja-JP, zh-CN … that is comma and
// point, the defaults: use Preset excel alone. In de-DE, fr-FR, es-ES, it-IT,
// nl-NL, pt-BR, ru-RU, pl-PL … it is semicolon and comma: use Preset excel
// with Delimiter ';' and Decimal ','. (A semicolon by default would be wrong
// for the first group; the region is the reader's, not the server's, so it is
// the caller's choice.)
//
// Headers carry units: "Gross revenue (EUR)" (the report currency), "Churn
// rate (%)" (formatted) or "(fraction)" (raw), "Orders (count)", and the
// period column names its grain and time zone: "Period (month,
// Europe/Berlin)". Buckets are calendar periods in the report time zone.
//
// XLSX (excelize's streaming writer) holds the same table in one sheet with
// typed cells: numbers as numbers (formatted: the metric's number format;
// raw: General), dates as dates, and at most 1,048,574 data rows (a sheet's
// 1,048,576 rows less the header and the limit note).
//
// # Row limit
//
// Options.MaxRows (and XLSX's sheet size) is never applied quietly: when a
// result has more rows, the file ends with one more line (a single CSV field,
// or a row in column A) "TRUNCATED: first N rows of more …", the manifest
// says truncated: true with the limit, and the export returns a
// *TruncatedError (errors.Is ErrTruncated) after writing everything else.
//
// # Totals
//
// A query WITH TOTALS (export.SQL) ends with its totals row after the data rows (and before a
// TRUNCATED line), below a line of one field "TOTALS: …" that says what it is; the manifest
// says totals: true, and rows counts the data rows only.
//
// # Manifest
//
// Each export returns a Manifest (the CLI writes it as FILE.manifest.json):
// the metrics and the versions of their definitions (inputs of derived
// metrics too), or the SQL; the query parameters (enough to re-run it), the
// time zone, the options, each source table's data watermark (latest
// loaded_at and the ingest run that wrote it, last part change), the row
// count, the SHA-256 and size of the file's bytes, and generated_at. The file
// itself holds nothing that changes between runs, so the same export of
// unchanged data gives the same bytes and the same SHA-256.
//
// Rows are streamed: a query's rows are scanned and written one at a time
// through a buffered writer, so memory does not grow with the row count.
package export

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/converge-dev/converge/metrics"
)

// Format is the file format.
type Format string

// Formats.
const (
	CSV  Format = "csv"
	XLSX Format = "xlsx"
)

// Options control how an export is written.
type Options struct {
	Format    Format         // CSV (default) or XLSX
	Raw       bool           // raw values (see the package doc), else formatted
	Delimiter rune           // CSV field separator: ',' (default), ';', '\t', '|'
	Decimal   rune           // decimal separator: '.' (default) or ','
	BOM       bool           // CSV: UTF-8 byte order mark first
	CRLF      bool           // CSV: lines end in CR LF
	Preset    string         // "" or "excel" (BOM, CRLF)
	CSVRaw    bool           // CSV for programs: text cells as they are, without the formula guard (see the package doc)
	MaxRows   int            // data rows at most; 0 means no limit
	Currency  string         // ISO code shown for currency metrics (report.currency); default EUR
	TZ        *time.Location // zone instants of SQL results are written in; default UTC (metric exports use the query's zone)
	Version   string         // converge's version, recorded in the manifest
}

// XLSXMaxRows is the most data rows an XLSX export holds: a sheet's 1,048,576
// rows less the header and the limit note.
const XLSXMaxRows = 1_048_576 - 2

// Validate checks the options and fills the defaults.
func (o *Options) Validate() error {
	switch o.Format {
	case "":
		o.Format = CSV
	case CSV, XLSX:
	default:
		return fmt.Errorf("format: %q is not csv or xlsx", o.Format)
	}
	switch o.Preset {
	case "":
	case "excel":
		o.BOM, o.CRLF = true, true
	default:
		return fmt.Errorf("preset: %q is not excel", o.Preset)
	}
	if o.CSVRaw && o.Format != CSV {
		return fmt.Errorf("csv_raw: only for CSV (%s cells are typed: text is never run as a formula)", o.Format)
	}
	if o.CSVRaw && o.Preset == "excel" {
		return errors.New("csv_raw: raw CSV is for programs, the excel preset for Excel (which needs its text formula-safe): choose one")
	}
	if o.Delimiter == 0 {
		o.Delimiter = ','
	}
	if o.Decimal == 0 {
		o.Decimal = '.'
	}
	switch o.Delimiter {
	case ',', ';', '\t', '|':
	default:
		return fmt.Errorf("delimiter: %q is not one of , ; tab |", o.Delimiter)
	}
	switch o.Decimal {
	case '.', ',':
	default:
		return fmt.Errorf("decimal: %q is not . or ,", o.Decimal)
	}
	if o.Decimal == o.Delimiter {
		return fmt.Errorf("decimal: %q is also the delimiter (use --delimiter ';' with --decimal ',')", o.Decimal)
	}
	if o.MaxRows < 0 {
		return fmt.Errorf("max rows: %d is negative (0 means no limit)", o.MaxRows)
	}
	if o.Currency == "" {
		o.Currency = "EUR"
	}
	o.Currency = strings.ToUpper(o.Currency)
	if o.TZ == nil {
		o.TZ = time.UTC
	}
	return nil
}

// thousands is the thousands separator that goes with the decimal separator.
func (o *Options) thousands() byte {
	if o.Decimal == ',' {
		return '.'
	}
	return ','
}

// ErrTruncated is what a *TruncatedError matches with errors.Is.
var ErrTruncated = errors.New("export: row limit reached")

// TruncatedError is an export cut at its row limit. The file and the
// manifest were written and say so.
type TruncatedError struct {
	Rows  int    // data rows written
	Limit int    // the limit in force
	Why   string // which limit: "max rows" or the XLSX sheet size
}

func (e *TruncatedError) Error() string {
	return fmt.Sprintf("export: the result has more than %d rows (%s); the file holds the first %d and says so", e.Limit, e.Why, e.Rows)
}

// Is makes errors.Is(err, ErrTruncated) true.
func (e *TruncatedError) Is(target error) bool { return target == ErrTruncated }

// Manifest describes one export: what produced the file and its checksum.
type Manifest struct {
	Converge  string          `json:"converge,omitempty"` // converge's version
	Kind      string          `json:"kind"`               // "metric" or "sql"
	File      string          `json:"file,omitempty"`     // the data file's name (set by the caller)
	Format    Format          `json:"format"`
	SHA256    string          `json:"sha256"` // of the file's bytes, hex
	Bytes     int64           `json:"bytes"`
	Rows      int             `json:"rows"` // data rows (not the header or the limit note)
	Truncated bool            `json:"truncated"`
	Totals    bool            `json:"totals,omitempty"`    // sql: the file ends with the query's WITH TOTALS row, below a TOTALS line (not counted in rows)
	RowLimit  int             `json:"row_limit,omitempty"` // the limit in force (0: none)
	Metrics   []MetricVersion `json:"metrics,omitempty"`
	Query     string          `json:"query,omitempty"`          // sql: the statement run
	Params    url.Values      `json:"params,omitempty"`         // metric: the query parameters, as metrics.ParseParams reads them
	Margin    float64         `json:"default_margin,omitempty"` // metric: gross margin assumed where an order's cost is unknown (report.default_margin)
	TimeZone  string          `json:"time_zone"`
	Options   ManifestOptions `json:"options"`
	Sources   []Watermark     `json:"sources"`
	// Warnings name the rows the metric's values leave out (rows in a currency that cannot be
	// converted to the report currency), as the metrics layer gives them.
	Warnings    []metrics.Warning `json:"warnings,omitempty"`
	GeneratedAt time.Time         `json:"generated_at"`
}

// MetricVersion names a metric definition and its version (a hash of its file).
type MetricVersion struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Title   string `json:"title,omitempty"`
	Unit    string `json:"unit,omitempty"`
	File    string `json:"file,omitempty"`
}

// ManifestOptions are the Options that shaped the bytes.
type ManifestOptions struct {
	Raw       bool   `json:"raw"`
	Delimiter string `json:"delimiter,omitempty"`
	Decimal   string `json:"decimal"`
	BOM       bool   `json:"bom,omitempty"`
	CRLF      bool   `json:"crlf,omitempty"`
	Preset    string `json:"preset,omitempty"`
	CSVRaw    bool   `json:"csv_raw,omitempty"` // text cells unguarded (CSV for programs)
	Currency  string `json:"currency,omitempty"`
	MaxRows   int    `json:"max_rows,omitempty"`
}

func (o *Options) manifest() ManifestOptions {
	m := ManifestOptions{Raw: o.Raw, Decimal: string(o.Decimal), Preset: o.Preset, Currency: o.Currency, MaxRows: o.MaxRows}
	if o.Format == CSV {
		m.Delimiter, m.BOM, m.CRLF, m.CSVRaw = string(o.Delimiter), o.BOM, o.CRLF, o.CSVRaw
	}
	return m
}

// counter hashes and counts what is written through it.
type counter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func newCounter(w io.Writer) *counter { return &counter{w: w, h: sha256.New()} }

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

func (c *counter) sum() string { return hex.EncodeToString(c.h.Sum(nil)) }

// limitNote is the last line of a truncated file.
func limitNote(rows int, why string) string {
	return fmt.Sprintf("TRUNCATED: first %d rows of more; the export stopped at its row limit (%s). This file is incomplete; see the manifest.", rows, why)
}
