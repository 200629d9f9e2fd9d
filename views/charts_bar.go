package views

import (
	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
)

// GroupedBarOption is a bar chart over categories (channels, campaigns) with one bar per
// series in each category, a legend and a tooltip; nil values are no bar. Up to six
// categories stand on the x axis; more lie on the y axis (horizontal bars, first on top), so
// long names stay readable.
func GroupedBarOption(categories []string, series []Series) string {
	c := charts.NewBar()
	c.SetGlobalOptions(
		charts.WithAnimation(false),
		charts.WithGridOpts(opts.Grid{Left: "8", Right: "24", Top: "40", Bottom: "8", ContainLabel: opts.Bool(true)}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: "0"}),
		charts.WithXAxisOpts(opts.XAxis{AxisLabel: &opts.AxisLabel{Interval: "0"}}),
	)
	if len(categories) > 6 {
		c.SetGlobalOptions(
			charts.WithXAxisOpts(opts.XAxis{Type: "value"}),
			charts.WithYAxisOpts(opts.YAxis{Type: "category", Inverse: opts.Bool(true), AxisLabel: &opts.AxisLabel{Interval: "0"}}),
		)
		c.XYReversal()
	}
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
