package export

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/converge-dev/converge/metrics"
)

// FinanceMonthly is the monthly finance pack (see FinancePack).
const FinanceMonthly = "finance-monthly"

// Reports are the report packs, by name.
var Reports = []string{FinanceMonthly}

// TrendMonths is how many months before the month asked the pack's by-month
// table holds: the month and the 12 before it, a year-on-year trend.
const TrendMonths = 12

// Month is a calendar month.
type Month struct {
	Year  int
	Month time.Month
}

// ParseMonth reads YYYY-MM (years 2000 to 2199).
func ParseMonth(s string) (Month, error) {
	t, err := time.Parse("2006-01", s)
	if err != nil || len(s) != 7 {
		return Month{}, fmt.Errorf("%q is not a month YYYY-MM", s)
	}
	if t.Year() < 2000 || t.Year() > 2199 {
		return Month{}, fmt.Errorf("%q is not a month between 2000-01 and 2199-12", s)
	}
	return Month{t.Year(), t.Month()}, nil
}

// MonthOf is the calendar month of t in loc.
func MonthOf(t time.Time, loc *time.Location) Month {
	t = t.In(loc)
	return Month{t.Year(), t.Month()}
}

func (m Month) String() string { return fmt.Sprintf("%04d-%02d", m.Year, int(m.Month)) }

// Start is the month's first instant: midnight of its first day in loc.
func (m Month) Start(loc *time.Location) time.Time {
	return time.Date(m.Year, m.Month, 1, 0, 0, 0, 0, loc)
}

// Add is the month n months later (earlier for n < 0).
func (m Month) Add(n int) Month {
	t := time.Date(m.Year, m.Month+time.Month(n), 1, 0, 0, 0, 0, time.UTC)
	return Month{t.Year(), t.Month()}
}

// PackParams say which finance pack to build.
type PackParams struct {
	Month Month
	// TZ is the report time zone: months are calendar months there. Default UTC.
	TZ *time.Location
	// ROASModel is the attribution model of ROAS (see sql/metrics/roas.sql); default last_touch.
	ROASModel string
	// Margin is the gross margin assumed where an order's cost is unknown (report.default_margin);
	// 0: the registry's default.
	Margin float64
}

// packMetric is one metric of the finance pack and how its channels relate to its total.
type packMetric struct {
	name string
	// byChannel: broken down by channel in the by-channel table.
	byChannel bool
	// sums says why the channels add up to the month's total; "" when they do not.
	sums string
	// differs says why the channels do not add up (sums == "").
	differs string
	// ratio recomputes the month's total from other metrics' totals; nil: no such check.
	ratio func(total func(string) *float64, chans func(string) []*float64) *float64
	args  map[string]string
}

// summable tells whether the channels' values of the metric can be summed:
// amounts and counts by channel that are not ratios (whether the sum is the
// total is another matter: see sums). A channel without rows has 0.
func (pm packMetric) summable(def *metrics.Definition) bool {
	return pm.byChannel && pm.ratio == nil && (def.Unit == "currency" || def.Unit == "count")
}

// quotient recomputes a total as k × the total of num / the total of den.
func quotient(k float64, num, den string) func(func(string) *float64, func(string) []*float64) *float64 {
	return func(total func(string) *float64, _ func(string) []*float64) *float64 {
		return div(mul(k, total(num)), total(den))
	}
}

// financeMetrics are the pack's columns, in order.
var financeMetrics = []packMetric{
	{name: "revenue_gross", byChannel: true, sums: "each order counts in its own channel"},
	{name: "refunds", byChannel: true, sums: "a refund counts in the channel of its order (a refund of an unknown order: no channel)"},
	{name: "revenue_net", byChannel: true, sums: "gross revenue − refunds per channel, both of which add up"},
	{name: "cogs", byChannel: true, sums: "each order's cost counts in its own channel"},
	{name: "gross_margin", byChannel: true, sums: "gross revenue − cost − refunds per channel, each of which adds up"},
	{name: "gross_margin_pct", byChannel: true, differs: "a ratio: 100 × gross margin / gross revenue of the row; the total is the ratio of the month's totals",
		ratio: quotient(100, "gross_margin", "revenue_gross")},
	{name: "marketing_spend", byChannel: true, sums: "each day's spend belongs to one channel"},
	{name: "new_customers", byChannel: true, sums: "a new customer counts once, in the channel of their first order"},
	{name: "new_customers_paid", byChannel: true, sums: "a new customer counts once, in the channel of their first order (channels with spend only)"},
	{name: "active_customers", byChannel: true, differs: "a customer who ordered through several channels in the month is active in each, and once in the total"},
	{name: "cac_blended", byChannel: true, differs: "a ratio: marketing spend / new customers; the total is the ratio of the month's totals",
		ratio: quotient(1, "marketing_spend", "new_customers")},
	{name: "cac_paid", byChannel: true, differs: "a ratio: marketing spend / new customers from paid channels; the total is the ratio of the month's totals",
		ratio: quotient(1, "marketing_spend", "new_customers_paid")},
	{name: "clv_historic", byChannel: true, differs: "an average per new customer of the month; the total is the channels' values weighted by their new customers",
		ratio: func(_ func(string) *float64, c func(string) []*float64) *float64 {
			clv, n := c("clv_historic"), c("new_customers")
			var sum, count float64
			for i := range clv {
				if clv[i] != nil && n[i] != nil {
					sum += *clv[i] * *n[i]
					count += *n[i]
				}
			}
			if count == 0 {
				return nil
			}
			return roundSig(sum / count)
		}},
	{name: "ltv_cac", byChannel: true, differs: "a ratio: historic CLV / CAC (blended); the total is the ratio of the month's totals",
		ratio: quotient(1, "clv_historic", "cac_blended")},
	{name: "cac_payback_months", byChannel: true, differs: "a ratio: CAC (blended) / (gross margin / active customers / months in the period); the total is the ratio of the month's totals",
		ratio: func(t func(string) *float64, _ func(string) []*float64) *float64 {
			return div(t("cac_blended"), div(div(t("gross_margin"), t("active_customers")), t(metrics.PeriodMonths)))
		}},
	{name: "roas", byChannel: true, args: map[string]string{"level": "channel"},
		differs: "a ratio of the revenue the attribution model gives each channel's touchpoints (not the orders' channel) to the channel's spend; the total is all revenue attributed to paid channels / all spend"},
	{name: "clv_predicted", differs: "not by channel: the model's CLV is per customer (mean of the snapshots dated in the month; empty in a month without one)"},
}

// packData is what the pack's tables are made of: raw metric values (a
// percent metric 0–100), by month and by channel.
type packData struct {
	months []Month
	trend  map[string][]*float64          // metric → value per month, oldest first; the last is the month asked
	chans  []string                       // channels, sorted; "" (no channel) last
	byChan map[string]map[string]*float64 // metric → channel → value in the month
	defs   map[string]*metrics.Definition
	params map[string]url.Values // table → the query parameters of its metrics
	// warnings are the metrics' warnings (rows left out), each message once, sorted.
	warnings []string
}

func resultWarnings(res *metrics.Result) []metrics.Warning {
	if res == nil {
		return nil
	}
	return res.Warnings
}

func (d *packData) total(name string) *float64 {
	v := d.trend[name]
	if len(v) == 0 {
		return nil
	}
	return v[len(v)-1]
}

func (d *packData) channelValues(name string) []*float64 {
	out := make([]*float64, len(d.chans))
	for i, c := range d.chans {
		out[i] = d.byChan[name][c]
	}
	return out
}

// financeParams are the metric parameters of the pack's two tables.
func financeParams(pp PackParams) (trend, month metrics.Params) {
	trend = metrics.Params{From: pp.Month.Add(-TrendMonths).Start(pp.TZ), To: pp.Month.Add(1).Start(pp.TZ), Grain: metrics.Month,
		TZ: pp.TZ, WeekStart: time.Monday, FiscalYearStart: time.January, Margin: pp.Margin}
	month = trend
	month.From = pp.Month.Start(pp.TZ)
	return trend, month
}

// financeData computes the pack's metrics, concurrently (four at a time).
func financeData(ctx context.Context, reg *metrics.Registry, pp PackParams) (*packData, error) {
	ctx = WithResultLimit(ctx, MetricResultBytes)
	trendP, monthP := financeParams(pp)
	d := &packData{trend: map[string][]*float64{}, byChan: map[string]map[string]*float64{}, defs: map[string]*metrics.Definition{},
		params: map[string]url.Values{}}
	for m := pp.Month.Add(-TrendMonths); m != pp.Month.Add(1); m = m.Add(1) {
		d.months = append(d.months, m)
	}
	for _, pm := range financeMetrics {
		def, ok := reg.Get(pm.name)
		if !ok {
			return nil, fmt.Errorf("finance pack: metric %s is not defined", pm.name)
		}
		d.defs[pm.name] = def
	}
	type answer struct{ trend, month *metrics.Result }
	answers := make([]answer, len(financeMetrics))
	// The metrics share the values of their inputs (revenue_gross is computed once, not by
	// each of revenue_net, gross_margin, …).
	g, gctx := errgroup.WithContext(metrics.WithSharedValues(ctx))
	g.SetLimit(4)
	for i, pm := range financeMetrics {
		args := map[string]string{}
		for k, v := range pm.args {
			args[k] = v
		}
		if pm.name == "roas" {
			args["model"] = pp.ROASModel
		}
		custom := d.defs[pm.name].Kind == metrics.Custom
		g.Go(func() error {
			p := trendP
			p.Args = args
			res, err := reg.Query(gctx, pm.name, p)
			if err != nil {
				return fmt.Errorf("finance pack: %s by month: %w", pm.name, err)
			}
			answers[i].trend = res
			return nil
		})
		if !pm.byChannel || custom { // a custom series gives its channels in the month's series
			continue
		}
		g.Go(func() error {
			p := monthP
			p.Args, p.By = args, "channel"
			res, err := reg.Query(gctx, pm.name, p)
			if err != nil {
				return fmt.Errorf("finance pack: %s by channel: %w", pm.name, err)
			}
			answers[i].month = res
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, a := range answers {
		for _, res := range []*metrics.Result{a.trend, a.month} {
			for _, w := range resultWarnings(res) {
				if !seen[w.Message] {
					seen[w.Message] = true
					d.warnings = append(d.warnings, w.Message)
				}
			}
		}
	}
	slices.Sort(d.warnings)
	chans := map[string]bool{}
	for i, pm := range financeMetrics {
		vals := make([]*float64, len(d.months))
		if s := seriesOf(answers[i].trend, ""); s != nil {
			for j, pt := range s.Points {
				if j < len(vals) {
					vals[j] = pt.Value
				}
			}
		}
		d.trend[pm.name] = vals
		if !pm.byChannel {
			continue
		}
		per := map[string]*float64{}
		if answers[i].month != nil {
			for _, s := range answers[i].month.Series {
				per[s.Dim] = s.Total
				chans[s.Dim] = true
			}
		} else { // a custom series: the channels' values in the month asked, the last bucket
			for _, s := range answers[i].trend.Series {
				if s.Dim != "" && len(s.Points) > 0 {
					per[s.Dim] = s.Points[len(s.Points)-1].Value
					if per[s.Dim] != nil {
						chans[s.Dim] = true
					}
				}
			}
		}
		d.byChan[pm.name] = per
	}
	for c := range chans {
		d.chans = append(d.chans, c)
	}
	slices.SortFunc(d.chans, func(a, b string) int {
		if (a == "") != (b == "") {
			return strings.Compare(b, a) // "" last
		}
		return strings.Compare(a, b)
	})
	// The parameters, as metrics.ParseParams reads them back.
	roas := url.Values{"arg": {"level=channel", "model=" + pp.ROASModel}}
	d.params["by_month"] = ParamValues(trendP)
	monthP.By = "channel"
	d.params["by_channel"] = ParamValues(monthP)
	d.params["roas"] = roas
	return d, nil
}

// seriesOf is res's series for dim, or nil.
func seriesOf(res *metrics.Result, dim string) *metrics.Series {
	if res == nil {
		return nil
	}
	for i := range res.Series {
		if res.Series[i].Dim == dim {
			return &res.Series[i]
		}
	}
	return nil
}

// noChannel labels the rows of no channel (orders without one, refunds of unknown orders).
const noChannel = "(no channel)"

// packTable is one table of a pack: a CSV file of the zip, or a sheet.
type packTable struct {
	file, sheet, contents string
	cols                  []column
	rows                  [][]cell
}

// metricColumn is the column of a metric: "Gross revenue (EUR)", in its format.
func metricColumn(def *metrics.Definition, roasModel string, o *Options) column {
	title := def.Title
	if def.Name == "roas" {
		title += ", " + strings.ReplaceAll(roasModel, "_", " ")
	}
	unit := "(" + unitLabel(def.Unit, o.Currency, o.Raw) + ")"
	if !strings.HasSuffix(title, unit) { // "CAC payback (months)"
		title += " " + unit
	}
	return column{name: title, num: parseNumFormat(def.Format, def.Unit)}
}

// monthCell is a month's label: 2026-05 (formatted) or its first day (raw).
func monthCell(m Month, o *Options) cell {
	if o.Raw {
		return cell{k: kDate, t: m.Start(time.UTC)}
	}
	return cell{k: kText, s: m.String()}
}

func monthColumn(tz string, o *Options) column {
	if o.Raw {
		return column{name: fmt.Sprintf("Month start (%s)", tz), date: true}
	}
	return column{name: fmt.Sprintf("Month (%s)", tz)}
}

// financeTables lays the data out: by month, by channel, reconciliation, metrics.
func financeTables(d *packData, pp PackParams, o *Options) ([]packTable, []string) {
	tz := pp.TZ.String()
	byMonth := packTable{file: "by_month.csv", sheet: "By month",
		contents: fmt.Sprintf("each metric by calendar month in %s: %s and the %d months before it", tz, pp.Month, TrendMonths)}
	byMonth.cols = []column{monthColumn(tz, o)}
	for _, pm := range financeMetrics {
		byMonth.cols = append(byMonth.cols, metricColumn(d.defs[pm.name], pp.ROASModel, o))
	}
	for i, m := range d.months {
		row := []cell{monthCell(m, o)}
		for _, pm := range financeMetrics {
			row = append(row, metricCell(d.trend[pm.name][i], d.defs[pm.name].Unit))
		}
		byMonth.rows = append(byMonth.rows, row)
	}

	byChannel := packTable{file: "by_channel.csv", sheet: "By channel",
		contents: fmt.Sprintf("each metric by channel (of the order; ROAS: of the attributed touchpoints) in %s, then the month's total", pp.Month)}
	byChannel.cols = []column{monthColumn(tz, o), {name: "Channel"}}
	for _, pm := range financeMetrics {
		if pm.byChannel {
			byChannel.cols = append(byChannel.cols, metricColumn(d.defs[pm.name], pp.ROASModel, o))
		}
	}
	addRow := func(label string, value func(pm packMetric) *float64) {
		row := []cell{monthCell(pp.Month, o), {k: kText, s: label}}
		for _, pm := range financeMetrics {
			if pm.byChannel {
				row = append(row, metricCell(value(pm), d.defs[pm.name].Unit))
			}
		}
		byChannel.rows = append(byChannel.rows, row)
	}
	for _, c := range d.chans {
		label := c
		if c == "" {
			label = noChannel
		}
		addRow(label, func(pm packMetric) *float64 {
			v := d.byChan[pm.name][c]
			if v == nil && pm.summable(d.defs[pm.name]) {
				return ptr(0) // no rows of the channel: nothing to sum
			}
			return v
		})
	}
	addRow("Total", func(pm packMetric) *float64 { return d.total(pm.name) })

	recon, failed := reconciliation(d, pp, o)

	defs := packTable{file: "metrics.csv", sheet: "Metrics", contents: "the metric definitions the pack was computed with"}
	defs.cols = []column{{name: "Metric"}, {name: "Title"}, {name: "Unit"}, {name: "Owner"}, {name: "Version"}, {name: "Kind"},
		{name: "Computed as"}, {name: "By channel"}, {name: "Description"}}
	for _, pm := range financeMetrics {
		def := d.defs[pm.name]
		how := def.Measure
		if def.Formula != "" {
			how = def.Formula
		}
		if def.Kind == metrics.Custom {
			how = "custom SQL (" + def.File + ")"
			if pm.name == "roas" {
				how += ", model " + pp.ROASModel + ", level channel"
			}
		}
		by := "no"
		switch {
		case pm.byChannel && pm.sums != "":
			by = "yes, the channels add up to the total"
		case pm.byChannel:
			by = "yes, not additive"
		}
		text := func(s string) cell { return cell{k: kText, s: s} }
		defs.rows = append(defs.rows, []cell{text(def.Name), text(def.Title), text(unitLabel(def.Unit, o.Currency, o.Raw)), text(def.Owner),
			text(def.Version), text(string(def.Kind)), text(how), text(by), text(def.Description)})
	}
	return []packTable{byMonth, byChannel, recon, defs}, failed
}

// reconciliation checks the month's totals against their channels (the
// metrics that add up) or against the totals they are a ratio of, and
// says for each metric why it adds up or not. It returns the table and
// the metrics whose check failed.
func reconciliation(d *packData, pp PackParams, o *Options) (packTable, []string) {
	t := packTable{file: "reconciliation.csv", sheet: "Reconciliation",
		contents: fmt.Sprintf("for each metric of %s: its total, the sum of its channels or the total recomputed from the totals it is a ratio of, and whether they agree", pp.Month)}
	t.cols = []column{{name: "Metric"}, {name: "Check"}, {name: "Unit"}, {name: "Month total"}, {name: "Sum of channels"},
		{name: "Expected total"}, {name: "Difference"}, {name: "Reconciles"}, {name: "Why"}}
	var failed []string
	text := func(s string) cell { return cell{k: kText, s: s} }
	add := func(def *metrics.Definition, check string, total, sum, expected *float64, checked bool, why string) {
		nf := parseNumFormat(def.Format, def.Unit)
		num := func(v *float64) cell {
			c := metricCell(v, def.Unit)
			c.nf = nf
			return c
		}
		result, diff := "not additive", cell{}
		if checked {
			result = "yes"
			if !agree(def.Unit, total, expected) {
				result = "NO"
				failed = append(failed, def.Name)
			}
			if total != nil && expected != nil {
				diff = num(roundDiff(def.Unit, *total-*expected))
			}
		}
		t.rows = append(t.rows, []cell{text(def.Name), text(check), text(unitLabel(def.Unit, o.Currency, o.Raw)), num(total), num(sum),
			num(expected), diff, text(result), text(why)})
	}
	// The month's length in months, as the metrics layer measures it (metrics.PeriodMonths: days /
	// 30.4375), for formulas that state a rate per month.
	start := pp.Month.Start(time.UTC)
	months := start.AddDate(0, 1, 0).Sub(start).Hours() / 24 / (365.25 / 12)
	totals := func(name string) *float64 {
		if name == metrics.PeriodMonths {
			return &months
		}
		return d.total(name)
	}
	for _, pm := range financeMetrics {
		def := d.defs[pm.name]
		total := d.total(pm.name)
		var sum *float64
		if pm.summable(def) {
			sum = sumOf(d.channelValues(pm.name))
		}
		switch {
		case pm.sums != "":
			add(def, "sum of channels = month total", total, sum, sum, true, "additive: "+pm.sums)
		case pm.ratio != nil:
			add(def, "recomputed from the month's totals", total, nil, pm.ratio(totals, d.channelValues), true, "not additive: "+pm.differs)
		default:
			add(def, "none", total, sum, nil, false, "not additive: "+pm.differs)
		}
	}
	// The formulas finance reads the pack by.
	net, gm := d.defs["revenue_net"], d.defs["gross_margin"]
	add(net, "net revenue = gross revenue − refunds", d.total("revenue_net"), nil,
		sub(d.total("revenue_gross"), d.total("refunds")), true, "the definition of net revenue")
	add(gm, "gross margin = gross revenue − cost − refunds", d.total("gross_margin"), nil,
		sub(sub(d.total("revenue_gross"), d.total("cogs")), d.total("refunds")), true, "the definition of gross margin")
	return t, failed
}

// agree tells whether a total and the value expected of it are the same:
// to the cent for amounts, exactly for counts, to 9 significant digits for
// ratios (the metrics layer rounds values to 12). Both missing agree.
func agree(unit string, total, expected *float64) bool {
	if total == nil || expected == nil {
		return total == nil && expected == nil
	}
	diff := math.Abs(*total - *expected)
	switch unit {
	case "currency":
		return diff < 0.005
	case "count":
		return diff < 1e-9
	}
	return diff <= 1e-9*math.Max(1, math.Abs(*total))
}

func sumOf(vs []*float64) *float64 {
	var s float64
	any := false
	for _, v := range vs {
		if v != nil {
			s += *v
			any = true
		}
	}
	if !any {
		return nil
	}
	return roundSig(s)
}

// roundSig rounds to 12 significant digits, as the metrics layer does.
func roundSig(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	y, err := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 12, 64), 64)
	if err != nil {
		return &x
	}
	return &y
}

func ptr(x float64) *float64 { return &x }

// roundDiff rounds a difference as agree compares it: amounts to the cent,
// counts to a whole, others to 9 significant digits.
func roundDiff(unit string, x float64) *float64 {
	switch unit {
	case "currency":
		x = math.Round(x*100) / 100
	case "count":
		x = math.Round(x)
	default:
		x, _ = strconv.ParseFloat(strconv.FormatFloat(x, 'g', 9, 64), 64)
	}
	if x == 0 {
		x = 0 // no -0
	}
	return &x
}

func div(a, b *float64) *float64 {
	if a == nil || b == nil || *b == 0 {
		return nil
	}
	return roundSig(*a / *b)
}

func mul(k float64, a *float64) *float64 {
	if a == nil {
		return nil
	}
	return ptr(k * *a)
}

func sub(a, b *float64) *float64 {
	if a == nil || b == nil {
		return nil
	}
	return roundSig(*a - *b)
}

// packSources are the tables the pack's metrics read.
func packSources(reg *metrics.Registry) []string {
	set := map[string]bool{}
	for _, pm := range financeMetrics {
		for _, t := range reg.Sources(pm.name) {
			set[t] = true
		}
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// financeVersions lists the pack's metrics and their inputs, each once.
func financeVersions(reg *metrics.Registry, d *packData) []MetricVersion {
	var out []MetricVersion
	for _, pm := range financeMetrics {
		out = metricVersions(reg, d.defs[pm.name], out)
	}
	return out
}
