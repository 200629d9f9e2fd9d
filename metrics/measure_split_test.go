package metrics

import (
	"slices"
	"testing"
)

func TestSplitDistinct(t *testing.T) {
	for _, c := range []struct {
		measure, outer string
		key, conds     []string
	}{
		{"uniqExact(customer_id)", "count()", []string{"customer_id"}, nil},
		{"100 * uniqExactIf(customer_id, is_repeat) / uniqExact(customer_id)", "100 * countIf(_f0) / count()", []string{"customer_id"}, []string{"is_repeat"}},
		{"uniqExact(source, order_id)", "count()", []string{"source", "order_id"}, nil},
		{"uniqExactIf(source, order_id, status = 'paid, late') - uniqExactIf(source, order_id, f(x, 1))", "countIf(_f0) - countIf(_f1)", []string{"source", "order_id"}, []string{"status = 'paid, late'", "f(x, 1)"}},
		// Not only distinct counts of one key: planned in one pass.
		{measure: "sum(revenue)"},
		{measure: "100 * countIf(score >= 4) / count()"},
		{measure: "uniqExact(customer_id) + sum(amount)"},
		{measure: "uniqExact(customer_id) / uniqExact(order_id)"},
		{measure: "median(x) + uniqExact(customer_id)"},
		{measure: "uniqExact(customer_id) * rate"},
		{measure: "uniqExactIf(customer_id)"},
		{measure: "uniqExact(customer_id"},
		{measure: "100"},
	} {
		s, ok := splitDistinct(c.measure)
		if ok != (c.outer != "") {
			t.Errorf("%q: split %v, want %v", c.measure, ok, c.outer != "")
			continue
		}
		if ok && (s.outer != c.outer || !slices.Equal(s.key, c.key) || !slices.Equal(s.conds, c.conds)) {
			t.Errorf("%q: outer %q key %q conds %q, want %q %q %q", c.measure, s.outer, s.key, s.conds, c.outer, c.key, c.conds)
		}
	}
}
