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
	Group4R                         string   // Recognize | Reach | Relationship | Return
	Sources                         []string // tables it reads (for freshness)
	Valid                           bool
	Error                           string // a definition that does not validate
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
}

// MetricResult is a metric's answer to a MetricQuery.
type MetricResult struct {
	Info                        MetricInfo
	Total, CompareTotal, Target *float64 // over the whole range
	Series                      []MetricSeries
	Freshness                   time.Time // last ingest of the sources it reads
}

// Metrics is what the server needs of the metrics layer. Implementations honour ctx
// cancellation. The server looks names up in Catalog before it calls Query.
type Metrics interface {
	Catalog(ctx context.Context) ([]MetricInfo, error)
	Query(ctx context.Context, name string, q MetricQuery) (*MetricResult, error)
}

// Changes tells the server when the data behind the metrics changed (an ingest run finished,
// events arrived). Subscribe returns a channel that receives a value after each change (it may
// coalesce several changes into one) and a function that ends the subscription.
type Changes interface {
	Subscribe() (<-chan struct{}, func())
}
