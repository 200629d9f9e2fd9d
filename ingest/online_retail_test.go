package ingest_test

import (
	"os"
	"testing"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/warehouse/whtest"
)

const onlineRetailFile = "../../shared/data/online_retail.csv.gz"

// TestOnlineRetail loads the real UCI Online Retail file with its preset and
// checks the published facts (README of ../shared/data), then loads it again
// and checks that nothing changes.
func TestOnlineRetail(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 541,909 rows")
	}
	if _, err := os.Stat(onlineRetailFile); err != nil {
		t.Skipf("no %s: %v", onlineRetailFile, err)
	}
	st := whtest.Store(t)
	opts := ingest.Options{Mapping: preset(t, "online_retail"), Preset: "online_retail"}
	checks := []struct{ name, q, want string }{
		{"net revenue", "SELECT round((SELECT sum(revenue) FROM orders FINAL WHERE source = 'online_retail') - (SELECT sum(amount) FROM refunds FINAL WHERE source = 'online_retail'), 2)", "9747747.93"},
		{"sum of lines", "SELECT round(sum(amount), 2) FROM order_lines FINAL WHERE source = 'online_retail'", "9747747.93"},
		{"distinct customers", "SELECT uniqExact(customer_id) FROM (SELECT customer_id FROM orders FINAL UNION ALL SELECT customer_id FROM refunds FINAL) WHERE customer_id != ''", "4372"},
		{"lines", "SELECT count() FROM order_lines FINAL", "541909"},
		{"invoices", "SELECT (SELECT count() FROM orders FINAL) + (SELECT count() FROM refunds FINAL)", "25900"},
		{"anonymous lines", "SELECT countIf(customer_id = '') FROM order_lines FINAL", "135080"},
		{"cancellation lines", "SELECT countIf(startsWith(order_id, 'C')) FROM order_lines FINAL", "9288"},
		{"bad debt kept", "SELECT countIf(unit_price < 0) FROM order_lines FINAL", "2"},
		{"first invoice in UTC", "SELECT toString(ordered_at) FROM orders FINAL WHERE order_id = '536365'", "2010-12-01 08:26:00.000"},
		{"summer invoice in UTC", "SELECT toString(ordered_at) FROM orders FINAL WHERE order_id = 'A563185'", "2011-08-12 13:50:00.000"},
	}
	for pass := 1; pass <= 2; pass++ {
		sum := load(t, st, onlineRetailFile, opts)
		t.Logf("pass %d: read %d loaded %d rejected %d duplicates %d in %.1fs, warnings %v", pass, sum.Read, sum.Loaded, sum.Rejected, sum.Duplicates, sum.Seconds, sum.Warnings)
		if sum.Read != 541909 || sum.Rejected != 0 {
			t.Fatalf("pass %d: read %d rejected %d, want 541909 and 0: %v", pass, sum.Read, sum.Rejected, sum.Rejects)
		}
		if pass == 2 && sum.Duplicates != 541909 {
			t.Errorf("second load: %d duplicates, want 541909", sum.Duplicates)
		}
		wantWarn := "5268 rows repeat an earlier line of the same order exactly"
		if len(sum.Warnings) == 0 || len(sum.Warnings[0]) < len(wantWarn) || sum.Warnings[0][:len(wantWarn)] != wantWarn {
			t.Errorf("warnings %q, want one starting %q", sum.Warnings, wantWarn)
		}
		for _, c := range checks {
			if got := queryString(t, st, c.q); got != c.want {
				t.Errorf("pass %d: %s = %s, want %s", pass, c.name, got, c.want)
			}
		}
	}
}
