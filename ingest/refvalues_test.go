package ingest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// refCase is one record at the door: either it is rejected with code on field (and reason
// mentioning why), or it loads and query over the store answers stored.
type refCase struct {
	name   string
	entity string
	rec    map[string]string
	code   string // reject code; "" when the record loads
	field  string
	why    string // part of the reject reason
	query  string // with the record loaded: what was stored
	stored string
}

func order(kv ...string) map[string]string {
	r := map[string]string{"order_id": "o1", "ordered_at": "2026-03-01T10:00:00Z", "revenue": "10", "currency": "EUR"}
	for i := 0; i+1 < len(kv); i += 2 {
		r[kv[i]] = kv[i+1]
	}
	return r
}

var refCases = []refCase{
	{name: "unknown currency", entity: "orders", rec: order("currency", "XX"), code: "bad_currency", field: "currency", why: `"XX" is not an ISO 4217 currency code`},
	{name: "currency with a symbol", entity: "orders", rec: order("currency", "€URO"), code: "bad_currency", field: "currency", why: "did you mean EUR?"},
	{name: "no-currency code", entity: "orders", rec: order("currency", "XXX"), code: "bad_currency", field: "currency", why: "no currency is involved"},
	{name: "currency in lower case", entity: "orders", rec: order("currency", "usd"), query: "SELECT currency FROM orders FINAL", stored: "USD"},
	{name: "withdrawn currency of a historic order", entity: "orders", rec: order("currency", "HRK", "ordered_at", "2021-05-01"), query: "SELECT currency FROM orders FINAL", stored: "HRK"},
	{name: "unknown order status", entity: "orders", rec: order("status", "shipped"), code: "bad_value", field: "status", why: "completed, pending, cancelled, refunded"},
	{name: "order status alias", entity: "orders", rec: order("status", "Canceled"), query: "SELECT status FROM orders FINAL", stored: "cancelled"},
	{name: "empty order status is the default", entity: "orders", rec: order("status", ""), query: "SELECT status FROM orders FINAL", stored: "completed"},
	{name: "negative revenue", entity: "orders", rec: order("revenue", "-12.50"), code: "negative_amount", field: "revenue", why: "money given back is a refund"},
	{name: "negative cost", entity: "orders", rec: order("cost", "-1"), code: "negative_amount", field: "cost"},
	{name: "negative refund on an order", entity: "orders", rec: order("refund", "-1"), code: "negative_amount", field: "refund"},
	{name: "zero revenue", entity: "orders", rec: order("revenue", "0"), query: "SELECT toString(revenue) FROM orders FINAL", stored: "0"},
	{name: "object as order id", entity: "orders", rec: order("order_id", `{"id":1}`), code: "not_scalar", field: "order_id", why: "a JSON object where a text value is expected"},
	{name: "array as revenue", entity: "orders", rec: order("revenue", `[10, 20]`), code: "not_scalar", field: "revenue", why: "a JSON array where a decimal number is expected"},
	{name: "object as a time", entity: "orders", rec: order("ordered_at", `{"t":0}`), code: "not_scalar", field: "ordered_at"},
	{name: "negative refund amount", entity: "refunds", code: "negative_amount", field: "amount",
		rec: map[string]string{"refund_id": "r1", "refunded_at": "2026-03-01", "amount": "-5", "currency": "EUR"}},
	{name: "refund in an unknown currency", entity: "refunds", code: "bad_currency", field: "currency",
		rec: map[string]string{"refund_id": "r1", "refunded_at": "2026-03-01", "amount": "5", "currency": "EU"}},
	{name: "negative spend", entity: "marketing_spend", code: "negative_amount", field: "spend",
		rec: map[string]string{"date": "2026-03-01", "channel": "ads", "spend": "-10", "currency": "EUR"}},
	{name: "negative reward", entity: "rewards", code: "negative_amount", field: "amount",
		rec: map[string]string{"customer_id": "c1", "granted_at": "2026-03-01", "amount": "-1", "currency": "EUR"}},
	{name: "touchpoint without a channel", entity: "touchpoints", rec: map[string]string{"event_id": "e1", "occurred_at": "2026-03-01", "kind": "visit", "channel": "  "},
		query: "SELECT channel FROM touchpoints FINAL", stored: "(none)"},
	{name: "touchpoint channel missing", entity: "touchpoints", rec: map[string]string{"event_id": "e1", "occurred_at": "2026-03-01", "kind": "visit"},
		query: "SELECT channel FROM touchpoints FINAL", stored: "(none)"},
	{name: "properties must be an object", entity: "touchpoints", code: "not_scalar", field: "properties", why: "not a JSON object",
		rec: map[string]string{"event_id": "e1", "occurred_at": "2026-03-01", "kind": "visit", "channel": "web", "properties": "[1]"}},
	{name: "properties object", entity: "touchpoints", rec: map[string]string{"event_id": "e1", "occurred_at": "2026-03-01", "kind": "visit", "channel": "web", "properties": `{"a":[1]}`},
		query: "SELECT properties FROM touchpoints FINAL", stored: `{"a":[1]}`},
	{name: "ticket status kept as sent, normalised for metrics", entity: "tickets", rec: map[string]string{"ticket_id": "t1", "opened_at": "2026-03-01", "status": "On-Hold"},
		query: "SELECT concat(status_text, '>', status) FROM tickets FINAL", stored: "On-Hold>pending"},
	{name: "ticket status solved", entity: "tickets", rec: map[string]string{"ticket_id": "t1", "opened_at": "2026-03-01", "status": "Solved"},
		query: "SELECT concat(status_text, '>', status) FROM tickets FINAL", stored: "Solved>resolved"},
	{name: "ticket status text given", entity: "tickets", rec: map[string]string{"ticket_id": "t1", "opened_at": "2026-03-01", "status": "closed", "status_text": "Geschlossen"},
		query: "SELECT concat(status_text, '>', status) FROM tickets FINAL", stored: "Geschlossen>closed"},
	{name: "unknown ticket status", entity: "tickets", rec: map[string]string{"ticket_id": "t1", "opened_at": "2026-03-01", "status": "escalated"},
		code: "bad_value", field: "status", why: "open, pending, resolved, closed"},
	{name: "free text may look like JSON", entity: "survey_responses", rec: map[string]string{"customer_id": "c1", "answered_at": "2026-03-01", "kind": "nps", "score": "9", "comment": "{}"},
		query: "SELECT comment FROM survey_responses FINAL", stored: "{}"},
}

// TestReferenceValues: records pushed from Go (the events API's and the demo's path) are checked
// against reference values and types field by field; a rejected one is in quarantine with its
// field, code and reason, an accepted one is stored canonically.
func TestReferenceValues(t *testing.T) {
	ctx := context.Background()
	for _, c := range refCases {
		t.Run(c.name, func(t *testing.T) {
			st := whtest.Store(t)
			l, err := ingest.NewLoader(ctx, st, ingest.Options{Entity: c.entity, Source: "test"}, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Add(ctx, ingest.Record{Fields: c.rec}); err != nil {
				t.Fatal(err)
			}
			sum, err := l.Close(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkRefOutcome(t, st, c, sum)
		})
	}
}

func checkRefOutcome(t *testing.T, st *warehouse.Store, c refCase, sum ingest.Summary) {
	t.Helper()
	if c.code == "" {
		if sum.Loaded != 1 || sum.Rejected != 0 {
			t.Fatalf("loaded %d rejected %d (%v), want it loaded", sum.Loaded, sum.Rejected, sum.Rejects)
		}
		if got := queryString(t, st, c.query); got != c.stored {
			t.Errorf("%s = %q, want %q", c.query, got, c.stored)
		}
		return
	}
	if sum.Rejected != 1 || sum.Loaded != 0 || len(sum.Rejects) != 1 {
		t.Fatalf("loaded %d rejected %d (%v), want it rejected", sum.Loaded, sum.Rejected, sum.Rejects)
	}
	r := sum.Rejects[0]
	if r.Code != c.code || r.Field != c.field || !strings.Contains(r.Reason, c.why) {
		t.Errorf("reject %+v, want code %s on %s saying %q", r, c.code, c.field, c.why)
	}
	q := "SELECT concat(field, ' ', code, ' ', reason) FROM quarantine WHERE run_id = '" + sum.RunID + "'"
	if got, want := queryString(t, st, q), c.field+" "+c.code+" "+r.Reason; got != want {
		t.Errorf("quarantine: %q, want %q", got, want)
	}
}

// TestReferenceValuesInFiles: the same checks on the file path, canonical header and preset.
func TestReferenceValuesInFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	canonical := write("orders.csv", "order_id,ordered_at,revenue,currency,status\n"+
		"o1,2026-03-01,10,EUR,completed\n"+
		"o2,2026-03-01,10,XX,completed\n"+
		"o3,2026-03-01,-4,EUR,completed\n"+
		"o4,2026-03-01,10,EUR,lost\n"+
		`"{""a"":1}",2026-03-01,10,EUR,completed`+"\n")
	stripe := write("stripe.csv", "id,Created date (UTC),Amount,Amount Refunded,Currency,Status,Customer ID,Customer Email\n"+
		"ch_1,2026-03-01 10:00:00,49.00,0.00,usd,Paid,cus_1,a@x.org\n"+
		"ch_2,2026-03-01 11:00:00,49.00,0.00,€,Paid,cus_2,b@x.org\n"+
		"ch_3,2026-03-01 12:00:00,-1.00,0.00,eur,Paid,cus_3,c@x.org\n")
	cases := []struct {
		name  string
		file  string
		opts  ingest.Options
		want  []string // line field code of each reject
		query string
		rows  string
	}{
		{"canonical header", canonical, ingest.Options{Entity: "orders"},
			[]string{"3 currency bad_currency", "4 revenue negative_amount", "5 status bad_value", "6 order_id not_scalar"},
			"SELECT groupArray(order_id) FROM orders FINAL", "['o1']"},
		{"preset", stripe, ingest.Options{Mapping: preset(t, "stripe_payments")},
			[]string{"3 currency bad_currency", "4 revenue negative_amount"},
			"SELECT groupArray(concat(order_id, ' ', currency)) FROM orders FINAL", "['ch_1 USD']"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := whtest.Store(t)
			sum := load(t, st, c.file, c.opts)
			var got []string
			for _, r := range sum.Rejects {
				got = append(got, itoa(r.Line)+" "+r.Field+" "+r.Code)
			}
			if strings.Join(got, "; ") != strings.Join(c.want, "; ") {
				t.Errorf("rejects %v, want %v", got, c.want)
			}
			if n := queryString(t, st, "SELECT count() FROM quarantine WHERE run_id = '"+sum.RunID+"' AND field != '' AND reason != ''"); n != itoa(int64(len(c.want))) {
				t.Errorf("quarantine holds %s records with field and reason, want %d", n, len(c.want))
			}
			if got := queryString(t, st, c.query); got != c.rows {
				t.Errorf("stored %s, want %s", got, c.rows)
			}
		})
	}
}

// TestMappingValues: a mapping whose own values are outside the field's reference list is
// refused when it is read, naming the key.
func TestMappingValues(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"entity: orders\nfields:\n  currency: {value: EURO}\n", `fields.currency.value: "EURO" is not an ISO 4217 currency code`},
		{"entity: orders\nfields:\n  status: {column: S, map: {paid: complete_d}}\n", `fields.status.map.paid: "complete_d" is not a status of an order`},
		{"entity: tickets\nfields:\n  status: {column: S, map: {a: open}, other: later}\n", `fields.status.other: "later" is not a status of a ticket`},
		{"entity: orders\nfields:\n  status: {column: S, default: Canceled}\n", ""},
		{"entity: orders\nlines: {}\nfields:\n  currency: {value: gbp}\n", ""},
	}
	for _, c := range cases {
		_, err := ingest.ParseMapping("m.yaml", []byte(c.yaml))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v, want it accepted", c.yaml, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: %v, want %q", c.yaml, err, c.want)
		}
	}
	// Every built-in preset maps onto the reference lists.
	names, err := ingest.PresetNames("")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		preset(t, n)
	}
}
