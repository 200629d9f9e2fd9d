// Package views holds converge's templ components and pages. Every page takes a typed view model
// built by the server; views never query the store and import nothing that does.
package views

// Page is what the layout needs on every page.
type Page struct {
	// Title is the page's own title; the layout appends " · converge". Empty means the home page.
	Title string
	// Version is converge's build version, shown in the footer.
	Version string
	// StylesheetURL is the versioned URL of the main stylesheet.
	StylesheetURL string
	// Nav is the current top-level section, used to mark the active navigation link ("home", …).
	Nav string
	// RequestID identifies the request in the logs; shown on error pages.
	RequestID string
	// TZ is the report time zone (IANA name), shown on every page.
	TZ string
	// Scripts are the versioned URLs of the page's scripts, loaded deferred, in order.
	Scripts []string
	// LiveURL, when set, is the server-sent events stream the page listens to for refreshes.
	LiveURL string
	// User is the signed-in user's email ("" when nobody is), Role their role, Admin whether
	// it is admin.
	User, Role string
	Admin      bool
	// Analyst: the user may open the analyst pages (data, catalog, SQL console).
	Analyst bool
	// Finance: the user may export (the reports page, CSV downloads).
	Finance bool
	// CSRF is the session's CSRF token: every form that posts carries it (CSRFField), and htmx
	// sends it as X-CSRF-Token.
	CSRF string
}

// HomeView is the home page's view model.
type HomeView struct {
	Page Page
	// Name is the product name.
	Name string
	// Store describes the warehouse, e.g. "embedded ./data" or "http://host:8123".
	Store string
	// EngineVersion is the ClickHouse engine's version, empty when EngineError is set.
	EngineVersion string
	// EngineError is why the engine version could not be read; empty on success.
	EngineError string
}

// ErrorView is the error page's view model.
type ErrorView struct {
	Page Page
	// Status is the HTTP status code, e.g. 404.
	Status int
	// Heading is the short status text, e.g. "Page not found".
	Heading string
	// Message is safe to show to anyone: never an internal error's text for a 5xx.
	Message string
}

// Link is a navigation link; Current marks the page or option being shown.
type Link struct {
	Label, Href string
	Current     bool
}

// Option is one choice of a select.
type Option struct {
	Value, Label string
}

// DimFilter is an active dimension filter (f.<Name>=Value) with the URL that removes it (the
// data pages; the dashboard's FilterForm removes it with a button of its form instead).
type DimFilter struct {
	Name, Value, RemoveURL string
}

// FilterBar is the filter form shared by the dashboard pages. Submitting it (GET) puts the
// whole state in the URL.
type FilterBar struct {
	// Action is the path the form submits to.
	Action string
	// Range is the selected preset; From and To are the range's first and last day (inclusive),
	// YYYY-MM-DD, in the report time zone.
	Range, From, To string
	Ranges          []Option
	Grain           string
	Grains          []Option
	Compare         string
	Compares        []Option
	TZ              string
	// Hidden are further parameters the form carries unchanged (view, by, f.*).
	Hidden []Option
	Dims   []DimFilter
	// Period describes the range for people: "1 Nov 2026 – 23 Nov 2026, by day".
	Period string
	// WeekNote says when weeks start, shown with the week grain.
	WeekNote string
}

// Chart is one chart: go-echarts option JSON for the browser and the same numbers as a table,
// so they read without JavaScript.
type Chart struct {
	ID     string
	Label  string // accessible name of the chart
	Option string // ECharts option, JSON
	Class  string // extra CSS class, e.g. "spark"
	Table  Table
	// TableOpen shows the table expanded (else it is in a closed <details>) when there is no
	// JavaScript; app.js closes it once the chart is drawn.
	TableOpen bool
}

// Table is a simple data table; the first column is a row header.
type Table struct {
	Caption string
	Head    []string
	Rows    [][]string
	// Numeric marks the columns holding formatted numbers (see Grid.Numeric); nil: a chart's
	// data table, whose columns after the first are the series' values.
	Numeric []bool
	// Download offers the table as a file (empty: no links).
	Download Download
}

// TileView is one KPI tile.
type TileView struct {
	Name, Title, Owner, Group4R string
	Unit, Currency, Polarity    string
	// Href opens the KPI's detail page with the same filters; RefreshURL is the tile partial.
	Href, RefreshURL string
	Value, Compare   *float64
	Target           *float64
	// CompareLabel names the comparison period ("vs previous period"); empty: no comparison.
	CompareLabel string
	// Error is why the tile has no value (failed query, time budget exceeded).
	Error string
	// Warnings name rows of the data the value leaves out ("2 orders in currency XX left out:
	// not convertible to EUR …"); the value holds all the others.
	Warnings []string
	// Freshness is when its sources were last loaded, formatted in the report zone.
	Freshness string
	// NotFiltered lists dimension filters this KPI cannot apply.
	NotFiltered []string
	Spark       *Chart
}

// TileGroup is a titled group of tiles (an owner or a 4R group).
type TileGroup struct {
	ID, Title, Subtitle string
	Tiles               []TileView
}

// InvalidMetric is a definition that does not validate.
type InvalidMetric struct {
	Name, Error string
}

// OverviewView is the overview page.
type OverviewView struct {
	Page    Page
	Filters FilterBar
	// ViewLinks switch between the owner and the 4R grouping.
	ViewLinks []Link
	Groups    []TileGroup
	Invalid   []InvalidMetric
	// NotConfigured: the server has no metrics layer.
	NotConfigured bool
	// CatalogError is why the list of KPIs could not be read.
	CatalogError string
}

// MetricDef is a metric's definition as shown on its page.
type MetricDef struct {
	Name, Title, Description, Owner string
	Unit, Currency, Polarity        string
	Kind, Version, Formula, Group4R string
	Dimensions, Sources             []string
	// Answer says how the value on the page was computed, per metric read from the store
	// (one for a simple metric, one per input of a derived one); AnswerError why it is not known.
	Answer      []AnswerPath
	AnswerError string
}

// AnswerPath is how one metric's values were computed: "from rollup rollup_orders (as of …)"
// or "from raw rows: <reason>". Metric is set for an input of a derived metric.
type AnswerPath struct {
	Metric string
	Rollup bool
	Text   string
}

// KPIView is a KPI's detail page.
type KPIView struct {
	Page    Page
	Filters FilterBar
	Def     MetricDef
	// Headline is the KPI's tile (value, change, target) over the range.
	Headline TileView
	Trend    *Chart
	// By is the breakdown dimension; ByLinks switch it.
	By        string
	ByLinks   []Link
	Breakdown *Chart
	// BreakdownError is why the breakdown could not be shown.
	BreakdownError string
	// CSVURL and JSONURL are the exports; empty for a role that may not export. Exports are
	// the other files of the export engine (XLSX, CSV for Excel, raw CSV, the manifest, a zip).
	CSVURL, JSONURL string
	Exports         []Link
	// OverviewURL is the overview with the same filters.
	OverviewURL string
	// Error is why the trend could not be shown.
	Error         string
	NotConfigured bool
}
