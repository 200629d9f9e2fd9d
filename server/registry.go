package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/converge-dev/converge/export"
	"github.com/converge-dev/converge/metrics"
)

// RegistryConfig adapts a metrics.Registry to the dashboard.
type RegistryConfig struct {
	// Currency is the report currency: currency metrics are answered and shown in it (amounts
	// are never converted: rows in other currencies are left out and named in warnings).
	Currency        string
	WeekStart       time.Weekday
	FiscalYearStart time.Month
}

// groups4R places metrics in the 4R view (Recognize, Reach, Relationship,
// Return); a metric not listed goes by its owner.
var metric4R = map[string]string{
	"new_customers": "Recognize", "new_customers_paid": "Recognize", "active_customers": "Recognize",
	"consented_audience": "Reach", "marketing_spend": "Reach", "funnel_conversion": "Reach", "touchpoints": "Reach",
	"repeat_purchase_rate": "Relationship", "churn_rate": "Relationship", "nps": "Relationship", "csat": "Relationship",
	"engagement_score": "Relationship", "tickets": "Relationship", "first_response_time": "Relationship",
	"resolution_time": "Relationship", "cohort_retention": "Relationship", "service_score": "Relationship",
	"rewards_per_customer": "Relationship",
}

var ownerGroup = map[string]string{"CFO": "Return", "CMO": "Reach", "CCO": "Relationship", "COO": "Relationship"}

// NewRegistryMetrics serves the dashboard from a metrics.Registry.
func NewRegistryMetrics(r *metrics.Registry, cfg RegistryConfig) Metrics {
	if cfg.Currency == "" {
		cfg.Currency = "EUR"
	}
	if cfg.FiscalYearStart == 0 {
		cfg.FiscalYearStart = time.January
	}
	return &registryMetrics{r: r, cfg: cfg}
}

type registryMetrics struct {
	r   *metrics.Registry
	cfg RegistryConfig
}

func (m *registryMetrics) info(d *metrics.Definition) MetricInfo {
	group := metric4R[d.Name]
	if group == "" {
		group = ownerGroup[d.Owner]
	}
	if group == "" {
		group = "Return"
	}
	dims := make([]string, len(d.Dimensions))
	for i, dim := range d.Dimensions {
		dims[i] = dim.Name
	}
	info := MetricInfo{
		Name: d.Name, Title: d.Title, Description: d.Description, Owner: d.Owner, Unit: d.Unit,
		Polarity: d.Polarity, Kind: string(d.Kind), Version: d.Version, Formula: d.Formula,
		Dimensions: dims, Group4R: group, Sources: m.r.Sources(d.Name), Valid: true, Roles: m.r.Roles(d.Name),
	}
	if info.Formula == "" {
		info.Formula = d.Measure
	}
	for _, p := range d.Params {
		info.Params = append(info.Params, MetricParam{Name: p.Name, Type: p.Type, Default: p.Default, Allowed: p.Allowed, Check: p.Check, Range: p.Range()})
	}
	if d.Unit == "currency" {
		info.Currency = m.cfg.Currency
	}
	if d.Unit == "months" {
		info.Unit = "count"
	}
	return info
}

// Catalog lists the series-shaped metrics (table-shaped custom metrics
// such as cohort matrices belong to their own pages) and the definitions
// that do not validate.
func (m *registryMetrics) Catalog(ctx context.Context) ([]MetricInfo, error) {
	var out []MetricInfo
	for _, d := range m.r.List() {
		table, err := m.isTable(ctx, d)
		if err != nil {
			info := m.info(d)
			info.Valid, info.Error = false, scrubURLs(err.Error())
			out = append(out, info)
			continue
		}
		if !table {
			out = append(out, m.info(d))
		}
	}
	for _, err := range m.r.Errors() {
		out = append(out, MetricInfo{Name: errorName(err), Title: errorName(err), Valid: false, Error: scrubURLs(err.Error())})
	}
	return out, nil
}

func errorName(err error) string {
	var me *metrics.Error
	if errors.As(err, &me) && me.File != "" {
		return me.File
	}
	return "definition"
}

// isTable tells whether a custom metric answers with a table (described,
// not run: see metrics.Registry.IsTable).
func (m *registryMetrics) isTable(ctx context.Context, d *metrics.Definition) (bool, error) {
	return m.r.IsTable(ctx, d.Name)
}

// Definitions lists every definition: series and table shaped (Table set), and those that do
// not validate.
func (m *registryMetrics) Definitions(ctx context.Context) ([]MetricInfo, error) {
	var out []MetricInfo
	for _, d := range m.r.List() {
		info := m.info(d)
		table, err := m.isTable(ctx, d)
		if err != nil {
			info.Valid, info.Error = false, scrubURLs(err.Error())
		}
		info.Table = table
		out = append(out, info)
	}
	for _, err := range m.r.Errors() {
		out = append(out, MetricInfo{Name: errorName(err), Title: errorName(err), Valid: false, Error: scrubURLs(err.Error())})
	}
	return out, nil
}

// run asks the registry for name with q; no statement of the answer may send more than
// export.MetricResultBytes.
func (m *registryMetrics) run(ctx context.Context, name string, q MetricQuery) (*metrics.Result, error) {
	p, err := metricParams(q, m.cfg.WeekStart, m.cfg.FiscalYearStart)
	if err != nil {
		return nil, err
	}
	p.Currency = m.cfg.Currency // the currency amounts are shown in is the one they are answered in
	return m.r.Query(export.WithResultLimit(ctx, export.MetricResultBytes), name, p)
}

// metricParams is q as the metrics layer's Params, with weeks starting on weekStart and
// fiscal years in fyStart. Filters are sorted by dimension.
func metricParams(q MetricQuery, weekStart time.Weekday, fyStart time.Month) (metrics.Params, error) {
	tz, err := time.LoadLocation(q.TZ)
	if err != nil {
		return metrics.Params{}, fmt.Errorf("time zone %q: %w", q.TZ, err)
	}
	p := metrics.Params{From: q.From, To: q.To, Grain: metrics.Grain(q.Grain), TZ: tz, WeekStart: weekStart,
		FiscalYearStart: fyStart, Compare: q.Compare, By: q.By, Args: map[string]string{}}
	for _, dim := range slices.Sorted(maps.Keys(q.Filters)) {
		p.Filters = append(p.Filters, metrics.Filter{Dim: dim, Value: q.Filters[dim]})
	}
	maps.Copy(p.Args, q.Args)
	return p, nil
}

// Table runs a table-shaped custom metric. Values are as the metric returns them.
func (m *registryMetrics) Table(ctx context.Context, name string, q MetricQuery) (*MetricTable, error) {
	d, ok := m.r.Get(name)
	if !ok {
		return nil, errShown("unknown metric %q", name)
	}
	res, err := m.run(ctx, name, q)
	if err != nil {
		return nil, err
	}
	if res.Table == nil {
		return nil, errShown("%s answers with a series, not a table", name)
	}
	info := m.info(d)
	info.Table = true
	return &MetricTable{Info: info, Columns: res.Table.Columns, Types: res.Table.Types, Rows: res.Table.Rows, Freshness: res.Freshness}, nil
}

// Query runs a metric. Percentages come from the metrics layer as 0–100 and
// go to the dashboard as fractions.
func (m *registryMetrics) Query(ctx context.Context, name string, q MetricQuery) (*MetricResult, error) {
	d, ok := m.r.Get(name)
	if !ok {
		return nil, errShown("unknown metric %q", name)
	}
	tz, err := time.LoadLocation(q.TZ)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", q.TZ, err)
	}
	res, err := m.run(ctx, name, q)
	if err != nil {
		return nil, err
	}
	if res.Table != nil {
		return nil, errShown("%s answers with a table (%s), not a series", name, strings.Join(res.Table.Columns, ", "))
	}
	scale := func(v *float64) *float64 {
		if v == nil || d.Unit != "percent" {
			return v
		}
		x := *v / 100
		return &x
	}
	out := &MetricResult{Info: m.info(d), Target: scale(res.Target), Freshness: res.Freshness, Currency: res.Currency}
	for _, w := range res.Warnings {
		out.Warnings = append(out.Warnings, MetricWarning{Code: w.Code, Metric: w.Metric, Period: w.Period, Currency: w.Currency,
			Rows: w.Rows, Message: w.Message})
	}
	for _, s := range res.Series {
		ms := MetricSeries{Key: s.Dim, Total: scale(s.Total), CompareTotal: scale(s.CompareTotal)}
		for _, pt := range s.Points {
			b, err := time.ParseInLocation(time.DateOnly, pt.Bucket, tz)
			if err != nil {
				return nil, fmt.Errorf("%s: bucket %q: %w", name, pt.Bucket, err)
			}
			ms.Points = append(ms.Points, MetricPoint{Bucket: b, Value: scale(pt.Value), Compare: scale(pt.Compare), Target: scale(pt.Target)})
		}
		out.Series = append(out.Series, ms)
		if s.Dim == "" || len(res.Series) == 1 {
			out.Total, out.CompareTotal = scale(s.Total), scale(s.CompareTotal)
			// A custom series has no whole-range total: show its latest bucket.
			if out.Total == nil {
				for i := len(ms.Points) - 1; i >= 0; i-- {
					if ms.Points[i].Value != nil {
						out.Total, out.CompareTotal = ms.Points[i].Value, ms.Points[i].Compare
						break
					}
				}
			}
		}
	}
	return out, nil
}

// Explain says how name is answered with q: per leaf metric, the rollup (with its as-of) or
// the raw tables and why.
func (m *registryMetrics) Explain(ctx context.Context, name string, q MetricQuery) ([]MetricPath, error) {
	if _, ok := m.r.Get(name); !ok {
		return nil, errShown("unknown metric %q", name)
	}
	p, err := metricParams(q, m.cfg.WeekStart, m.cfg.FiscalYearStart)
	if err != nil {
		return nil, err
	}
	p.Currency = m.cfg.Currency
	ex, err := m.r.Explain(ctx, name, p)
	if err != nil {
		return nil, err
	}
	out := make([]MetricPath, len(ex.Inputs))
	rolled := false
	for i, l := range ex.Inputs {
		out[i] = MetricPath{Metric: l.Metric, Path: l.Path, Tables: l.Tables, Reason: scrubURLs(l.Reason), Rollup: l.Rollup, Status: l.Status}
		rolled = rolled || l.Path == "rollup"
	}
	if rolled { // the as-of of the rollups read
		st, _, err := m.r.RollupsStatus(ctx)
		if err != nil {
			return nil, err
		}
		for i := range out {
			for _, s := range st {
				if out[i].Path == "rollup" && s.Table == out[i].Rollup && s.AsOf.Unix() > 0 {
					out[i].AsOf = s.AsOf
				}
			}
		}
	}
	return out, nil
}

// Rollups is metrics.Registry.RollupsStatus.
func (m *registryMetrics) Rollups(ctx context.Context) (RollupsReport, error) {
	st, raw, err := m.r.RollupsStatus(ctx)
	if err != nil {
		return RollupsReport{}, err
	}
	var out RollupsReport
	for _, s := range st {
		x := RollupInfo{Table: s.Table, Metric: s.Metric, Status: s.Status, Rows: s.Rows, Bytes: s.Bytes,
			Generation: s.Generation, AsOf: s.AsOf, Lag: s.Lag, Sources: s.Sources, Serves: s.Serves, Error: scrubURLs(s.Error)}
		if s.AsOf.Unix() <= 0 { // never folded facts in (the state column's zero is 1900-01-01)
			x.AsOf, x.Lag = time.Time{}, 0
		}
		out.Rollups = append(out.Rollups, x)
	}
	for _, l := range raw {
		out.Raw = append(out.Raw, MetricPath{Metric: l.Metric, Path: l.Path, Tables: l.Tables, Reason: scrubURLs(l.Reason)})
	}
	return out, nil
}
