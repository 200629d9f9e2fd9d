package metrics

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	convsql "github.com/converge-dev/converge/sql"
)

type rawKey struct{}

// RawRows returns a context under which every metric is computed from raw
// rows, never from a rollup (the exactness tests, and benchmarks comparing
// the two paths).
func RawRows(ctx context.Context) context.Context { return context.WithValue(ctx, rawKey{}, true) }

func rawRows(ctx context.Context) bool { v, _ := ctx.Value(rawKey{}).(bool); return v }

// rollupPath returns the ready rollup that answers d with p, or why d is
// answered from raw rows.
func (r *Registry) rollupPath(ctx context.Context, d *Definition, p Params) (*rollupSpec, *rollupRecord, string) {
	if d.Kind != Simple {
		return nil, nil, "not a simple metric"
	}
	if rawRows(ctx) {
		return nil, nil, "raw rows were asked for"
	}
	sp, err := r.rollupSpecOf(ctx, d)
	if err != nil {
		return nil, nil, err.Error()
	}
	states, err := r.rollupStates(ctx, statesMaxAge)
	if err != nil {
		return nil, nil, err.Error()
	}
	x := states[sp.table]
	switch {
	case x == nil || x.spec != sp.hash && x.status != RollupFailed:
		return nil, nil, "its rollup " + sp.table + " is not built yet"
	case x.status == RollupFailed:
		return nil, nil, "its rollup " + sp.table + " failed: " + x.err
	case x.status != RollupReady:
		return nil, nil, "its rollup " + sp.table + " is being built"
	}
	if why := rollupCovers(sp, p); why != "" {
		return nil, nil, why
	}
	return sp, x, ""
}

// rollupCovers says why sp cannot answer p, or "" when it can: the range
// must start and end on slot boundaries, every bucket must start on one
// (offsets of whole or half hours), and a model built with the default
// margin answers only queries with that margin.
func rollupCovers(sp *rollupSpec, p Params) string {
	if sp.baked && p.margin() != sp.margin {
		return fmt.Sprintf("the query's margin %s is not the %s its rollup was built with", strconv.FormatFloat(p.margin(), 'g', -1, 64), strconv.FormatFloat(sp.margin, 'g', -1, 64))
	}
	if sp.slotDate || sp.key != "" {
		return "" // days, or the model's own rows: any range
	}
	return slotCovers(p)
}

// slotCovers says why a slot rollup cannot answer a query over p's range and
// buckets, or "" when it can (see rollupCovers).
func slotCovers(p Params) string {
	slot := slotMinutes * time.Minute
	for _, t := range []time.Time{p.From, p.To} {
		if !t.UTC().Truncate(slot).Equal(t) {
			return fmt.Sprintf("the range bound %s is not on a %d-minute boundary", t.UTC().Format(time.RFC3339Nano), slotMinutes)
		}
	}
	for _, b := range buckets(p) {
		if _, off := b.Zone(); off%(slotMinutes*60) != 0 {
			return fmt.Sprintf("the time zone %s is %+d minutes from UTC on %s, not a whole or half hour", p.TZ, off/60, b.Format(time.DateOnly))
		}
	}
	return ""
}

// rollupSource is what planOver reads to answer d from sp's rollup.
func rollupSource(sp *rollupSpec) planSource {
	return planSource{from: "`" + sp.table + "` AS m", time: "m.slot", timeIsDate: sp.slotDate, measure: sp.measure,
		rows: "countMerge(m._rows)", dim: func(name string) string { return "m.d_" + name }}
}

// leaves are the metrics that compute d's values from the store: d itself,
// or the inputs of a derived metric, recursively.
func (r *Registry) leaves(d *Definition) []*Definition {
	if d.Kind != Derived && d.Kind != Score {
		return []*Definition{d}
	}
	var out []*Definition
	for _, in := range d.Inputs() {
		if dep, ok := r.Get(in); ok {
			for _, l := range r.leaves(dep) {
				if !slices.Contains(out, l) {
					out = append(out, l)
				}
			}
		}
	}
	return out
}

// freshFor identifies the data d's answer to p is computed from: the
// generation of each rollup it reads (raised only when the rollup's rows
// change, so a merge of the facts invalidates nothing), and the raw tables'
// data version for the inputs that read raw rows. It also returns the time
// the data is current as of.
func (r *Registry) freshFor(ctx context.Context, d *Definition, p Params) (string, time.Time, error) {
	var keys, raw []string
	var at time.Time
	for _, l := range r.leaves(d) {
		if l.Kind == Custom {
			if q, used, recs, _ := r.customPath(ctx, l, p, customArgs(l, p)); len(used) > 0 {
				for i, v := range used {
					keys = append(keys, v.table+"@"+strconv.FormatUint(recs[i].generation, 10))
					at = r.leastAsOf(v.table, recs[i].asOf, at)
				}
				for _, t := range tablesOf(q) {
					if !slices.Contains(raw, t) && !isViewRollup(t) {
						raw = append(raw, t)
					}
				}
				continue
			}
		}
		sp, x, _ := r.rollupPath(ctx, l, p)
		if sp == nil {
			for _, t := range l.Tables() {
				if !slices.Contains(raw, t) {
					raw = append(raw, t)
				}
			}
			continue
		}
		keys = append(keys, sp.table+"@"+strconv.FormatUint(x.generation, 10))
		at = r.leastAsOf(sp.table, x.asOf, at)
	}
	if len(raw) > 0 {
		slices.Sort(raw)
		f, t, err := r.freshness(ctx, raw)
		if err != nil {
			return "", time.Time{}, err
		}
		keys = append(keys, f)
		if t.After(at) {
			at = t
		}
	}
	return strings.Join(keys, ","), at.UTC(), nil
}

// leastAsOf is the earlier of at (zero: none yet) and the time rollup table
// is current as of (its state's, or this process's last upkeep that found it
// current).
func (r *Registry) leastAsOf(table string, asOf, at time.Time) time.Time {
	r.rollups.mu.Lock()
	if t, ok := r.rollups.asOf[table]; ok && t.After(asOf) {
		asOf = t
	}
	r.rollups.mu.Unlock()
	if at.IsZero() || asOf.Before(at) {
		return asOf // as of the least current of them
	}
	return at
}

// Explain says how a query of metric name with p is answered: from which
// rollup or raw tables, and, when from raw rows, why.
type Explain struct {
	Metric string        `json:"metric"`
	Kind   Kind          `json:"kind"`
	Inputs []ExplainLeaf `json:"inputs"`
}

// ExplainLeaf is the path of one metric that reads the store.
type ExplainLeaf struct {
	Metric string   `json:"metric"`
	Path   string   `json:"path"`             // "rollup" or "raw"
	Tables []string `json:"tables"`           // the rollup table, or the raw tables read
	Reason string   `json:"reason,omitempty"` // why raw rows
	Rollup string   `json:"rollup,omitempty"` // the metric's rollup table, when it has one
	Status string   `json:"status,omitempty"` // of that rollup
}

// Explain says how Query(name, p) would be answered now.
func (r *Registry) Explain(ctx context.Context, name string, p Params) (*Explain, error) {
	d, ok := r.Get(name)
	if !ok {
		return nil, &ParamError{Param: "metric", Reason: fmt.Sprintf("unknown metric %q", name)}
	}
	if p.Margin == 0 {
		p.Margin = r.opts.Defaults.Margin
	}
	out := &Explain{Metric: d.Name, Kind: d.Kind}
	for _, l := range r.leaves(d) {
		e := ExplainLeaf{Metric: l.Name, Path: "raw", Tables: l.Tables()}
		if l.Kind == Custom {
			q, used, recs, why := r.customPath(ctx, l, p, customArgs(l, p))
			e.Reason = why
			for i, v := range used {
				e.Path, e.Tables, e.Reason = "rollup", tablesOf(q), ""
				e.Rollup, e.Status = v.table, recs[i].status
			}
			if len(used) == 0 {
				for _, v := range viewRollups {
					if viewCallRe()[v.view].MatchString(l.SQL) {
						e.Rollup = v.table
						if st, err := r.rollupStates(ctx, statesMaxAge); err == nil && st[v.table] != nil {
							e.Status = st[v.table].status
						}
					}
				}
			}
			out.Inputs = append(out.Inputs, e)
			continue
		}
		sp, x, why := r.rollupPath(ctx, l, p)
		if sp != nil {
			e.Path, e.Tables, e.Rollup, e.Status = "rollup", []string{sp.table}, sp.table, x.status
		} else {
			e.Reason = why
			if l.Kind == Simple {
				if s, err := r.rollupSpecOf(ctx, l); err == nil {
					e.Rollup = s.table
					if st, err := r.rollupStates(ctx, statesMaxAge); err == nil && st[s.table] != nil {
						e.Status = st[s.table].status
					}
				}
			}
		}
		out.Inputs = append(out.Inputs, e)
	}
	return out, nil
}

// RollupStatus is one rollup as `converge rollups status` shows it. Metric
// is the metric it answers, or the view whose rows it keeps.
type RollupStatus struct {
	Table      string    `json:"table"`
	Metric     string    `json:"metric"`
	Status     string    `json:"status"`
	Rows       uint64    `json:"rows"`
	Bytes      uint64    `json:"bytes"`
	Generation uint64    `json:"generation"`
	AsOf       time.Time `json:"as_of"`       // every fact committed before it is folded in
	Lag        float64   `json:"lag_seconds"` // now − AsOf
	Sources    []string  `json:"sources"`
	Serves     []string  `json:"serves,omitempty"` // of a view's rollup: the custom metrics that read the view
	Error      string    `json:"error,omitempty"`
}

// RollupsStatus lists every rollup the definitions call for, and the metrics
// answered from raw rows with the reason.
func (r *Registry) RollupsStatus(ctx context.Context) ([]RollupStatus, []ExplainLeaf, error) {
	states, err := r.rollupStates(ctx, 0)
	if err != nil {
		return nil, nil, err
	}
	var out []RollupStatus
	var raw []ExplainLeaf
	var tables []string
	for _, d := range r.List() {
		if d.Kind != Simple {
			continue
		}
		sp, err := r.rollupSpecOf(ctx, d)
		if err != nil {
			raw = append(raw, ExplainLeaf{Metric: d.Name, Path: "raw", Tables: d.Tables(), Reason: err.Error()})
			continue
		}
		s := RollupStatus{Table: sp.table, Metric: d.Name, Status: "missing", Sources: sp.tables}
		if x := states[sp.table]; x != nil {
			s.Status, s.Generation, s.AsOf, s.Error = x.status, x.generation, x.asOf, x.err
			if x.spec != sp.hash && x.status == RollupReady {
				s.Status = "outdated"
			}
			r.rollups.mu.Lock()
			if t, ok := r.rollups.asOf[sp.table]; ok && t.After(s.AsOf) {
				s.AsOf = t
			}
			r.rollups.mu.Unlock()
			if !s.AsOf.IsZero() {
				s.Lag = time.Since(s.AsOf).Seconds()
			}
		}
		out = append(out, s)
		tables = append(tables, sp.table)
	}
	for _, v := range r.viewRollupsInUse() {
		s := RollupStatus{Table: v.table, Metric: v.view, Status: "missing", Sources: v.tables}
		for _, d := range r.readers(v) {
			s.Serves = append(s.Serves, d.Name)
		}
		if x := states[v.table]; x != nil {
			s.Status, s.Generation, s.AsOf, s.Error = x.status, x.generation, x.asOf, x.err
			if x.spec != r.viewSpecOf(v).hash && x.status == RollupReady {
				s.Status = "outdated"
			}
			s.AsOf = r.leastAsOf(v.table, s.AsOf, time.Time{})
			if !s.AsOf.IsZero() {
				s.Lag = time.Since(s.AsOf).Seconds()
			}
		}
		out = append(out, s)
		tables = append(tables, v.table)
	}
	for _, d := range r.List() {
		if d.Kind != Custom {
			continue
		}
		if !slices.ContainsFunc(viewRollups, func(v *viewRollup) bool { return viewCallRe()[v.view].MatchString(d.SQL) }) {
			raw = append(raw, ExplainLeaf{Metric: d.Name, Path: "raw", Tables: d.Tables(),
				Reason: "a custom metric's SQL is answered as written (it reads no view kept as a rollup)"})
		}
	}
	sizes, err := r.tableSizes(ctx, tables)
	if err != nil {
		return nil, nil, err
	}
	for i := range out {
		out[i].Rows, out[i].Bytes = sizes[out[i].Table][0], sizes[out[i].Table][1]
	}
	return out, raw, nil
}

func (r *Registry) tableSizes(ctx context.Context, tables []string) (map[string][2]uint64, error) {
	out := map[string][2]uint64{}
	rows, err := r.opts.Store.Conn.Query(ctx, convsql.RollupQuery("table_sizes"), clickhouse.Named("tables", tables))
	if err != nil {
		return nil, fmt.Errorf("rollup sizes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var t string
		var n, b uint64
		if err := rows.Scan(&t, &n, &b); err != nil {
			return nil, err
		}
		out[t] = [2]uint64{n, b}
	}
	return out, rows.Err()
}
