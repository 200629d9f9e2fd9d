package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/a-h/templ"
	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/views"
)

// The channels page (/channels): per channel, or per channel and campaign, the marketing spend,
// new customers, CAC (paid), ROAS and marketing ROI over the range, under one attribution model
// or two side by side. URL parameters besides the filters (filters.go):
//
//	level   channel (default) | campaign
//	model   attribution model of ROAS and ROI: last_touch (default), first_touch, linear,
//	        u_shaped, w_shaped, time_decay
//	model2  a second model shown next to the first (ROAS (Linear) | ROAS (Time decay));
//	        absent or empty for none; must differ from model
//
// Every figure comes from the metrics layer and is the value over the whole range (a ratio of
// sums for CAC, ROAS and ROI): marketing_spend, new_customers and cac_paid broken down by
// channel or channel_campaign ("channel / campaign") and once without a breakdown for the totals
// row; the custom series metrics roas and marketing_roi with args model and level, whose series
// "" is all channels.
const (
	channelsPath  = "/channels"
	levelChannel  = "channel"
	levelCampaign = "campaign"
	defaultModel  = "last_touch"
)

var (
	channelLevels = []string{levelChannel, levelCampaign}
	// attributionModels are the values of roas' and marketing_roi's model param, in picker order.
	attributionModels = []views.Option{
		{Value: "last_touch", Label: "Last touch"},
		{Value: "first_touch", Label: "First touch"},
		{Value: "linear", Label: "Linear"},
		{Value: "u_shaped", Label: "U-shaped"},
		{Value: "w_shaped", Label: "W-shaped"},
		{Value: "time_decay", Label: "Time decay"},
	}
)

// channelsParams are the page's own parameters.
type channelsParams struct {
	Level, Model, Model2 string
}

func parseChannelsParams(q url.Values) (channelsParams, error) {
	p := channelsParams{Level: levelChannel, Model: defaultModel}
	names := make([]string, len(attributionModels))
	for i, m := range attributionModels {
		names[i] = m.Value
	}
	if v := q.Get("level"); v != "" {
		if !slices.Contains(channelLevels, v) {
			return p, badParam("level", v, oneOf(channelLevels))
		}
		p.Level = v
	}
	if v := q.Get("model"); v != "" {
		if !slices.Contains(names, v) {
			return p, badParam("model", v, oneOf(names))
		}
		p.Model = v
	}
	if v := q.Get("model2"); v != "" {
		if !slices.Contains(names, v) {
			return p, badParam("model2", v, oneOf(names)+", or leave it empty for one model")
		}
		if v == p.Model {
			return p, &paramError{Param: "model2", Msg: fmt.Sprintf("Invalid value %q for parameter \"model2\": it is the same model as \"model\"; pick another model to compare with, or leave model2 empty.", v)}
		}
		p.Model2 = v
	}
	return p, nil
}

// set writes p into v, defaults left out.
func (p channelsParams) set(v url.Values) {
	v.Del("level")
	v.Del("model")
	v.Del("model2")
	if p.Level != levelChannel {
		v.Set("level", p.Level)
	}
	if p.Model != defaultModel {
		v.Set("model", p.Model)
	}
	if p.Model2 != "" {
		v.Set("model2", p.Model2)
	}
}

func (p channelsParams) models() []string {
	if p.Model2 == "" {
		return []string{p.Model}
	}
	return []string{p.Model, p.Model2}
}

// by is the breakdown dimension of the simple metrics at p's level.
func (p channelsParams) by() string {
	if p.Level == levelCampaign {
		return "channel_campaign"
	}
	return "channel"
}

// rowDims are the filters the page applies to its rows (and so to ROAS and ROI, which take
// no filters): those that name a row's channel or campaign.
func (p channelsParams) rowDims() []string {
	if p.Level == levelCampaign {
		return []string{"channel", "campaign", "channel_campaign"}
	}
	return []string{"channel"}
}

func modelLabel(m string) string {
	for _, o := range attributionModels {
		if o.Value == m {
			return o.Label
		}
	}
	return m
}

// errNoCatalog fails every figure when the metric catalog cannot be read (the page says so once).
var errNoCatalog = errors.New("the list of KPIs could not be read")

// channelFigure is one column of the table and the metric behind it.
type channelFigure struct {
	title  string // column head
	metric string
	unit   string // display unit (views.FormatValue)
	model  string // attribution model; "" for the simple metrics
	// answered by run:
	rows            map[string]*float64 // row key → value over the range
	total, cmpTotal *float64
	currency        string
	err             error
}

func channelFigures(p channelsParams) []*channelFigure {
	fs := []*channelFigure{
		{title: "Spend", metric: "marketing_spend", unit: "currency"},
		{title: "New customers", metric: "new_customers", unit: "count"},
		{title: "CAC (paid)", metric: "cac_paid", unit: "currency"},
	}
	for _, m := range p.models() {
		fs = append(fs, &channelFigure{title: "ROAS (" + modelLabel(m) + ")", metric: "roas", unit: "ratio", model: m})
	}
	// Marketing ROI is a ratio (0.5 = 50 %); shown as a percentage of spend.
	for _, m := range p.models() {
		fs = append(fs, &channelFigure{title: "Marketing ROI (" + modelLabel(m) + ")", metric: "marketing_roi", unit: "percent", model: m})
	}
	return fs
}

// runFigure answers fig within the widget budget: a simple metric by the level's dimension and once
// without a breakdown (the totals row), concurrently; an attribution metric once, its series ""
// being all channels.
func (s *Server) runFigure(ctx context.Context, fig *channelFigure, cat map[string]MetricInfo, f Filters, p channelsParams) {
	info, ok := cat[fig.metric]
	switch {
	case cat == nil:
		fig.err = errNoCatalog
		return
	case !ok:
		fig.err = errShown("metric %s is not defined", fig.metric)
		return
	case !info.Valid:
		fig.err = errShown("the definition of %s does not validate: %s", fig.metric, info.Error)
		return
	}
	fig.currency = info.Currency
	fig.rows = map[string]*float64{}
	budget := s.cfg.TileTimeout
	if fig.model != "" {
		q := f.Query(nil, "")
		q.Args = map[string]string{"model": fig.model, "level": p.Level}
		res, err := s.query(ctx, fig.metric, q, budget)
		if err != nil {
			fig.err = err
			return
		}
		for _, sr := range res.Series {
			if sr.Key == "" {
				fig.total, fig.cmpTotal = sr.Total, sr.CompareTotal
			} else {
				fig.rows[sr.Key] = sr.Total
			}
		}
		return
	}
	by := p.by()
	if !slices.Contains(info.Dimensions, by) {
		fig.err = errShown("metric %s has no dimension %s (dimensions: %s)", fig.metric, by, strings.Join(info.Dimensions, ", "))
		return
	}
	var (
		wg              sync.WaitGroup
		rows, total     *MetricResult
		rowsErr, totErr error
	)
	wg.Go(func() { rows, rowsErr = s.query(ctx, fig.metric, f.Query(info.Dimensions, by), budget) })
	wg.Go(func() { total, totErr = s.query(ctx, fig.metric, f.Query(info.Dimensions, ""), budget) })
	wg.Wait()
	if fig.err = cmp.Or(rowsErr, totErr); fig.err != nil {
		return
	}
	for _, sr := range rows.Series {
		fig.rows[sr.Key] = sr.Total
	}
	fig.total, fig.cmpTotal = total.Total, total.CompareTotal
}

// channels renders the channels page. Bad parameters: 400. Each figure is a widget with its
// own time budget, all run concurrently; a failed one leaves its column empty and says why,
// and the page still renders with 200.
func (s *Server) channels(c *gin.Context) error {
	f, err := s.filters(c)
	if err != nil {
		return err
	}
	p, err := parseChannelsParams(c.Request.URL.Query())
	if err != nil {
		return err
	}
	pageURL := func(edit func(url.Values)) string {
		return f.URL(channelsPath, func(v url.Values) {
			p.set(v)
			if edit != nil {
				edit(v)
			}
		})
	}
	v := views.ChannelsView{
		Page:    s.dashPage(c, "Channels", "channels", f),
		Filters: s.filterBar(f, channelsPath),
		Level:   p.Level,
		Picker:  views.ModelPicker{Action: channelsPath, Model: p.Model, Model2: p.Model2, Models: attributionModels},
	}
	// The filter form carries the page's parameters, the picker form the filters.
	keep := url.Values{}
	p.set(keep)
	for _, k := range []string{"level", "model", "model2"} {
		if x := keep.Get(k); x != "" {
			v.Filters.Hidden = append(v.Filters.Hidden, views.Option{Value: k, Label: x})
		}
	}
	state := f.Values()
	if p.Level != levelChannel {
		state.Set("level", p.Level)
	}
	for _, k := range slices.Sorted(maps.Keys(state)) {
		v.Picker.Hidden = append(v.Picker.Hidden, views.Option{Value: k, Label: state.Get(k)})
	}
	for _, l := range []struct{ level, label string }{{levelChannel, "By channel"}, {levelCampaign, "By campaign"}} {
		v.LevelLinks = append(v.LevelLinks, views.Link{Label: l.label, Current: p.Level == l.level,
			Href: pageURL(func(q url.Values) {
				q.Del("level")
				if l.level != levelChannel {
					q.Set("level", l.level)
				}
			})})
	}
	c.Header("Cache-Control", "no-store")
	if s.metrics == nil {
		v.NotConfigured = true
		return s.renderTables(c, http.StatusOK, &v, func() templ.Component { return views.Channels(v) })
	}
	// The widgets share the metric values they compute.
	ctx := metrics.WithSharedValues(c.Request.Context())
	var cat map[string]MetricInfo // nil: the catalog failed
	if list, err := s.catalog(ctx); err != nil {
		s.reqLog(c).Warn("channels: catalog", "error", err)
		v.CatalogError = shownText(ctx, err)
	} else {
		cat = map[string]MetricInfo{}
		for _, m := range list {
			cat[m.Name] = m
		}
	}
	figs := channelFigures(p)
	var wg sync.WaitGroup
	for _, fig := range figs {
		wg.Go(func() { s.runFigure(ctx, fig, cat, f, p) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, fig := range figs {
		if fig.err != nil && fig.err != errNoCatalog {
			s.reqLog(c).Warn("channels: widget failed", "metric", fig.metric, "model", fig.model, "error", fig.err)
			v.Errors = append(v.Errors, views.WidgetError{Widget: fig.title, Error: s.tileError(c.Request.Context(), fig.err)})
		}
	}
	keys := channelRows(figs, f, p)
	v.Table = channelTable(figs, keys, f, p)
	v.Chart, v.ChartNote = roasChart(figs, keys, p)
	v.Notes = channelNotes(figs, f, p, cat)
	return s.renderTables(c, http.StatusOK, &v, func() templ.Component { return views.Channels(v) })
}

// channelRows are the row keys: every channel (or "channel / campaign") any figure has, kept by
// the row filters, by spend (highest first), then new customers, then name.
func channelRows(figs []*channelFigure, f Filters, p channelsParams) []string {
	set := map[string]bool{}
	for _, fig := range figs {
		for k := range fig.rows {
			set[k] = true
		}
	}
	var keys []string
	for k := range set {
		if rowKept(k, f, p) {
			keys = append(keys, k)
		}
	}
	spend, customers := figs[0].rows, figs[1].rows
	desc := func(a, b *float64) int {
		switch {
		case a == nil && b == nil:
			return 0
		case a == nil:
			return 1
		case b == nil:
			return -1
		}
		return cmp.Compare(*b, *a)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(desc(spend[a], spend[b]), desc(customers[a], customers[b]), strings.Compare(a, b))
	})
	return keys
}

// splitKey is a row key's channel and campaign ("" at the channel level).
func splitKey(key string, p channelsParams) (channel, campaign string) {
	if p.Level != levelCampaign {
		return key, ""
	}
	channel, campaign, _ = strings.Cut(key, " / ")
	return channel, campaign
}

// rowKept tells whether the row filters (f.channel, and at the campaign level f.campaign and
// f.channel_campaign) keep key.
func rowKept(key string, f Filters, p channelsParams) bool {
	channel, campaign := splitKey(key, p)
	for dim, want := range f.Dims {
		var got string
		switch {
		case !slices.Contains(p.rowDims(), dim):
			continue
		case dim == "channel":
			got = channel
		case dim == "campaign":
			got = campaign
		default:
			got = key
		}
		if got != want {
			return false
		}
	}
	return true
}

// rowFiltered tells whether a row filter is active.
func rowFiltered(f Filters, p channelsParams) bool {
	return slices.ContainsFunc(p.rowDims(), func(d string) bool { return f.Dims[d] != "" })
}

func keyCells(key string, p channelsParams) []string {
	channel, campaign := splitKey(key, p)
	if channel == "" {
		channel = ingest.NoChannel // the bucket touchpoints without a channel are stored in, as the funnel shows it
	}
	if p.Level != levelCampaign {
		return []string{channel}
	}
	if campaign == "" {
		campaign = "(no campaign)"
	}
	return []string{channel, campaign}
}

func channelTable(figs []*channelFigure, keys []string, f Filters, p channelsParams) views.ChannelTable {
	t := views.ChannelTable{KeyHead: []string{"Channel"}}
	if p.Level == levelCampaign {
		t.KeyHead = append(t.KeyHead, "Campaign")
	}
	models := make([]string, 0, 2)
	for _, m := range p.models() {
		models = append(models, modelLabel(m))
	}
	t.Caption = fmt.Sprintf("%s – %s, values over the whole range; attribution: %s", f.From.Format("2 Jan 2006"),
		f.InclusiveTo().Format("2 Jan 2006"), strings.Join(models, " and "))
	for _, fig := range figs {
		unit := views.UnitLabel(fig.unit, fig.currency)
		switch fig.unit {
		case "ratio":
			unit = "×"
		case "percent":
			unit = "%"
		}
		t.Columns = append(t.Columns, views.ChannelColumn{Head: fig.title, Unit: unit, Failed: fig.err != nil})
	}
	for _, k := range keys {
		r := views.ChannelRow{Keys: keyCells(k, p)}
		for _, fig := range figs {
			r.Cells = append(r.Cells, views.FormatValue(fig.rows[k], fig.unit, fig.currency))
		}
		t.Rows = append(t.Rows, r)
	}
	// Attribution totals are over all channels: not shown under a row filter.
	hideAll := rowFiltered(f, p)
	totals := func(label string, pick func(*channelFigure) *float64) views.ChannelRow {
		r := views.ChannelRow{Keys: make([]string, len(t.KeyHead))}
		r.Keys[0] = label
		for _, fig := range figs {
			var x *float64
			if fig.err == nil && (fig.model == "" || !hideAll) {
				x = pick(fig)
			}
			r.Cells = append(r.Cells, views.FormatValue(x, fig.unit, fig.currency))
		}
		return r
	}
	t.Totals = append(t.Totals, totals("Total", func(fig *channelFigure) *float64 { return fig.total }))
	if f.Compare != "none" {
		t.Totals = append(t.Totals, totals(capitalize(compareLabel(f.Compare)), func(fig *channelFigure) *float64 { return fig.cmpTotal }))
	}
	return t
}

// roasChart is ROAS by row, a bar series per model, over the rows that have a ROAS under any
// model; or a note saying why there is no chart.
func roasChart(figs []*channelFigure, keys []string, p channelsParams) (*views.Chart, string) {
	var roas []*channelFigure
	for _, fig := range figs {
		if fig.metric == "roas" && fig.err == nil {
			roas = append(roas, fig)
		}
	}
	if len(roas) == 0 {
		return nil, "ROAS could not be loaded (see above)."
	}
	var cats []string
	var shown []string
	for _, k := range keys {
		if slices.ContainsFunc(roas, func(fig *channelFigure) bool { return fig.rows[k] != nil }) {
			shown = append(shown, k)
			cats = append(cats, strings.Join(keyCells(k, p), " / "))
		}
	}
	if len(shown) == 0 {
		return nil, fmt.Sprintf("No %s has both spend and attributed revenue in this period.", p.Level)
	}
	series := make([]views.Series, len(roas))
	head := []string{capitalize(p.Level)}
	for i, fig := range roas {
		series[i].Name = fig.title
		head = append(head, fig.title)
		for _, k := range shown {
			series[i].Values = append(series[i].Values, fig.rows[k])
		}
	}
	rows := make([][]string, len(shown))
	for j := range shown {
		rows[j] = []string{cats[j]}
		for _, s := range series {
			rows[j] = append(rows[j], views.FormatValue(s.Values[j], "ratio", ""))
		}
	}
	names := make([]string, len(roas))
	for i, fig := range roas {
		names[i] = modelLabel(fig.model)
	}
	return &views.Chart{
		ID:        "roas-by-" + p.Level,
		Label:     fmt.Sprintf("ROAS by %s over the range, %s attribution", p.Level, strings.Join(names, " and ")),
		Option:    views.GroupedBarOption(cats, series),
		Class:     barsClass(len(cats)),
		Table:     views.Table{Head: head, Rows: rows},
		TableOpen: true,
	}, ""
}

// barsClass sizes a bar chart by its number of categories (more than six lie horizontally).
func barsClass(n int) string {
	switch {
	case n > 14:
		return "bars bars-xl"
	case n > 6:
		return "bars bars-tall"
	}
	return "bars"
}

// channelNotes say what the figures are and which filters they do not apply.
func channelNotes(figs []*channelFigure, f Filters, p channelsParams, cat map[string]MetricInfo) []string {
	lookback := "the lookback window"
	for _, x := range cat["roas"].Params {
		if x.Name == "lookback_days" {
			lookback = "the " + x.Default + " days"
		}
	}
	notes := []string{
		"ROAS = revenue attributed to the " + p.Level + "'s touchpoints in " + lookback + " before each order, under the model, / its spend; " +
			"Marketing ROI = (attributed gross profit − spend) / spend. Totals are over the whole range and all channels " +
			"(revenue attributed to paid channels, those with spend, / all spend), never sums or averages of rows.",
		"New customers: first orders, by the channel of that order (organic included); CAC (paid) = spend / new customers whose first order came through a paid channel.",
	}
	if rowFiltered(f, p) {
		notes = append(notes, "The ROAS and ROI totals are over all channels, so they are not shown while the rows are filtered.")
	}
	// Filters a figure cannot apply, by dimension.
	for _, d := range slices.Sorted(maps.Keys(f.Dims)) {
		var titles []string
		for _, fig := range figs {
			applies := slices.Contains(cat[fig.metric].Dimensions, d)
			if fig.model != "" {
				applies = slices.Contains(p.rowDims(), d)
			}
			if !applies && !slices.Contains(titles, fig.title) {
				titles = append(titles, fig.title)
			}
		}
		if len(titles) > 0 {
			notes = append(notes, fmt.Sprintf("Not filtered by %s = %s: %s (no such dimension).", d, f.Dims[d], strings.Join(titles, ", ")))
		}
	}
	return notes
}
