package views

import (
	"encoding/json"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
)

// Charts are built with go-echarts and handed to the browser as ECharts option JSON only
// (data-option), which static/js/app.js renders with the vendored ECharts. go-echarts' page
// rendering (which loads ECharts from its AssetsHost, a CDN) is never used.

// Series is one named line of a chart; nil values are gaps.
type Series struct {
	Name   string
	Values []*float64
	// Style: "" solid, "dashed" (comparison), "target" (dotted step line).
	Style string
}

// Palette is the series colours: readable on light and dark backgrounds.
var palette = []string{"#1f5fbf", "#8a5a00", "#2e7d32", "#b23c8a", "#00838f", "#6a4fb3", "#c2410c", "#4b5563"}

func lineData(vs []*float64) []opts.LineData {
	out := make([]opts.LineData, len(vs))
	for i, v := range vs {
		if v == nil {
			out[i] = opts.LineData{Value: "-"}
		} else {
			out[i] = opts.LineData{Value: *v}
		}
	}
	return out
}

func optionJSON(c interface{ JSON() map[string]any }) string {
	b, err := json.Marshal(c.JSON())
	if err != nil {
		return "{}"
	}
	return string(b)
}

// SparklineOption is a minimal line without axes, for tiles.
func SparklineOption(values []*float64) string {
	c := charts.NewLine()
	labels := make([]int, len(values))
	for i := range labels {
		labels[i] = i
	}
	c.SetGlobalOptions(
		charts.WithAnimation(false),
		charts.WithGridOpts(opts.Grid{Left: "2", Right: "2", Top: "4", Bottom: "4"}),
		charts.WithXAxisOpts(opts.XAxis{Show: opts.Bool(false)}),
		charts.WithYAxisOpts(opts.YAxis{Show: opts.Bool(false), Scale: opts.Bool(true)}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(false)}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(false)}),
	)
	c.SetXAxis(labels).AddSeries("value", lineData(values),
		charts.WithLineChartOpts(opts.LineChart{ShowSymbol: opts.Bool(false), Symbol: "none"}),
		charts.WithLineStyleOpts(opts.LineStyle{Color: palette[0], Width: 2}),
		charts.WithAreaStyleOpts(opts.AreaStyle{Color: "rgba(31,95,191,0.12)"}),
	)
	c.Validate()
	return optionJSON(c)
}

// LineOption is a full line chart over labels (bucket labels) with a legend and tooltip.
func LineOption(labels []string, series []Series) string {
	c := charts.NewLine()
	c.SetGlobalOptions(
		charts.WithAnimation(false),
		charts.WithGridOpts(opts.Grid{Left: "8", Right: "16", Top: "40", Bottom: "8", ContainLabel: opts.Bool(true)}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Type: "scroll", Top: "0"}),
		charts.WithYAxisOpts(opts.YAxis{Scale: opts.Bool(true)}),
	)
	c.SetXAxis(labels)
	for i, s := range series {
		color := palette[i%len(palette)]
		ls := opts.LineStyle{Color: color, Width: 2}
		lc := opts.LineChart{ShowSymbol: opts.Bool(len(labels) <= 31)}
		switch s.Style {
		case "dashed":
			ls = opts.LineStyle{Color: "#6b7280", Width: 2, Type: "dashed"}
		case "target":
			ls = opts.LineStyle{Color: "#2e7d32", Width: 2, Type: "dotted"}
			lc = opts.LineChart{ShowSymbol: opts.Bool(false), Step: "start"}
		}
		c.AddSeries(s.Name, lineData(s.Values),
			charts.WithLineChartOpts(lc),
			charts.WithLineStyleOpts(ls),
			charts.WithItemStyleOpts(opts.ItemStyle{Color: ls.Color}),
		)
	}
	c.Validate()
	return optionJSON(c)
}
