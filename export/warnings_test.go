package export

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// Rows a metric leaves out (an order in a currency that cannot be converted to the report
// currency) are named in the manifests of the metric export and of the finance pack: finance
// files never leave rows out without a word.
func TestExportWarnings(t *testing.T) {
	ctx := context.Background()
	st, reg := fixture(t)
	if err := st.Conn.Exec(ctx, `INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, source) VALUES
		('xx1', 'c1', '2026-02-10 12:00:00', 99, 'XX', 'shop'), ('xx2', 'c1', '2026-05-10 12:00:00', 99, 'XX', 'shop')`); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	m, err := Metric(ctx, reg, st, "revenue_gross", params(t, reg, "revenue_gross", "from=2026-01-01&to=2026-04-01&grain=month"), &buf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Warnings) != 1 || m.Warnings[0].Currency != "XX" || m.Warnings[0].Rows != 1 {
		t.Fatalf("metric manifest warnings %+v, want the XX order", m.Warnings)
	}
	b, _ := json.Marshal(m)
	if !strings.Contains(string(b), `"warnings":[{"code":"not_convertible"`) {
		t.Errorf("manifest JSON %s", b)
	}
	// Nothing left out: no warnings key.
	m, err = Metric(ctx, reg, st, "revenue_gross", params(t, reg, "revenue_gross", "from=2026-01-01&to=2026-04-01&grain=month&by=currency"), &buf, Options{})
	if err != nil || len(m.Warnings) != 0 {
		t.Fatalf("by currency: %v %+v, want no warnings", err, m)
	}
	if b, _ := json.Marshal(m); strings.Contains(string(b), `"warnings"`) {
		t.Errorf("manifest JSON without warnings has the key: %s", b)
	}

	pm, err := FinancePack(ctx, reg, st, PackParams{Month: may2026, TZ: berlin}, &buf, Options{Raw: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(pm.Warnings) == 0 || !strings.Contains(strings.Join(pm.Warnings, "\n"), "1 order in currency XX left out: not convertible to EUR") {
		t.Fatalf("pack warnings %q, want the XX orders named", pm.Warnings)
	}
	for i := 1; i < len(pm.Warnings); i++ {
		if pm.Warnings[i-1] >= pm.Warnings[i] {
			t.Errorf("pack warnings not sorted and unique: %q", pm.Warnings)
		}
	}
}
