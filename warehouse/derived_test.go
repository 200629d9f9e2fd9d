package warehouse_test

import (
	"context"
	"testing"

	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// TestDataMarkIgnoresMerges: DataMark (and the block numbers under it)
// change with an insert, a replaced partition and a mutation, never with a
// merge; ReplacePartitions swaps a partition whole and empties one the
// staging table does not hold.
func TestDataMarkIgnoresMerges(t *testing.T) {
	ctx := context.Background()
	s := whtest.Store(t)
	exec := func(q string) {
		t.Helper()
		if err := s.Conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mark := func() string {
		t.Helper()
		m, _, err := s.DataMark(ctx, []string{"orders"})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	empty := mark()
	for _, id := range []string{"a", "b", "c"} {
		exec("INSERT INTO orders (order_id, ordered_at, revenue, currency, source) VALUES ('" + id + "', '2026-01-05 10:00:00', 1, 'EUR', 'x')")
	}
	three := mark()
	if three == empty {
		t.Fatal("three inserts left the mark as it was")
	}
	exec("OPTIMIZE TABLE orders FINAL")
	if got := mark(); got != three {
		t.Fatalf("a merge changed the mark: %s → %s", three, got)
	}
	exec("ALTER TABLE orders DELETE WHERE order_id = 'a' SETTINGS mutations_sync = 2")
	mutated := mark()
	if mutated == three {
		t.Fatal("a mutation left the mark as it was")
	}
	blocks, err := s.PartBlocks(ctx, []string{"orders"})
	if err != nil {
		t.Fatal(err)
	}
	if blocks["orders"][warehouse.MutationsKey] != 1 || blocks["orders"]["202601"] == 0 {
		t.Fatalf("blocks %v, want partition 202601 and one mutation", blocks)
	}

	exec("CREATE TABLE r (k String, at Date) ENGINE = MergeTree PARTITION BY toYYYYMM(at) ORDER BY k")
	exec("INSERT INTO r VALUES ('old', '2026-01-01'), ('old', '2026-02-01')")
	if err := s.CreateStagingTable(ctx, "r_stage", "r"); err != nil {
		t.Fatal(err)
	}
	exec("INSERT INTO r_stage VALUES ('new', '2026-01-09')")
	if err := s.ReplacePartitions(ctx, "r_stage", "r", []string{"202601", "202602"}); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := s.Conn.QueryRow(ctx, "SELECT arrayStringConcat(groupArray(concat(k, '@', toString(at))), ',') FROM (SELECT * FROM r ORDER BY at)").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "new@2026-01-09" {
		t.Fatalf("after replacing both partitions: %s, want new@2026-01-09 alone", got)
	}
	// The replaced parts stay gone when the table's parts are loaded from disk
	// again, as after a restart (REPLACE PARTITION left them to come back).
	exec("DETACH TABLE r")
	exec("ATTACH TABLE r")
	if err := s.Conn.QueryRow(ctx, "SELECT arrayStringConcat(groupArray(concat(k, '@', toString(at))), ',') FROM (SELECT * FROM r ORDER BY at)").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "new@2026-01-09" {
		t.Fatalf("after the table's parts were loaded again: %s, want new@2026-01-09 alone", got)
	}
}
