package metrics

import (
	"context"
	"fmt"
)

// SetRollupFault makes rollup upkeep call f at its named steps and stop with
// the error f returns (tests of an upkeep that dies halfway).
func (r *Registry) SetRollupFault(f func(step string) error) { r.rollups.fault = f }

// PlannedBoth returns simple metric name's raw-row statement for p in two
// steps (planDistinct; ok false when its measure is not only distinct counts
// of one key) and in one, with their parameters.
func (r *Registry) PlannedBoth(ctx context.Context, name string, p Params) (split, grouped string, args map[string]string, ok bool, err error) {
	d, found := r.Get(name)
	if !found {
		return "", "", nil, false, fmt.Errorf("no metric %s", name)
	}
	sh, err := r.checkStore(ctx, d, nil)
	if err != nil {
		return "", "", nil, false, err
	}
	src := rawSource(d, sh)
	split, a := planOverSplit(d, src, p, true)
	grouped, _ = planOverSplit(d, src, p, false)
	return split, grouped, a, split != grouped, nil
}
