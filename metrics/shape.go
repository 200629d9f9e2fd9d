package metrics

import (
	"context"
	"fmt"
)

// IsTable tells whether metric name answers with a table (a custom metric
// whose SQL does not return bucket, value and optionally dim) rather than a
// series. It describes the SQL against the store without running it, once
// per definition version, so it is cheap whatever the data size.
func (r *Registry) IsTable(ctx context.Context, name string) (bool, error) {
	d, ok := r.Get(name)
	if !ok {
		return false, &ParamError{Param: "metric", Reason: fmt.Sprintf("unknown metric %q", name)}
	}
	if d.Kind != Custom {
		return false, nil
	}
	sh, err := r.checkStore(ctx, d, nil)
	if err != nil {
		return false, err
	}
	return !sh.series, nil
}
