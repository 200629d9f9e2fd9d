package export

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"
)

// sheetName is the name of the one sheet of an XLSX export.
const sheetName = "Export"

// xlsxSink writes one sheet with excelize's streaming writer (rows go to a
// temporary file past a few MiB, not to memory): the only sheet of a
// workbook it writes to w, or one sheet of a workbook its caller writes.
type xlsxSink struct {
	w      io.Writer // nil: the sheet belongs to a workbook the caller writes
	o      *Options
	f      *excelize.File
	sheet  string
	sw     *excelize.StreamWriter
	styles []int // per column: the style of its values (0: none)
	cell   map[string]int
	vals   []any
	n      int
}

func newXLSXSink(w io.Writer, o *Options) *xlsxSink {
	return &xlsxSink{w: w, o: o, f: excelize.NewFile(), sheet: sheetName}
}

// newXLSXSheet writes a sheet called name into workbook f (the first one
// takes the place of the new workbook's empty Sheet1); the caller writes f.
func newXLSXSheet(f *excelize.File, name string, o *Options) *xlsxSink {
	return &xlsxSink{o: o, f: f, sheet: name}
}

func (s *xlsxSink) header(cols []column) error {
	if i, _ := s.f.GetSheetIndex("Sheet1"); i >= 0 {
		if err := s.f.SetSheetName("Sheet1", s.sheet); err != nil {
			return err
		}
	} else if _, err := s.f.NewSheet(s.sheet); err != nil {
		return err
	}
	sw, err := s.f.NewStreamWriter(s.sheet)
	if err != nil {
		return err
	}
	s.sw = sw
	// The header row stays in view while scrolling.
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	bold, err := s.f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return err
	}
	head := make([]any, len(cols))
	s.styles = make([]int, len(cols))
	for i, c := range cols {
		head[i] = excelize.Cell{StyleID: bold, Value: c.name}
		width := float64(min(max(len(c.name)+2, 12), 60))
		if err := sw.SetColWidth(i+1, i+1, width); err != nil {
			return err
		}
		var format string
		switch {
		case c.num != nil && !s.o.Raw:
			format = c.num.excel
		case c.instant:
			format = "yyyy-mm-dd hh:mm:ss"
			if c.prec > 0 {
				format += "." + strings.Repeat("0", min(c.prec, 3))
			}
		case c.date:
			format = "yyyy-mm-dd"
		}
		if format != "" {
			if s.styles[i], err = s.f.NewStyle(&excelize.Style{CustomNumFmt: &format}); err != nil {
				return err
			}
		}
	}
	s.vals = make([]any, len(cols))
	s.n = 1
	return sw.SetRow("A1", head)
}

func (s *xlsxSink) row(cells []cell) error {
	for i := range cells {
		c := &cells[i]
		var v any
		switch c.k {
		case kText:
			v = strings.ToValidUTF8(c.s, "\uFFFD")
		case kInt:
			v = c.i
		case kUint:
			v = c.u
		case kBool:
			v = c.i == 1
		case kDecimal:
			v = c.f
		case kScaled:
			v = float64(c.i) / math.Pow10(int(c.u))
		case kFloat:
			v = c.f
			if math.IsNaN(c.f) || math.IsInf(c.f, 0) {
				v = formatFloat(c.f) // Excel has no NaN or infinity
			}
		case kDate:
			v = time.Date(c.t.Year(), c.t.Month(), c.t.Day(), 0, 0, 0, 0, time.UTC)
		case kTime:
			// Excel has no time zones: the wall clock in the report zone.
			t := c.t.In(s.o.TZ)
			v = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
		}
		st := s.styles[i]
		if c.nf != nil && !s.o.Raw && (c.k == kFloat || c.k == kInt) {
			var err error
			if st, err = s.cellStyle(c.nf.excel); err != nil {
				return err
			}
		}
		if st != 0 && v != nil {
			v = excelize.Cell{StyleID: st, Value: v}
		}
		s.vals[i] = v
	}
	s.n++
	return s.sw.SetRow(cellName(s.n), s.vals)
}

func (s *xlsxSink) note(text string) error {
	s.n++
	return s.sw.SetRow(cellName(s.n), []any{text})
}

// cellStyle is the style of a cell with its own number format, made once
// per format.
func (s *xlsxSink) cellStyle(format string) (int, error) {
	if id, ok := s.cell[format]; ok {
		return id, nil
	}
	id, err := s.f.NewStyle(&excelize.Style{CustomNumFmt: &format})
	if err != nil {
		return 0, err
	}
	if s.cell == nil {
		s.cell = map[string]int{}
	}
	s.cell[format] = id
	return id, nil
}

func (s *xlsxSink) close() error {
	if s.w == nil {
		return s.sw.Flush()
	}
	defer s.f.Close()
	if err := s.sw.Flush(); err != nil {
		return err
	}
	return s.f.Write(s.w)
}

func cellName(row int) string { return fmt.Sprintf("A%d", row) }
