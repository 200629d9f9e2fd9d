package views

// ChannelsView is the channels page: per channel or per campaign the marketing spend, new
// customers, CAC, ROAS and marketing ROI over the range, under one attribution model or two
// side by side.
type ChannelsView struct {
	Page    Page
	Filters FilterBar
	// Level is what a row is: "channel" or "campaign".
	Level string
	// LevelLinks switch between the channel and the campaign level.
	LevelLinks []Link
	Picker     ModelPicker
	// Chart is ROAS by channel (or campaign), a series per model; nil with ChartNote set when
	// there is nothing to draw.
	Chart     *Chart
	ChartNote string
	Table     ChannelTable
	// Errors are the widgets that could not be loaded, each with why; their cells are empty.
	Errors []WidgetError
	// Notes explain what the numbers are (filters not applied, how totals are computed).
	Notes []string
	// NotConfigured: the server has no metrics layer. CatalogError: the KPI list failed.
	NotConfigured bool
	CatalogError  string
}

// ModelPicker is the attribution form: a GET form carrying the rest of the view state.
type ModelPicker struct {
	Action        string
	Model, Model2 string   // Model2 "" is none
	Models        []Option // value, label
	Hidden        []Option // other parameters (Value = name, Label = value)
}

// WidgetError is a widget that failed: what it is and why.
type WidgetError struct {
	Widget, Error string
}

// ChannelTable is the channel (or campaign) table: one or two key columns, then a column per
// figure; Totals are the whole-range rows below (total, and the comparison period's).
type ChannelTable struct {
	Caption string
	KeyHead []string
	Columns []ChannelColumn
	Rows    []ChannelRow
	Totals  []ChannelRow
	// Download offers the table as a file (empty: no links).
	Download Download
}

// ChannelColumn is one figure of the table.
type ChannelColumn struct {
	Head string // "ROAS (Linear)"
	Unit string // "EUR", "×", "%", "count"
	// Failed: the widget behind this column did not answer; its cells are empty.
	Failed bool
}

// ChannelRow is a channel or campaign (Keys) and its formatted figures (Cells, one per column).
type ChannelRow struct {
	Keys  []string
	Cells []string
}
