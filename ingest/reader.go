package ingest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"
)

// DefaultMaxFieldBytes is the largest field accepted; a larger one rejects its record.
const DefaultMaxFieldBytes = 1 << 20

// DefaultMaxRecordBytes is the largest record (CSV/TSV record, NDJSON line)
// read; a longer one is rejected as too_long while it is read.
const DefaultMaxRecordBytes = 4 << 20

// maxRawBytes bounds the raw record kept in quarantine.
const maxRawBytes = 64 << 10

// recordError is a record that could not be parsed at all (bad quoting, bad JSON).
type recordError struct {
	line   int64
	field  string
	code   string
	reason string
	raw    fmt.Stringer
}

func (e *recordError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.reason) }

// source yields the records of one file.
type source interface {
	// columns of the source (the header, or NDJSON keys as they appear)
	columns() *columns
	// next returns the next record (values by column index), its line and raw
	// text; a *recordError for a record that cannot be parsed; io.EOF at the end.
	next() (rec []string, line int64, raw fmt.Stringer, err error)
}

// countingReader counts the bytes read from the file (compressed bytes for
// gzip, for progress against the file size) and hashes them.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
	h hash.Hash
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	c.h.Write(p[:n])
	return n, err
}

// openInput wraps a file: counts and hashes its bytes, and decompresses gzip
// (detected by its magic bytes, whatever the file is called).
// The returned raw reader is the counted file itself, for draining the rest
// of it into the hash.
func openInput(r io.Reader, counter *atomic.Int64) (io.Reader, hash.Hash, io.Reader, error) {
	cr := &countingReader{r: r, n: counter, h: sha256.New()}
	br := bufio.NewReaderSize(cr, 256<<10)
	magic, err := br.Peek(2)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, nil, nil, err
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("gzip: %w", err)
		}
		return bufio.NewReaderSize(zr, 256<<10), cr.h, cr, nil
	}
	return br, cr.h, cr, nil
}

// ErrEmptyFile is returned for a file with no header.
var ErrEmptyFile = errors.New("empty file: no header line")

// csvSource reads CSV/TSV with encoding/csv, keeping each record's raw text.
// Its input is bounded per record while it is read (boundedReader, or
// unquote's line limit for files without quoting): a record longer than
// limit bytes is rejected as too_long and skipped, never held whole.
type csvSource struct {
	r      *csv.Reader
	tee    *rawTee
	bound  *boundedReader // files with quoting
	unq    *unquote       // files without quoting (quote: none)
	limit  int
	cols   *columns
	prev   int64
	skip   int64 // lines consumed before the csv reader (skip_lines)
	noHead bool
	first  []string
	nl     int64 // line ends in the raw text of the records read so far (header included)
	skips  int64 // records skipped for being too long
}

// rawTee keeps the bytes the csv reader consumed since the last record.
type rawTee struct {
	r    io.Reader
	buf  []byte
	base int64 // input offset of buf[0]
}

func (t *rawTee) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.buf = append(t.buf, p[:n]...)
	return n, err
}

// rawString is a raw record held as a string.
type rawString string

func (r rawString) String() string { return string(r) }

// rawText is the raw record without its line end. It refers to the tee's
// buffer, valid until the next record is read: convert it only when kept.
type rawText []byte

func (r rawText) String() string { return strings.TrimRight(string(r), "\r\n") }

func (t *rawTee) take(from, to int64) rawText {
	if from < t.base || to-t.base > int64(len(t.buf)) || from > to {
		return nil
	}
	s := t.buf[from-t.base : to-t.base]
	// drop what is consumed now and then, keep the read-ahead
	if to-t.base > 256<<10 {
		rest := copy(t.buf, t.buf[to-t.base:])
		t.buf = t.buf[:rest]
		t.base = to
	}
	return rawText(s)
}

// unquotedText is the raw text of a record of a file without quoting, as
// unquote rewrote it for encoding/csv: the original line is given back by
// undoing that (each field lost its added quotes, "" is " again).
type unquotedText struct {
	b     rawText
	delim string
}

func (u unquotedText) String() string {
	fields := strings.Split(u.b.String(), u.delim)
	for i, f := range fields {
		f = strings.TrimSuffix(strings.TrimPrefix(f, `"`), `"`)
		fields[i] = strings.ReplaceAll(f, `""`, `"`)
	}
	return strings.Join(fields, u.delim)
}

func newCSVSource(r io.Reader, m *Mapping, format string, limit int) (*csvSource, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	if m.CSV.BOM != "keep" {
		if b, _ := br.Peek(3); bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
			_, _ = br.Discard(3)
		}
	}
	var skipped int64
	for range m.CSV.SkipLines {
		if err := discardLine(br); err != nil {
			break
		}
		skipped++
	}
	delim, _ := m.CSV.delimiter(format)
	s := &csvSource{skip: skipped, noHead: m.CSV.NoHeader, limit: limit}
	if m.CSV.Quote == "none" {
		s.unq = &unquote{r: br, delim: delim, limit: limit}
		s.tee = &rawTee{r: s.unq}
	} else {
		s.bound = newBoundedReader(br, limit, true)
		s.tee = &rawTee{r: s.bound}
	}
	cr := csv.NewReader(s.tee)
	cr.Comma = delim
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = m.CSV.LazyQuotes
	cr.ReuseRecord = true
	s.r = cr
	hdr, err := cr.Read()
	if err == io.EOF {
		return nil, ErrEmptyFile
	}
	if errors.Is(err, errRecordTooLong) || (s.bound != nil && s.bound.tripped) {
		return nil, fmt.Errorf("header (line %d): %s", skipped+1, tooLongReason(limit))
	}
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	s.nl += int64(bytes.Count(s.tee.take(0, cr.InputOffset()), []byte{'\n'}))
	s.prev = cr.InputOffset()
	if s.bound != nil {
		s.bound.setStart(s.prev)
	}
	names := make([]string, len(hdr))
	if s.noHead {
		for i := range hdr {
			names[i] = strconv.Itoa(i + 1)
		}
		s.first = append([]string(nil), hdr...)
	} else {
		for i, h := range hdr {
			if !utf8.ValidString(h) {
				return nil, fmt.Errorf("header column %d is not valid UTF-8", i+1)
			}
			names[i] = strings.TrimSpace(h)
		}
	}
	s.cols = newColumns(names, true)
	return s, nil
}

func (s *csvSource) columns() *columns { return s.cols }

// lineShift is what encoding/csv's line count misses: the line ends of the
// too-long records thrown away, less the one line it counted for each.
func (s *csvSource) lineShift() int64 {
	if s.bound == nil {
		return 0 // unquote drops a too-long line whole; csv counts it as one
	}
	return s.bound.skipNL - s.skips
}

func (s *csvSource) next() ([]string, int64, fmt.Stringer, error) {
	if s.first != nil {
		rec := s.first
		s.first = nil
		return rec, 1 + s.skip, rawString(""), nil
	}
	shift := s.lineShift()
	rec, err := s.r.Read()
	off := s.r.InputOffset()
	raw := s.tee.take(s.prev, off)
	s.prev = off
	nlBefore := s.nl
	s.nl += int64(bytes.Count(raw, []byte{'\n'}))
	if s.bound != nil {
		s.bound.setStart(off)
	}
	if errors.Is(err, errRecordTooLong) || (s.bound != nil && s.bound.tripped) {
		return s.tooLong(raw, nlBefore)
	}
	var rs fmt.Stringer = raw
	if s.unq != nil {
		rs = unquotedText{b: raw, delim: string(s.r.Comma)}
	}
	if err == io.EOF {
		return nil, 0, rs, io.EOF
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			line := int64(pe.StartLine) + s.skip + shift
			return nil, line, rs, &recordError{line: line, code: "bad_csv",
				reason: fmt.Sprintf("line %d column %d: %v", int64(pe.Line)+s.skip+shift, pe.Column, pe.Err), raw: rs}
		}
		return nil, 0, rs, err
	}
	line, _ := s.r.FieldPos(0)
	return rec, int64(line) + s.skip + shift, rs, nil
}

// tooLong rejects the record that went over the limit and skips the rest of
// it. raw is the part of it read (with any blank lines before it); nlBefore
// the line ends before that part.
func (s *csvSource) tooLong(raw rawText, nlBefore int64) ([]string, int64, fmt.Stringer, error) {
	var kept rawString
	line := 1 + s.skip + nlBefore
	if s.bound != nil {
		line += s.bound.skipNL
		lead := len(raw) - len(bytes.TrimLeft(raw, "\r\n"))
		line += int64(bytes.Count(raw[:lead], []byte{'\n'}))
		kept = truncatedRaw(raw[lead:], s.limit)
		s.bound.skip(bytes.Count(raw, []byte{'"'})%2 == 1)
		s.skips++
	} else {
		line += s.unq.dropped - 1 // this one is counted already
		kept = truncatedRaw(s.unq.cut, s.limit)
	}
	return nil, line, kept, &recordError{line: line, code: "too_long", reason: tooLongReason(s.limit), raw: kept}
}

// unquote feeds a file without quoting to encoding/csv by quoting every
// field (quotes in it doubled). A line longer than limit is skipped whole:
// Read fails once with errRecordTooLong instead of handing it on.
type unquote struct {
	r       *bufio.Reader
	delim   rune
	limit   int
	buf     []byte
	err     error  // a read error to return once the line read with it is handed on
	dropped int64  // lines skipped for being too long
	cut     []byte // the first bytes of the last line skipped
}

func (u *unquote) Read(p []byte) (int, error) {
	if len(u.buf) == 0 {
		if u.err != nil {
			err := u.err
			u.err = nil
			return 0, err
		}
		line, tooLong, err := readLine(u.r, u.limit)
		if tooLong {
			u.dropped++
			u.cut = append(u.cut[:0], line[:min(len(line), maxRawBytes)]...)
			if err != nil && err != io.EOF {
				u.err = err
			}
			return 0, errRecordTooLong
		}
		if len(line) == 0 {
			return 0, err
		}
		if err != nil && err != io.EOF {
			u.err = err
		}
		d := []byte(string(u.delim))
		b := u.buf[:0]
		// quote every field so that quotes in it are literal
		for i, f := range bytes.Split(bytes.TrimRight(line, "\r\n"), d) {
			if i > 0 {
				b = append(b, d...)
			}
			b = append(b, '"')
			b = append(b, bytes.ReplaceAll(f, []byte(`"`), []byte(`""`))...)
			b = append(b, '"')
		}
		u.buf = append(b, '\n')
	}
	n := copy(p, u.buf)
	u.buf = u.buf[n:]
	return n, nil
}

// ndjsonSource reads one JSON object per line; a line longer than limit
// bytes is rejected as too_long, read past and never held whole.
type ndjsonSource struct {
	r     *bufio.Reader
	cols  *columns
	line  int64
	limit int
}

func newNDJSONSource(r io.Reader, limit int) *ndjsonSource {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	if b, _ := br.Peek(3); bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		_, _ = br.Discard(3)
	}
	return &ndjsonSource{r: br, cols: newColumns(nil, false), limit: limit}
}

func (s *ndjsonSource) columns() *columns { return s.cols }

func (s *ndjsonSource) next() ([]string, int64, fmt.Stringer, error) {
	for {
		b, tooLong, err := readLine(s.r, s.limit)
		if err == io.EOF && len(b) == 0 && !tooLong {
			return nil, 0, nil, io.EOF
		}
		if err != nil && err != io.EOF {
			return nil, 0, nil, err
		}
		s.line++
		if tooLong {
			raw := truncatedRaw(b, s.limit)
			return nil, s.line, raw, &recordError{line: s.line, code: "too_long", reason: tooLongReason(s.limit), raw: raw}
		}
		trimmed := bytes.TrimSpace(b)
		if len(trimmed) == 0 {
			continue
		}
		raw := rawString(trimmed)
		if !utf8.Valid(trimmed) {
			off := 0
			for off < len(trimmed) {
				r, n := utf8.DecodeRune(trimmed[off:])
				if r == utf8.RuneError && n <= 1 {
					break
				}
				off += n
			}
			return nil, s.line, raw, &recordError{line: s.line, field: jsonFieldAt(trimmed, off), code: "bad_encoding",
				reason: fmt.Sprintf("invalid UTF-8 at byte %d (the input must be UTF-8)", off+1), raw: raw}
		}
		obj, err := decodeObject(trimmed)
		if err != nil {
			return nil, s.line, raw, &recordError{line: s.line, code: "bad_json", reason: err.Error(), raw: raw}
		}
		rec := make([]string, len(s.cols.names), len(s.cols.names)+len(obj))
		// Keys in sorted order, so that new fields get the same columns (and a
		// warning the same names) however often the same bytes are read.
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			i := s.cols.add(k)
			for len(rec) <= i {
				rec = append(rec, "")
			}
			rec[i] = obj[k]
		}
		return rec, s.line, raw, nil
	}
}

// jsonFieldAt names the key of the JSON object b whose value holds byte off (from 0), or ""
// when that byte is not inside a value (or b is no object).
func jsonFieldAt(b []byte, off int) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil || dec.InputOffset() > int64(off) {
			return "" // in the key, or the object is malformed before it
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return ""
		}
		if dec.InputOffset() > int64(off) {
			key, _ := k.(string)
			return key
		}
	}
	return ""
}

// readLine reads a line; when it is longer than max the rest is read and
// thrown away, and only its first maxRawBytes are returned (for quarantine).
func readLine(r *bufio.Reader, limit int) ([]byte, bool, error) {
	var out []byte
	tooLong := false
	for {
		chunk, err := r.ReadSlice('\n')
		switch {
		case tooLong:
		case len(out)+len(chunk) > limit:
			tooLong = true
			if len(out) >= maxRawBytes {
				out = out[:maxRawBytes]
			} else {
				out = append(out, chunk[:min(len(chunk), maxRawBytes-len(out))]...)
			}
		default:
			out = append(out, chunk...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return out, tooLong, err
	}
}

// decodeObject decodes a JSON object into strings: numbers keep their text,
// null is empty, nested values are JSON text.
func decodeObject(b []byte) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	if m == nil {
		return nil, errors.New("not a JSON object: null")
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = jsonString(v)
	}
	return out, nil
}

func jsonString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "true"
		}
		return "false"
	}
	b, _ := json.Marshal(v)
	return string(b)
}
