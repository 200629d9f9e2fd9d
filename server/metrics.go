package server

import (
	"context"
	"time"
)

// MetricInfo describes one governed metric definition.
type MetricInfo struct {
	Name, Title, Description, Owner string // Owner: CFO, CMO, COO, CCO, …
	Unit                            string // currency, percent, count, ratio, days, hours, minutes, score
	Currency                        string // ISO code when Unit is currency, e.g. EUR
	Polarity                        string // higher_is_better | lower_is_better
	Kind, Version, Formula          string
	Dimensions                      []string
	Group4R                         string        // Recognize | Reach | Relationship | Return
	Sources                         []string      // tables it reads (for freshness)
	Params                          []MetricParam // declared parameters of a custom metric (e.g. model)
	Table                           bool          // a custom metric answering with a table (Metrics.Table), not a tile
	Roles                           []string      // roles that see it (nil: everyone; see access.Role.Sees)
	Valid                           bool
	Error                           string // a definition that does not validate
}

// MetricParam is a declared parameter of a custom metric, e.g. the attribution model.
type MetricParam struct {
	Name, Type, Default string
	Allowed             []string // empty: any value of Type
	// Check validates a value by the metric's own declaration (type, allowed values, bounds):
	// the metrics layer's one check, so a page refuses what the API and the CLI refuse. Its
	// error says what the param takes. nil: anything goes.
	Check func(value string) error
	// Range says what its bounds allow ("1 to 365", "at least 1"); "" without bounds.
	Range string
}

// MetricTable is a table-shaped custom metric's answer (a cohort matrix, a funnel, a segment
// list). Values are as the metric returns them (percentages 0–100); Types are ClickHouse types.
type MetricTable struct {
	Info      MetricInfo
	Columns   []string
	Types     []string
	Rows      [][]any
	Freshness time.Time // last change of the tables the metric reads
}

// MetricQuery asks for one metric over a period. From and To are instants; the range is
// [From, To) and its day boundaries are midnights in TZ.
type MetricQuery struct {
	From, To time.Time         // [From, To) in the report time zone
	Grain    string            // day, week, month, quarter, year
	TZ       string            // IANA zone
	Compare  string            // "", previous, year
	By       string            // one dimension to break down by, "" for none
	Filters  map[string]string // dimension → value
	Args     map[string]string // declared parameters of a custom metric → value (validated by the metrics layer)
}

// MetricPoint is one bucket of a series. Bucket is the bucket's start; nil values are missing.
type MetricPoint struct {
	Bucket                 time.Time
	Value, Compare, Target *float64
}

// MetricSeries is one line of a result.
type MetricSeries struct {
	Key    string // breakdown value, "" for the total
	Points []MetricPoint
	// Total and CompareTotal are the series' values over the whole range (and the comparison
	// range), computed from raw rows: never a sum of its points. nil when unknown.
	Total, CompareTotal *float64
}

// MetricResult is a metric's answer to a MetricQuery.
type MetricResult struct {
	Info                        MetricInfo
	Total, CompareTotal, Target *float64 // over the whole range
	Series                      []MetricSeries
	Freshness                   time.Time // last ingest of the sources it reads
	// Currency is the currency the amounts are in, when the answer says (the one filtered on,
	// else the report currency); "" leaves Info.Currency.
	Currency string
	// Warnings name rows of the data the answer leaves out; the answer holds all the others.
	Warnings []MetricWarning
}

// MetricWarning names rows a result leaves out, such as orders in a currency that cannot be
// converted to the report currency ("3 orders in currency XX left out: …").
type MetricWarning struct {
	Code     string // not_convertible
	Metric   string // the metric whose rows they are (an input of a derived one)
	Period   string // current | comparison
	Currency string // their currency as stored ("" when they have none)
	Rows     int64
	Message  string // the sentence shown to people
}

// Metrics is what the server needs of the metrics layer. Implementations honour ctx
// cancellation. The server looks names up in Catalog before it calls Query.
type Metrics interface {
	// Catalog lists the series-shaped metrics (the tiles) and the definitions that do not
	// validate.
	Catalog(ctx context.Context) ([]MetricInfo, error)
	// Definitions lists every definition, series and table shaped, valid or not.
	Definitions(ctx context.Context) ([]MetricInfo, error)
	Query(ctx context.Context, name string, q MetricQuery) (*MetricResult, error)
	// Table runs a table-shaped custom metric; a series-shaped one is an error.
	Table(ctx context.Context, name string, q MetricQuery) (*MetricTable, error)
	// Explain says how Query(name, q) is answered now: per metric that reads the store (the
	// metric itself, or a derived metric's inputs), from a rollup or from raw rows and why.
	Explain(ctx context.Context, name string, q MetricQuery) ([]MetricPath, error)
	// Rollups lists every rollup with its freshness, and the metrics read from raw rows.
	Rollups(ctx context.Context) (RollupsReport, error)
}

// MetricPath is how one metric that reads the store is answered.
type MetricPath struct {
	Metric string
	Path   string   // "rollup" or "raw"
	Tables []string // the rollup table, or the raw tables read
	Reason string   // why raw rows ("" from a rollup)
	Rollup string   // the metric's rollup table, when it has one
	Status string   // of that rollup: building, ready, failed, missing, outdated
	AsOf   time.Time
}

// RollupInfo is one rollup table and its freshness. AsOf is the instant every fact committed
// before it is folded in; Lag is how far AsOf is behind now, in seconds.
type RollupInfo struct {
	Table, Metric, Status   string
	Rows, Bytes, Generation uint64
	AsOf                    time.Time
	Lag                     float64
	Sources                 []string
	Serves                  []string // of a view's rollup: the custom metrics that read the view
	Error                   string   // why it failed
}

// RollupsReport is the state of the rollups, and the simple metrics answered from raw rows
// (their Reason says why).
type RollupsReport struct {
	Rollups []RollupInfo
	Raw     []MetricPath
}

// Changes tells the server when the data behind the metrics changed (an ingest run finished,
// events arrived). Subscribe returns a channel that receives a value after each change (it may
// coalesce several changes into one) and a function that ends the subscription.
type Changes interface {
	Subscribe() (<-chan struct{}, func())
}
