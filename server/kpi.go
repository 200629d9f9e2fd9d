package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/views"
)

// checkDims rejects a breakdown or a filter on a dimension info does not allow (400).
func checkDims(info MetricInfo, f Filters) error {
	allowed := "this KPI has no dimensions"
	if len(info.Dimensions) > 0 {
		allowed = "dimensions of " + info.Name + " are " + strings.Join(info.Dimensions, ", ")
	}
	if f.By != "" && !slices.Contains(info.Dimensions, f.By) {
		return badParam("by", f.By, allowed)
	}
	if bad := f.NotApplied(info.Dimensions); len(bad) > 0 {
		p := filterParamPrefix + bad[0]
		return &paramError{Param: p, Msg: fmt.Sprintf("Invalid filter parameter %q: %s.", p, allowed)}
	}
	return nil
}

// checkQueryable refuses a query of info with f that cannot be answered: a dimension it does not
// have (400), a definition that does not validate (422).
func checkQueryable(info MetricInfo, f Filters) error {
	if err := checkDims(info, f); err != nil {
		return err
	}
	if !info.Valid {
		return httpError{status: http.StatusUnprocessableEntity, msg: fmt.Sprintf("The definition of %s does not validate: %s", info.Name, info.Error)}
	}
	return nil
}

// kpi renders a KPI's detail page (/kpi/:name), or its CSV export (/kpi/:name.csv, the metric
// export of the export engine, see exportMetric, for finance and up): the trend over
// the range with the comparison and the target, a breakdown by ?by= (default: the first
// dimension), the definition. Unknown KPI: 404; bad parameters, or a dimension the KPI does not
// have: 400. The two queries run concurrently, each within Config.TileTimeout.
func (s *Server) kpi(c *gin.Context) error {
	name := c.Param("name")
	if n, ok := strings.CutSuffix(name, ".csv"); ok {
		return s.exportMetric(c, n)
	}
	f, err := s.filters(c)
	if err != nil {
		return err
	}
	c.Header("Cache-Control", "no-store")
	v := views.KPIView{
		Page:        s.dashPage(c, name, "overview", f),
		Filters:     s.filterBar(f, "/kpi/"+url.PathEscape(name)),
		Def:         views.MetricDef{Name: name},
		OverviewURL: f.URL("/", func(q url.Values) { q.Del("by") }),
	}
	if s.metrics == nil {
		v.NotConfigured = true
		return s.renderHTML(c, http.StatusServiceUnavailable, views.KPI(v))
	}
	ctx := metrics.WithSharedValues(c.Request.Context()) // the widgets share the metric values they compute
	info, err := s.lookup(ctx, name)
	if err != nil {
		return err
	}
	if err := checkDims(info, f); err != nil {
		return err
	}
	v.Page.Title = orName(info)
	v.Def = views.MetricDef{
		Name: info.Name, Title: orName(info), Description: info.Description, Owner: info.Owner,
		Unit: info.Unit, Currency: info.Currency, Polarity: info.Polarity, Kind: info.Kind,
		Version: info.Version, Formula: info.Formula, Group4R: info.Group4R,
		Dimensions: info.Dimensions, Sources: info.Sources,
	}
	by := f.By
	if by == "" && len(info.Dimensions) > 0 {
		by = info.Dimensions[0]
	}
	v.By = by
	for _, d := range info.Dimensions {
		v.ByLinks = append(v.ByLinks, views.Link{Label: d, Current: d == by,
			Href: f.URL(c.Request.URL.Path, func(q url.Values) { q.Set("by", d) })})
	}
	v.CSVURL = f.URL("/kpi/"+url.PathEscape(info.Name)+".csv", func(q url.Values) { q.Del("view"); q.Del("by") })
	v.JSONURL = f.URL("/api/v1/metrics/"+url.PathEscape(info.Name), func(q url.Values) { q.Del("view") })
	for _, e := range []struct{ label, param, value string }{
		{"XLSX", "format", "xlsx"}, {"CSV for Excel", "preset", "excel"}, {"Raw CSV", "raw", "1"},
		{"Manifest", "manifest", "1"}, {"CSV + manifest (zip)", "bundle", "zip"},
	} {
		v.Exports = append(v.Exports, views.Link{Label: e.label, Href: metricExportURL(f, info.Name, "", e.param, e.value)})
	}
	if !roleOf(c).Includes(finance) { // exports are for finance and up
		v.CSVURL, v.JSONURL, v.Exports = "", "", nil
	}

	var total, breakdown *MetricResult
	var totalErr, breakdownErr error
	if info.Valid {
		var wg sync.WaitGroup
		wg.Go(func() { total, totalErr = s.query(ctx, info.Name, f.Query(info.Dimensions, ""), s.cfg.TileTimeout) })
		if by != "" {
			wg.Go(func() {
				breakdown, breakdownErr = s.query(ctx, info.Name, f.Query(info.Dimensions, by), s.cfg.TileTimeout)
			})
		}
		wg.Go(func() {
			v.Def.Answer, v.Def.AnswerError = s.answerPaths(c, ctx, info.Name, f.Query(info.Dimensions, ""), f.Loc)
		})
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return err
		}
		if total != nil && total.Currency != "" && info.Unit == "currency" {
			info.Currency, v.Def.Currency = total.Currency, total.Currency // filtered on a currency: shown in it
		}
	}
	v.Headline = s.tileView(c.Request.Context(), info, f, total, totalErr)
	v.Headline.Href = c.Request.URL.RequestURI()
	v.Headline.Spark = nil
	switch {
	case !info.Valid:
		v.Error = "The definition does not validate: " + info.Error
	case totalErr != nil:
		s.reqLog(c).Warn("kpi: trend", "metric", info.Name, "error", totalErr)
		v.Error = "The trend could not be loaded: " + s.tileError(c.Request.Context(), totalErr)
	default:
		v.Trend = trendChart(info, f, total)
		v.Trend.Table.Download = metricDownload(c, f, info.Name, "")
	}
	switch {
	case breakdownErr != nil:
		s.reqLog(c).Warn("kpi: breakdown", "metric", info.Name, "by", by, "error", breakdownErr)
		v.BreakdownError = "The breakdown could not be loaded: " + s.tileError(c.Request.Context(), breakdownErr)
	case breakdown != nil:
		v.Breakdown = breakdownChart(info, f, by, breakdown)
		v.Breakdown.Table.Download = metricDownload(c, f, info.Name, by)
	}
	return s.renderHTML(c, http.StatusOK, views.KPI(v))
}

// answerPaths says how the page's values of name are computed (Metrics.Explain), with the
// rollups' as-of in loc; or why that is not known.
func (s *Server) answerPaths(c *gin.Context, ctx context.Context, name string, q MetricQuery, loc *time.Location) ([]views.AnswerPath, string) {
	paths, err := within(ctx, s.cfg.TileTimeout, func(ctx context.Context) ([]MetricPath, error) { return s.metrics.Explain(ctx, name, q) })
	if err != nil {
		s.reqLog(c).Warn("kpi: explain", "metric", name, "error", err)
		return nil, "How it is computed could not be read: " + s.tileError(c.Request.Context(), err)
	}
	out := make([]views.AnswerPath, len(paths))
	for i, p := range paths {
		a := views.AnswerPath{Rollup: p.Path == "rollup"}
		if len(paths) > 1 || p.Metric != name {
			a.Metric = p.Metric
		}
		if a.Rollup {
			a.Text = "from rollup " + strings.Join(p.Tables, ", ")
			if !p.AsOf.IsZero() {
				a.Text += " (as of " + p.AsOf.In(loc).Format(answerTimeFmt) + ")"
			}
		} else {
			a.Text = "from raw rows: " + p.Reason
		}
		out[i] = a
	}
	return out, ""
}

// answerTimeFmt is a rollup's as-of on the KPI page, in the report zone.
const answerTimeFmt = "2 Jan 2006 15:04:05 MST"

func orName(info MetricInfo) string {
	if info.Title != "" {
		return info.Title
	}
	return info.Name
}

// trendChart is the total series with its comparison and target, and its table.
func trendChart(info MetricInfo, f Filters, r *MetricResult) *views.Chart {
	pts := totalSeries(r)
	labels := make([]string, len(pts))
	val := make([]*float64, len(pts))
	cmp := make([]*float64, len(pts))
	tgt := make([]*float64, len(pts))
	hasCmp, hasTgt := false, false
	for i, p := range pts {
		labels[i] = views.BucketLabel(p.Bucket, f.Grain, f.Loc)
		val[i], cmp[i], tgt[i] = p.Value, p.Compare, p.Target
		hasCmp = hasCmp || p.Compare != nil
		hasTgt = hasTgt || p.Target != nil
	}
	title := orName(info)
	series := []views.Series{{Name: title, Values: val}}
	head := []string{capitalize(f.Grain), title}
	if hasCmp && f.Compare != "none" {
		l := capitalize(compareLabel(f.Compare))
		series = append(series, views.Series{Name: l, Values: cmp, Style: "dashed"})
		head = append(head, l, "Change")
	}
	if hasTgt {
		series = append(series, views.Series{Name: "Target", Values: tgt, Style: "target"})
		head = append(head, "Target")
	}
	rows := make([][]string, len(pts))
	for i := range pts {
		row := []string{labels[i], views.FormatValue(val[i], info.Unit, info.Currency)}
		if hasCmp && f.Compare != "none" {
			ch := views.ComputeChange(val[i], cmp[i], info.Unit, info.Currency, info.Polarity)
			text := ch.Text
			if ch.Known && ch.Arrow != "→" {
				text = ch.Arrow + " " + text
			}
			row = append(row, views.FormatValue(cmp[i], info.Unit, info.Currency), text)
		}
		if hasTgt {
			row = append(row, views.FormatValue(tgt[i], info.Unit, info.Currency))
		}
		rows[i] = row
	}
	return &views.Chart{
		ID:        "trend-" + info.Name,
		Label:     fmt.Sprintf("%s by %s, %s", title, f.Grain, views.UnitLabel(info.Unit, info.Currency)),
		Option:    views.LineOption(labels, series),
		Class:     "trend",
		Table:     views.Table{Head: head, Rows: rows},
		TableOpen: true,
	}
}

// breakdownChart is one line per value of by, and a table of buckets × values.
func breakdownChart(info MetricInfo, f Filters, by string, r *MetricResult) *views.Chart {
	bucketSet := map[time.Time]bool{}
	var keys []string
	byKey := map[string]map[time.Time]*float64{}
	for _, s := range r.Series {
		if s.Key == "" {
			continue // the total is the trend
		}
		keys = append(keys, s.Key)
		m := map[time.Time]*float64{}
		for _, p := range s.Points {
			bucketSet[p.Bucket] = true
			m[p.Bucket] = p.Value
		}
		byKey[s.Key] = m
	}
	buckets := make([]time.Time, 0, len(bucketSet))
	for b := range bucketSet {
		buckets = append(buckets, b)
	}
	sort.Slice(buckets, func(i, j int) bool { return buckets[i].Before(buckets[j]) })
	labels := make([]string, len(buckets))
	for i, b := range buckets {
		labels[i] = views.BucketLabel(b, f.Grain, f.Loc)
	}
	series := make([]views.Series, len(keys))
	for i, k := range keys {
		vals := make([]*float64, len(buckets))
		for j, b := range buckets {
			vals[j] = byKey[k][b]
		}
		series[i] = views.Series{Name: k, Values: vals}
	}
	head := append([]string{capitalize(f.Grain)}, keys...)
	rows := make([][]string, len(buckets))
	for j := range buckets {
		row := []string{labels[j]}
		for _, s := range series {
			row = append(row, views.FormatValue(s.Values[j], info.Unit, info.Currency))
		}
		rows[j] = row
	}
	return &views.Chart{
		ID:        "breakdown-" + info.Name,
		Label:     fmt.Sprintf("%s by %s and %s", orName(info), by, f.Grain),
		Option:    views.LineOption(labels, series),
		Class:     "trend",
		Table:     views.Table{Head: head, Rows: rows},
		TableOpen: true,
	}
}

// queryForExport runs the total (or, with ?by=, the breakdown) query of the JSON API.
func (s *Server) queryForExport(ctx context.Context, name string, f Filters) (MetricInfo, *MetricResult, error) {
	if s.metrics == nil {
		return MetricInfo{}, nil, errUnavailable(msgNotConfigured)
	}
	info, err := s.lookup(ctx, name)
	if err != nil {
		return info, nil, err
	}
	if err := checkQueryable(info, f); err != nil {
		return info, nil, err
	}
	res, err := s.query(ctx, name, f.Query(info.Dimensions, f.By), s.cfg.TileTimeout)
	if errors.Is(err, errBudget) {
		return info, nil, httpError{status: http.StatusGatewayTimeout, msg: fmt.Sprintf("%s did not answer within %s; narrow the range or try again.", name, s.cfg.TileTimeout)}
	}
	return info, res, err
}
