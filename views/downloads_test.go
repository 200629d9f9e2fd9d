package views

import (
	"slices"
	"testing"
)

// Each download says which of its columns are formatted numbers (written as they are) and
// which are text (guarded against being run as a formula): keys and labels are text, figures
// are numbers.
func TestGridNumeric(t *testing.T) {
	cases := []struct {
		name string
		grid Grid
		want []bool
	}{
		{"chart table", (&Table{Head: []string{"Month", "Revenue", "Previous"}}).Grid(), []bool{false, true, true}},
		{"table that says", (&Table{Head: []string{"A", "B"}, Numeric: []bool{true, false}}).Grid(), []bool{true, false}},
		{"link table", (&LinkTable{Head: []string{"Ordered", "Order", "Revenue"}, Num: []bool{false, false, true}}).Grid(), []bool{false, false, true}},
		{"channel table", (&ChannelTable{KeyHead: []string{"Channel", "Campaign"}, Columns: []ChannelColumn{{Head: "Spend", Unit: "EUR"}, {Head: "ROAS"}}}).Grid(),
			[]bool{false, false, true, true}},
		{"cohort matrix", (&CohortMatrix{Head: []string{"Cohort", "Customers", "1", "2"}}).Grid(), []bool{false, true, true, true}},
		{"sources", Grid{Head: SourcesHead, Numeric: SourcesNumeric}, []bool{false, false, true, false, false, false, false, true, false, true}},
	}
	for _, c := range cases {
		if !slices.Equal(c.grid.Numeric, c.want) {
			t.Errorf("%s: numeric %v, want %v", c.name, c.grid.Numeric, c.want)
		}
		if len(c.grid.Numeric) != len(c.grid.Head) {
			t.Errorf("%s: %d numeric flags for %d columns", c.name, len(c.grid.Numeric), len(c.grid.Head))
		}
	}
	for name, n := range map[string][]bool{"runs": RunsNumeric, "reasons": ReasonsNumeric} {
		head := map[string][]string{"runs": RunsHead, "reasons": ReasonsHead}[name]
		for i, num := range n {
			if num && !slices.Contains([]string{"Read", "Loaded", "Rejected", "Duplicates", "Records"}, head[i]) {
				t.Errorf("%s: column %q marked numeric", name, head[i])
			}
		}
	}
}
