package metrics

import (
	"fmt"
	"slices"
	"sort"
)

// Amounts in several currencies are never added (kpi-definitions.md pitfall 6), and converge
// keeps no exchange rates, so no amount can be converted. A metric of unit currency that has a
// currency dimension answers in the report currency (Params.Currency): its rows in any other
// currency, or in none, are left out of the answer, which names them (Result.Warnings: "3
// orders in currency XX left out: not convertible to EUR"), and every other row counts. Asked
// by currency (a breakdown, or a filter on it), it answers per currency and leaves nothing out.
// A derived metric that combines amounts restricts each of its inputs that has a currency
// dimension the same way, counts included, so that aov = revenue_gross / orders divides the
// report currency's revenue by the report currency's orders.

// DefaultCurrency is the report currency when none is configured.
const DefaultCurrency = "EUR"

// Warning codes.
const (
	// WarnNotConvertible: rows in another currency than the report currency, left out.
	WarnNotConvertible = "not_convertible"
)

// Periods a Warning is about.
const (
	PeriodCurrent    = "current"
	PeriodComparison = "comparison"
)

// Warning names rows of the data that an answer leaves out, so that what it says is known.
type Warning struct {
	Code     string `json:"code"`     // WarnNotConvertible
	Metric   string `json:"metric"`   // the metric whose rows they are (an input of a derived one)
	Period   string `json:"period"`   // PeriodCurrent or PeriodComparison
	Currency string `json:"currency"` // their currency as stored; "" when they have none
	Rows     int64  `json:"rows"`     // how many rows of the metric's model
	Noun     string `json:"noun"`     // what a row is, plural: "orders", "refunds", "spend rows"
	// Amount is the metric's measure over those rows, in their currency (nil for a derived
	// metric's input, or when the measure has no value over them).
	Amount  *float64 `json:"amount,omitempty"`
	Message string   `json:"message"` // the whole sentence, for people
}

// leftOut is rows of one currency a simple metric's answer left out.
type leftOut struct {
	metric, noun, currency string
	rows                   int64
	amount                 *float64
}

func (p Params) currency() string {
	if p.Currency != "" {
		return p.Currency
	}
	return DefaultCurrency
}

// byCurrency tells whether p asks for d per currency (broken down or filtered by it).
func byCurrency(p Params) bool {
	return p.By == "currency" || slices.ContainsFunc(p.Filters, func(f Filter) bool { return f.Dim == "currency" })
}

// restricted tells whether the rows of simple metric d are restricted to the report currency
// for p: d has a currency dimension, p does not ask per currency, and d is an amount or the
// input of a derived metric that combines amounts.
func restricted(d *Definition, p Params) bool {
	if _, ok := d.Dimension("currency"); !ok || byCurrency(p) {
		return false
	}
	return d.Unit == "currency" || p.sameCurrency
}

// restrictsInputs tells whether derived (or score) metric d computes its inputs in the report
// currency only: it has a currency dimension p does not ask per, and it combines amounts (it
// is one, it is an input of one, or one of its inputs is).
func (r *Registry) restrictsInputs(d *Definition, p Params) bool {
	if _, ok := d.Dimension("currency"); !ok || byCurrency(p) {
		return false
	}
	if d.Unit == "currency" || p.sameCurrency {
		return true
	}
	for _, in := range d.Inputs() {
		if dep, ok := r.Get(in); ok && dep.Unit == "currency" {
			return true
		}
	}
	return false
}

// rowNouns say what a row of a model over these tables is, singular and plural, the first
// table a metric reads that is listed here naming its rows.
var rowNouns = []struct{ table, one, many string }{
	{"refunds", "refund", "refunds"}, {"rewards", "reward", "rewards"}, {"marketing_spend", "spend row", "spend rows"},
	{"customer_value", "customer value", "customer values"}, {"order_lines", "order line", "order lines"},
	{"orders", "order", "orders"},
}

// rowNoun is what a row of d's model is.
func rowNoun(d *Definition, n int64) string {
	tables := d.Tables()
	for _, x := range rowNouns {
		if slices.Contains(tables, x.table) {
			if n == 1 {
				return x.one
			}
			return x.many
		}
	}
	if n == 1 {
		return "row"
	}
	return "rows"
}

// warnings turns what the answer left out into Warnings about period, one per metric and
// currency, largest first; rows a derived metric's inputs share (aov's revenue_gross and orders
// both over the same orders) are named once.
func warnings(left []leftOut, period, reportCurrency string) []Warning {
	var out []Warning
	seen := map[string]bool{}
	for _, l := range left {
		k := l.noun + "\x00" + l.currency + "\x00" + fmt.Sprint(l.rows)
		if seen[k] {
			continue
		}
		seen[k] = true
		in := "in currency " + l.currency
		if l.currency == "" {
			in = "without a currency"
		}
		msg := fmt.Sprintf("%d %s %s left out: not convertible to %s (converge keeps no exchange rates); break down or filter by currency to see them",
			l.rows, l.noun, in, reportCurrency)
		if period == PeriodComparison {
			msg = "In the comparison period, " + msg
		}
		out = append(out, Warning{Code: WarnNotConvertible, Metric: l.metric, Period: period, Currency: l.currency,
			Rows: l.rows, Noun: l.noun, Amount: l.amount, Message: msg})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Rows != out[j].Rows {
			return out[i].Rows > out[j].Rows
		}
		if out[i].Currency != out[j].Currency {
			return out[i].Currency < out[j].Currency
		}
		return out[i].Metric < out[j].Metric
	})
	return out
}

// plannedCurrency is what planSimple adds to a restricted metric's statement: the rows are also
// grouped by currency (and, broken down by a dimension, by currency alone for the whole range),
// with their count, so that the report currency's groups are the answer and the others what it
// leaves out, in the same pass over the rows.
func plannedCurrency(currency, rows string, p Params) (cols, sets string) {
	cols = ", " + currency + " AS currency, " + rows + " AS rows"
	sets = "(bucket, dim, currency), (dim, currency)"
	if p.By != "" {
		cols += ", toBool(grouping(dim)) AS alldims"
		sets += ", (currency)"
	}
	return cols, sets
}

// collectLeftOut keeps a row of a restricted statement that is not in the report currency, if
// it is a whole-range total over all dims; it tells whether x belongs to the answer.
func collectLeftOut(d *Definition, p Params, x row, left map[string]*leftOut) bool {
	if x.currency == p.currency() {
		return !x.alldims
	}
	if x.whole && (p.By == "" || x.alldims) {
		left[x.currency] = &leftOut{metric: d.Name, noun: rowNoun(d, int64(x.rows)), currency: x.currency,
			rows: int64(x.rows), amount: x.value}
	}
	return false
}

func sortedLeftOut(m map[string]*leftOut) []leftOut {
	out := make([]leftOut, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, *m[k])
	}
	return out
}

// answerCurrency is the currency d's amounts are in for p: the one filtered on, none when
// broken down by currency (each series is in its own), else the report currency.
func answerCurrency(p Params) string {
	for _, f := range p.Filters {
		if f.Dim == "currency" {
			return f.Value
		}
	}
	if p.By == "currency" {
		return ""
	}
	return p.currency()
}
