package metrics

// SetRollupFault makes rollup upkeep call f at its named steps and stop with
// the error f returns (tests of an upkeep that dies halfway).
func (r *Registry) SetRollupFault(f func(step string) error) { r.rollups.fault = f }
