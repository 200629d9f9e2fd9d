package identity

import (
	"context"
	"os"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/converge-dev/converge/warehouse"
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
	if again.Changed != 0 || again.Removed != 0 || stats.Changed != len(want) {
		t.Fatalf("first resolution wrote %d, second wrote %d and removed %d; want %d, 0, 0", stats.Changed, again.Changed, again.Removed, len(want))
	}
	again.Seconds, stats.Seconds, stats.Changed = 0, 0, 0
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

// identityMap is the identities table deduplicated: "source:key" → customer rule.
func identityMap(t *testing.T, st *warehouse.Store) map[string]string {
	t.Helper()
	rows, err := st.Conn.Query(context.Background(), "SELECT source, source_key, customer_id, rule FROM identities FINAL")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var s, k, c, r string
		if err := rows.Scan(&s, &k, &c, &r); err != nil {
			t.Fatal(err)
		}
		out[s+":"+k] = c + " " + r
	}
	return out
}

// lastWritten are the identities (source:key, sorted) of the newest version
// in the table: the rows the last resolution that wrote any wrote.
func lastWritten(t *testing.T, st *warehouse.Store) []string {
	t.Helper()
	rows, err := st.Conn.Query(context.Background(), "SELECT concat(source, ':', source_key) FROM identities WHERE matched_at = (SELECT max(matched_at) FROM identities)")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func identityBlocks(t *testing.T, st *warehouse.Store) map[string]int64 {
	t.Helper()
	b, err := st.PartBlocks(context.Background(), []string{"identities"})
	if err != nil {
		t.Fatal(err)
	}
	return b["identities"]
}

// TestIdentityWritesOnlyChanges: a resolution writes the identities that
// changed and nothing else: none at all (no part, no mutation) when nothing
// changed; the moved identities when a new record joins two people; one
// removal, and no new version, when a record goes away.
func TestIdentityWritesOnlyChanges(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	rules := Rules{SourcePriority: []string{"shop"}}
	exec(t, st.Conn, `INSERT INTO customers (customer_id, email, phone, first_seen_at, country, source) VALUES
		('C1', 'ann@example.com', '', '2024-01-01 00:00:00', 'DE', 'shop'),
		('C2', 'bob@example.com', '+49 151 2222 2222', '2024-02-01 00:00:00', 'DE', 'shop'),
		('crm-2', 'bob@example.com', '', '2024-03-01 00:00:00', 'DE', 'crm'),
		('crm-5', 'eve@example.com', '', '2024-03-02 00:00:00', 'DE', 'crm'),
		('crm-6', 'zoe@example.com', '', '2024-03-03 00:00:00', 'DE', 'crm')`)
	first, err := Resolve(ctx, st, rules)
	if err != nil {
		t.Fatal(err)
	}
	if first.Changed != 5 || first.Removed != 0 {
		t.Fatalf("first resolution wrote %d, removed %d; want 5, 0", first.Changed, first.Removed)
	}

	// Nothing changed: no part, no mutation, the same identities.
	before, ids := identityBlocks(t, st), identityMap(t, st)
	again, err := Resolve(ctx, st, rules)
	if err != nil {
		t.Fatal(err)
	}
	if again.Changed != 0 || again.Removed != 0 {
		t.Fatalf("unchanged resolution wrote %d, removed %d", again.Changed, again.Removed)
	}
	if after := identityBlocks(t, st); !reflect.DeepEqual(after, before) {
		t.Fatalf("unchanged resolution touched identities: blocks %v, were %v", after, before)
	}
	if got := identityMap(t, st); !reflect.DeepEqual(got, ids) {
		t.Fatalf("identities %v, were %v", got, ids)
	}

	// A help-desk record with ann's e-mail and bob's phone makes them one
	// person: bob's identities move to C1, the new record joins; ann's stay.
	exec(t, st.Conn, `INSERT INTO customers (customer_id, email, phone, first_seen_at, country, source) VALUES
		('hd-1', 'ann@example.com', '0151 2222 2222', '2024-04-01 00:00:00', 'DE', 'helpdesk')`)
	merged, err := Resolve(ctx, st, rules)
	if err != nil {
		t.Fatal(err)
	}
	if merged.Changed != 3 || merged.Removed != 0 {
		t.Fatalf("merge wrote %d, removed %d; want 3 (shop:C2, crm:crm-2, helpdesk:hd-1), 0", merged.Changed, merged.Removed)
	}
	if got, want := lastWritten(t, st), []string{"crm:crm-2", "helpdesk:hd-1", "shop:C2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("merge wrote %v, want %v", got, want)
	}
	ids = identityMap(t, st)
	want := map[string]string{"shop:C1": "C1 source_id", "helpdesk:hd-1": "C1 email", "shop:C2": "C1 phone", "crm:crm-2": "C1 email",
		"crm:crm-5": "crm-5 source_id", "crm:crm-6": "crm-6 source_id"}
	if !reflect.DeepEqual(ids, want) {
		t.Fatalf("after the merge:\n got %v\nwant %v", ids, want)
	}

	// A record that goes away loses its identity; nothing else is written.
	muts := identityBlocks(t, st)[warehouse.MutationsKey]
	exec(t, st.Conn, `ALTER TABLE customers DELETE WHERE source = 'crm' AND customer_id = 'crm-6' SETTINGS mutations_sync = 2`)
	gone, err := Resolve(ctx, st, rules)
	if err != nil {
		t.Fatal(err)
	}
	if gone.Changed != 0 || gone.Removed != 1 {
		t.Fatalf("removal wrote %d, removed %d; want 0, 1", gone.Changed, gone.Removed)
	}
	if got := identityBlocks(t, st)[warehouse.MutationsKey]; got != muts+1 {
		t.Fatalf("identities have %d mutations, want %d (one removal)", got, muts+1)
	}
	delete(want, "crm:crm-6")
	if got := identityMap(t, st); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the removal:\n got %v\nwant %v", got, want)
	}
	var versions uint64
	if err := st.Conn.QueryRow(ctx, "SELECT count() FROM identities WHERE source_key = 'crm-6'").Scan(&versions); err != nil || versions != 0 {
		t.Fatalf("versions of the removed identity: %d (%v), want 0", versions, err)
	}
}
