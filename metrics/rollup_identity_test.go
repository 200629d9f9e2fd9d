package metrics_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/ingest/identity"
	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse"
)

// TestRollupIdentityChanges: identity resolution that merges two customers
// (a new customer record linked to both) moves one's history to the other;
// one upkeep round folds it into every rollup, which then equals raw rows,
// by recomputing only what the merge moved: a slot rollup by customer
// recomputes fewer partitions than it has, a rollup by customer_id rewrites
// the moved customers' rows, not all. When the merge's old versions were
// merged away before the upkeep, the rollups by customer_id are rebuilt
// whole. A customer record that goes away takes its identity with it (a
// deletion: what reads identities is recomputed whole) and the rollups again
// equal raw rows.
func TestRollupIdentityChanges(t *testing.T) {
	ctx := context.Background()
	st, reg := smallDemo(t)
	// A merged customer record with orders of its own (removed at the end).
	gone := mergedMember(t, st)
	if err := st.Conn.Exec(ctx, `INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, cost, status, channel, campaign, country, source) VALUES
		('zz-o1', {k:String}, '2024-08-03 10:00:00', 70, 'EUR', 30, 'completed', 'email', '', 'DE', {s:String}),
		('zz-o2', {k:String}, '2025-05-17 18:30:00', 25, 'EUR', 10, 'completed', 'ads', 'spring', 'DE', {s:String})`,
		clickhouse.Named("s", gone.Source), clickhouse.Named("k", gone.Key)); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.UpkeepRollups(ctx); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(16, 2))

	// A resolution that changes nothing writes nothing: the rollups stay.
	ids, err := identity.Resolve(ctx, st, identity.Rules{})
	if err != nil {
		t.Fatal(err)
	}
	if ids.Changed != 0 || ids.Removed != 0 {
		t.Fatalf("resolution again after the demo's wrote %d, removed %d identities", ids.Changed, ids.Removed)
	}
	up, err := reg.UpkeepRollups(ctx)
	if err != nil || up.Partitions != 0 || len(up.Built) != 0 {
		t.Fatalf("upkeep after an unchanged resolution: %+v, %v; want nothing recomputed", up, err)
	}

	// Two customers with orders in different months, in different groups.
	a, b := twoCustomers(t, st)
	if err := st.Conn.Exec(ctx, `INSERT INTO customers (customer_id, email, first_seen_at, country, source) VALUES ('zz-link', '', '2026-06-01 00:00:00', 'DE', 'crm')`); err != nil {
		t.Fatal(err)
	}
	for _, n := range []identity.Node{a, b} {
		if err := identity.Link(ctx, st, identity.Node{Source: "crm", Key: "zz-link"}, n); err != nil {
			t.Fatal(err)
		}
	}
	ids, err = identity.Resolve(ctx, st, identity.Rules{})
	if err != nil {
		t.Fatal(err)
	}
	if ids.Changed == 0 || ids.Changed > 20 || ids.Removed != 0 {
		t.Fatalf("merge wrote %d identities, removed %d; want the few it moved", ids.Changed, ids.Removed)
	}
	slotParts := partitions(t, st, "rollup_active_customers")
	keyedRows := liveRows(t, st, "rollup_new_customers")
	up, err = reg.UpkeepRollups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(up.Built) != 0 || up.Partitions == 0 {
		t.Fatalf("upkeep after the merge: %+v; want partitions recomputed, nothing built", up)
	}
	// Recomputing active_customers whole alone would count all its partitions.
	if up.Partitions >= slotParts {
		t.Fatalf("upkeep after the merge recomputed %d partitions; rollup_active_customers alone has %d: it rebuilt whole", up.Partitions, slotParts)
	}
	if n := newestRows(t, st, "rollup_new_customers"); n == 0 || n > 4 || keyedRows < 100 {
		t.Fatalf("rollup_new_customers: %d of %d rows rewritten by the merge; want the moved customers' (1 to 4)", n, keyedRows)
	}
	if up.Slots == 0 {
		t.Fatalf("upkeep after the merge: %+v; want the moved customers' attribution slots rewritten in place", up)
	}
	wholeRange(t, reg)
	compareAll(t, reg, rng, 2)
	compareViews(t, reg, rng, 4)

	// Another merge, whose old versions a merge of the identities' parts
	// drops before the upkeep runs: the old canonical ids cannot be read, so
	// the rollups by customer_id are rebuilt whole, and stay exact.
	c, d := twoCustomers(t, st)
	if err := identity.Link(ctx, st, c, d); err != nil {
		t.Fatal(err)
	}
	if ids, err = identity.Resolve(ctx, st, identity.Rules{}); err != nil || ids.Changed == 0 {
		t.Fatalf("second merge: %+v, %v", ids, err)
	}
	if err := st.Conn.Exec(ctx, "OPTIMIZE TABLE identities FINAL"); err != nil {
		t.Fatal(err)
	}
	if up, err = reg.UpkeepRollups(ctx); err != nil || up.Partitions == 0 || len(up.Built) != 0 {
		t.Fatalf("upkeep after a merge merged away: %+v, %v; want partitions recomputed, nothing built", up, err)
	}
	if n, all := newestRows(t, st, "rollup_new_customers"), liveRows(t, st, "rollup_new_customers"); n != all {
		t.Fatalf("rollup_new_customers: %d of %d rows rewritten after a merge whose old versions are gone; want a rebuild", n, all)
	}
	wholeRange(t, reg)

	// A customer record that goes away: its identity goes, its orders are its
	// own id's again.
	if err := st.Conn.Exec(ctx, "ALTER TABLE customers DELETE WHERE source = {s:String} AND customer_id = {k:String} SETTINGS mutations_sync = 2",
		clickhouse.Named("s", gone.Source), clickhouse.Named("k", gone.Key)); err != nil {
		t.Fatal(err)
	}
	ids, err = identity.Resolve(ctx, st, identity.Rules{})
	if err != nil {
		t.Fatal(err)
	}
	if ids.Removed != 1 {
		t.Fatalf("removal: %d identities removed (%d written), want 1", ids.Removed, ids.Changed)
	}
	if up, err = reg.UpkeepRollups(ctx); err != nil || up.Partitions == 0 || len(up.Built) != 0 {
		t.Fatalf("upkeep after the removal: %+v, %v; want partitions recomputed, nothing built", up, err)
	}
	wholeRange(t, reg)
	compareAll(t, reg, rng, 1)
	compareViews(t, reg, rng, 3)
}

// twoCustomers are the source ids of two customers with non-cancelled orders
// whose canonical customers differ and who have no identity but their own.
func twoCustomers(t *testing.T, st *warehouse.Store) (identity.Node, identity.Node) {
	t.Helper()
	rows, err := st.Conn.Query(context.Background(), `
		SELECT source, customer_id FROM orders FINAL
		WHERE status != 'cancelled' AND customer_id != ''
		  AND (source, customer_id) NOT IN (SELECT source, source_key FROM identity_map)
		  AND customer_id NOT IN (SELECT canonical FROM identity_map)
		GROUP BY source, customer_id HAVING count() >= 2
		ORDER BY min(ordered_at) LIMIT 2`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []identity.Node
	for rows.Next() {
		var n identity.Node
		if err := rows.Scan(&n.Source, &n.Key); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	if len(out) != 2 {
		t.Fatalf("found %d customers to merge, want 2", len(out))
	}
	return out[0], out[1]
}

// mergedMember is a customer record that resolves to another id by a rule
// other than an explicit link.
func mergedMember(t *testing.T, st *warehouse.Store) identity.Node {
	t.Helper()
	var n identity.Node
	if err := st.Conn.QueryRow(context.Background(), `
		SELECT c.source, c.customer_id FROM customers AS c FINAL
		WHERE (c.source, c.customer_id) IN (SELECT source, source_key FROM identity_map)
		  AND (c.source, c.customer_id) NOT IN (SELECT source, source_key FROM identity_links)
		  AND (c.source, c.customer_id) NOT IN (SELECT linked_source, linked_key FROM identity_links)
		ORDER BY c.source, c.customer_id LIMIT 1`).Scan(&n.Source, &n.Key); err != nil {
		t.Fatalf("a merged customer record with orders: %v", err)
	}
	return n
}

// partitions counts the active partitions of table.
func partitions(t *testing.T, st *warehouse.Store, table string) int {
	t.Helper()
	var n uint64
	if err := st.Conn.QueryRow(context.Background(), "SELECT uniqExact(partition_id) FROM system.parts WHERE database = currentDatabase() AND active AND table = {t:String}",
		clickhouse.Named("t", table)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// liveRows counts the kept rows of a keyed rollup.
func liveRows(t *testing.T, st *warehouse.Store, table string) int {
	t.Helper()
	var n uint64
	if err := st.Conn.QueryRow(context.Background(), "SELECT count() FROM `"+table+"` FINAL WHERE _deleted = 0").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// newestRows counts the kept rows of a keyed rollup written by its latest
// statement: all of them after a rebuild, the recomputed keys' after an
// incremental upkeep.
func newestRows(t *testing.T, st *warehouse.Store, table string) int {
	t.Helper()
	var n uint64
	if err := st.Conn.QueryRow(context.Background(), "SELECT countIf(_version = (SELECT max(_version) FROM `"+table+"`)) FROM `"+table+"` FINAL").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// wholeRange compares every rolled-up metric over the demo's whole history by
// month and by its first dimension, rollups against raw rows.
func wholeRange(t *testing.T, reg *metrics.Registry) {
	t.Helper()
	ctx := context.Background()
	for _, name := range rolledUp {
		d, ok := reg.Get(name)
		if !ok {
			t.Fatalf("no metric %s", name)
		}
		p := metrics.Params{From: time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
			Grain: metrics.Month, TZ: time.UTC, WeekStart: time.Monday, FiscalYearStart: time.January}
		for _, by := range []string{"", firstDim(d)} {
			p.By = by
			rolled, err := reg.Query(ctx, name, p)
			if err != nil {
				t.Fatalf("%s by %q: %v", name, by, err)
			}
			raw, err := reg.Query(metrics.RawRows(ctx), name, p)
			if err != nil {
				t.Fatalf("%s by %q (raw): %v", name, by, err)
			}
			if diff := sameAnswer(d.Unit, raw, rolled); diff != "" {
				t.Errorf("%s by %q over the whole history: rollup differs from raw rows: %s", name, by, diff)
			}
		}
	}
}

func firstDim(d *metrics.Definition) string {
	if len(d.Dimensions) == 0 {
		return ""
	}
	return d.Dimensions[0].Name
}
