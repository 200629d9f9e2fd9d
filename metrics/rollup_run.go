package metrics

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/converge-dev/converge/warehouse"
)

// UpkeepStats is what one round of rollup upkeep did.
type UpkeepStats struct {
	Rollups    int           // rollups checked
	Partitions int           // partitions recomputed (or whose slots were rewritten)
	Slots      int           // slots of view rollups rewritten in place
	Built      []string      // rollups (re)created in this round
	Failed     []string      // rollups whose upkeep failed (their state says why)
	Took       time.Duration //
}

// UpkeepRollups brings every rollup up to date with its facts: a rollup
// whose definition changed (or that does not exist) is built anew, and each
// fact partition that received rows, lost them or was merged away since the
// rollup last folded it in is recomputed from raw rows and replaces the
// rollup's partition (atomically, per partition). A rollup's watermark
// moves only after its partitions are replaced, so an upkeep that dies
// halfway leaves rollups that are exact for the facts they fold in, behind,
// and caught up by the next round, never counting a fact twice.
func (r *Registry) UpkeepRollups(ctx context.Context) (UpkeepStats, error) {
	start := time.Now()
	st, err := r.upkeepLane(ctx, metricLane)
	if ctx.Err() == nil {
		vs, verr := r.upkeepLane(ctx, viewLane)
		st.Rollups, st.Partitions, st.Slots = st.Rollups+vs.Rollups, st.Partitions+vs.Partitions, vs.Slots
		st.Built, st.Failed = append(st.Built, vs.Built...), append(st.Failed, vs.Failed...)
		err = errors.Join(err, verr)
	}
	st.Took = time.Since(start)
	return st, err
}

// Upkeep runs in two lanes, each a loop of its own in RunRollups: the
// metrics' rollups (a partition or a few keys recomputed in milliseconds to
// seconds) and the views' (a month of order paths), so a view's recompute
// never holds back the metrics' freshness.
const (
	metricLane = iota
	viewLane
	lanes
)

// upkeepLane is one round of UpkeepRollups over the rollups of one lane.
func (r *Registry) upkeepLane(ctx context.Context, lane int) (UpkeepStats, error) {
	r.rollups.upkeep[lane].Lock()
	defer r.rollups.upkeep[lane].Unlock()
	start := time.Now()
	var st UpkeepStats
	if r.opts.Store == nil {
		return st, errors.New("rollups: no store")
	}
	var specs []*rollupSpec
	var views []*viewRollup
	if lane == metricLane {
		specs = r.rollupSpecs(ctx)
	} else {
		views = r.viewRollupsInUse()
	}
	if len(specs) == 0 && len(views) == 0 {
		return st, nil
	}
	states, err := r.rollupStates(ctx, 0)
	if err != nil {
		return st, err
	}
	r.dropStaleStages(ctx)
	set := map[string]bool{}
	for _, sp := range specs {
		for _, t := range sp.tables {
			set[t] = true
		}
	}
	for _, v := range views {
		for _, t := range v.tables {
			set[t] = true
		}
	}
	asOf := time.Now()
	blocks, err := r.opts.Store.PartBlocks(ctx, sortedKeys(set))
	if err != nil {
		return st, fmt.Errorf("rollups: %w", err)
	}
	var errs []error
	tally := func(table string, n int, built bool, err error) {
		st.Rollups++
		st.Partitions += n
		if built {
			st.Built = append(st.Built, table)
		}
		if err != nil {
			st.Failed = append(st.Failed, table)
			errs = append(errs, err)
		}
	}
	for _, sp := range specs {
		if ctx.Err() != nil {
			break
		}
		upkeep := r.upkeepOne
		if sp.key != "" {
			upkeep = r.upkeepKeyed
		}
		n, built, err := upkeep(ctx, sp, states[sp.table], blocks, asOf)
		tally(sp.table, n, built, err)
	}
	r.rollups.mu.Lock()
	slotsBefore := r.rollups.slots
	r.rollups.mu.Unlock()
	for _, v := range views {
		if ctx.Err() != nil {
			break
		}
		n, built, err := r.upkeepView(ctx, v, states[v.table], blocks, asOf)
		tally(v.table, n, built, err)
	}
	r.rollups.mu.Lock()
	st.Slots = r.rollups.slots - slotsBefore
	r.rollups.mu.Unlock()
	st.Took = time.Since(start)
	return st, errors.Join(errs...)
}

// staleStage is the age after which a rollup's staging table is a leftover
// of an upkeep that died (a round's own live for seconds).
const staleStage = time.Hour

// dropStaleStages drops the staging tables upkeep rounds that died left.
func (r *Registry) dropStaleStages(ctx context.Context) {
	stages, err := r.opts.Store.StagingTables(ctx, "rollup_")
	if err != nil {
		r.log.Warn("rollup: list staging tables", "err", err)
		return
	}
	for _, s := range stages {
		if strings.Contains(s.Name, "_stage_") && s.Age > staleStage {
			if err := r.opts.Store.DropStagingTable(ctx, s.Name); err != nil {
				r.log.Warn("rollup: drop a stale staging table", "table", s.Name, "err", err)
			}
		}
	}
}

// KickRollups asks RunRollups for an upkeep round now (after a load).
func (r *Registry) KickRollups() {
	for _, k := range r.rollups.kick {
		select {
		case k <- struct{}{}:
		default:
		}
	}
}

// RunRollups keeps the rollups up to date until ctx ends: a round of each
// lane every interval, and one as soon as KickRollups is called. changed,
// when set, is called after a round that changed rollups' rows.
func (r *Registry) RunRollups(ctx context.Context, interval time.Duration, changed func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.runLane(ctx, viewLane, interval, changed)
	}()
	r.runLane(ctx, metricLane, interval, changed)
	<-done
}

func (r *Registry) runLane(ctx context.Context, lane int, interval time.Duration, changed func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	last := ""
	kicked := false
	for {
		st, err := r.upkeepLane(ctx, lane)
		switch {
		case err != nil && ctx.Err() == nil:
			if msg := err.Error(); msg != last {
				r.log.Error("rollup upkeep", "err", err)
				last = msg
			}
		case err == nil:
			last = ""
			if len(st.Built) > 0 || st.Took > 5*time.Second {
				r.log.Info("rollups updated", "partitions", st.Partitions, "built", strings.Join(st.Built, ","), "took", st.Took.Round(time.Millisecond))
			}
		}
		// The pages hear of new data once the rollups hold it (a kick is a load or
		// an event batch, which may also change metrics read from raw rows).
		if (kicked || st.Partitions > 0) && changed != nil {
			changed()
		}
		kicked = false
		if lane == viewLane && st.Took > interval {
			// A view's round reads raw rows for seconds: the lane rests as long as it
			// ran, so it takes at most half of a core from the events being
			// acknowledged and from the metrics' lane.
			select {
			case <-ctx.Done():
				return
			case <-time.After(st.Took):
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.rollups.kick[lane]:
			kicked = true
		}
	}
}

// markRebuild writes a state that no spec matches, so the next upkeep round
// builds rollup table anew; its generation moves on from old's.
func (r *Registry) markRebuild(ctx context.Context, table, metric string, old *rollupRecord) error {
	x := &rollupRecord{name: table, metric: metric, spec: "rebuild", status: RollupBuilding, marks: warehouse.PartBlocks{}}
	if old != nil {
		x.generation = old.generation + 1
	}
	return r.putState(ctx, x)
}

// RebuildRollup drops the rollup of metric name (every rollup when name is
// ""), so the next upkeep round builds it anew from raw rows; queries read raw
// rows meanwhile.
func (r *Registry) RebuildRollup(ctx context.Context, name string) ([]string, error) {
	for i := range r.rollups.upkeep {
		r.rollups.upkeep[i].Lock()
		defer r.rollups.upkeep[i].Unlock()
	}
	states, err := r.rollupStates(ctx, 0)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, sp := range r.rollupSpecs(ctx) {
		if name != "" && sp.metric != name {
			continue
		}
		if err := r.markRebuild(ctx, sp.table, sp.metric, states[sp.table]); err != nil {
			return out, err
		}
		out = append(out, sp.metric)
	}
	for _, v := range r.viewRollupsInUse() {
		readers := r.readers(v)
		if name != "" && name != v.view && !slices.ContainsFunc(readers, func(d *Definition) bool { return d.Name == name }) {
			continue
		}
		if err := r.markRebuild(ctx, v.table, v.view, states[v.table]); err != nil {
			return out, err
		}
		for _, d := range readers {
			out = append(out, d.Name)
		}
	}
	if name != "" && len(out) == 0 {
		if d, ok := r.Get(name); !ok {
			return nil, &ParamError{Param: "metric", Reason: fmt.Sprintf("unknown metric %q", name)}
		} else if _, err := r.rollupSpecOf(ctx, d); err != nil {
			return nil, &ParamError{Param: "metric", Reason: fmt.Sprintf("%s has no rollup: %v", name, err)}
		}
	}
	slices.Sort(out)
	out = slices.Compact(out) // a metric reading two views' rollups is named once
	r.KickRollups()
	return out, nil
}
