package metrics

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/converge-dev/converge/warehouse/whtest"
)

// Orders stored by older versions (no check at the door) or in currencies converge cannot
// convert: the metrics answer in the report currency and name the rows they leave out, never
// fail. (Found by an attack: one order in currency "XX" made revenue_gross answer 500.)
func TestCurrencyLeftOut(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, channel, source) VALUES
		 ('o1','c1','2026-01-10 10:00:00',100,'EUR','ads','shop'),
		 ('o2','c2','2026-02-10 10:00:00', 50,'EUR','email','shop'),
		 ('o3','c3','2026-02-11 10:00:00', 60,'XX','ads','shop'),
		 ('o4','c4','2026-02-12 10:00:00', 40,'XX','email','shop'),
		 ('o5','c5','2026-02-13 10:00:00',  5,'','ads','shop'),
		 ('o6','c6','2026-02-14 10:00:00',  7,'USD','ads','shop'),
		 ('o7','c7','2025-12-20 10:00:00', 30,'XX','ads','shop')`,
		`INSERT INTO refunds (refund_id, order_id, customer_id, refunded_at, amount, currency, source) VALUES
		 ('r1','o1','c1','2026-02-15 10:00:00',10,'EUR','shop'), ('r2','o3','c3','2026-02-15 10:00:00',5,'XX','shop')`,
	} {
		if err := st.Conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	eur, err := New(ctx, Options{Store: st, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	usd, err := New(ctx, Options{Store: st, CacheTTL: -1, Defaults: Defaults{Currency: "USD"}})
	if err != nil {
		t.Fatal(err)
	}
	const jan = "from=2026-01-01&to=2026-02-28&grain=month" // January and February, both days included
	xx2 := "current XX 2 orders: 2 orders in currency XX left out: not convertible to EUR"
	cases := []struct {
		name, metric, query string
		reg                 *Registry
		series              string   // dim=total of each series
		currency            string   // Result.Currency
		warnings            []string // period currency rows noun: message prefix
	}{
		{"an amount: the report currency's rows, the others named", "revenue_gross", jan, eur, "=150", "EUR",
			[]string{xx2, "current  1 order: 1 order without a currency left out", "current USD 1 order: 1 order in currency USD left out"}},
		{"broken down by another dimension", "revenue_gross", jan + "&by=channel", eur, "ads=100 email=50", "EUR",
			[]string{xx2, "current  1 order: 1 order without a currency", "current USD 1 order: 1 order in currency USD"}},
		{"broken down by currency: every currency, nothing left out", "revenue_gross", jan + "&by=currency", eur, "=5 EUR=150 USD=7 XX=100", "", nil},
		{"filtered on a currency: that currency", "revenue_gross", jan + "&filter=currency=XX", eur, "=100", "XX", nil},
		{"a ratio: the report currency's revenue over its orders", "aov", jan, eur, "=75", "EUR",
			[]string{xx2, "current  1 order: 1 order without a currency", "current USD 1 order: 1 order in currency USD"}},
		{"a difference: both inputs in the report currency", "revenue_net", jan, eur, "=140", "EUR",
			[]string{xx2, "current  1 order: 1 order without", "current USD 1 order: 1 order in currency USD", "current XX 1 refund: 1 refund in currency XX"}},
		{"a count alone counts every order", "orders", jan, eur, "=6", "", nil},
		{"the comparison period names its own rows", "revenue_gross", jan + "&compare=previous&filter=channel=ads", eur, "=100", "EUR",
			[]string{"current  1 order: 1 order without", "current USD 1 order: 1 order in currency USD", "current XX 1 order: 1 order in currency XX",
				"comparison XX 1 order: In the comparison period, 1 order in currency XX left out"}},
		{"another report currency", "revenue_gross", jan, usd, "=7", "USD",
			[]string{"current EUR 2 orders: 2 orders in currency EUR left out: not convertible to USD", "current XX 2 orders", "current  1 order"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := url.ParseQuery(c.query)
			if err != nil {
				t.Fatal(err)
			}
			p, err := c.reg.ParseParams(c.metric, v)
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.reg.Query(ctx, c.metric, p)
			if err != nil {
				t.Fatalf("%s: %v, want an answer", c.metric, err)
			}
			var series []string
			for _, s := range res.Series {
				series = append(series, fmt.Sprintf("%s=%v", s.Dim, fmtTotal(s.Total)))
			}
			sort.Strings(series)
			if got := strings.Join(series, " "); got != c.series {
				t.Errorf("series %s, want %s", got, c.series)
			}
			if res.Currency != c.currency {
				t.Errorf("currency %q, want %q", res.Currency, c.currency)
			}
			if len(res.Warnings) != len(c.warnings) {
				t.Fatalf("warnings %+v, want %d", res.Warnings, len(c.warnings))
			}
			for i, w := range res.Warnings {
				got := fmt.Sprintf("%s %s %d %s: %s", w.Period, w.Currency, w.Rows, w.Noun, w.Message)
				if !strings.HasPrefix(got, c.warnings[i]) || w.Code != WarnNotConvertible || w.Metric == "" {
					t.Errorf("warning %d: %q (%+v), want %q…", i, got, w, c.warnings[i])
				}
			}
		})
	}
	// A simple metric's warning says what the rows left out amount to, in their currency.
	p, _ := eur.ParseParams("revenue_gross", url.Values(mustQuery(jan)))
	res, err := eur.Query(ctx, "revenue_gross", p)
	if err != nil || res.Warnings[0].Amount == nil || *res.Warnings[0].Amount != 100 {
		t.Errorf("revenue_gross: %v %+v, want the XX orders' 100", err, res)
	}
}

func fmtTotal(v *float64) string {
	if v == nil {
		return "nil"
	}
	return fmt.Sprint(*v)
}
