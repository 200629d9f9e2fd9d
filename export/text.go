package export

import (
	"io"
	"iter"
	"time"
)

// Text writes a table of text cells, such as a dashboard table as its page shows it (numbers
// already formatted), as CSV or XLSX (every cell a text cell), streaming: rows are written as
// they come from rows. With o.MaxRows (or past an XLSX sheet's size) the file is cut and says
// so, as every export does; the error is then a *TruncatedError, after the file is complete.
// A row shorter than head is padded with empty cells, a longer one cut to head's length.
// numeric[i] says that column i holds numbers as the page formats them (1,234.50, -12.5%,
// -€3.20): in CSV those cells are written as they are, while every other cell is text and a
// text a spreadsheet would run as a formula gets a leading apostrophe (see FormulaRisk; the
// header too), unless o.CSVRaw. A column past numeric's length is text.
// The manifest is of kind "table" and names no query: the caller sets what produced it.
func Text(w io.Writer, head []string, numeric []bool, rows iter.Seq2[[]string, error], o Options) (*Manifest, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	cols := make([]column, len(head))
	for i, h := range head {
		cols[i] = column{name: h, numText: i < len(numeric) && numeric[i]}
	}
	next, stop := iter.Pull2(rows)
	defer stop()
	src := &textSource{pullFn: next}
	m := &Manifest{Kind: "table", Converge: o.Version, TimeZone: o.TZ.String(), Sources: []Watermark{}}
	err := write(w, cols, src, &o, m)
	m.GeneratedAt = time.Now().UTC()
	if err == nil {
		err = src.err
	}
	return m, err
}

// textSource yields the rows of an iterator as text cells.
type textSource struct {
	pullFn func() ([]string, error, bool)
	peeked []string
	err    error
}

func (s *textSource) pull() ([]string, bool) {
	if s.peeked != nil {
		r := s.peeked
		s.peeked = nil
		return r, true
	}
	if s.err != nil {
		return nil, false
	}
	r, err, ok := s.pullFn()
	if !ok {
		return nil, false
	}
	if err != nil {
		s.err = err
		return nil, false
	}
	if r == nil {
		r = []string{}
	}
	return r, true
}

func (s *textSource) next(cells []cell) (bool, error) {
	r, ok := s.pull()
	if !ok {
		return false, s.err
	}
	for i := range cells {
		cells[i] = cell{}
		if i < len(r) && r[i] != "" {
			cells[i] = cell{k: kText, s: r[i]}
		}
	}
	return true, nil
}

func (s *textSource) more() bool {
	r, ok := s.pull()
	s.peeked = r
	return ok
}
