package server

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/static"
	"github.com/converge-dev/converge/views"
)

// Shared by the dashboard pages (overview, KPI detail, tile partials).

// liveURL is the server-sent events stream the dashboard pages listen to.
const liveURL = "/events/live"

// msgNotConfigured is the answer of the metric pages and API without a metrics layer.
const msgNotConfigured = "Metrics are not configured on this server."

// scripts are the dashboard's scripts, in load order (all deferred).
func scripts() []string {
	return []string{static.URL("js/echarts-5.6.0.min.js"), static.URL("js/htmx-2.0.4.min.js"), static.URL("js/app.js")}
}

// filters parses the request's view state.
func (s *Server) filters(c *gin.Context) (Filters, error) {
	q := c.Request.URL.Query()
	if q.Has(dropParam) {
		// A filter's remove button submitted the filter form: the same view without it.
		for _, d := range q[dropParam] {
			q.Del(filterParamPrefix + d)
		}
		q.Del(dropParam)
		to := c.Request.URL.Path
		if len(q) > 0 {
			to += "?" + q.Encode()
		}
		return Filters{}, redirect{to: to}
	}
	return parseFilters(q, s.now(), filterDefaults{TZ: s.cfg.TZ, FYStart: s.cfg.FiscalYearStartMonth})
}

// dashPage is the layout model of a dashboard page.
func (s *Server) dashPage(c *gin.Context, title, nav string, f Filters) views.Page {
	p := s.page(c, title, nav)
	p.TZ = f.TZ
	p.Scripts = scripts()
	if s.metrics != nil {
		p.LiveURL = liveURL
	}
	return p
}

// catalog reads the metric catalog within catalogTimeout.
func (s *Server) catalog(ctx context.Context) ([]MetricInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, catalogTimeout)
	defer cancel()
	type answer struct {
		cat []MetricInfo
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		cat, err := s.metrics.Catalog(ctx)
		ch <- answer{cat, err}
	}()
	select {
	case a := <-ch:
		if a.err != nil {
			return nil, fmt.Errorf("metric catalog: %w", a.err)
		}
		return a.cat, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("metric catalog: no answer within %s: %w", catalogTimeout, ctx.Err())
	}
}

// lookup finds name in the catalog: a 404 when it is not there, a 503 when the catalog cannot
// be read.
func (s *Server) lookup(ctx context.Context, name string) (MetricInfo, error) {
	cat, err := s.catalog(ctx)
	return findMetric(ctx, name, cat, err)
}

// findMetric finds name in list, the answer of a catalog call that failed with err (503).
func findMetric(ctx context.Context, name string, list []MetricInfo, err error) (MetricInfo, error) {
	if err != nil {
		if ctx.Err() != nil {
			return MetricInfo{}, err
		}
		return MetricInfo{}, errUnavailableCause(ctx, "The list of KPIs could not be read", err)
	}
	for _, m := range list {
		if m.Name == name {
			return m, nil
		}
	}
	return MetricInfo{}, errNotFound(fmt.Sprintf("There is no KPI named %q.", name))
}

// errBudget marks a query that exceeded its time budget.
var errBudget = errors.New("time budget exceeded")

// query runs one metric query within budget. A query that does not return in time is
// abandoned (its context is cancelled) and reported as errBudget, whether or not the
// implementation honours the cancellation.
func (s *Server) query(ctx context.Context, name string, q MetricQuery, budget time.Duration) (*MetricResult, error) {
	return withBudget(ctx, name, budget, func(ctx context.Context) (*MetricResult, error) { return s.metrics.Query(ctx, name, q) })
}

// tileError is the text a widget of the request of ctx shows for err (see errtext.go; the
// caller logs err).
func (s *Server) tileError(ctx context.Context, err error) string {
	if errors.Is(err, errBudget) {
		if s.cfg.FinishInBackground {
			return fmt.Sprintf("still computing after %s (time budget); it goes on in the background: reload in a minute.", s.cfg.TileTimeout)
		}
		return fmt.Sprintf("no answer within %s (time budget); try again or narrow the range.", s.cfg.TileTimeout)
	}
	return shownText(ctx, err)
}

// totalSeries is the result's total series (key ""), or its first series.
func totalSeries(r *MetricResult) []MetricPoint {
	for _, s := range r.Series {
		if s.Key == "" {
			return s.Points
		}
	}
	if len(r.Series) > 0 {
		return r.Series[0].Points
	}
	return nil
}

func compareLabel(compare string) string {
	switch compare {
	case "previous":
		return "previous period"
	case "year":
		return "same period last year"
	}
	return ""
}

// tileView builds info's tile from its result (or err).
func (s *Server) tileView(ctx context.Context, info MetricInfo, f Filters, res *MetricResult, err error) views.TileView {
	t := views.TileView{
		Name: info.Name, Title: info.Title, Owner: info.Owner, Group4R: info.Group4R,
		Unit: info.Unit, Currency: info.Currency, Polarity: info.Polarity,
		Href:        s.kpiURL(info, f),
		RefreshURL:  f.URL("/tiles/"+url.PathEscape(info.Name), nil),
		NotFiltered: f.NotApplied(info.Dimensions),
	}
	if t.Title == "" {
		t.Title = info.Name
	}
	if f.Compare != "none" {
		t.CompareLabel = "vs " + compareLabel(f.Compare)
	}
	if !info.Valid {
		t.Error = "the definition does not validate: " + info.Error
		return t
	}
	if err != nil {
		t.Error = s.tileError(ctx, err)
		return t
	}
	t.Value, t.Compare, t.Target = res.Total, res.CompareTotal, res.Target
	if res.Currency != "" && info.Unit == "currency" {
		t.Currency = res.Currency
	}
	for _, w := range res.Warnings {
		t.Warnings = append(t.Warnings, w.Message)
	}
	if !res.Freshness.IsZero() {
		t.Freshness = res.Freshness.In(f.Loc).Format("2 Jan 2006 15:04 MST")
	}
	pts := totalSeries(res)
	if len(pts) > 1 {
		vals := make([]*float64, len(pts))
		rows := make([][]string, len(pts))
		for i, p := range pts {
			vals[i] = p.Value
			rows[i] = []string{views.BucketLabel(p.Bucket, f.Grain, f.Loc), views.FormatValue(p.Value, info.Unit, info.Currency)}
		}
		t.Spark = &views.Chart{
			ID:     "spark-" + info.Name,
			Label:  fmt.Sprintf("Trend of %s by %s", t.Title, f.Grain),
			Option: views.SparklineOption(vals),
			Class:  "spark",
			Table:  views.Table{Head: []string{capitalize(f.Grain), "Value"}, Rows: rows},
		}
	}
	return t
}

// kpiURL is info's detail page with the filters it can apply.
func (s *Server) kpiURL(info MetricInfo, f Filters) string {
	return f.URL("/kpi/"+url.PathEscape(info.Name), func(v url.Values) {
		v.Del("view")
		v.Del("by")
		for _, d := range f.NotApplied(info.Dimensions) {
			v.Del(filterParamPrefix + d)
		}
	})
}

// tile queries info for its tile with the tile budget.
func (s *Server) tile(ctx context.Context, info MetricInfo, f Filters) views.TileView {
	if !info.Valid {
		return s.tileView(ctx, info, f, nil, nil)
	}
	res, err := s.query(ctx, info.Name, f.Query(info.Dimensions, ""), s.cfg.TileTimeout)
	if err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "tile query failed", "metric", info.Name, "error", err)
	}
	return s.tileView(ctx, info, f, res, err)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// filterBar is the filter form's model; action is the page's path.
func (s *Server) filterBar(f Filters, action string) views.FilterBar {
	b := views.FilterBar{
		Action:  action,
		Range:   f.Range,
		From:    f.From.Format(dateLayout),
		To:      f.InclusiveTo().Format(dateLayout),
		Compare: f.Compare,
		TZ:      f.TZ,
		Compares: []views.Option{
			{Value: "previous", Label: "Previous period"},
			{Value: "year", Label: "Same period last year"},
			{Value: "none", Label: "No comparison"},
		},
	}
	for _, r := range rangeNames {
		b.Ranges = append(b.Ranges, views.Option{Value: r, Label: rangeLabels[r]})
	}
	b.Grains = append(b.Grains, views.Option{Value: "", Label: "Auto (" + autoGrain(f.From, f.To) + ")"})
	for _, g := range grainNames {
		b.Grains = append(b.Grains, views.Option{Value: g, Label: capitalize(g)})
	}
	if f.grainSet {
		b.Grain = f.Grain
	}
	if f.View != "owner" {
		b.Hidden = append(b.Hidden, views.Option{Value: "view", Label: f.View})
	}
	if f.By != "" {
		b.Hidden = append(b.Hidden, views.Option{Value: "by", Label: f.By})
	}
	dims := make([]string, 0, len(f.Dims))
	for d := range f.Dims {
		dims = append(dims, d)
	}
	sort.Strings(dims)
	for _, d := range dims {
		b.Hidden = append(b.Hidden, views.Option{Value: filterParamPrefix + d, Label: f.Dims[d]})
		// Removed by a button of the form (drop=d), not a link: a link per filter would repeat
		// every other filter, and the page would grow with the square of their number.
		b.Dims = append(b.Dims, views.DimFilter{Name: d, Value: f.Dims[d]})
	}
	b.Period = fmt.Sprintf("%s – %s, by %s", f.From.Format("2 Jan 2006"), f.InclusiveTo().Format("2 Jan 2006"), f.Grain)
	if l := compareLabel(f.Compare); l != "" {
		b.Period += ", compared with the " + l
	}
	if f.Grain == "week" {
		b.WeekNote = "weeks start on " + s.cfg.WeekStart.String()
	}
	return b
}

// Owners and 4R groups in display order, with their subtitles.
var (
	ownerOrder = []string{"CEO", "CFO", "CMO", "COO", "CCO"}
	ownerNames = map[string]string{"CEO": "Company", "CFO": "Finance", "CMO": "Marketing", "COO": "Operations", "CCO": "Customers and service"}
	groups4R   = []string{"Recognize", "Reach", "Relationship", "Return"}
	names4R    = map[string]string{
		"Recognize":    "customers and identities",
		"Reach":        "consented audience, touchpoints",
		"Relationship": "retention, NPS, engagement",
		"Return":       "revenue, CLV, CAC, ROAS",
	}
)

// groupTiles groups tiles by owner or (view "4r") by 4R group, in a fixed order; unknown
// owners follow alphabetically, tiles without a group come last under "Other".
func groupTiles(tiles []views.TileView, view string) []views.TileGroup {
	key := func(t views.TileView) string { return t.Owner }
	order, subtitles := ownerOrder, ownerNames
	if view == "4r" {
		key = func(t views.TileView) string { return t.Group4R }
		order, subtitles = groups4R, names4R
	}
	by := map[string][]views.TileView{}
	var extra []string
	for _, t := range tiles {
		k := key(t)
		if k == "" {
			k = "Other"
		}
		if _, seen := by[k]; !seen && !slices.Contains(order, k) && k != "Other" {
			extra = append(extra, k)
		}
		by[k] = append(by[k], t)
	}
	sort.Strings(extra)
	var out []views.TileGroup
	for _, k := range append(append(slices.Clone(order), extra...), "Other") {
		if len(by[k]) == 0 {
			continue
		}
		out = append(out, views.TileGroup{ID: strings.ToLower(k), Title: k, Subtitle: subtitles[k], Tiles: by[k]})
	}
	return out
}
