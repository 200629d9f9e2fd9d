package export

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// kind is the type of a cell's value.
type kind uint8

const (
	kNull    kind = iota
	kText         // s
	kInt          // i
	kUint         // u
	kFloat        // f
	kDecimal      // s: exact digits with a '.' ("123.4500"); f: approximately (XLSX)
	kScaled       // i × 10^-u: a Decimal that fits an int64 (no allocation)
	kDate         // t: a calendar date (its own y-m-d, no zone)
	kTime         // t: an instant, written in the report zone
	kBool         // i: 0 or 1
)

// cell is one value. Cells are reused from row to row (no allocation per
// value beyond the text the client scanned).
type cell struct {
	k  kind
	s  string
	i  int64
	u  uint64
	f  float64
	t  time.Time
	nf *numFormat // formatted output: this cell's number format, over its column's
}

// numFormat is how a metric's numbers are formatted: decimals, thousands
// separators, a percent (the value is a fraction, shown ×100 with "%").
type numFormat struct {
	decimals int
	group    bool
	percent  bool
	excel    string // the XLSX number format
}

// column is one column of the table an export writes.
type column struct {
	name    string
	num     *numFormat // metric values (formatted): how to format numbers; nil: generic
	date    bool       // holds dates (kDate)
	instant bool       // holds instants (kTime)
	prec    int        // instants: fractional second digits (DateTime64)
	numText bool       // text cells that are numbers as a page formats them (Text's numeric columns): not formula-guarded
}

// sink is a file format: a header, rows, an optional limit note.
type sink interface {
	header(cols []column) error
	row(cells []cell) error
	note(text string) error
	close() error
}

// source yields rows into cells; more reports, once next stopped at the
// limit, whether rows were left.
type source interface {
	next(cells []cell) (bool, error)
	more() bool
}

// write runs src through the sink for o.Format with the row limit, and
// fills m's file facts. The error is a *TruncatedError when the limit cut
// the result (the file and m are complete all the same).
func write(w io.Writer, cols []column, src source, o *Options, m *Manifest) error {
	cw := newCounter(w)
	var s sink = newCSVSink(cw, o)
	if o.Format == XLSX {
		s = newXLSXSink(cw, o)
	}
	limit, why := o.rowLimit()
	if t, ok := src.(totaler); ok && t.hasTotals() && o.Format == XLSX && limit == XLSXMaxRows {
		limit -= 2 // the totals note and row fit in the sheet too
	}
	n, truncated, totals, err := writeRows(s, cols, src, limit, why)
	if err != nil {
		return err
	}
	m.Format, m.Rows, m.Truncated, m.RowLimit, m.Totals = o.Format, n, truncated, limit, totals
	m.SHA256, m.Bytes = cw.sum(), cw.n
	m.Options = o.manifest()
	if truncated {
		return &TruncatedError{Rows: n, Limit: limit, Why: why}
	}
	return nil
}

// totaler is a source that may end with a totals row (a query WITH TOTALS), read once its
// rows are. The file holds it after the data rows (and before a limit note), below a line
// that says what it is (totalsNote): it is neither data nor counted in the rows.
type totaler interface {
	hasTotals() bool                   // the source may have a totals row
	totals(cells []cell) (bool, error) // the totals into cells; false: there are none
}

// totalsNote is the line above the totals row.
const totalsNote = "TOTALS: the next row is the query's totals (WITH TOTALS) over all its rows and not a data row; see the manifest."

// writeRows writes the header and src's rows (at most limit, 0: no limit)
// to s, then its totals row if it has one, the limit note when rows were left, and closes s.
// It returns the data rows written, whether the limit cut the result and whether a totals
// row was written.
func writeRows(s sink, cols []column, src source, limit int, why string) (int, bool, bool, error) {
	if err := s.header(cols); err != nil {
		return 0, false, false, err
	}
	cells := make([]cell, len(cols))
	n := 0
	for limit == 0 || n < limit {
		ok, err := src.next(cells)
		if err != nil {
			return n, false, false, err
		}
		if !ok {
			break
		}
		if err := s.row(cells); err != nil {
			return n, false, false, err
		}
		n++
	}
	truncated := limit > 0 && n == limit && src.more()
	totals := false
	if t, ok := src.(totaler); ok && t.hasTotals() {
		has, err := t.totals(cells)
		if err != nil {
			return n, truncated, false, err
		}
		if has {
			if err := s.note(totalsNote); err != nil {
				return n, truncated, false, err
			}
			if err := s.row(cells); err != nil {
				return n, truncated, false, err
			}
			totals = true
		}
	}
	if truncated {
		if err := s.note(limitNote(n, why)); err != nil {
			return n, true, totals, err
		}
	}
	return n, truncated, totals, s.close()
}

// rowLimit is the most data rows the file may hold (0: no limit) and why.
func (o *Options) rowLimit() (int, string) {
	if o.Format == XLSX && (o.MaxRows == 0 || o.MaxRows > XLSXMaxRows) {
		return XLSXMaxRows, "an XLSX sheet holds " + strconv.Itoa(XLSXMaxRows) + " data rows; export CSV for more"
	}
	return o.MaxRows, "max rows " + strconv.Itoa(o.MaxRows)
}

// roundHalfAway rounds x to dec decimals, halves away from zero (as the
// dashboard does).
func roundHalfAway(x float64, dec int) float64 {
	p := math.Pow10(dec)
	if r := math.Round(x*p) / p; !math.IsInf(r, 0) && !math.IsNaN(r) {
		return r
	}
	return x
}

// appendNumber appends the decimal text digits ("-1234.5", as strconv writes
// it) with the decimal separator dec and, when thou is not 0, thousands
// separators.
func appendNumber[T string | []byte](b []byte, digits T, dec, thou byte) []byte {
	if len(digits) == 0 {
		return b
	}
	if digits[0] == '-' {
		b = append(b, '-')
		digits = digits[1:]
	}
	intEnd := len(digits)
	for i := 0; i < len(digits); i++ {
		if digits[i] == '.' {
			intEnd = i
			break
		}
	}
	intPart := digits[:intEnd]
	if thou == 0 || len(intPart) <= 3 || !isDigits(intPart) {
		b = append(b, intPart...)
	} else {
		for i := 0; i < len(intPart); i++ {
			if i > 0 && (len(intPart)-i)%3 == 0 {
				b = append(b, thou)
			}
			b = append(b, intPart[i])
		}
	}
	if intEnd < len(digits) {
		b = append(b, dec)
		b = append(b, digits[intEnd+1:]...)
	}
	return b
}

// appendScaled appends the digits of coef × 10^-scale ("-0.05" for -5, 2).
func appendScaled(b []byte, coef int64, scale int) []byte {
	var tmp [24]byte
	d := strconv.AppendInt(tmp[:0], coef, 10)
	if coef < 0 {
		b = append(b, '-')
		d = d[1:]
	}
	if scale <= 0 {
		return append(b, d...)
	}
	if len(d) <= scale {
		b = append(b, '0', '.')
		for range scale - len(d) {
			b = append(b, '0')
		}
		return append(b, d...)
	}
	b = append(b, d[:len(d)-scale]...)
	b = append(b, '.')
	return append(b, d[len(d)-scale:]...)
}

func isDigits[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// formatFloat is the text of a float for raw output: shortest exact
// decimal, no exponent; NaN and ±Inf as ClickHouse writes them.
func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// parseNumFormat reads a metric's display format ("#,##0.00", "0.0%", "0")
// for its unit; an empty format gets the unit's default.
func parseNumFormat(format, unit string) *numFormat {
	if format == "" {
		switch unit {
		case "currency":
			format = "#,##0.00"
		case "count":
			format = "#,##0"
		case "percent", "score", "days", "hours", "minutes", "months":
			format = "0.0"
		default:
			format = "#,##0.00"
		}
	}
	nf := &numFormat{group: strings.Contains(format, ","), percent: unit == "percent" || strings.HasSuffix(format, "%")}
	if _, frac, ok := strings.Cut(strings.TrimSuffix(format, "%"), "."); ok {
		nf.decimals = strings.Count(frac, "0") + strings.Count(frac, "#")
	}
	nf.excel = format
	if nf.percent && !strings.HasSuffix(format, "%") {
		nf.excel += "%"
	}
	return nf
}

// timeLayout is the layout of an instant: RFC 3339 with the zone's offset
// (raw) or "2006-01-02 15:04:05" (formatted), with prec fractional digits.
func timeLayout(raw bool, prec int) string {
	l := "2006-01-02 15:04:05"
	if raw {
		l = "2006-01-02T15:04:05"
	}
	if prec > 0 {
		l += "." + strings.Repeat("0", prec)
	}
	if raw {
		l += "Z07:00"
	}
	return l
}

// unitLabel is how a header names a metric's unit.
func unitLabel(unit, currency string, raw bool) string {
	switch unit {
	case "currency":
		return currency
	case "percent":
		if raw {
			return "fraction"
		}
		return "%"
	case "":
		return "value"
	}
	return unit
}

// periodLabel labels the bucket starting on day (YYYY-MM-DD) for grain g:
// raw, the day itself; formatted, 2026-01-05 (day, week), 2026-01 (month),
// 2026-Q1 (quarter), 2026 (year), or a fiscal quarter or year by its months
// (2026-04–2026-06) when the fiscal year does not start in January.
func periodLabel(day, grain string, fyStart time.Month, raw bool) string {
	if raw || day == "" {
		return day
	}
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return day
	}
	months := map[string]int{"quarter": 3, "year": 12}[grain]
	switch {
	case grain == "month":
		return t.Format("2006-01")
	case months > 0 && fyStart > time.January:
		return t.Format("2006-01") + "–" + t.AddDate(0, months-1, 0).Format("2006-01")
	case grain == "quarter":
		return fmt.Sprintf("%d-Q%d", t.Year(), (int(t.Month())-1)/3+1)
	case grain == "year":
		return t.Format("2006")
	}
	return day
}
