package metrics

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	convsql "github.com/converge-dev/converge/sql"
	"github.com/converge-dev/converge/warehouse"
)

// The people rollup keeps every person's first touchpoint and first signup
// (rollup_people, sql/schema/0108), so the funnel finds the people first
// touched in a range by reading those months instead of aggregating every
// touchpoint of history (touch_people, 0107; its twin touch_people_rollup,
// 0109). Its rows are per person, not per month of a fact, so it is kept
// differently from the other view rollups:
//   - new touchpoints fold in: a person's earliest touch and signup can only
//     move earlier as touchpoints are added (people_merge);
//   - a re-sent touchpoint that changes a kept first event (another person,
//     channel or kind) and the customers an identity change moves are
//     recomputed from all their touchpoints (people_stale, people_recompute);
//   - a mutation, a partition gone, an identity change it cannot follow, or
//     more than peopleMax people to recompute rebuild it whole.
//
// Every step can be repeated, so a round that dies is done again by the
// next one from the same watermark.

// peopleParts is how many statements a whole build takes, each over the
// people whose id hashes to one part: each holds that share in memory.
const peopleParts = 4

// peopleMax bounds the people one round recomputes from their touchpoints;
// beyond it the rollup is rebuilt whole, which is then about as fast.
const peopleMax = 20_000

// upkeepPeople brings the people rollup v up to date (see upkeepView).
func (r *Registry) upkeepPeople(ctx context.Context, v *viewRollup, old *rollupRecord, blocks warehouse.PartBlocks, asOf time.Time) (int, bool, error) {
	s := r.viewSpecOf(v)
	x := &rollupRecord{name: v.table, metric: v.view, spec: s.hash, status: RollupReady, marks: warehouse.PartBlocks{}}
	built := old == nil || old.spec != s.hash
	full := built
	if old != nil {
		x.generation = old.generation
	}
	if !built {
		x.marks, x.status, x.asOf = cloneMarks(old.marks), old.status, old.asOf
	}
	var parts, people []string
	if !full {
		var err error
		parts, people, full, err = r.peopleChanged(ctx, x.marks, blocks)
		if err != nil {
			return 0, built, r.failRollup(ctx, x, err)
		}
	}
	if !full && len(parts) == 0 && len(people) == 0 {
		if x.status != RollupReady {
			x.status, x.err, x.asOf = RollupReady, "", asOf
			return 0, built, r.putState(ctx, x)
		}
		r.noteAsOf(v.table, asOf)
		return 0, built, nil
	}
	if !full {
		var err error
		if full, err = r.foldPeople(ctx, v, parts, people); err != nil {
			return 0, built, r.failRollup(ctx, x, err)
		}
	}
	if full {
		x.status = RollupBuilding
		x.marks = warehouse.PartBlocks{}
		if err := r.putState(ctx, x); err != nil {
			return 0, built, err
		}
		if err := r.rebuildPeople(ctx, v); err != nil {
			return 0, built, r.failRollup(ctx, x, err)
		}
	}
	if r.rollups.fault != nil {
		if err := r.rollups.fault("replaced " + v.table); err != nil {
			return 1, built, err
		}
	}
	x.fold(v.tables, blocks)
	x.generation++
	x.status, x.err, x.asOf = RollupReady, "", asOf
	if err := r.putState(ctx, x); err != nil {
		return 1, built, err
	}
	r.noteAsOf(v.table, asOf)
	return 1, built, nil
}

// peopleChanged reads what changed since marks: the touchpoint parts to fold
// in, the canonical customers an identity change moved (to recompute), or
// full when the change cannot be followed person by person.
func (r *Registry) peopleChanged(ctx context.Context, marks, blocks warehouse.PartBlocks) (parts, people []string, full bool, err error) {
	for _, t := range []string{"touchpoints", "identities"} {
		m, seen := marks[t]
		if !seen || m[warehouse.MutationsKey] != blocks[t][warehouse.MutationsKey] {
			return nil, nil, true, nil
		}
		for k := range m {
			if _, ok := blocks[t][k]; !ok {
				return nil, nil, true, nil // a partition dropped: its people are anywhere
			}
		}
	}
	if !maps.Equal(marks["identities"], blocks["identities"]) {
		d, err := r.identityDelta(ctx, marks["identities"], blocks["identities"], true)
		if err != nil || d == nil {
			return nil, nil, d == nil, err
		}
		people = d.canonicals
	}
	if !maps.Equal(marks["touchpoints"], blocks["touchpoints"]) {
		if parts, err = r.opts.Store.NewParts(ctx, "touchpoints", marks["touchpoints"]); err != nil {
			return nil, nil, false, err
		}
	}
	return parts, people, len(people) > peopleMax, nil
}

// foldPeople folds the touchpoint parts into the rollup and recomputes from
// all their touchpoints the people given (whom an identity change moved) and
// those whose kept first event the parts re-sent with a change. The parts'
// events are resolved once, into a staging table the steps read; more than
// peopleMax people to recompute leave the rollup as it was and return full:
// a rebuild is then about as fast.
func (r *Registry) foldPeople(ctx context.Context, v *viewRollup, parts, redo []string) (full bool, err error) {
	st := r.opts.Store
	if len(parts) > 0 {
		batch := fmt.Sprintf("%s_fold_stage_%d", v.table, time.Now().UnixNano())
		if err := st.CreateStagingTable(ctx, batch, "people_fold"); err != nil {
			return false, err
		}
		defer func() { _ = st.DropStagingTable(context.WithoutCancel(ctx), batch) }()
		args := clickhouse.Parameters{"stage": batch, "parts": warehouse.StringArray(parts)}
		if err := st.Conn.Exec(clickhouse.Context(ctx, clickhouse.WithParameters(args)), convsql.RollupQuery("people_fold_batch")); err != nil {
			return false, fmt.Errorf("resolve the events of %d touchpoint parts: %s", len(parts), chMessage(err))
		}
		set := map[string]bool{}
		if err := collect(ctx, st, convsql.RollupQuery("people_stale"), set, clickhouse.Named("batch", batch)); err != nil {
			return false, fmt.Errorf("people whose first event was re-sent: %s", chMessage(err))
		}
		for _, p := range redo {
			set[p] = true
		}
		if len(set) > peopleMax {
			return true, nil
		}
		redo = sortedKeys(set)
		args = clickhouse.Parameters{"batch": batch, "skip": warehouse.StringArray(redo),
			"rv": strconv.FormatInt(time.Now().UnixNano(), 10)}
		if err := st.Conn.Exec(clickhouse.Context(ctx, clickhouse.WithParameters(args)), convsql.RollupQuery("people_merge")); err != nil {
			return false, fmt.Errorf("fold in %d touchpoint parts: %s", len(parts), chMessage(err))
		}
	}
	for len(redo) > 0 {
		chunk := redo[:min(len(redo), identityChunk)]
		redo = redo[len(chunk):]
		args := clickhouse.Parameters{"people": warehouse.StringArray(chunk), "rv": strconv.FormatInt(time.Now().UnixNano(), 10)}
		if err := st.Conn.Exec(clickhouse.Context(ctx, clickhouse.WithParameters(args)), convsql.RollupQuery("people_recompute")); err != nil {
			return false, fmt.Errorf("recompute %d people: %s", len(chunk), chMessage(err))
		}
	}
	return false, nil
}

// rebuildPeople computes every person's row into a staging table, in
// peopleParts statements, and replaces the rollup's partitions with its own
// (a month no person starts in any more is emptied).
func (r *Registry) rebuildPeople(ctx context.Context, v *viewRollup) error {
	st := r.opts.Store
	stage := fmt.Sprintf("%s_stage_%d", v.table, time.Now().UnixNano())
	if err := st.CreateStagingTable(ctx, stage, v.table); err != nil {
		return err
	}
	defer func() { _ = st.DropStagingTable(context.WithoutCancel(ctx), stage) }()
	q := "INSERT INTO `" + stage + "`\n" + convsql.RollupQuery(v.build)
	rv := strconv.FormatInt(time.Now().UnixNano(), 10)
	for part := range peopleParts {
		args := clickhouse.Parameters{"parts": strconv.Itoa(peopleParts), "part": strconv.Itoa(part), "rv": rv}
		if err := st.Conn.Exec(clickhouse.Context(ctx, clickhouse.WithParameters(args)), q); err != nil {
			return fmt.Errorf("build people %d of %d: %s", part+1, peopleParts, chMessage(err))
		}
	}
	if err := st.CompactStaging(ctx, stage); err != nil {
		return err
	}
	ids, err := st.StagedPartitions(ctx, stage)
	if err != nil {
		return err
	}
	kept, err := st.StagedPartitions(ctx, v.table)
	if err != nil {
		return err
	}
	ids = append(ids, kept...)
	slices.Sort(ids)
	return st.ReplacePartitions(ctx, stage, v.table, slices.Compact(ids))
}
