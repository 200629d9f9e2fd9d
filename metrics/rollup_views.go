package metrics

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	convsql "github.com/converge-dev/converge/sql"
	"github.com/converge-dev/converge/warehouse"
)

// A view rollup keeps the rows of one of the schema's views computed as its
// facts land, so the custom metrics that read the view answer from the kept
// rows through a twin view of the same columns. The attribution view shares
// each order's revenue among the customer's touchpoints in the lookback
// before it, under six models: its rollup (rollup_attribution, sql/schema/0096)
// holds every model's shares at both levels per 30-minute UTC slot of the
// order, computed once when the order or its touchpoints land, and its twin
// (attribution_rollup, 0097) takes the same parameters. A query is answered
// from it only while the rollup is ready and was built for the query's
// lookback, half-life and margin, and the range and buckets start on slot
// boundaries. The purchases view (0098) is each customer's orders per
// 15-minute slot, whatever the query: its rollup (rollup_purchases, made in
// 0099, ordered by customer since 0102) holds the same rows, so any query
// reads the twin (purchases_rollup, 0100) while the rollup is ready.
// Otherwise a metric reads the view over raw rows,
// and Explain says why.
type viewRollup struct {
	view, rolled, table string
	call                bool     // the view takes parameters: it is called, view(...)
	build               string   // sql/rollups query: one range's rows
	tombstones          string   // sql/rollups query: the deleted rows of slots rewritten in place
	slots               string   // sql/rollups query: the slots the new parts' facts can change
	slot                int      // minutes of a slot
	fact                string   // partitioned like the rollup (month of the order)
	lookback            string   // partitioned by month; a partition feeds the months within lookback after it ("": none)
	tables              []string // every table its rows depend on
	margin              bool     // its rows depend on the default margin
	// anyQuery: the twin has the view's rows whatever the query's range and
	// zone (otherwise only for ranges and zones on slot boundaries).
	anyQuery bool
	// layout names the migration that last made the table: a new one (a table
	// dropped and made again) rebuilds the rollup.
	layout string
	// next is the sql/rollups query that gives the rows of some customers a
	// newer version where their next_at (the customer's next row) changed:
	// run after slots are rewritten or months replaced ("": the rows do not
	// point at other rows).
	next string
	// fixed are the parameters that change the view's rows, with the value the
	// rollup is built for when no metric reading the view declares a default.
	fixed map[string]string
	// people: the rows are per person, kept by folding new touchpoints in
	// (rollup_people.go), not by month of a fact; upkeep are the sql/rollups
	// queries that keep them, part of what the rollup is built for.
	people bool
	upkeep []string
}

var viewRollups = []*viewRollup{{
	view: "attribution", rolled: "attribution_rollup", table: "rollup_attribution", call: true,
	build: "attribution_build", tombstones: "attribution_tombstones", slots: "attribution_slots", slot: slotMinutes,
	fact: "orders", lookback: "touchpoints", margin: true,
	tables: []string{"identities", "orders", "touchpoints"},
	fixed:  map[string]string{"lookback_days": "30", "half_life_days": "7"},
}, {
	view: "purchases", rolled: "purchases_rollup", table: "rollup_purchases",
	build: "purchases_build", tombstones: "purchases_tombstones", slots: "purchases_slots", slot: 15,
	fact: "orders", anyQuery: true, layout: "0104", next: "purchases_next",
	tables: []string{"identities", "orders"},
}, {
	view: "touch_people", rolled: "touch_people_rollup", table: "rollup_people", call: true,
	build: "people_build", anyQuery: true, layout: "0108", people: true,
	upkeep: []string{"people_fold_batch", "people_merge", "people_stale", "people_recompute"},
	tables: []string{"identities", "touchpoints"},
}}

// todoKey is the watermark entry listing the partitions an interrupted round
// had left to recompute (see upkeepView).
const todoKey = "~todo"

var viewCallRe = sync.OnceValue(func() map[string]*regexp.Regexp {
	out := map[string]*regexp.Regexp{}
	for _, v := range viewRollups {
		if v.call {
			out[v.view] = regexp.MustCompile(`(?i)\b` + regexp.QuoteMeta(v.view) + `(\s*\()`)
		} else {
			out[v.view] = regexp.MustCompile(`(?i)\b` + regexp.QuoteMeta(v.view) + `\b()`)
		}
	}
	return out
})

// readers are the custom metrics whose SQL calls v's view.
func (r *Registry) readers(v *viewRollup) []*Definition {
	var out []*Definition
	for _, d := range r.List() {
		if d.Kind == Custom && viewCallRe()[v.view].MatchString(d.SQL) {
			out = append(out, d)
		}
	}
	return out
}

// ViewRollup names a view kept as a rollup table and the metrics reading it.
type ViewRollup struct {
	View, Table string
	Readers     []string
}

// ViewRollups lists the views kept as rollups, each with the custom metrics
// of r whose SQL reads it (and so are answered from the rollup).
func (r *Registry) ViewRollups() []ViewRollup {
	out := make([]ViewRollup, 0, len(viewRollups))
	for _, v := range viewRollups {
		vr := ViewRollup{View: v.view, Table: v.table}
		for _, d := range r.readers(v) {
			vr.Readers = append(vr.Readers, d.Name)
		}
		out = append(out, vr)
	}
	return out
}

// viewSpec is what v is built for now: the fixed parameters' values (the
// first reader's defaults), the margin, and the hash of both with the build.
type viewSpec struct {
	args   map[string]string
	margin float64
	hash   string
}

func (r *Registry) viewSpecOf(v *viewRollup) viewSpec {
	s := viewSpec{args: maps.Clone(v.fixed)}
	if v.margin {
		s.margin = r.opts.Defaults.Margin
		if s.margin == 0 {
			s.margin = DefaultMargin
		}
	}
	if s.args == nil {
		s.args = map[string]string{}
	}
	readers := r.readers(v)
	for name := range s.args {
		for _, d := range readers {
			if i := slices.IndexFunc(d.Params, func(x Param) bool { return x.Name == name }); i >= 0 {
				s.args[name] = d.Params[i].Default
				break
			}
		}
	}
	h := sha256.New()
	tombstones := ""
	if v.tombstones != "" {
		tombstones = convsql.RollupQuery(v.tombstones)
	}
	fmt.Fprintf(h, "view %s\x00%s\x00%s\x00%s\x00margin %v\x00", rollupFormat, v.view, convsql.RollupQuery(v.build), tombstones, s.margin)
	if v.layout != "" {
		fmt.Fprintf(h, "layout %s\x00", v.layout)
	}
	for _, q := range v.upkeep {
		fmt.Fprintf(h, "%s\x00", convsql.RollupQuery(q))
	}
	for _, k := range sortedKeys(s.args) {
		fmt.Fprintf(h, "%s=%s\x00", k, s.args[k])
	}
	s.hash = hex.EncodeToString(h.Sum(nil))[:16]
	return s
}

// viewRollupsInUse are the view rollups some defined metric reads.
func (r *Registry) viewRollupsInUse() []*viewRollup {
	var out []*viewRollup
	for _, v := range viewRollups {
		if len(r.readers(v)) > 0 {
			out = append(out, v)
		}
	}
	return out
}

// upkeepView brings view rollup v up to date (see upkeepOne). Before it
// recomputes anything it writes the snapshot it works towards as the
// watermark and the partitions still to do under todoKey, and takes each
// chunk off that list once its partitions are replaced: a round that dies
// leaves a rollup exact for what it holds, and the next round resumes with
// the partitions left (and whatever landed since the snapshot).
func (r *Registry) upkeepView(ctx context.Context, v *viewRollup, old *rollupRecord, blocks warehouse.PartBlocks, asOf time.Time) (int, bool, error) {
	if v.people {
		return r.upkeepPeople(ctx, v, old, blocks, asOf)
	}
	s := r.viewSpecOf(v)
	x := &rollupRecord{name: v.table, metric: v.view, spec: s.hash, status: RollupReady, marks: warehouse.PartBlocks{}}
	built := old == nil || old.spec != s.hash
	todo := map[string]bool{}
	if built {
		if old != nil {
			x.generation = old.generation
		}
		x.status = RollupBuilding
		// A rebuild replaces every partition the rollup holds, too.
		own, err := r.opts.Store.PartBlocks(ctx, []string{v.table})
		if err != nil {
			return 0, built, r.failRollup(ctx, x, err)
		}
		for k := range own[v.table] {
			todo[warehouse.PartitionID(k)] = true
		}
	} else {
		x.generation, x.marks, x.status, x.asOf = old.generation, cloneMarks(old.marks), old.status, old.asOf
		for id := range x.marks[todoKey] {
			todo[id] = true
		}
	}
	if !built && len(todo) == 0 {
		if n, done, err := r.upkeepSlots(ctx, v, s, x, blocks, asOf); done || err != nil {
			return n, false, err
		}
	}
	for _, id := range v.dirty(x.marks, blocks, s) {
		todo[id] = true
	}
	delete(todo, warehouse.MutationsKey)
	if len(todo) == 0 {
		if x.status != RollupReady {
			x.status, x.err, x.asOf = RollupReady, "", asOf
			return 0, built, r.putState(ctx, x)
		}
		r.noteAsOf(v.table, asOf)
		return 0, built, nil
	}
	ids := sortedKeys(todo)
	sort.Strings(ids)
	// When every month of the fact is recomputed, no row outside them can point into them.
	every := true
	for k := range blocks[v.fact] {
		if id := warehouse.PartitionID(k); id != warehouse.MutationsKey && !todo[id] {
			every = false
			break
		}
	}
	x.marks = warehouse.PartBlocks{todoKey: {}}
	x.fold(v.tables, blocks)
	for _, id := range ids {
		x.marks[todoKey][id] = 1
	}
	if err := r.putState(ctx, x); err != nil {
		return 0, built, err
	}
	done := 0
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), buildChunk)]
		ids = ids[len(chunk):]
		if err := r.recomputeView(ctx, v, s, chunk, !every); err != nil {
			return done, built, r.failRollup(ctx, x, err)
		}
		done += len(chunk)
		if r.rollups.fault != nil {
			if err := r.rollups.fault("replaced " + v.table); err != nil {
				return done, built, err
			}
		}
		for _, id := range chunk {
			delete(x.marks[todoKey], id)
		}
		x.generation++
		if len(ids) > 0 {
			if err := r.putState(ctx, x); err != nil {
				return done, built, err
			}
		}
	}
	delete(x.marks, todoKey)
	x.status, x.err, x.asOf = RollupReady, "", asOf
	if err := r.putState(ctx, x); err != nil {
		return done, built, err
	}
	r.noteAsOf(v.table, asOf)
	return done, built, nil
}

// dirty are the rollup partitions (month ids) that must be recomputed to
// fold in blocks: the fact's partitions that changed; for a lookback table's
// partition that changed, every month whose orders its touches can reach;
// every partition when a table was mutated, was never folded in, or when
// identities changed (a merge moves any customer's history).
func (v *viewRollup) dirty(marks, blocks warehouse.PartBlocks, s viewSpec) []string {
	months := map[string]bool{}
	for _, t := range []warehouse.PartBlocks{blocks, marks} {
		for k := range t[v.fact] {
			months[warehouse.PartitionID(k)] = true
		}
	}
	delete(months, warehouse.MutationsKey)
	set := map[string]bool{}
	changed := func(t string) []string {
		var out []string
		for k, b := range blocks[t] {
			if m, ok := marks[t][k]; !ok || m != b {
				out = append(out, warehouse.PartitionID(k))
			}
		}
		for k := range marks[t] {
			if _, ok := blocks[t][k]; !ok {
				out = append(out, warehouse.PartitionID(k))
			}
		}
		return out
	}
	for _, t := range v.tables {
		_, seen := marks[t]
		if !seen || marks[t][warehouse.MutationsKey] != blocks[t][warehouse.MutationsKey] ||
			t != v.fact && t != v.lookback && !maps.Equal(marks[t], blocks[t]) {
			return sortedKeys(months)
		}
	}
	for _, id := range changed(v.fact) {
		set[id] = true
	}
	days, _ := strconv.Atoi(s.args["lookback_days"])
	for _, id := range changed(v.lookback) {
		start, err := time.Parse("200601", id)
		if err != nil {
			return sortedKeys(months) // not a month: anything may depend on it
		}
		last := start.AddDate(0, 1, days).Add(-time.Millisecond).Format("200601")
		for m := id; m <= last; m = nextMonth(m) {
			if months[m] {
				set[m] = true
			}
		}
	}
	delete(set, warehouse.MutationsKey)
	return sortedKeys(set)
}

// viewMonths is how many consecutive months one statement of a view
// rollup's build computes: each statement reads the identities anew, and a
// few months' order paths fit in memory at once.
const viewMonths = 3

// recomputeView computes v's partitions ids anew, up to viewMonths per
// statement, into a staging table whose partitions then replace the rollup's;
// with others, rows outside them may point at rows in them, and the
// customers the partitions had or have are given their next rows anew.
func (r *Registry) recomputeView(ctx context.Context, v *viewRollup, s viewSpec, ids []string, others bool) error {
	st := r.opts.Store
	stage := fmt.Sprintf("%s_stage_%d", v.table, time.Now().UnixNano())
	if err := st.CreateStagingTable(ctx, stage, v.table); err != nil {
		return err
	}
	defer func() { _ = st.DropStagingTable(context.WithoutCancel(ctx), stage) }()
	if r.rollups.fault != nil {
		if err := r.rollups.fault("recompute"); err != nil {
			return err
		}
	}
	q := "INSERT INTO `" + stage + "`\n" + convsql.RollupQuery(v.build)
	rv := strconv.FormatInt(time.Now().UnixNano(), 10)
	for _, run := range monthRuns(ids) {
		for from := run[0]; from <= run[1]; {
			to := from
			for i := 1; i < viewMonths && nextMonth(to) <= run[1]; i++ {
				to = nextMonth(to)
			}
			args := clickhouse.Parameters{"rb_from": monthStart(from), "rb_to": monthStart(nextMonth(to)), "slots": "[]", "rv": rv,
				"default_margin": strconv.FormatFloat(s.margin, 'f', -1, 64)}
			maps.Copy(args, s.args)
			if err := st.Conn.Exec(clickhouse.Context(ctx, clickhouse.WithParameters(args)), q); err != nil {
				return fmt.Errorf("recompute %s…%s: %s", from, to, chMessage(err))
			}
			from = nextMonth(to)
		}
	}
	if err := st.CompactStaging(ctx, stage); err != nil {
		return err
	}
	customers := map[string]bool{}
	if others && v.next != "" {
		for _, t := range []string{stage, v.table} {
			if err := collect(ctx, st, convsql.RollupQuery("partition_customers"), customers, clickhouse.Named("table", t), clickhouse.Named("ids", ids)); err != nil {
				return fmt.Errorf("customers of %s: %s", t, chMessage(err))
			}
		}
	}
	if err := st.ReplacePartitions(ctx, stage, v.table, ids); err != nil {
		return err
	}
	return r.nextRows(ctx, v, customers)
}

// nextRows gives the rows of customers whose next row changed a newer
// version (v.next), keyChunk customers per statement.
func (r *Registry) nextRows(ctx context.Context, v *viewRollup, set map[string]bool) error {
	if v.next == "" || len(set) == 0 {
		return nil
	}
	customers := sortedKeys(set)
	for len(customers) > 0 {
		chunk := customers[:min(len(customers), keyChunk)]
		customers = customers[len(chunk):]
		args := clickhouse.Parameters{"customers": warehouse.StringArray(chunk), "rv": strconv.FormatInt(time.Now().UnixNano(), 10)}
		if err := r.opts.Store.Conn.Exec(clickhouse.Context(ctx, clickhouse.WithParameters(args)), convsql.RollupQuery(v.next)); err != nil {
			return fmt.Errorf("next rows of %d customers: %s", len(chunk), chMessage(err))
		}
	}
	return nil
}

// maxSlots bounds the slots one round rewrites in place (about two months'
// worth); a change that reaches more is folded in by recomputing its months.
func (v *viewRollup) maxSlots() int { return 2 * 31 * 24 * 60 / v.slot }

// upkeepSlots folds new facts into v by rewriting only the 30-minute slots
// they can change: the slots of the orders in the parts written since the
// watermark, of the orders the new touchpoints' customers placed within the
// lookback after them, and of every order of the customers an identity
// change moved facts from or to (rollup_identity.go). A slot's rows are computed whole from raw rows,
// so a round that dies is simply done again. It declines (done false) when
// the change is not only new rows (a mutation, a dropped partition, an
// identity change it cannot follow) or reaches more than maxSlots slots: the month path then
// folds it in. Its slots are counted in the upkeep's Slots, not as partitions.
func (r *Registry) upkeepSlots(ctx context.Context, v *viewRollup, s viewSpec, x *rollupRecord, blocks warehouse.PartBlocks, asOf time.Time) (int, bool, error) {
	grown := false
	var moved []string // canonical customers an identity change moved facts from or to
	for _, t := range v.tables {
		m, seen := x.marks[t]
		if !seen || m[warehouse.MutationsKey] != blocks[t][warehouse.MutationsKey] {
			return 0, false, nil
		}
		if t == "identities" && !maps.Equal(m, blocks[t]) {
			d, err := r.identityDelta(ctx, m, blocks[t], true)
			if err != nil {
				return 0, true, r.failRollup(ctx, x, err)
			}
			if d == nil {
				return 0, false, nil
			}
			moved = d.canonicals
		} else if t != v.fact && t != v.lookback && !maps.Equal(m, blocks[t]) {
			return 0, false, nil
		}
		for k := range m {
			if _, ok := blocks[t][k]; !ok {
				return 0, false, nil
			}
		}
		grown = grown || !maps.Equal(m, blocks[t])
	}
	if !grown {
		return 0, false, nil // nothing new: the month path has nothing to do either
	}
	st := r.opts.Store
	// A re-sent order may have moved to another slot: the slot it left is found
	// through its older version, which only parts from before the watermark
	// hold (unless a merge spanned it: then the months are recomputed).
	orderParts, pure, err := st.PartsSince(ctx, v.fact, x.marks[v.fact])
	if err != nil {
		return 0, true, r.failRollup(ctx, x, err)
	}
	if !pure {
		return 0, false, nil
	}
	// A re-sent touchpoint may have moved to another customer: the slots of the
	// one it left are found through its older version, which only parts from
	// before the watermark hold (unless a merge spanned it: then the months).
	var touchParts []string
	if v.lookback != "" {
		var pure bool
		touchParts, pure, err = st.PartsSince(ctx, v.lookback, x.marks[v.lookback])
		if err != nil {
			return 0, true, r.failRollup(ctx, x, err)
		}
		if !pure {
			return 0, false, nil
		}
	}
	slots, err := r.affectedSlots(ctx, v, s, orderParts, touchParts, moved)
	if err != nil {
		return 0, true, r.failRollup(ctx, x, err)
	}
	if len(slots) > v.maxSlots() {
		return 0, false, nil
	}
	if len(slots) > 0 {
		if err := r.rewriteSlots(ctx, v, s, slots); err != nil {
			return 0, true, r.failRollup(ctx, x, err)
		}
		if r.rollups.fault != nil {
			if err := r.rollups.fault("slots " + v.table); err != nil {
				return 0, true, err
			}
		}
		x.generation++
	}
	x.fold(v.tables, blocks)
	x.status, x.err, x.asOf = RollupReady, "", asOf
	if err := r.putState(ctx, x); err != nil {
		return 0, true, err
	}
	r.rollups.mu.Lock()
	r.rollups.asOf[v.table] = asOf
	r.rollups.slots += len(slots)
	r.rollups.mu.Unlock()
	return 0, true, nil
}

// affectedSlots are the slots (sorted) whose attribution the rows of the
// given order and touchpoint parts can change, and, when an identity change
// moved facts between the canonical customers moved, every slot holding an
// order of theirs (their paths may gain or lose touches at any time).
func (r *Registry) affectedSlots(ctx context.Context, v *viewRollup, s viewSpec, orderParts, touchParts, moved []string) ([]time.Time, error) {
	set := map[time.Time]bool{}
	read := func(q string, args ...any) error {
		rows, err := r.opts.Store.Conn.Query(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("slots changed: %s", chMessage(err))
		}
		defer rows.Close()
		for rows.Next() {
			var t time.Time
			if err := rows.Scan(&t); err != nil {
				return err
			}
			set[t.UTC()] = true
		}
		return rows.Err()
	}
	args := []any{clickhouse.Named("order_parts", orderParts)}
	if v.lookback != "" {
		args = append(args, clickhouse.Named("touch_parts", touchParts), clickhouse.Named("lookback_days", s.args["lookback_days"]))
	}
	if err := read(convsql.RollupQuery(v.slots), args...); err != nil {
		return nil, err
	}
	for i := 0; i < len(moved); i += identityChunk {
		if err := read(convsql.RollupQuery("customer_slots"), clickhouse.Named("slot_minutes", v.slot),
			clickhouse.Named("customers", moved[i:min(len(moved), i+identityChunk)])); err != nil {
			return nil, err
		}
		if len(set) > v.maxSlots() {
			break // the months are recomputed instead
		}
	}
	out := make([]time.Time, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out, nil
}

// rewriteSlots writes slots' rows anew from raw rows (a newer version of
// each), then a deleted row for each dim a slot no longer has.
func (r *Registry) rewriteSlots(ctx context.Context, v *viewRollup, s viewSpec, slots []time.Time) error {
	list := make([]string, len(slots))
	for i, t := range slots {
		list[i] = t.Format(time.DateTime)
	}
	args := clickhouse.Parameters{"rb_from": slots[0].Format("2006-01-02 15:04:05.000"),
		"rb_to": slots[len(slots)-1].Add(time.Duration(v.slot) * time.Minute).Format("2006-01-02 15:04:05.000"),
		"slots": warehouse.StringArray(list), "rv": strconv.FormatInt(time.Now().UnixNano(), 10),
		"default_margin": strconv.FormatFloat(s.margin, 'f', -1, 64)}
	maps.Copy(args, s.args)
	// One thread: a few slots' rows are small work, and the other core stays with
	// the events being acknowledged and the metrics' lane.
	c := clickhouse.Context(ctx, clickhouse.WithParameters(args), clickhouse.WithSettings(clickhouse.Settings{"max_threads": 1}))
	if err := r.opts.Store.Conn.Exec(c, "INSERT INTO `"+v.table+"`\n"+convsql.RollupQuery(v.build)); err != nil {
		return fmt.Errorf("rewrite %d slots: %s", len(slots), chMessage(err))
	}
	if err := r.opts.Store.Conn.Exec(c, convsql.RollupQuery(v.tombstones)); err != nil {
		return fmt.Errorf("rewrite %d slots: deleted dims: %s", len(slots), chMessage(err))
	}
	if v.next == "" {
		return nil
	}
	customers := map[string]bool{}
	if err := collect(ctx, r.opts.Store, convsql.RollupQuery("slot_customers"), customers, clickhouse.Named("table", v.table), clickhouse.Named("slots", list)); err != nil {
		return fmt.Errorf("customers of %d slots: %s", len(slots), chMessage(err))
	}
	return r.nextRows(ctx, v, customers)
}

// customPath returns the SQL that answers custom metric d with args: d's own,
// or with the views it calls replaced by their rollups' twins when every one
// covers the query. It also returns the rollups it reads and, when it reads
// none, why.
func (r *Registry) customPath(ctx context.Context, d *Definition, p Params, args clickhouse.Parameters) (string, []*viewRollup, []*rollupRecord, string) {
	var used []*viewRollup
	for _, v := range viewRollups {
		if viewCallRe()[v.view].MatchString(d.SQL) {
			used = append(used, v)
		}
	}
	if len(used) == 0 {
		return d.SQL, nil, nil, "a custom metric's SQL is answered as written (it reads no view kept as a rollup)"
	}
	if rawRows(ctx) {
		return d.SQL, nil, nil, "raw rows were asked for"
	}
	states, err := r.rollupStates(ctx, statesMaxAge)
	if err != nil {
		return d.SQL, nil, nil, err.Error()
	}
	q := d.SQL
	var recs []*rollupRecord
	for _, v := range used {
		if !v.anyQuery {
			if why := slotCovers(p); why != "" {
				return d.SQL, nil, nil, why
			}
		}
		s := r.viewSpecOf(v)
		x := states[v.table]
		switch {
		case x == nil || x.spec != s.hash && x.status != RollupFailed:
			return d.SQL, nil, nil, "its rollup " + v.table + " is not built yet"
		case x.status == RollupFailed:
			return d.SQL, nil, nil, "its rollup " + v.table + " failed: " + x.err
		case x.status != RollupReady:
			return d.SQL, nil, nil, "its rollup " + v.table + " is being built"
		}
		if m, _ := strconv.ParseFloat(args["default_margin"], 64); v.margin && m != s.margin {
			return d.SQL, nil, nil, fmt.Sprintf("the query's margin %s is not the %s its rollup %s was built with", args["default_margin"], strconv.FormatFloat(s.margin, 'g', -1, 64), v.table)
		}
		for _, name := range sortedKeys(s.args) {
			if got, ok := args[name]; ok && !sameNumber(got, s.args[name]) {
				return d.SQL, nil, nil, fmt.Sprintf("%s is %s; its rollup %s is kept for %s", name, got, v.table, s.args[name])
			}
		}
		q = viewCallRe()[v.view].ReplaceAllString(q, v.rolled+"$1")
		recs = append(recs, x)
	}
	return q, used, recs, ""
}

// sameNumber reports whether two parameter texts are the same number (or text).
func sameNumber(a, b string) bool {
	x, err1 := strconv.ParseFloat(a, 64)
	y, err2 := strconv.ParseFloat(b, 64)
	if err1 != nil || err2 != nil {
		return a == b
	}
	return x == y
}
