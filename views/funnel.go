package views

import (
	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
	"github.com/go-echarts/go-echarts/v2/types"
)

// FunnelView is the funnel page: touchpoint → signup → first order → repeat order.
type FunnelView struct {
	Page    Page
	Filters FilterBar
	// WindowDays is each stage's window; WindowLinks switch it.
	WindowDays  int
	WindowLinks []Link
	// Description is the metric's definition.
	Description string
	// Overall is the funnel over all people (chart and table); OverallError why it is missing.
	Overall      *Chart
	OverallError string
	// Channels is the stages per channel of first touch; ChannelError why it is missing.
	Channels     *Chart
	ChannelError string
	Freshness    string
	// NotFiltered lists dimension filters of the URL this page cannot apply.
	NotFiltered   []string
	NotConfigured bool
}

// FunnelStep is one stage of a funnel chart.
type FunnelStep struct {
	Name  string
	Value float64
}

// FunnelOption is a funnel chart of steps in their order (not re-sorted), each labelled with
// its name and value.
func FunnelOption(steps []FunnelStep) string {
	c := charts.NewFunnel()
	c.SetGlobalOptions(
		charts.WithAnimation(false),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "item"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(false)}),
		charts.WithColorsOpts(opts.Colors(palette)),
	)
	data := make([]opts.FunnelData, len(steps))
	for i, s := range steps {
		data[i] = opts.FunnelData{Name: s.Name, Value: s.Value}
	}
	c.AddSeries("People", data,
		charts.WithSeriesOpts(func(s *charts.SingleSeries) {
			s.Sort = "none"
			s.Left, s.Right, s.Top, s.Bottom = "4%", "34%", "8", "8"
		}),
		charts.WithLabelOpts(opts.Label{Show: opts.Bool(true), Position: "right", Formatter: "{b}: {c}"}),
	)
	c.Validate()
	return optionJSON(c)
}

// BarOption is a grouped bar chart over categories, one bar per series; axisFormat formats the
// y axis labels ("{value} %").
func BarOption(categories []string, series []Series, axisFormat string) string {
	c := charts.NewBar()
	c.SetGlobalOptions(
		charts.WithAnimation(false),
		charts.WithGridOpts(opts.Grid{Left: "8", Right: "16", Top: "40", Bottom: "8", ContainLabel: opts.Bool(true)}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Type: "scroll", Top: "0"}),
		charts.WithYAxisOpts(opts.YAxis{AxisLabel: &opts.AxisLabel{Formatter: types.FuncStr(axisFormat)}}),
	)
	c.SetXAxis(categories)
	for i, s := range series {
		data := make([]opts.BarData, len(s.Values))
		for j, v := range s.Values {
			if v == nil {
				data[j] = opts.BarData{Value: "-"}
			} else {
				data[j] = opts.BarData{Value: *v}
			}
		}
		c.AddSeries(s.Name, data, charts.WithItemStyleOpts(opts.ItemStyle{Color: palette[i%len(palette)]}))
	}
	c.Validate()
	return optionJSON(c)
}
