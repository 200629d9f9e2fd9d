package metrics

import (
	"context"

	"github.com/ClickHouse/clickhouse-go/v2"
)

type traceKey struct{}

// Statement is one SQL statement a metric query ran, with its bound values.
type Statement struct {
	SQL  string
	Args clickhouse.Parameters
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
		f(Statement{SQL: q, Args: args})
	}
}

// traced reports whether ctx carries a trace (WithTrace).
func traced(ctx context.Context) bool {
	_, ok := ctx.Value(traceKey{}).(func(Statement))
	return ok
}
