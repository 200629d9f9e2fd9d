package ingest_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"testing"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// TestPresets loads each preset's real-shaped fixture, checks what landed,
// then loads it again and checks that the second run only finds duplicates.
func TestPresets(t *testing.T) {
	type check struct{ q, want string }
	cases := []struct {
		preset string
		read   int64
		checks []check
	}{
		{"online_retail", 86, []check{
			{"SELECT count() FROM order_lines FINAL", "86"},
			{"SELECT round(sum(amount), 2) FROM order_lines FINAL", "-10398.7"},
			{"SELECT round((SELECT sum(revenue) FROM orders FINAL) - (SELECT sum(amount) FROM refunds FINAL), 2)", "-10398.7"},
			{"SELECT groupArray(refund_id) FROM refunds FINAL", "['C536379']"},
			{"SELECT toString(amount) FROM refunds FINAL", "27.5"},
			{"SELECT groupUniqArray(country) FROM orders FINAL", "['GB']"},
			{"SELECT countIf(customer_id = '') FROM order_lines FINAL", "6"},
			{"SELECT max(line_no) FROM order_lines FINAL WHERE order_id = '536409'", "58"},
		}},
		{"shopify_orders", 5, []check{
			{"SELECT count() FROM orders FINAL", "3"},
			{"SELECT count() FROM order_lines FINAL", "5"},
			{"SELECT toString(revenue) FROM orders FINAL WHERE order_id = '#1001'", "54"},
			{"SELECT concat(customer_id, ' ', currency, ' ', status, ' ', channel, ' ', campaign, ' ', country, ' ', toString(discount)) FROM orders FINAL WHERE order_id = '#1001'", "anna.schmidt@example.com EUR completed online SPRING10 DE 6"},
			{"SELECT toString(ordered_at) FROM orders FINAL WHERE order_id = '#1003'", "2024-03-31 21:30:00.000"},
			{"SELECT concat(status, ' ', toString(refund)) FROM orders FINAL WHERE order_id = '#1002'", "refunded 29.9"},
			{"SELECT concat(toString(line_no), ' ', sku, ' ', currency, ' ', customer_id, ' ', toString(amount)) FROM order_lines FINAL WHERE order_id = '#1001' AND line_no = 2", "2 MUG-BLU EUR anna.schmidt@example.com 30"},
		}},
		{"stripe_payments", 3, []check{
			{"SELECT groupArray(concat(currency, ':', toString(revenue), ':', status, ':', customer_id)) FROM (SELECT * FROM orders FINAL ORDER BY ordered_at)", "['USD:49:completed:cus_PQ1a2b3c4d','USD:120:refunded:cus_PQ5e6f7g8h','EUR:15.5:cancelled:guest@example.net']"},
		}},
		{"hubspot_contacts", 3, []check{
			{"SELECT groupArray(concat(customer_id, ' ', email, ' ', phone, ' ', acquisition_channel, ' ', country)) FROM (SELECT * FROM customers FINAL ORDER BY customer_id)", "['hubspot:51 anna.schmidt@example.com +49301234567 paid_search DE','hubspot:52 ben@example.org  organic_search AT','hubspot:53 carla@example.com +39061234567 social_media IT']"},
		}},
		{"hubspot_deals", 3, []check{
			{"SELECT groupArray(concat(order_id, ':', status, ':', toString(toDate(ordered_at)))) FROM (SELECT * FROM orders FINAL ORDER BY order_id)", "['9001:completed:2024-03-15','9002:cancelled:2024-03-20','9003:pending:2024-03-05']"},
		}},
		{"google_ads_campaigns", 3, []check{
			{"SELECT toString(sum(spend)) FROM marketing_spend FINAL", "2645.86"},
			{"SELECT toString(sum(impressions)) FROM marketing_spend FINAL", "97134"},
			{"SELECT groupUniqArray(channel) FROM marketing_spend FINAL", "['google_ads']"},
		}},
		{"meta_ads_campaigns", 3, []check{
			{"SELECT toString(sum(spend)) FROM marketing_spend FINAL", "330.4"},
			{"SELECT toString(sum(clicks)) FROM marketing_spend FINAL", "850"},
		}},
		{"mailchimp_activity", 4, []check{
			{"SELECT groupArray(kind) FROM (SELECT kind FROM touchpoints FINAL ORDER BY occurred_at)", "['open','click','open','unsubscribe']"},
			{"SELECT uniqExact(event_id) FROM touchpoints FINAL", "4"},
		}},
		{"zendesk_tickets", 3, []check{
			{"SELECT groupArray(concat(ticket_id, ':', status, ':', channel, ':', ifNull(toString(csat), 'null'), ':', ifNull(toString(resolved_at), 'open'))) FROM (SELECT * FROM tickets FINAL ORDER BY ticket_id)",
				"['4101:resolved:web:5:2024-03-02 14:30:00.000','4102:closed:email:1:2024-03-05 16:00:00.000','4103:open:chat:null:open']"},
			// The help desk's own word is kept for display (as sent), the normalised state for metrics.
			{"SELECT groupArray(concat(status_text, '>', status)) FROM (SELECT * FROM tickets FINAL ORDER BY ticket_id)", "['Solved>resolved','Closed>closed','Open>open']"},
		}},
		{"typeform_nps", 4, []check{
			{"SELECT round(100 * (countIf(score >= 9) - countIf(score <= 6)) / count()) FROM survey_responses FINAL WHERE kind = 'nps'", "0"},
			{"SELECT comment FROM survey_responses FINAL WHERE response_id = 'r_102'", `Refund took "forever"`},
		}},
	}
	for _, c := range cases {
		t.Run(c.preset, func(t *testing.T) {
			st := whtest.Store(t)
			opts := ingest.Options{Mapping: preset(t, c.preset), Preset: c.preset}
			file := "testdata/" + c.preset + ".csv"
			sum := load(t, st, file, opts)
			if sum.Read != c.read || sum.Loaded != c.read || sum.Rejected != 0 {
				t.Fatalf("read %d loaded %d rejected %d, want %d loaded: %v", sum.Read, sum.Loaded, sum.Rejected, c.read, sum.Rejects)
			}
			for _, ch := range c.checks {
				if got := queryString(t, st, ch.q); got != ch.want {
					t.Errorf("%s\n got %s\nwant %s", ch.q, got, ch.want)
				}
			}
			if b, err := os.ReadFile(file); err != nil {
				t.Fatal(err)
			} else if h := sha256.Sum256(b); sum.Checksum != hex.EncodeToString(h[:]) || sum.Bytes != int64(len(b)) {
				t.Errorf("checksum %s bytes %d, want the file's SHA-256 and %d", sum.Checksum, sum.Bytes, len(b))
			}
			again := load(t, st, file, opts)
			if again.Loaded != 0 || again.Duplicates != c.read {
				t.Errorf("second load: loaded %d duplicates %d, want 0 and %d", again.Loaded, again.Duplicates, c.read)
			}
			for _, ch := range c.checks {
				if got := queryString(t, st, ch.q); got != ch.want {
					t.Errorf("after second load: %s\n got %s\nwant %s", ch.q, got, ch.want)
				}
			}
			if got := queryString(t, st, "SELECT concat(status, ' ', toString(rows_read), ' ', toString(rows_loaded)) FROM ingest_runs FINAL WHERE run_id = '"+sum.RunID+"'"); got != "succeeded "+itoa(c.read)+" "+itoa(c.read) {
				t.Errorf("ingest_runs row: %s", got)
			}
		})
	}
}

func itoa(n int64) string {
	return string(func() []byte {
		if n == 0 {
			return []byte("0")
		}
		var b []byte
		for ; n > 0; n /= 10 {
			b = append([]byte{byte('0' + n%10)}, b...)
		}
		return b
	}())
}
