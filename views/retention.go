package views

import (
	"math"
	"strconv"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
)

// RetentionView is the cohort retention page.
type RetentionView struct {
	Page    Page
	Filters FilterBar
	// Grain is the cohort length (day … year); GrainDefault: it was not chosen (month).
	Grain        string
	GrainDefault bool
	// Description is the metric's definition.
	Description string
	// Cohorts, Customers and SecondPeriod summarise the matrix: the number of cohorts, their
	// customers, and the weighted average retention in period 1 ("" without one).
	Cohorts      int
	Customers    string
	SecondPeriod string
	Matrix       *CohortMatrix
	// Heatmap is the matrix as a chart (its data is Matrix); Curve the average retention.
	Heatmap, Curve *Chart
	// Notes say where the range cuts a cohort or a period short.
	Notes     []string
	Freshness string
	// NotFiltered lists dimension filters of the URL this page cannot apply.
	NotFiltered []string
	// Error is why the matrix could not be loaded.
	Error         string
	NotConfigured bool
}

// CohortMatrix is the retention matrix: a row per cohort, a column per period.
type CohortMatrix struct {
	Head []string // Cohort, Customers, then the periods
	Rows []CohortRow
	// Average is the size-weighted average over the cohorts that reached each period.
	Average *CohortRow
	// Download offers the matrix as a file (empty: no links).
	Download Download
}

// CohortRow is one cohort: its label, its size and its cells by period.
type CohortRow struct {
	Label, Size string
	Cells       []HeatCell
}

// HeatCell is a shaded cell: Level 0–10 by tenths of 100 %, -1 for no value (the period was
// not reached). Title explains the number.
type HeatCell struct {
	Text  string
	Level int
	Title string
}

// HeatLevel is the shade of a percentage (0–100): 0 below 10 %, …, 10 at 100 %.
func HeatLevel(pct float64) int {
	return int(math.Min(10, math.Max(0, math.Floor(pct/10))))
}

// heatClass is a cell's CSS class: heat-0 … heat-10, or heat-none.
func heatClass(level int) string {
	if level < 0 || level > 10 {
		return "heat-none"
	}
	return "heat-" + strconv.Itoa(level)
}

// heatScale is the shading from 0 % to 100 % (the same colours as the table cells in app.css).
var heatScale = []string{"#f4f7fb", "#e1ebf7", "#cbdcf1", "#b2cbea", "#96b7e1", "#77a0d6", "#5688c9", "#3d70b5", "#2d5c9e", "#214a85", "#163a6c"}

// Heatmap is a matrix of percentages: X labels (periods), Y labels (cohorts, first at the top).
type Heatmap struct {
	XLabels, YLabels []string
	Cells            []HeatPoint
}

// HeatPoint is one cell: column X, row Y, Value in %.
type HeatPoint struct {
	X, Y  int
	Value float64
}

// HeatmapOption is a heatmap of percentages with a 0–100 % colour scale and the value in each
// cell.
func HeatmapOption(h Heatmap) string {
	c := charts.NewHeatMap()
	c.SetGlobalOptions(
		charts.WithAnimation(false),
		charts.WithGridOpts(opts.Grid{Left: "8", Right: "16", Top: "8", Bottom: "56", ContainLabel: opts.Bool(true)}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true)}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(false)}),
		charts.WithXAxisOpts(opts.XAxis{Type: "category", Data: h.XLabels, SplitArea: &opts.SplitArea{Show: opts.Bool(true)}}),
		charts.WithYAxisOpts(opts.YAxis{Type: "category", Data: h.YLabels, Inverse: opts.Bool(true), SplitArea: &opts.SplitArea{Show: opts.Bool(true)}}),
		charts.WithVisualMapOpts(opts.VisualMap{
			Calculable: opts.Bool(false), Min: 0, Max: 100, Orient: "horizontal", Left: "center", Bottom: "0",
			Text: []string{"100 %", "0 %"}, InRange: &opts.VisualMapInRange{Color: heatScale},
		}),
	)
	c.SetXAxis(h.XLabels)
	data := make([]opts.HeatMapData, len(h.Cells))
	for i, p := range h.Cells {
		data[i] = opts.HeatMapData{Value: [3]any{p.X, p.Y, math.Round(p.Value*10) / 10}}
	}
	c.AddSeries("Retention (%)", data, charts.WithLabelOpts(opts.Label{Show: opts.Bool(len(h.XLabels) <= 24), FontSize: 11, Formatter: "{@[2]}%"}))
	c.Validate()
	return optionJSON(c)
}
