package events

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// The events API checks reference values and types through the same converter as files: the
// attack's records (currency XX, €URO, any status, negative revenue, an object as order_id) are
// each answered at their index with the field and the reason, quarantined, and the rest stored.
func TestEventsReferenceValues(t *testing.T) {
	f := newFixture(t, Config{})
	rec := func(id, extra string) string {
		return `{"order_id":` + id + `,"ordered_at":"2026-03-01T10:00:00Z","revenue":10,"currency":"EUR"` + extra + `}`
	}
	body := strings.Join([]string{
		rec(`"o1"`, ""),
		rec(`"o2"`, `,"currency":"XX"`),
		rec(`"o3"`, `,"currency":"€URO"`),
		rec(`"o4"`, `,"status":"whatever"`),
		rec(`"o5"`, `,"revenue":-10`),
		rec(`{"a":1}`, ""),
		rec(`"o7"`, `,"revenue":[1,2]`),
		rec(`"o8"`, `,"status":"canceled","currency":"usd"`),
	}, "\n")
	status, resp := f.post(t, "orders", f.token, body)
	if status != http.StatusMultiStatus || resp["accepted"] != 2.0 || resp["rejected"] != 6.0 {
		t.Fatalf("status %d resp %v", status, resp)
	}
	var got []string
	for _, e := range resp["errors"].([]any) {
		m := e.(map[string]any)
		if m["reason"] == "" {
			t.Errorf("error without a reason: %v", m)
		}
		got = append(got, fmt.Sprintf("%v %v", m["index"], m["field"]))
	}
	if want := "[1 currency 2 currency 3 status 4 revenue 5 order_id 6 revenue]"; fmt.Sprint(got) != want {
		t.Fatalf("errors %v, want %s", got, want)
	}
	if n := f.count(t, "SELECT count() FROM quarantine WHERE field != '' AND code IN ('bad_currency', 'bad_value', 'negative_amount', 'not_scalar')"); n != 6 {
		t.Fatalf("%d quarantined with field and code, want 6", n)
	}
	if n := f.count(t, "SELECT count() FROM orders FINAL WHERE (order_id = 'o1' AND currency = 'EUR') OR (order_id = 'o8' AND currency = 'USD' AND status = 'cancelled')"); n != 2 {
		t.Fatalf("%d of the good orders stored canonically, want 2", n)
	}
	if n := f.count(t, "SELECT count() FROM orders"); n != 2 {
		t.Fatalf("%d orders stored, want 2", n)
	}
}

// An empty touchpoint channel is accepted and stored as the "(none)" bucket the funnel uses.
func TestEventsNoChannel(t *testing.T) {
	f := newFixture(t, Config{})
	status, resp := f.post(t, "touchpoints", f.token, `{"event_id":"e1","occurred_at":"2026-03-01T10:00:00Z","channel":"","kind":"visit"}`+"\n"+
		`{"event_id":"e2","occurred_at":"2026-03-01T10:00:00Z","channel":null,"kind":"visit"}`)
	if status != http.StatusOK || resp["accepted"] != 2.0 {
		t.Fatalf("status %d resp %v", status, resp)
	}
	if n := f.count(t, "SELECT count() FROM touchpoints FINAL WHERE channel = '(none)'"); n != 2 {
		t.Fatalf("%d touchpoints in (none), want 2", n)
	}
}
