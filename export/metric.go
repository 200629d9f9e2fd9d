package export

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse"
)

// MetricResultBytes bounds what one statement of a metric's answer may send wherever the
// answer is held whole (metric exports, the finance pack; the server's pages and API): a
// dashboard's answers are a few kB, a table metric of metrics.MaxTableRows rows a few MB.
// Past it the answer is a *ResultTooLargeError, not the process's memory.
const MetricResultBytes = 64 << 20

// Metric exports metric name with p (see metrics.Registry.Query) to w.
//
// A series-shaped metric gives one row per bucket (and per value of the
// breakdown dimension p.By), then a "Total" row per breakdown value with the
// total over the whole range computed from raw rows (not a sum of buckets):
//
//	[By,] Period, <Title> (<unit>)[, Comparison period, <Title>, previous
//	period|a year earlier (<unit>), Change (%)|Change (pp)], Target (<unit>)
//
// Change is relative, 100 × (value − comparison) / |comparison|, or for a
// percent metric the difference in percentage points; empty where either
// value is missing (or the comparison is 0). A table-shaped custom metric
// (a cohort matrix, a funnel) gives its own columns.
//
// The store's data is read between two readings of the sources' watermarks;
// when a load lands in between, the metric is computed again (three times at
// most), so the manifest's watermarks are those of the data exported.
func Metric(ctx context.Context, reg *metrics.Registry, st *warehouse.Store, name string, p metrics.Params, w io.Writer, o Options) (*Manifest, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	d, ok := reg.Get(name)
	if !ok {
		return nil, &metrics.ParamError{Param: "metric", Reason: fmt.Sprintf("unknown metric %q", name)}
	}
	var res *metrics.Result
	before, err := steady(ctx, st, reg.Sources(name), "export "+name, func() (err error) {
		res, err = reg.Query(WithResultLimit(ctx, MetricResultBytes), name, p)
		return err
	})
	if err != nil {
		return nil, err
	}
	m := &Manifest{Kind: "metric", Converge: o.Version, TimeZone: res.TZ, Params: ParamValues(p), Sources: before,
		Metrics: metricVersions(reg, d, nil), Margin: p.Margin, Warnings: res.Warnings}
	cols, rows := metricTable(res, d, p, &o)
	err = write(w, cols, &sliceSource{rows: rows}, &o, m)
	m.GeneratedAt = time.Now().UTC()
	return m, err
}

// metricVersions lists d and the metrics it reads, each once, d first.
func metricVersions(reg *metrics.Registry, d *metrics.Definition, seen []MetricVersion) []MetricVersion {
	if slices.ContainsFunc(seen, func(v MetricVersion) bool { return v.Name == d.Name }) {
		return seen
	}
	seen = append(seen, MetricVersion{Name: d.Name, Version: d.Version, Title: d.Title, Unit: d.Unit, File: d.File})
	for _, in := range d.Inputs() {
		if dep, ok := reg.Get(in); ok {
			seen = metricVersions(reg, dep, seen)
		}
	}
	return seen
}

// ParamValues writes p as the URL values metrics.ParseParams reads back to
// the same Params (see metrics.Params.Values: from and to both included,
// as days when the range is whole days in its zone). Margin is not a query
// parameter: it is the registry's setting.
func ParamValues(p metrics.Params) url.Values { return p.Values() }

// metricTable lays a result out as columns and rows of cells.
func metricTable(res *metrics.Result, d *metrics.Definition, p metrics.Params, o *Options) ([]column, [][]cell) {
	if res.Table != nil {
		return customTable(res.Table, o)
	}
	unit := unitLabel(res.Unit, o.Currency, o.Raw)
	nf := parseNumFormat(res.Format, res.Unit)
	num := func(v *float64) cell { return metricCell(v, res.Unit) }
	var cols []column
	if res.By != "" {
		cols = append(cols, column{name: res.By})
	}
	period := "Period"
	if o.Raw {
		period = "Period start"
	}
	cols = append(cols, column{name: fmt.Sprintf("%s (%s, %s)", period, res.Grain, res.TZ), date: o.Raw},
		column{name: fmt.Sprintf("%s (%s)", res.Title, unit), num: nf})
	pp := res.Unit == "percent"
	if res.Compare != "" {
		when := "previous period"
		if res.Compare == "year" {
			when = "a year earlier"
		}
		change := "Change (%)"
		if pp {
			change = "Change (pp)"
		}
		cols = append(cols, column{name: "Comparison period", date: o.Raw},
			column{name: fmt.Sprintf("%s, %s (%s)", res.Title, when, unit), num: nf},
			column{name: change, num: &numFormat{decimals: 1, excel: "0.0"}})
	}
	cols = append(cols, column{name: fmt.Sprintf("Target (%s)", unit), num: nf})

	fy := p.FiscalYearStart
	label := func(day string) cell {
		if day == "" {
			return cell{}
		}
		if o.Raw {
			if t, err := time.Parse(time.DateOnly, day); err == nil {
				return cell{k: kDate, t: t}
			}
		}
		return cell{k: kText, s: periodLabel(day, string(res.Grain), fy, o.Raw)}
	}
	var rows [][]cell
	add := func(dim string, period cell, v, cmpPeriod cell, c, target *float64) {
		var row []cell
		if res.By != "" {
			row = append(row, cell{k: kText, s: dim})
		}
		row = append(row, period, v)
		if res.Compare != "" {
			cc := num(c)
			row = append(row, cmpPeriod, cc, numberCell(change(v, cc, pp)))
		}
		rows = append(rows, append(row, num(target)))
	}
	for _, s := range res.Series {
		for _, pt := range s.Points {
			add(s.Dim, label(pt.Bucket), num(pt.Value), label(pt.CompareBucket), pt.Compare, pt.Target)
		}
		if s.Total != nil || s.CompareTotal != nil {
			add(s.Dim, cell{k: kText, s: "Total"}, num(s.Total), cell{}, s.CompareTotal, res.Target)
		}
	}
	return cols, rows
}

// change is the change of v against c: relative in percent, or in
// percentage points (pp) for fractions; nil when unknown.
func change(v, c cell, pp bool) *float64 {
	if v.k != kFloat || c.k != kFloat {
		return nil
	}
	var x float64
	switch {
	case pp:
		x = 100 * (v.f - c.f)
	case c.f == 0:
		return nil
	default:
		x = 100 * (v.f - c.f) / math.Abs(c.f)
	}
	return &x
}

// metricCell is a metric's value as a cell: empty when unknown or not
// finite. The metrics layer gives a percent metric as 0–100; the cell holds
// it as a fraction (12.5 % is 0.125), as the file formats expect.
func metricCell(v *float64, unit string) cell {
	c := numberCell(v)
	if c.k == kFloat && unit == "percent" {
		c.f = hundredth(c.f)
	}
	return c
}

// hundredth is f / 100 with the decimal digits of f moved two places, so
// 38.5714285714 becomes 0.385714285714 and not 0.38571428571399996.
func hundredth(f float64) float64 {
	s := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(s, "e")
	e, err := strconv.Atoi(exp)
	if err != nil {
		return f / 100
	}
	x, err := strconv.ParseFloat(mant+"e"+strconv.Itoa(e-2), 64)
	if err != nil {
		return f / 100
	}
	return x
}

// numberCell is v as a cell: empty when nil or not finite.
func numberCell(v *float64) cell {
	if v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) {
		return cell{}
	}
	return cell{k: kFloat, f: *v}
}

// customTable lays out a table-shaped custom metric: its columns as they
// come; formatted numbers get two decimals.
func customTable(t *metrics.Table, o *Options) ([]column, [][]cell) {
	cols := make([]column, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = column{name: c, num: &numFormat{decimals: 2, group: true, excel: "#,##0.00"}}
	}
	rows := make([][]cell, len(t.Rows))
	for i, r := range t.Rows {
		row := make([]cell, len(cols))
		for j, v := range r {
			switch x := v.(type) {
			case float64:
				row[j] = cell{k: kFloat, f: x}
			case int64:
				row[j] = cell{k: kInt, i: x}
			case string:
				row[j] = cell{k: kText, s: x}
			case bool:
				row[j] = cell{k: kBool}
				if x {
					row[j].i = 1
				}
			case nil:
			default:
				row[j] = cell{k: kText, s: fmt.Sprint(x)}
			}
		}
		rows[i] = row
	}
	return cols, rows
}

// sliceSource yields rows held in memory.
type sliceSource struct {
	rows [][]cell
	i    int
}

func (s *sliceSource) next(cells []cell) (bool, error) {
	if s.i >= len(s.rows) {
		return false, nil
	}
	copy(cells, s.rows[s.i])
	s.i++
	return true, nil
}

func (s *sliceSource) more() bool { return s.i < len(s.rows) }
