package views

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// NoData is shown where a value is missing.
const NoData = "–"

var currencySymbols = map[string]string{
	"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CNY": "¥", "INR": "₹", "KRW": "₩",
	"AUD": "A$", "CAD": "CA$", "NZD": "NZ$", "BRL": "R$", "MXN": "MX$",
}

// FormatValue formats v for people by the metric's unit:
//
//	currency  symbol and thousands separators; cents below 1,000 ("€1,234,567", "€12.50")
//	percent   v is a fraction: 0.125 → "12.5%"
//	count     thousands separators, no decimals ("12,345")
//	ratio     two decimals and "×" ("3.20×")
//	days, hours, minutes, months  a duration ("3.5 days", "5 h 30 min", "42 min", "2.5 months")
//	score     one decimal
//
// nil is NoData. Unknown units get separators and up to two decimals.
func FormatValue(v *float64, unit, currency string) string {
	if v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) {
		return NoData
	}
	x := *v
	switch unit {
	case "currency":
		sym, ok := currencySymbols[strings.ToUpper(currency)]
		if !ok {
			sym = strings.ToUpper(currency)
			if sym != "" {
				sym += " "
			}
		}
		dec := 2
		if math.Abs(x) >= 1000 {
			dec = 0
		}
		s := FormatNumber(math.Abs(x), dec)
		if x < 0 && s != FormatNumber(0, dec) {
			return "-" + sym + s
		}
		return sym + s
	case "percent":
		return FormatNumber(x*100, 1) + "%"
	case "count":
		return FormatNumber(x, 0)
	case "ratio":
		return FormatNumber(x, 2) + "×"
	case "score":
		return FormatNumber(x, 1)
	case "minutes":
		return formatMinutes(x)
	case "hours":
		if math.Abs(x) < 48 {
			return formatMinutes(x * 60)
		}
		return FormatNumber(x/24, 1) + " days"
	case "days":
		if x == 1 {
			return "1 day"
		}
		return FormatNumber(x, 1) + " days"
	case "months":
		return FormatNumber(x, 1) + " months"
	}
	if x == math.Trunc(x) {
		return FormatNumber(x, 0)
	}
	return FormatNumber(x, 2)
}

// formatMinutes: under an hour "42 min", else "5 h 05 min".
func formatMinutes(m float64) string {
	sign := ""
	if m < 0 {
		sign, m = "-", -m
	}
	total := int64(math.Round(m))
	if total < 60 {
		if m < 10 && m != math.Trunc(m) {
			return sign + FormatNumber(m, 1) + " min"
		}
		return sign + strconv.FormatInt(total, 10) + " min"
	}
	return fmt.Sprintf("%s%s h %02d min", sign, FormatNumber(float64(total/60), 0), total%60)
}

// FormatNumber formats x with dec decimals (halves rounded away from zero) and "," as
// thousands separator ("1,234.5").
func FormatNumber(x float64, dec int) string {
	if p := math.Pow10(dec); !math.IsInf(x*p, 0) {
		x = math.Round(x*p) / p
	}
	s := strconv.FormatFloat(x, 'f', dec, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, r := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	out := b.String()
	if frac != "" {
		out += "." + frac
	}
	if neg && strings.Trim(out, "0.,") != "" {
		out = "-" + out
	}
	return out
}

// Change describes a value's change against its comparison.
type Change struct {
	Text    string // "+12.5%", "-1.2 pp", "no change"
	Arrow   string // "▲", "▼" or "→": direction, so colour is not the only signal
	Class   string // "good", "bad" or "neutral", by the metric's polarity
	Verdict string // "better", "worse" or "" (for screen readers and print)
	Known   bool   // false when either value is missing
}

// ComputeChange compares cur with cmp: relative change in percent, or percentage points for
// percent metrics, or the absolute difference when cmp is zero.
func ComputeChange(cur, cmp *float64, unit, currency, polarity string) Change {
	if cur == nil || cmp == nil {
		return Change{Text: NoData, Class: "neutral"}
	}
	d := *cur - *cmp
	c := Change{Known: true, Class: "neutral", Arrow: "→"}
	switch {
	case unit == "percent":
		c.Text = signed(FormatNumber(d*100, 1)) + " pp"
	case *cmp != 0:
		c.Text = signed(FormatNumber(d/math.Abs(*cmp)*100, 1)) + "%"
	default:
		c.Text = FormatValue(&d, unit, currency)
		if d > 0 {
			c.Text = "+" + c.Text
		}
	}
	const eps = 1e-9
	if math.Abs(d) <= eps*math.Max(1, math.Abs(*cmp)) {
		c.Text = "no change"
		return c
	}
	up := d > 0
	if up {
		c.Arrow = "▲"
	} else {
		c.Arrow = "▼"
	}
	switch polarity {
	case "higher_is_better":
		c.Class, c.Verdict = judge(up)
	case "lower_is_better":
		c.Class, c.Verdict = judge(!up)
	}
	return c
}

func signed(s string) string {
	if strings.HasPrefix(s, "-") || strings.Trim(s, "0.,") == "" {
		return s
	}
	return "+" + s
}

func judge(good bool) (string, string) {
	if good {
		return "good", "better"
	}
	return "bad", "worse"
}

// Status is a value's standing against its target.
type Status struct {
	Text  string // "On target", "Below target", "Above target"
	Class string // good, bad, neutral
}

// TargetStatus judges v against target by polarity; ok is false without a target or a value.
func TargetStatus(v, target *float64, polarity string) (Status, bool) {
	if v == nil || target == nil {
		return Status{}, false
	}
	switch polarity {
	case "higher_is_better":
		if *v >= *target {
			return Status{"On target", "good"}, true
		}
		return Status{"Below target", "bad"}, true
	case "lower_is_better":
		if *v <= *target {
			return Status{"On target", "good"}, true
		}
		return Status{"Above target", "bad"}, true
	}
	if *v >= *target {
		return Status{"At or above target", "neutral"}, true
	}
	return Status{"Below target", "neutral"}, true
}

// BucketLabel labels a bucket starting at t (shown in loc) for people, by grain: "5 Jan 2026",
// "week of 5 Jan 2026", "Jan 2026", "Q1 2026", "2026".
func BucketLabel(t time.Time, grain string, loc *time.Location) string {
	t = t.In(loc)
	switch grain {
	case "week":
		return "week of " + t.Format("2 Jan 2006")
	case "month":
		return t.Format("Jan 2006")
	case "quarter":
		return fmt.Sprintf("Q%d %d", (int(t.Month())-1)/3+1, t.Year())
	case "year":
		return t.Format("2006")
	}
	return t.Format("2 Jan 2006")
}

// BucketCSV labels a bucket for CSV (sortable, Excel-friendly): day and week "2026-01-05"
// (a week by its first day), month "2026-01", quarter "2026-Q1", year "2026"; in loc.
func BucketCSV(t time.Time, grain string, loc *time.Location) string {
	t = t.In(loc)
	switch grain {
	case "month":
		return t.Format("2006-01")
	case "quarter":
		return fmt.Sprintf("%d-Q%d", t.Year(), (int(t.Month())-1)/3+1)
	case "year":
		return t.Format("2006")
	}
	return t.Format("2006-01-02")
}

// UnitLabel names a unit for column headers: "EUR", "%", "count", "days", ….
func UnitLabel(unit, currency string) string {
	switch unit {
	case "currency":
		if currency != "" {
			return strings.ToUpper(currency)
		}
		return "currency"
	case "percent":
		return "fraction, 0.01 = 1%"
	case "":
		return "value"
	}
	return unit
}
