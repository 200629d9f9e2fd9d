package views

import (
	"math"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
)

// BarPercentOption is a horizontal bar chart of shares (fractions, shown in percent, one
// decimal) per label, the first label on top; one bar per series and label.
func BarPercentOption(labels []string, series []Series) string {
	c := charts.NewBar()
	c.SetGlobalOptions(
		charts.WithAnimation(false),
		charts.WithGridOpts(opts.Grid{Left: "8", Right: "24", Top: "40", Bottom: "8", ContainLabel: opts.Bool(true)}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: "0"}),
		charts.WithXAxisOpts(opts.XAxis{AxisLabel: &opts.AxisLabel{Formatter: "{value}%"}}),
		charts.WithYAxisOpts(opts.YAxis{Inverse: opts.Bool(true)}),
	)
	c.SetXAxis(labels)
	for i, s := range series {
		data := make([]opts.BarData, len(s.Values))
		for j, v := range s.Values {
			if v == nil {
				data[j] = opts.BarData{Value: "-"}
			} else {
				data[j] = opts.BarData{Value: math.Round(*v*1000) / 10}
			}
		}
		c.AddSeries(s.Name, data, charts.WithItemStyleOpts(opts.ItemStyle{Color: palette[i%len(palette)]}))
	}
	c.XYReversal()
	c.Validate()
	return optionJSON(c)
}
