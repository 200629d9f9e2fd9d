package metrics

import "context"

type sharedKey struct{}

// WithSharedValues returns a context under which the queries of a Registry
// share the values of the metrics they compute: a report that asks for
// revenue_gross, revenue_net and gross_margin over the same parameters
// computes revenue_gross once. The values are kept as long as the context
// is used: make a new one when the data may have changed (a new load).
func WithSharedValues(ctx context.Context) context.Context {
	return context.WithValue(ctx, sharedKey{}, &memo{calls: map[string]*memoCall{}})
}

// sharedMemo is ctx's shared memo, or a new one.
func sharedMemo(ctx context.Context) *memo {
	if m, ok := ctx.Value(sharedKey{}).(*memo); ok {
		return m
	}
	return &memo{calls: map[string]*memoCall{}}
}
