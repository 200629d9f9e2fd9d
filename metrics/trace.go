package metrics

import (
	"context"

	"github.com/ClickHouse/clickhouse-go/v2"
)

type (
	traceKey       struct{}
	traceMetricKey struct{}
)

// Statement is one SQL statement a metric query ran, with its bound values and the metric
// it computes (an input of a derived metric names itself).
type Statement struct {
	SQL    string
	Args   clickhouse.Parameters
	Metric string
}

// WithTrace returns a context under which Registry.Query calls f with every
// statement that computes the answer (not the freshness probe nor the
// definition checks), so a benchmark can replay the raw SQL on its own.
// f may be called from several goroutines.
func WithTrace(ctx context.Context, f func(Statement)) context.Context {
	return context.WithValue(ctx, traceKey{}, f)
}

func trace(ctx context.Context, q string, args clickhouse.Parameters) {
	if f, ok := ctx.Value(traceKey{}).(func(Statement)); ok {
		name, _ := ctx.Value(traceMetricKey{}).(string)
		f(Statement{SQL: q, Args: args, Metric: name})
	}
}

// tracing returns ctx naming metric as the one its traced statements compute.
func tracing(ctx context.Context, metric string) context.Context {
	if !traced(ctx) {
		return ctx
	}
	return context.WithValue(ctx, traceMetricKey{}, metric)
}

// traced reports whether ctx carries a trace (WithTrace).
func traced(ctx context.Context) bool {
	_, ok := ctx.Value(traceKey{}).(func(Statement))
	return ok
}
