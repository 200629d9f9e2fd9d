package export

import (
	"bufio"
	"io"
	"strconv"
	"time"
)

// csvSink writes RFC 4180 CSV through a buffered writer, one row at a time.
type csvSink struct {
	w      *bufio.Writer
	o      *Options
	cols   []column
	delim  byte
	dec    byte
	thou   byte // thousands separator of formatted numbers
	eol    string
	guard  bool // prefix text a spreadsheet would run as a formula (see FormulaRisk)
	line   []byte
	field  []byte
	num    []byte
	layout []string // per column: the layout of instants
}

func newCSVSink(w io.Writer, o *Options) *csvSink {
	s := &csvSink{w: bufio.NewWriterSize(w, 256<<10), o: o, delim: byte(o.Delimiter), dec: byte(o.Decimal), eol: "\n", guard: !o.CSVRaw}
	if !o.Raw {
		s.thou = o.thousands()
	}
	if o.CRLF {
		s.eol = "\r\n"
	}
	return s
}

func (s *csvSink) header(cols []column) error {
	s.cols = cols
	if s.o.BOM {
		s.w.WriteString("\ufeff")
	}
	s.line = s.line[:0]
	for i, c := range cols {
		if i > 0 {
			s.line = append(s.line, s.delim)
		}
		s.field = s.appendText(s.field[:0], c.name)
		s.line = s.appendField(s.line, s.field)
		s.layout = append(s.layout, timeLayout(s.o.Raw, c.prec))
	}
	s.line = append(s.line, s.eol...)
	_, err := s.w.Write(s.line)
	return err
}

func (s *csvSink) row(cells []cell) error {
	s.line = s.line[:0]
	for i := range cells {
		if i > 0 {
			s.line = append(s.line, s.delim)
		}
		s.field = s.appendValue(s.field[:0], &s.cols[i], &cells[i], i)
		s.line = s.appendField(s.line, s.field)
	}
	s.line = append(s.line, s.eol...)
	_, err := s.w.Write(s.line)
	return err
}

func (s *csvSink) note(text string) error {
	s.line = s.appendField(s.line[:0], append(s.field[:0], text...))
	s.line = append(s.line, s.eol...)
	_, err := s.w.Write(s.line)
	return err
}

func (s *csvSink) close() error { return s.w.Flush() }

// appendValue appends the text of c (unquoted).
func (s *csvSink) appendValue(b []byte, col *column, c *cell, i int) []byte {
	switch c.k {
	case kNull:
		return b
	case kText:
		if col.numText { // a column of numbers as the page formats them (-12.5, -€3.20): not text
			return append(b, c.s...)
		}
		return s.appendText(b, c.s)
	case kInt: // no thousands separators: integers are often ids or years
		return strconv.AppendInt(b, c.i, 10)
	case kUint:
		return strconv.AppendUint(b, c.u, 10)
	case kBool:
		return strconv.AppendInt(b, c.i, 10)
	case kDecimal:
		return appendNumber(b, c.s, s.dec, s.thou)
	case kScaled:
		if s.thou == 0 && s.dec == '.' {
			return appendScaled(b, c.i, int(c.u))
		}
		s.num = appendScaled(s.num[:0], c.i, int(c.u))
		return appendNumber(b, s.num, s.dec, s.thou)
	case kFloat:
		nf := col.num
		if c.nf != nil {
			nf = c.nf
		}
		if nf != nil && !s.o.Raw {
			return appendMetricNumber(b, c.f, nf, s.dec, s.thou)
		}
		if s.thou == 0 && s.dec == '.' {
			return append(b, formatFloat(c.f)...)
		}
		return appendNumber(b, formatFloat(c.f), s.dec, s.thou)
	case kDate:
		return c.t.AppendFormat(b, time.DateOnly)
	case kTime:
		return c.t.In(s.o.TZ).AppendFormat(b, s.layout[i])
	}
	return b
}

// appendText appends a text cell: with the guard, one a spreadsheet would run as a formula
// gets a leading apostrophe.
func (s *csvSink) appendText(b []byte, text string) []byte {
	if s.guard && FormulaRisk(text) {
		b = append(b, '\'')
	}
	return append(b, text...)
}

// FormulaRisk tells whether a spreadsheet opening a CSV would take text as a formula: it
// starts with = + - @, a tab or a carriage return (OWASP, CSV Injection). Such a text cell is
// written with a leading apostrophe (GuardText) unless the export is raw CSV for programs
// (Options.CSVRaw). Only text cells are guarded: numbers, dates and instants are written as
// they are (-12.5 stays a number), whatever their text looks like; which cells are text is
// decided by the column's type, never by the value.
func FormulaRisk(text string) bool {
	if text == "" {
		return false
	}
	switch text[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return true
	}
	return false
}

// GuardText is text as a CSV meant for spreadsheets holds it: with a leading apostrophe when
// FormulaRisk says a spreadsheet would run it. For CSV writers outside this package (the CLI's
// text output), applied to text cells only.
func GuardText(text string) string {
	if FormulaRisk(text) {
		return "'" + text
	}
	return text
}

// appendMetricNumber formats a metric value by its display format.
func appendMetricNumber(b []byte, f float64, nf *numFormat, dec, thou byte) []byte {
	if nf.percent {
		f *= 100
	}
	f = roundHalfAway(f, nf.decimals)
	if f == 0 {
		f = 0 // no "-0"
	}
	g := thou
	if !nf.group {
		g = 0
	}
	b = appendNumber(b, strconv.FormatFloat(f, 'f', nf.decimals, 64), dec, g)
	if nf.percent {
		b = append(b, '%')
	}
	return b
}

// appendField appends field to b, quoted when it holds the delimiter, a
// quote, CR or LF, or starts or ends with a space.
func (s *csvSink) appendField(b, field []byte) []byte {
	quote := len(field) > 0 && (field[0] == ' ' || field[len(field)-1] == ' ')
	for _, c := range field {
		if c == s.delim || c == '"' || c == '\n' || c == '\r' {
			quote = true
			break
		}
	}
	if !quote {
		return append(b, field...)
	}
	b = append(b, '"')
	for _, c := range field {
		if c == '"' {
			b = append(b, '"')
		}
		b = append(b, c)
	}
	return append(b, '"')
}
