package views

import "strings"

// RollupsSection is the data page's rollups: each rollup table with its state and freshness,
// and the simple metrics answered from raw rows with the reason. Values are formatted by the
// server, times in the report zone.
type RollupsSection struct {
	Rows []RollupRow
	Raw  []RawMetricRow
	// Error is why the rollups could not be read.
	Error string
	// Download offers the rollups table as a file (empty: no links).
	Download Download
}

// RollupRow is one rollup table.
type RollupRow struct {
	Table, Metric string
	// Status is building, ready, failed, missing or outdated; Ready marks ready.
	Status string
	Ready  bool
	Rows   string
	Size   string
	// AsOf is the instant every fact committed before it is folded in; Lag how far it is
	// behind the page's now ("12 s", or NoData when it was never built).
	AsOf, Lag string
	Sources   []string
	// Error is why its upkeep failed (its metric is read from raw rows meanwhile).
	Error string
}

// RawMetricRow is a simple metric answered from raw rows, and why.
type RawMetricRow struct {
	Metric, Tables, Reason string
}

// RollupsHead is the columns of the rollups download; RollupRow.Cells matches it.
var (
	RollupsHead    = []string{"Table", "Metric", "Status", "Rows", "Size", "As of", "Lag", "Sources", "Error"}
	RollupsNumeric = numericAt(len(RollupsHead), 3)
)

// Cells is the row of the rollups download.
func (r RollupRow) Cells() []string {
	return []string{r.Table, r.Metric, r.Status, r.Rows, r.Size, r.AsOf, r.Lag, strings.Join(r.Sources, ", "), r.Error}
}
