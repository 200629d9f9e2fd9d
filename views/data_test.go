package views

import (
	"testing"
	"time"
)

func TestDataFormats(t *testing.T) {
	cases := []struct{ got, want string }{
		{FormatBytes(0), "0 B"},
		{FormatBytes(999), "999 B"},
		{FormatBytes(2_234), "2.2 KB"},
		{FormatBytes(12_345_678), "12.3 MB"},
		{FormatBytes(5_000_000_000_000_000), "5,000.0 TB"},
		{FormatDuration(0), NoData},
		{FormatDuration(850 * time.Millisecond), "850 ms"},
		{FormatDuration(4249 * time.Millisecond), "4.2 s"},
		{FormatDuration(3*time.Minute + 12*time.Second), "3 min 12 s"},
		{FormatDuration(2*time.Hour + 5*time.Minute), "2 h 05 min"},
		{FormatAge(20 * time.Second), "just now"},
		{FormatAge(12 * time.Minute), "12 min ago"},
		{FormatAge(47 * time.Hour), "47 h ago"},
		{FormatAge(80 * time.Hour), "3 days ago"},
		{FormatCount(1234567), "1,234,567"},
	}
	for i, c := range cases {
		if c.got != c.want {
			t.Errorf("case %d: got %q, want %q", i, c.got, c.want)
		}
	}
}
