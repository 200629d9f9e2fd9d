package views

import "testing"

func TestShowing(t *testing.T) {
	for _, tc := range []struct {
		n, total int
		want     string
	}{
		{0, 0, ""},
		{1, 1, "Showing the only order."},
		{3, 3, "Showing all 3 orders, newest first."},
		{50, 1234, "Showing 50 of 1,234 orders, newest first."},
	} {
		if got := Showing(tc.n, tc.total, "order", "orders", ", newest first"); got != tc.want {
			t.Errorf("Showing(%d, %d) = %q, want %q", tc.n, tc.total, got, tc.want)
		}
	}
}
