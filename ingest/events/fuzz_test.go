package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/converge-dev/converge/ingest"
)

// FuzzDecode sends arbitrary bodies to the events decoder and then through the per-record
// validation of a request (addRecords on a dry-run loader: the real conversion, no store).
// Invariants: a body is refused as a whole with a 400 or 413 that says why, or every record
// of it is counted: as many records as NDJSON lines that are not blank, or array elements;
// each is decoded exactly (every key, a string as its text, null as empty, anything else as
// its JSON) or reported malformed; and after validation received = accepted + rejected, with
// read = loaded + rejected + duplicates for the run and each error naming a record of the
// request. `go test ./ingest/events` runs the seeds and the committed corpus; `make fuzz`
// explores.
func FuzzDecode(f *testing.F) {
	names := ingest.EntityNames()
	entity := func(n string) uint8 {
		for i, x := range names {
			if x == n {
				return uint8(i)
			}
		}
		f.Fatalf("no entity %s", n)
		return 0
	}
	for _, s := range []struct{ entity, body string }{
		{"touchpoints", touch(1) + "\n" + `{"event_id":"e2","occurred_at":"yesterday","channel":"email","kind":"open"}` + "\n" + "not json at all\n" + touch(3) + "\n"},
		{"touchpoints", "[" + touch(1) + "," + touch(3) + "]"},
		{"touchpoints", "[" + touch(1) + ","},
		{"touchpoints", "  \n"},
		{"touchpoints", strings.Repeat("{}\n", 3)},
		{"touchpoints", `[1, "x", null, {"a": {"b": [1, 2.50, true]}}, {"event_id": null}]`},
		{"orders", `{"order_id":"o1","ordered_at":"2026-03-01","revenue":"10.5","currency":"eur","customer_id":"c1"}` + "\r\n" +
			`{"order_id":"o1","ordered_at":"2026-03-01","revenue":11,"currency":"EUR"}`},
		{"survey_responses", `{"kind":"nps","score":11,"answered_at":"2026-03-01T10:00:00Z","customer_id":"c1"}`},
		{"consents", `{"customer_id":"c1","channel":"email","purpose":"news","granted":"maybe","source_system":"crm","recorded_at":1772359200}`},
		{"customers", "{\"customer_id\":\"'; DROP TABLE orders; --\",\"email\":\"\\u0000\\u2019\"}\n{\"customer_id\":\"\xff\"}"},
	} {
		f.Add(entity(s.entity), []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, ent uint8, body []byte) {
		const maxRecords = 50
		d, err := decode(bytes.NewReader(body), limits{records: maxRecords, recordBytes: 1 << 10})
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || (ae.status != http.StatusBadRequest && ae.status != http.StatusRequestEntityTooLarge) || ae.Message == "" {
				t.Fatalf("body refused with %#v", err)
			}
			return
		}
		recs, raws, decodeErrs := d.recs, d.raws, d.bad
		if len(recs) != len(raws) {
			t.Fatalf("%d records, %d raw texts", len(recs), len(raws))
		}
		if want, ok := countRecords(body, 1<<10); ok && want != len(recs) {
			t.Fatalf("%d records decoded, the body has %d", len(recs), want)
		}
		for i, rec := range recs {
			_, bad := decodeErrs[i]
			if bad != (rec == nil) {
				t.Fatalf("record %d: decoded %v, reported malformed %v", i, rec, bad)
			}
			if !bad {
				checkDecoded(t, i, raws[i], rec)
			}
		}
		for i := range decodeErrs {
			if i < 0 || i >= len(recs) {
				t.Fatalf("error for record %d of %d", i, len(recs))
			}
		}
		if len(recs) == 0 {
			return
		}
		entity := names[int(ent)%len(names)]
		rejects := map[int64]ingest.Reject{}
		l, err := ingest.NewDryRun(ingest.Options{Entity: entity, Source: "events",
			OnReject: func(r ingest.Reject) { rejects[r.Line] = r }}, "events")
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var line int64
		errs, err := addRecords(ctx, l, &line, rejects, d)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := l.Close(ctx, nil)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if sum.Read != int64(len(recs)) || line != int64(len(recs)) || sum.Rejected != int64(len(errs)) {
			t.Fatalf("%d records: read %d, last line %d, rejected %d, %d errors", len(recs), sum.Read, line, sum.Rejected, len(errs))
		}
		prev := -1
		for _, e := range errs {
			if e.Index <= prev || e.Index >= len(recs) || e.Reason == "" {
				t.Fatalf("errors %+v: out of order, outside the request or without reason", errs)
			}
			prev = e.Index
		}
	})
}

// countRecords counts a body's records independently of decode: NDJSON lines that are not
// blank or are longer than limit (a too-long record, blank or not), or the elements of a
// well-formed JSON array (ok is false for a malformed one).
func countRecords(body []byte, limit int) (int, bool) {
	t := bytes.TrimLeft(body, " \t\r\n")
	if len(t) > 0 && t[0] == '[' {
		var elems []json.RawMessage
		if err := json.Unmarshal(t, &elems); err != nil {
			return 0, false
		}
		return len(elems), true
	}
	n := 0
	for _, l := range bytes.SplitAfter(body, []byte("\n")) { // with its line end: the limit counts it
		if len(bytes.TrimSpace(l)) > 0 || len(l) > limit {
			n++
		}
	}
	return n, true
}

// checkDecoded compares a decoded record with encoding/json's reading of its raw text.
func checkDecoded(t *testing.T, i int, raw string, rec map[string]string) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return // decode is more lenient (e.g. trailing data after the object); nothing to compare
	}
	if len(m) != len(rec) {
		t.Fatalf("record %d: %d fields decoded, %d in %s", i, len(rec), len(m), raw)
	}
	for k, v := range m {
		got, ok := rec[k]
		if !ok {
			t.Fatalf("record %d: field %q lost", i, k)
		}
		var want string
		var s string
		switch v = bytes.TrimSpace(v); {
		case string(v) == "null":
		case json.Unmarshal(v, &s) == nil:
			want = s
		default:
			want = string(v)
		}
		if got != want {
			t.Fatalf("record %d: field %q = %q, want %q (raw %s)", i, k, got, want, fmt.Sprint(string(v)))
		}
	}
}
