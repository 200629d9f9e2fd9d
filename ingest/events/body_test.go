package events

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// postRaw posts body with the given headers and decodes the JSON answer.
func (f *fixture) postRaw(t *testing.T, path string, body []byte, header map[string]string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.token)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("status %d, body %q is not JSON", resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

func gzipOf(t testing.TB, parts ...[]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	for _, p := range parts {
		zw.Write(p)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The body is bounded as sent and as decompressed, and each record on its own: a gzip body
// is read through its inflated size limit (a bomb is refused at the limit, not held), a
// record longer than MaxRecordBytes is rejected as too_long and quarantined cut short while
// the others load, and an encoding that is not supported is refused.
func TestEventsBodyBounds(t *testing.T) {
	f := newFixture(t, Config{MaxBodyBytes: 64 << 10, MaxRecordBytes: 1 << 10})
	zeros := bytes.Repeat([]byte{0}, 8<<20) // 8 MiB of NUL bytes: ~8 KiB of gzip
	long := `{"event_id":"e9","occurred_at":"2026-03-01T10:00:00Z","channel":"email","kind":"open","campaign":"` + strings.Repeat("x", 2000) + `"}`
	cases := []struct {
		name   string
		body   []byte
		header map[string]string
		status int
		want   string // in the error, or in the first record error
	}{
		{"gzip accepted", gzipOf(t, []byte(touch(1)+"\n"+touch(2)+"\n")), map[string]string{"Content-Encoding": "gzip"}, 200, ""},
		{"gzip bomb", gzipOf(t, []byte(touch(1)+"\n"), zeros), map[string]string{"Content-Encoding": "gzip"}, 413, "once decompressed"},
		{"not gzip", []byte(touch(1)), map[string]string{"Content-Encoding": "gzip"}, 400, "not gzip"},
		{"unsupported encoding", []byte(touch(1)), map[string]string{"Content-Encoding": "br"}, 415, "not supported"},
		{"record too long, ndjson", []byte(touch(3) + "\n" + long + "\n" + touch(4) + "\n"), nil, 207, "longer than 1024 bytes"},
		{"record too long, array", []byte("[" + touch(5) + "," + long + "]"), nil, 207, "longer than 1024 bytes"},
		{"a line of NULs", append(append([]byte(touch(6)+"\n"), zeros[:60<<10]...), []byte("\n"+touch(7)+"\n")...), nil, 207, "longer than 1024 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, resp := f.postRaw(t, "/api/v1/events/touchpoints", c.body, c.header)
			if status != c.status {
				t.Fatalf("status %d %v, want %d", status, resp, c.status)
			}
			switch {
			case status >= 400:
				if !strings.Contains(fmt.Sprint(resp["error"]), c.want) {
					t.Fatalf("error %v, want it to say %q", resp["error"], c.want)
				}
			case c.want != "":
				errs, _ := resp["errors"].([]any)
				if resp["rejected"] != 1.0 || len(errs) != 1 || !strings.Contains(fmt.Sprint(errs[0]), c.want) {
					t.Fatalf("resp %v, want one record rejected saying %q", resp, c.want)
				}
			}
		})
	}
	if n := f.count(t, "SELECT count() FROM quarantine WHERE code = 'too_long' AND length(raw) < 2000 AND raw LIKE '%truncated%'"); n != 3 {
		t.Errorf("%d too-long records quarantined cut short, want 3", n)
	}
	if n := f.count(t, "SELECT count() FROM touchpoints FINAL"); n != 7 {
		t.Errorf("%d touchpoints stored, want e1-e7", n)
	}
}

// Fields the entity does not have are not dropped silently: the response warns (and the
// run records them); with ?unknown=reject the records carrying them are rejected instead.
func TestEventsUnknownFields(t *testing.T) {
	f := newFixture(t, Config{})
	rec := func(i int) string {
		return fmt.Sprintf(`{"event_id":"u%d","occurred_at":"2026-03-01T10:00:00Z","channel":"email","kind":"open","colour":"red","utm_sourc":"x"}`, i)
	}
	status, resp := f.postRaw(t, "/api/v1/events/touchpoints", []byte(rec(1)+"\n"+touch(1)+"\n"), nil)
	w, _ := resp["warnings"].([]any)
	if status != 200 || len(w) != 1 || w[0] != "fields not in touchpoints: colour, utm_sourc (ignored)" {
		t.Fatalf("status %d resp %v, want 200 with a warning naming colour and utm_sourc", status, resp)
	}
	status, resp = f.postRaw(t, "/api/v1/events/touchpoints?unknown=reject", []byte(rec(2)+"\n"+touch(2)+"\n"), nil)
	errs, _ := resp["errors"].([]any)
	if status != 207 || resp["accepted"] != 1.0 || len(errs) != 1 || !strings.Contains(fmt.Sprint(errs[0]), "fields not in touchpoints: colour, utm_sourc") || resp["warnings"] != nil {
		t.Fatalf("status %d resp %v, want the record with unknown fields rejected", status, resp)
	}
	if status, resp = f.postRaw(t, "/api/v1/events/touchpoints?unknown=drop", []byte(touch(3)), nil); status != 400 {
		t.Fatalf("unknown=drop: %d %v, want 400", status, resp)
	}
	if n := f.count(t, "SELECT count() FROM quarantine WHERE code = 'unknown_field'"); n != 1 {
		t.Errorf("%d records quarantined as unknown_field, want 1", n)
	}
	if n := f.count(t, "SELECT count() FROM touchpoints FINAL WHERE event_id IN ('u1', 'e1', 'e2')"); n != 3 {
		t.Errorf("%d of u1, e1, e2 stored, want 3", n)
	}
}
