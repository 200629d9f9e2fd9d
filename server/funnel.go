package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"sync"

	"github.com/a-h/templ"
	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/views"
)

// The funnel page (/funnel): marketing touchpoint → signup → first order → repeat order, from the
// custom metric funnel_conversion, overall and by the channel of each person's first touch.
//
//	range, from, to, tz  select the people: those whose first touchpoint falls in the range.
//	window_days          each stage must follow within this many days (default 30), within the
//	                     bounds the metric declares for it (1–365: its param header); see the
//	                     metric's description for the exact rule per stage.
//
// grain, compare, view, by and f.* do not apply; they stay in the URL for the other pages.
const (
	funnelMetric      = "funnel_conversion"
	defaultWindowDays = 30
)

// windowChoices are the windows offered as links; any value the metric's bounds allow works in
// the URL.
var windowChoices = []int{7, 14, 30, 60, 90}

// funnelStages names the metric's stages for people, in order.
var funnelStages = []struct{ key, label string }{
	{"touched", "Marketing touchpoint"},
	{"signed_up", "Signup"},
	{"first_order", "First order"},
	{"repeat", "Repeat order"},
}

// parseWindowDays reads window_days: a whole number of days that p, funnel_conversion's
// declaration of it, accepts (p.Check: the metrics layer's one check, so the page, the API, the
// exports and the CLI take the same values). p nil (no metrics layer, or its definition could
// not be read): any whole number of days from 1; the metrics layer checks the value again when
// the funnel is queried.
func parseWindowDays(q url.Values, p *MetricParam) (int, error) {
	s := q.Get("window_days")
	if s == "" {
		if p != nil {
			if n, err := strconv.Atoi(p.Default); err == nil {
				return n, nil
			}
		}
		return defaultWindowDays, nil
	}
	n, err := strconv.Atoi(s)
	if err == nil && p != nil && p.Check != nil {
		err = p.Check(s)
	}
	if err != nil || n < 1 {
		takes := "a whole number of days"
		if p != nil && p.Range != "" {
			takes += " from " + p.Range
		}
		return 0, badParam("window_days", s, takes)
	}
	return n, nil
}

// funnelParam is funnel_conversion's declaration of param name, nil when the metric cannot be
// read (no metrics layer, hidden from the user, not valid).
func (s *Server) funnelParam(ctx context.Context, name string) *MetricParam {
	if s.metrics == nil {
		return nil
	}
	info, err := s.definition(ctx, funnelMetric)
	if err != nil {
		return nil
	}
	for i := range info.Params {
		if info.Params[i].Name == name {
			return &info.Params[i]
		}
	}
	return nil
}

// funnel renders the funnel page. The overall funnel and the channel breakdown are queried
// concurrently, each within Config.TileTimeout; a failed or late one shows its error and the
// page still renders with 200. Bad parameters are a 400.
func (s *Server) funnel(c *gin.Context) error {
	f, err := s.filters(c)
	if err != nil {
		return err
	}
	window, err := parseWindowDays(c.Request.URL.Query(), s.funnelParam(c.Request.Context(), "window_days"))
	if err != nil {
		return err
	}
	c.Header("Cache-Control", "no-store")
	withWindow := func(n int) func(url.Values) {
		return func(q url.Values) {
			q.Del("window_days")
			if n != defaultWindowDays {
				q.Set("window_days", strconv.Itoa(n))
			}
		}
	}
	bar := s.filterBar(f, "/funnel")
	bar.Grains = notUsedHere(bar.Grain)
	bar.Compares = notUsedHere(f.Compare)
	bar.WeekNote = ""
	if window != defaultWindowDays {
		bar.Hidden = append(bar.Hidden, views.Option{Value: "window_days", Label: strconv.Itoa(window)})
	}
	bar.Period = fmt.Sprintf("People whose first touchpoint was from %s to %s; each stage within %d days",
		f.From.Format("2 Jan 2006"), f.InclusiveTo().Format("2 Jan 2006"), window)
	v := views.FunnelView{
		Page:        s.dashPage(c, "Funnel", "funnel", f),
		Filters:     bar,
		WindowDays:  window,
		NotFiltered: f.NotApplied(nil),
	}
	choices := windowChoices
	if !slices.Contains(choices, window) {
		choices = append([]int{window}, choices...)
	}
	for _, n := range choices {
		v.WindowLinks = append(v.WindowLinks, views.Link{Label: strconv.Itoa(n) + " days", Current: n == window,
			Href: f.URL("/funnel", withWindow(n))})
	}
	if s.metrics == nil {
		v.NotConfigured = true
		return s.renderHTML(c, http.StatusServiceUnavailable, views.Funnel(v))
	}
	ctx := metrics.WithSharedValues(c.Request.Context()) // the widgets share the metric values they compute
	q := func(breakdown string) MetricQuery {
		// The funnel has no buckets: a fixed grain keeps one cache entry per range and window.
		return MetricQuery{From: f.From, To: f.To, Grain: "month", TZ: f.TZ,
			Args: map[string]string{"window_days": strconv.Itoa(window), "breakdown": breakdown}}
	}
	var overall, byChannel *MetricTable
	var overallErr, channelErr error
	var wg sync.WaitGroup
	wg.Go(func() { overall, overallErr = s.queryTable(ctx, funnelMetric, q("none"), s.cfg.TileTimeout) })
	wg.Go(func() { byChannel, channelErr = s.queryTable(ctx, funnelMetric, q("channel"), s.cfg.TileTimeout) })
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}

	var total []funnelStage
	if overallErr == nil {
		var rows map[string][]funnelStage
		if rows, overallErr = readFunnel(overall); overallErr == nil {
			total = rows[""]
			if len(total) != len(funnelStages) {
				overallErr = errShown("%s answered with %d stages, want %d", funnelMetric, len(total), len(funnelStages))
			}
		}
	}
	if overallErr != nil {
		s.reqLog(c).Warn("funnel: overall", "error", overallErr)
		v.OverallError = "The funnel could not be loaded: " + s.tileError(c.Request.Context(), overallErr)
	} else {
		v.Description = overall.Info.Description
		if !overall.Freshness.IsZero() {
			v.Freshness = overall.Freshness.In(f.Loc).Format("2 Jan 2006 15:04 MST")
		}
		v.Overall = overallFunnel(total)
	}

	var channels map[string][]funnelStage
	var order []string
	if channelErr == nil {
		channels, channelErr = readFunnel(byChannel)
		order = byChannelOrder(byChannel)
	}
	if channelErr != nil {
		s.reqLog(c).Warn("funnel: by channel", "error", channelErr)
		v.ChannelError = "The funnel by channel could not be loaded: " + s.tileError(c.Request.Context(), channelErr)
	} else {
		v.Channels = channelFunnel(order, channels)
	}
	return s.renderTables(c, http.StatusOK, &v, func() templ.Component { return views.Funnel(v) })
}

// funnelStage is one stage of one funnel: people, and the rates in % (nil: 0 of 0).
type funnelStage struct {
	name                  string
	people                int64
	fromPrevious, fromTop *float64
}

// readFunnel groups funnel_conversion's rows by channel ("" for the overall funnel), stages in
// the metric's order, which must be the four of funnelStages.
func readFunnel(t *MetricTable) (map[string][]funnelStage, error) {
	idx, err := tableColumns(t, "stage", "name", "people", "rate_from_previous_pct", "rate_from_start_pct", "channel")
	if err != nil {
		return nil, err
	}
	out := map[string][]funnelStage{}
	for i, row := range t.Rows {
		name, _ := row[idx[1]].(string)
		channel, ok := row[idx[5]].(string)
		people, okP := cellInt(row[idx[2]])
		if !ok || !okP {
			return nil, errShown("%s row %d: unexpected values %v", t.Info.Name, i+1, row)
		}
		st := funnelStage{name: name, people: people}
		if x, ok := cellFloat(row[idx[3]]); ok {
			st.fromPrevious = &x
		}
		if x, ok := cellFloat(row[idx[4]]); ok {
			st.fromTop = &x
		}
		n := len(out[channel])
		if n >= len(funnelStages) || funnelStages[n].key != name {
			return nil, errShown("%s row %d: stage %q out of order for channel %q", t.Info.Name, i+1, name, channel)
		}
		out[channel] = append(out[channel], st)
	}
	for ch, stages := range out {
		if len(stages) != len(funnelStages) {
			return nil, errShown("%s: channel %q has %d stages, want %d", t.Info.Name, ch, len(stages), len(funnelStages))
		}
	}
	return out, nil
}

// byChannelOrder lists the channels of t by people at stage 1, most first, then by name.
func byChannelOrder(t *MetricTable) []string {
	idx, err := tableColumns(t, "people", "channel", "stage")
	if err != nil {
		return nil
	}
	type ch struct {
		name   string
		people int64
	}
	var list []ch
	for _, row := range t.Rows {
		if st, _ := cellInt(row[idx[2]]); st != 1 {
			continue
		}
		n, _ := cellInt(row[idx[0]])
		name, _ := row[idx[1]].(string)
		list = append(list, ch{name, n})
	}
	sortChannels := func(i, j int) bool {
		if list[i].people != list[j].people {
			return list[i].people > list[j].people
		}
		return list[i].name < list[j].name
	}
	sort.Slice(list, sortChannels)
	out := make([]string, len(list))
	for i, c := range list {
		out[i] = c.name
	}
	return out
}

func countText(n int64) string {
	x := float64(n)
	return views.FormatValue(&x, "count", "")
}

// pctText formats a rate in % (0–100) for people.
func pctText(p *float64) string {
	if p == nil {
		return views.NoData
	}
	x := *p / 100
	return views.FormatValue(&x, "percent", "")
}

// overallFunnel is the funnel chart and its table: people per stage and the two rates.
func overallFunnel(stages []funnelStage) *views.Chart {
	var steps []views.FunnelStep
	rows := make([][]string, len(stages))
	for i, st := range stages {
		label := funnelStages[i].label
		steps = append(steps, views.FunnelStep{Name: label, Value: float64(st.people)})
		rows[i] = []string{strconv.Itoa(i+1) + ". " + label, countText(st.people), pctText(st.fromPrevious), pctText(st.fromTop)}
	}
	rows[0][2], rows[0][3] = views.NoData, pctText(stages[0].fromTop)
	return &views.Chart{
		ID:     "funnel-overall",
		Label:  "People per funnel stage",
		Option: views.FunnelOption(steps),
		Class:  "funnel",
		Table:  views.Table{Head: []string{"Stage", "People", "From the previous stage", "From stage 1"}, Rows: rows},
	}
}

// channelFunnel is the stages per channel: a bar chart of each stage's share of the channel's
// people at stage 1, and a table of people and rates.
func channelFunnel(order []string, channels map[string][]funnelStage) *views.Chart {
	series := make([]views.Series, len(funnelStages)-1)
	for i := range series {
		series[i] = views.Series{Name: funnelStages[i+1].label, Values: make([]*float64, len(order))}
	}
	rows := make([][]string, len(order))
	for j, ch := range order {
		st := channels[ch]
		row := []string{ch}
		for _, x := range st {
			row = append(row, countText(x.people))
		}
		for i := 1; i < len(st); i++ {
			row = append(row, pctText(st[i].fromPrevious))
			series[i-1].Values[j] = st[i].fromTop
		}
		row = append(row, pctText(st[2].fromTop))
		rows[j] = row
	}
	return &views.Chart{
		ID:     "funnel-channels",
		Label:  "Share of each channel's touched people reaching signup, first order and repeat order, in %",
		Option: views.BarOption(order, series, "{value} %"),
		Class:  "trend",
		Table: views.Table{
			Head: []string{"Channel of first touch", "Touched", "Signed up", "First order", "Repeat order",
				"Signup rate", "First-order rate (of signups)", "Repeat rate (of first orders)", "Touched → first order"},
			Rows: rows,
		},
	}
}
