package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// Records are bounded while they are read, never after: a reader hands the
// parser at most MaxRecordBytes of one record and then fails it, so a file
// whose line is gigabytes long (a gzip bomb of NUL bytes, a runaway quote)
// costs that many bytes of memory, not the line's length. The rest of the
// record is skipped without being kept, and reading goes on with the next one.

// errRecordTooLong is returned by the bounding readers inside the CSV
// parser's input; the source turns it into a too_long reject.
var errRecordTooLong = errors.New("record too long")

// tooLongReason is the quarantine reason of a record cut at limit bytes.
func tooLongReason(limit int) string {
	return fmt.Sprintf("record longer than %d bytes (the limit of one record, ingest option MaxRecordBytes); the rest of it was skipped", limit)
}

// truncatedRaw is the first maxRawBytes of a record that was cut at limit
// bytes, marked as cut, for quarantine.
func truncatedRaw(b []byte, limit int) rawString {
	b = b[:min(len(b), maxRawBytes)]
	return rawString(string(b) + fmt.Sprintf("…(truncated: the record is longer than %d bytes)", limit))
}

// boundedReader hands on at most limit bytes of the current record. The CSV
// source moves the record start (setStart) after each record it reads; when
// the parser asks for more than limit bytes of one record, Read fails with
// errRecordTooLong, and after skip the rest of that record is read and
// thrown away (up to a line end outside quotes) before bytes flow again.
type boundedReader struct {
	r      *bufio.Reader
	limit  int64
	passed int64 // bytes handed on so far
	start  int64 // offset, in bytes handed on, where the current record starts

	tripped  bool // the limit was hit; Read fails until skip
	skipping bool
	quoted   bool  // CSV with quotes: a line end inside quotes does not end the record
	inQuote  bool  // while skipping: inside a quoted field
	skipNL   int64 // line ends thrown away while skipping, in all
	lastSkip int64 // line ends thrown away by the last skip
}

func newBoundedReader(r *bufio.Reader, limit int, quoted bool) *boundedReader {
	return &boundedReader{r: r, limit: int64(limit), quoted: quoted}
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.skipping {
		if err := b.skipRest(); err != nil {
			return 0, err
		}
	}
	if b.tripped {
		return 0, errRecordTooLong
	}
	room := b.start + b.limit - b.passed
	if room <= 0 {
		b.tripped = true
		return 0, errRecordTooLong
	}
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := b.r.Read(p)
	b.passed += int64(n)
	return n, err
}

// setStart marks where the next record starts (bytes handed on before it).
func (b *boundedReader) setStart(off int64) { b.start = off }

// skip throws away the rest of the record that tripped the limit; inQuote
// tells whether its part that was handed on ends inside a quoted field.
func (b *boundedReader) skip(inQuote bool) {
	b.skipping, b.inQuote, b.lastSkip = true, inQuote && b.quoted, 0
}

// skipRest reads up to the end of the record being skipped: a line end
// outside quotes (quotes are "" inside a quoted field, so their parity tells).
func (b *boundedReader) skipRest() error {
	for {
		chunk, err := b.r.ReadSlice('\n')
		nl := len(chunk) > 0 && chunk[len(chunk)-1] == '\n'
		if b.quoted && bytes.Count(chunk, []byte{'"'})%2 == 1 {
			b.inQuote = !b.inQuote
		}
		if nl {
			b.skipNL++
			b.lastSkip++
		}
		switch {
		case err == bufio.ErrBufferFull, err == nil && b.inQuote:
			continue
		case err != nil && err != io.EOF:
			return err
		}
		// the record ends here (or the input does: the next Read says so)
		b.skipping, b.tripped, b.start = false, false, b.passed
		return nil
	}
}

// discardLine reads one line and throws it away without holding it (skip_lines).
func discardLine(r *bufio.Reader) error {
	for {
		_, err := r.ReadSlice('\n')
		if err != bufio.ErrBufferFull {
			return err
		}
	}
}

// maxMappingBytes bounds a mapping or preset file: they are short YAML files.
const maxMappingBytes = 1 << 20

// readSmallFile reads a file of at most max bytes without reading more.
func readSmallFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes (a mapping is a short YAML file)", path, max)
	}
	return b, nil
}
