package server

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// queryTable runs a table-shaped custom metric within budget, as query does for a series.
func (s *Server) queryTable(ctx context.Context, name string, q MetricQuery, budget time.Duration) (*MetricTable, error) {
	return withBudget(ctx, name, budget, func(ctx context.Context) (*MetricTable, error) { return s.metrics.Table(ctx, name, q) })
}

// withBudget runs ask (metric name's query) within budget. An answer that does not come back in
// time is abandoned (its context is cancelled) and reported as errBudget, whether or not ask
// honours the cancellation; a nil answer is an error.
func withBudget[T any](ctx context.Context, name string, budget time.Duration, ask func(context.Context) (*T, error)) (*T, error) {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	type answer struct {
		res *T
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		res, err := ask(ctx)
		ch <- answer{res, err}
	}()
	select {
	case a := <-ch:
		if a.err != nil {
			if errors.Is(a.err, context.DeadlineExceeded) && ctx.Err() != nil {
				return nil, fmt.Errorf("metric %s: no answer within %s: %w", name, budget, errBudget)
			}
			return nil, fmt.Errorf("metric %s: %w", name, a.err)
		}
		if a.res == nil {
			return nil, errShown("metric %s: empty result", name)
		}
		return a.res, nil
	case <-ctx.Done():
		if parent := context.Cause(ctx); errors.Is(parent, context.Canceled) {
			return nil, fmt.Errorf("metric %s: %w", name, parent)
		}
		return nil, fmt.Errorf("metric %s: no answer within %s: %w", name, budget, errBudget)
	}
}

// tableColumns finds the columns named in want in t and returns their indexes in the same
// order; a missing column is an error that lists what the metric returned.
func tableColumns(t *MetricTable, want ...string) ([]int, error) {
	idx := make([]int, len(want))
	for i, w := range want {
		idx[i] = -1
		for j, c := range t.Columns {
			if c == w {
				idx[i] = j
				break
			}
		}
		if idx[i] < 0 {
			return nil, errShown("%s answered with columns %v, without %q", t.Info.Name, t.Columns, w)
		}
	}
	return idx, nil
}

// cellInt reads an integer cell (the metrics layer returns integers as int64).
func cellInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case float64:
		return int64(x), x == float64(int64(x))
	}
	return 0, false
}

// cellFloat reads a number cell; nil (a division by zero, a missing value) is not ok.
func cellFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint32:
		return float64(x), true
	case int16:
		return float64(x), true
	case uint16:
		return float64(x), true
	case int8:
		return float64(x), true
	case uint8:
		return float64(x), true
	}
	return 0, false
}
