package ingest

import (
	"testing"

	"github.com/shopspring/decimal"
)

func TestFastDecimal(t *testing.T) {
	for _, s := range []string{"0", "1", "-1", "+2.5", "12.3456", "-0.0001", "99999999999999.9999", "10.", ".5"} {
		d, ok := fastDecimal(s)
		want := decimal.RequireFromString(s)
		if !ok || !d.Equal(want) {
			t.Errorf("%q: %v %v, want %v", s, d, ok, want)
		}
	}
	for _, s := range []string{"", "-", ".", "1.23456", "123456789012345", "1e3", "1,5", "1.2.3", "--1", "0x10"} {
		if d, ok := fastDecimal(s); ok {
			t.Errorf("%q: %v accepted", s, d)
		}
	}
}
