package events

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/converge-dev/converge/ingest"
)

// Reading a request: the body bounded as sent and as decompressed, each
// record bounded, NDJSON or a JSON array decoded into records by index.

// body is the request body, bounded: at most MaxBodyBytes as sent and, for
// Content-Encoding: gzip, as decompressed (a small body that inflates to
// gigabytes is refused at the limit, while it is read).
func (s *Service) body(r *http.Request) (io.Reader, error) {
	body := io.Reader(http.MaxBytesReader(nil, r.Body, s.cfg.MaxBodyBytes))
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return body, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, &apiError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes; send smaller batches", s.cfg.MaxBodyBytes)}
			}
			return nil, &apiError{http.StatusBadRequest, "Content-Encoding: gzip, but the body is not gzip: " + err.Error()}
		}
		return &inflateLimit{r: zr, left: s.cfg.MaxBodyBytes}, nil
	default:
		return nil, &apiError{http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Encoding %q is not supported: send the body as is or gzip", enc)}
	}
}

// errInflatedTooLarge: a gzip body decompresses to more than MaxBodyBytes.
var errInflatedTooLarge = errors.New("decompressed body too large")

// inflateLimit fails with errInflatedTooLarge once more than left bytes came out.
type inflateLimit struct {
	r    io.Reader
	left int64
}

func (l *inflateLimit) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// one byte more tells a body of exactly the limit from a larger one
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			return 0, errInflatedTooLarge
		}
		return l.r.Read(p)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// limits bound one request's records.
type limits struct {
	records     int // records in the request
	recordBytes int // bytes of one record
}

// badRecord is a record of a request that could not be decoded.
type badRecord struct {
	code, reason string
}

// decoded is a request's records in order: recs[i] is nil for a record that
// could not be decoded (bad[i] says why); raws[i] is each one's text as sent
// (cut, for one that was too long).
type decoded struct {
	recs []map[string]string
	raws []string
	bad  map[int]badRecord
}

// decode reads NDJSON or a JSON array. Records that are not JSON objects, or
// are longer than lim.recordBytes, are kept as bad records by index, with
// their raw text (a too-long NDJSON line is read past, not held), so they can
// be quarantined.
func decode(r io.Reader, lim limits) (decoded, error) {
	d := decoded{bad: map[int]badRecord{}}
	br := bufio.NewReaderSize(r, 64<<10)
	var first byte
	for {
		b, err := br.ReadByte()
		if err == io.EOF {
			return d, nil
		}
		if err != nil {
			return d, err
		}
		if b != ' ' && b != '\t' && b != '\r' && b != '\n' {
			first = b
			_ = br.UnreadByte()
			break
		}
	}
	full := func() error {
		if len(d.recs) >= lim.records {
			return &apiError{http.StatusRequestEntityTooLarge, fmt.Sprintf("more than %d records in one request; send smaller batches", lim.records)}
		}
		return nil
	}
	addBad := func(code, reason string, raw []byte) {
		d.bad[len(d.recs)] = badRecord{code: code, reason: reason} // recs holds a nil for it: indexes are the request's
		d.recs = append(d.recs, nil)
		d.raws = append(d.raws, string(raw))
	}
	tooLong := func(raw []byte) {
		cut := string(raw[:min(len(raw), maxRawBytes, lim.recordBytes)]) + fmt.Sprintf("…(truncated: the record is longer than %d bytes)", lim.recordBytes)
		addBad("too_long", fmt.Sprintf("record longer than %d bytes", lim.recordBytes), []byte(cut))
	}
	addRaw := func(raw []byte) error {
		if err := full(); err != nil {
			return err
		}
		if len(raw) > lim.recordBytes {
			tooLong(raw)
			return nil
		}
		obj, err := object(raw)
		if err != nil {
			addBad("malformed_json", "not a JSON object", raw)
			return nil
		}
		d.recs = append(d.recs, obj)
		d.raws = append(d.raws, string(raw))
		return nil
	}
	if first == '[' {
		// an element is held whole by the JSON decoder: the body's bound is its bound
		dec := json.NewDecoder(br)
		if _, err := dec.Token(); err != nil {
			return d, err
		}
		for dec.More() {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) || errors.Is(err, errInflatedTooLarge) {
					return d, err
				}
				return d, &apiError{http.StatusBadRequest, fmt.Sprintf("record %d: the JSON array is malformed: %v", len(d.recs), err)}
			}
			if err := addRaw(raw); err != nil {
				return d, err
			}
		}
		if _, err := dec.Token(); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) || errors.Is(err, errInflatedTooLarge) {
				return d, err
			}
			return d, &apiError{http.StatusBadRequest, "the JSON array is not closed"}
		}
		return d, nil
	}
	for {
		line, long, err := readLine(br, lim.recordBytes)
		if t := bytes.TrimSpace(line); len(t) > 0 || long {
			if long {
				if ferr := full(); ferr != nil {
					return d, ferr
				}
				tooLong(t)
			} else if aerr := addRaw(t); aerr != nil {
				return d, aerr
			}
		}
		if err == io.EOF {
			return d, nil
		}
		if err != nil {
			return d, err
		}
	}
}

// maxRawBytes bounds the text of a too-long record kept in quarantine.
const maxRawBytes = 64 << 10

// readLine reads one line of at most limit bytes; of a longer one only the
// first maxRawBytes are kept (long is true), the rest is read and thrown away.
func readLine(r *bufio.Reader, limit int) (line []byte, long bool, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		switch {
		case long:
		case len(line)+len(chunk) > limit:
			long = true
			line = append(line, chunk...)[:min(len(line)+len(chunk), maxRawBytes)]
		default:
			line = append(line, chunk...)
		}
		if err != bufio.ErrBufferFull {
			return line, long, err
		}
	}
}

// unknownFields names, per request, the fields of its records that entity
// does not have. With reject, each record carrying one becomes a bad record
// (unknown_field) instead; otherwise they are returned as the warning.
func unknownFields(entity string, d decoded, reject bool) []string {
	e, err := ingest.LookupEntity(entity)
	if err != nil {
		return nil
	}
	known := map[string]bool{}
	for _, n := range e.FieldNames() {
		known[n] = true
	}
	seen := map[string]bool{}
	var names []string
	for i, rec := range d.recs {
		var mine []string
		for k := range rec {
			if !known[k] {
				mine = append(mine, k)
				if !seen[k] {
					seen[k] = true
					names = append(names, k)
				}
			}
		}
		if reject && len(mine) > 0 {
			sort.Strings(mine)
			d.recs[i] = nil
			d.bad[i] = badRecord{code: "unknown_field", reason: fmt.Sprintf("fields not in %s: %s (unknown=reject)", entity, strings.Join(mine, ", "))}
		}
	}
	if len(names) == 0 || reject {
		return nil
	}
	sort.Strings(names)
	return []string{fmt.Sprintf("fields not in %s: %s (ignored)", entity, strings.Join(names, ", "))}
}

// object decodes one JSON object into field → text (numbers as written,
// booleans true/false, null as empty, nested values as JSON text).
func object(raw []byte) (map[string]string, error) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, errors.New("not a JSON object")
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		t := bytes.TrimSpace(v)
		switch {
		case len(t) == 0 || string(t) == "null":
			out[k] = ""
		case t[0] == '"':
			var s string
			if err := json.Unmarshal(t, &s); err != nil {
				return nil, err
			}
			out[k] = s
		default:
			out[k] = string(t)
		}
	}
	return out, nil
}
