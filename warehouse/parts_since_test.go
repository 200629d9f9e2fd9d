package warehouse_test

import (
	"context"
	"testing"

	"github.com/converge-dev/converge/warehouse/whtest"
)

// TestPartsSince: the parts written since a mark are named, and pure while
// no merge joined them with parts at or below it; a merge across the mark
// makes them impure.
func TestPartsSince(t *testing.T) {
	ctx := context.Background()
	s := whtest.Store(t)
	exec := func(q string) {
		t.Helper()
		if err := s.Conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	since := func() map[string]int64 {
		t.Helper()
		b, err := s.PartBlocks(ctx, []string{"identities"})
		if err != nil {
			t.Fatal(err)
		}
		return b["identities"]
	}
	check := func(mark map[string]int64, wantParts int, wantPure bool) {
		t.Helper()
		parts, pure, err := s.PartsSince(ctx, "identities", mark)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) != wantParts || pure != wantPure {
			t.Fatalf("since %v: parts %v pure %v, want %d parts, pure %v", mark, parts, pure, wantParts, wantPure)
		}
	}
	exec("SYSTEM STOP MERGES identities")
	exec("INSERT INTO identities (source, source_key, customer_id, rule) VALUES ('shop', 'a', 'a', 'source_id')")
	exec("INSERT INTO identities (source, source_key, customer_id, rule) VALUES ('shop', 'b', 'b', 'source_id')")
	mark := since()
	check(mark, 0, true)
	check(nil, 2, true) // nothing seen: every part is new
	exec("INSERT INTO identities (source, source_key, customer_id, rule, matched_at) VALUES ('shop', 'a', 'b', 'email', now64(3) + 1)")
	exec("INSERT INTO identities (source, source_key, customer_id, rule) VALUES ('shop', 'c', 'b', 'email')")
	check(mark, 2, true)
	exec("SYSTEM START MERGES identities")
	exec("OPTIMIZE TABLE identities PARTITION ID 'all' FINAL")
	parts, pure, err := s.PartsSince(ctx, "identities", mark)
	if err != nil || pure || len(parts) != 1 {
		t.Fatalf("after a merge of every part: %v (pure %v, %v), want one impure part (the old version of shop:a is gone)", parts, pure, err)
	}
}
