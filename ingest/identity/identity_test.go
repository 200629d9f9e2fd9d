package identity

import (
	"context"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/converge-dev/converge/warehouse/whtest"
)

func TestMain(m *testing.M) { os.Exit(whtest.Main(m)) }

func TestNormalizePhone(t *testing.T) {
	cases := []struct{ in, country, want string }{
		{"+49 151 2345 6789", "DE", "+4915123456789"},
		{"0049 151 23456789", "FR", "+4915123456789"},
		{"0151-2345-6789", "DE", "+4915123456789"},
		{"(0)20 7946 0958", "GB", "+442079460958"}, // UK trunk notation
		{"020 7946 0958", "GB", "+442079460958"},
		{"06 12 34 56 78", "FR", "+33612345678"},
		{"0151 2345 6789", "XX", ""}, // unknown country: cannot read a national number
		{"12345", "DE", ""},
		{"+49 151 2345 6789 ext 12", "DE", ""},
		{"", "DE", ""},
		{"4915123456789", "DE", "+4915123456789"},
	}
	for _, c := range cases {
		if got := NormalizePhone(c.in, c.country); got != c.want {
			t.Errorf("NormalizePhone(%q, %s) = %q, want %q", c.in, c.country, got, c.want)
		}
	}
}

func TestNormalizeEmail(t *testing.T) {
	for in, want := range map[string]string{
		"  Ann@Example.COM ": "ann@example.com", "no-at-sign": "", "@x.com": "", "a@": "", "a@b@c": "", "a b@c.d": "",
	} {
		if got := NormalizeEmail(in); got != want {
			t.Errorf("NormalizeEmail(%q) = %q, want %q", in, got, want)
		}
	}
}

func exec(t *testing.T, st interface {
	Exec(context.Context, string, ...any) error
}, q string) {
	t.Helper()
	if err := st.Exec(context.Background(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestResolve(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	// ann: shop, crm (same e-mail written differently) and helpdesk (phone only).
	// bob: shop and a CRM record linked explicitly. cid: alone. dan: a CRM
	// record whose key collides with shop's key of another person.
	exec(t, st.Conn, `INSERT INTO customers (customer_id, email, phone, first_seen_at, country, source) VALUES
		('C1', 'ann@example.com', '+49 151 1111 1111', '2024-01-01 10:00:00', 'DE', 'shop'),
		('crm-7', ' ANN@example.com', '', '2024-03-01 00:00:00', 'DE', 'crm'),
		('hd-3', '', '0151 1111 1111', '2024-05-01 00:00:00', 'DE', 'helpdesk'),
		('C2', 'bob@example.com', '', '2024-02-01 00:00:00', 'FR', 'shop'),
		('crm-9', 'robert@work.example', '', '2024-02-02 00:00:00', 'FR', 'crm'),
		('C3', 'cid@example.com', '06 12 34 56 78', '2024-02-03 00:00:00', 'FR', 'shop'),
		('C4', 'dan@example.com', '', '2024-06-01 00:00:00', 'DE', 'crm')`)
	exec(t, st.Conn, `INSERT INTO customers (customer_id, email, first_seen_at, source) VALUES ('C4', 'eve@example.com', '2024-07-01 00:00:00', 'shop')`)
	if err := Link(ctx, st, Node{"shop", "C2"}, Node{"crm", "crm-9"}); err != nil {
		t.Fatal(err)
	}
	stats, err := Resolve(ctx, st, Rules{SourcePriority: []string{"shop"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]string{}
	rows, err := st.Conn.Query(ctx, "SELECT source, source_key, argMax(customer_id, matched_at), argMax(rule, matched_at) FROM identities GROUP BY source, source_key")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s, k, c, r string
		if err := rows.Scan(&s, &k, &c, &r); err != nil {
			t.Fatal(err)
		}
		got[s+":"+k] = [2]string{c, r}
	}
	rows.Close()
	want := map[string][2]string{
		"shop:C1":       {"C1", "source_id"},
		"crm:crm-7":     {"C1", "email"},
		"helpdesk:hd-3": {"C1", "phone"},
		"shop:C2":       {"C2", "source_id"},
		"crm:crm-9":     {"C2", "explicit"},
		"shop:C3":       {"C3", "source_id"},
		"crm:C4":        {"crm:C4", "source_id"}, // two anchors share key C4: both qualified
		"shop:C4":       {"shop:C4", "source_id"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("identities:\n got %v\nwant %v", got, want)
	}
	if stats.Customers != 5 || stats.MultiSource != 2 || stats.ByRule["email"] != 1 || stats.ByRule["phone"] != 1 || stats.ByRule["explicit"] != 1 {
		t.Fatalf("stats %+v", stats)
	}

	// KPIs read the resolved views: ann's orders from two sources are one customer.
	exec(t, st.Conn, `INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, source) VALUES
		('o1', 'C1', '2024-06-01 00:00:00', 10, 'EUR', 'shop'), ('o2', 'hd-3', '2024-06-02 00:00:00', 20, 'EUR', 'helpdesk'),
		('o3', 'C3', '2024-06-03 00:00:00', 30, 'EUR', 'shop'), ('o4', '', '2024-06-04 00:00:00', 5, 'EUR', 'shop'),
		('o5', 'X9', '2024-06-05 00:00:00', 7, 'EUR', 'pos')`)
	var n uint64
	if err := st.Conn.QueryRow(ctx, "SELECT uniqExact(customer_id) FROM orders_resolved WHERE customer_id != ''").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 3 { // C1 (two sources), C3, X9 (no identity: its own id)
		t.Fatalf("distinct resolved customers = %d, want 3", n)
	}

	var email string
	var sources []string
	if err := st.Conn.QueryRow(ctx, "SELECT email, sources FROM customers_resolved WHERE customer_id = 'C1'").Scan(&email, &sources); err != nil {
		t.Fatal(err)
	}
	if email != "ann@example.com" || !reflect.DeepEqual(sources, []string{"crm", "helpdesk", "shop"}) {
		t.Fatalf("customers_resolved C1: %q %v", email, sources)
	}

	// Re-running gives the same result; a removed record's identity goes away.
	again, err := Resolve(ctx, st, Rules{SourcePriority: []string{"shop"}})
	if err != nil {
		t.Fatal(err)
	}
	again.Seconds, stats.Seconds = 0, 0
	if !reflect.DeepEqual(again, stats) {
		t.Fatalf("second resolution differs: %+v vs %+v", again, stats)
	}
}

// Without a source priority the record first seen earliest anchors its
// group, whatever the sources are called.
func TestAnchorEarliestWithoutPriority(t *testing.T) {
	at := func(d int) time.Time { return time.Date(2024, 1, d, 0, 0, 0, 0, time.UTC) }
	res := resolve([]member{
		{Node: Node{"shop", "C1"}, email: "a@x.com", firstSeen: at(1)},
		{Node: Node{"crm", "crm-1"}, email: "a@x.com", firstSeen: at(2)},
		{Node: Node{"crm", "crm-2"}, email: "b@x.com", firstSeen: at(1)},
		{Node: Node{"shop", "C2"}, email: "b@x.com", firstSeen: at(3)},
		// a help-desk record with no first sighting (the epoch) never anchors
		{Node: Node{"helpdesk", "hd-1"}, email: "a@x.com", firstSeen: time.Unix(0, 0).UTC()},
	}, nil, Rules{})
	want := map[Node]string{{"shop", "C1"}: "C1", {"crm", "crm-1"}: "C1", {"crm", "crm-2"}: "crm-2", {"shop", "C2"}: "crm-2", {"helpdesk", "hd-1"}: "C1"}
	if !reflect.DeepEqual(res.canonical, want) {
		t.Fatalf("canonical ids %v, want %v", res.canonical, want)
	}
}
