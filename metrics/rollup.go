package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	convsql "github.com/converge-dev/converge/sql"
	"github.com/converge-dev/converge/warehouse"
)

// Rollup states (RollupStatus.Status).
const (
	RollupBuilding = "building" // being built; queries read raw rows meanwhile
	RollupReady    = "ready"    // answers the metric's queries it covers
	RollupFailed   = "failed"   // its last build or upkeep failed (Error says why); queries read raw rows
)

// rollupRecord is one row of the rollups table.
type rollupRecord struct {
	name, metric, spec, status, err string
	marks                           warehouse.PartBlocks // source table → partition → block folded in
	generation                      uint64
	asOf, updated                   time.Time
}

// rollups is a registry's view of the store's rollups and the upkeep that
// keeps them.
type rollups struct {
	mu     sync.Mutex
	states map[string]*rollupRecord // table → state
	read   time.Time                // when states were read from the store
	asOf   map[string]time.Time     // table → the last upkeep that found it current (this process)
	specs  map[string]rollupDerived // definition version → spec or why none
	facts  map[string][2]string     // fact table → partition key, sorting key

	slots  int                  // view rollup slots rewritten in place, in this process
	upkeep [lanes]sync.Mutex    // one round of each lane at a time in this process
	kick   [lanes]chan struct{} // wake RunRollups' loops
	// fault, set by tests, fails upkeep at a named step ("replaced": after a
	// rollup's first partitions were replaced, before its state is written;
	// "replaced rollup_attribution": the same in a view's rollup).
	fault func(step string) error
}

type rollupDerived struct {
	spec *rollupSpec
	err  error
}

func newRollups() *rollups {
	return &rollups{states: map[string]*rollupRecord{}, asOf: map[string]time.Time{}, specs: map[string]rollupDerived{},
		facts: map[string][2]string{}, kick: [lanes]chan struct{}{make(chan struct{}, 1), make(chan struct{}, 1)}}
}

// statesMaxAge bounds how old the registry's copy of the rollups' states may
// be when a query consults it (another process, or registry, keeps them).
const statesMaxAge = time.Second

// rollupSpecOf is d's rollup spec, or why d is answered from raw rows.
func (r *Registry) rollupSpecOf(ctx context.Context, d *Definition) (*rollupSpec, error) {
	key := d.Version + "|" + fmt.Sprint(r.opts.Defaults.Margin)
	r.rollups.mu.Lock()
	got, ok := r.rollups.specs[key]
	r.rollups.mu.Unlock()
	if ok {
		return got.spec, got.err
	}
	if d.Kind != Simple {
		return deriveRollup(d, nil, 0, nil)
	}
	sh, err := r.checkStore(ctx, d, nil)
	if err != nil {
		return nil, err
	}
	margin := r.opts.Defaults.Margin
	if margin == 0 {
		margin = DefaultMargin
	}
	var sp *rollupSpec
	switch {
	case d.NoRollup:
		err = rawOnly("its definition says rollup: none")
	case d.RollupKey != "":
		sp, err = deriveKeyed(d, margin, func(t, c string) (bool, error) { return r.hasColumn(ctx, t, c) })
	default:
		sp, err = deriveRollup(d, sh, margin, func(t string) (string, string, error) { return r.factKeys(ctx, t) })
	}
	var nr *notRollable
	if err != nil && !errors.As(err, &nr) {
		return nil, err // the store did not answer: try again next time
	}
	r.rollups.mu.Lock()
	r.rollups.specs[key] = rollupDerived{sp, err}
	r.rollups.mu.Unlock()
	return sp, err
}

// factKeys are the partition and sorting keys of table.
func (r *Registry) factKeys(ctx context.Context, table string) (string, string, error) {
	r.rollups.mu.Lock()
	k, ok := r.rollups.facts[table]
	r.rollups.mu.Unlock()
	if ok {
		return k[0], k[1], nil
	}
	var part, sorting string
	conn := r.opts.Store.Conn
	err := conn.QueryRow(ctx, convsql.RollupQuery("partition_key"), clickhouse.Named("table", table)).Scan(&part)
	if err != nil && !strings.Contains(err.Error(), "no rows") {
		return "", "", fmt.Errorf("rollup: partition key of %s: %w", table, err)
	}
	err = conn.QueryRow(ctx, "SELECT sorting_key FROM system.tables WHERE database = currentDatabase() AND name IN ({t:String}, concat({t:String}, '_local')) AND sorting_key != '' LIMIT 1",
		clickhouse.Named("t", table)).Scan(&sorting)
	if err != nil && !strings.Contains(err.Error(), "no rows") {
		return "", "", fmt.Errorf("rollup: sorting key of %s: %w", table, err)
	}
	r.rollups.mu.Lock()
	r.rollups.facts[table] = [2]string{part, sorting}
	r.rollups.mu.Unlock()
	return part, sorting, nil
}

// rollupStates returns the rollups' states, read from the store when the
// copy is older than maxAge.
func (r *Registry) rollupStates(ctx context.Context, maxAge time.Duration) (map[string]*rollupRecord, error) {
	r.rollups.mu.Lock()
	if time.Since(r.rollups.read) <= maxAge {
		defer r.rollups.mu.Unlock()
		return r.rollups.states, nil
	}
	r.rollups.mu.Unlock()
	rows, err := r.opts.Store.Conn.Query(ctx, convsql.RollupQuery("state_list"))
	if err != nil {
		return nil, fmt.Errorf("rollup states: %w", err)
	}
	defer rows.Close()
	states := map[string]*rollupRecord{}
	for rows.Next() {
		var x rollupRecord
		var marks string
		if err := rows.Scan(&x.name, &x.metric, &x.spec, &x.status, &marks, &x.generation, &x.asOf, &x.err, &x.updated); err != nil {
			return nil, fmt.Errorf("rollup states: %w", err)
		}
		x.marks = warehouse.PartBlocks{}
		if marks != "" {
			if err := json.Unmarshal([]byte(marks), &x.marks); err != nil {
				return nil, fmt.Errorf("rollup %s: watermark: %w", x.name, err)
			}
		}
		states[x.name] = &x
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rollup states: %w", err)
	}
	r.rollups.mu.Lock()
	defer r.rollups.mu.Unlock()
	r.rollups.states, r.rollups.read = states, time.Now()
	return states, nil
}

// putState writes x as the rollup's new state.
func (r *Registry) putState(ctx context.Context, x *rollupRecord) error {
	marks, err := json.Marshal(x.marks)
	if err != nil {
		return err
	}
	err = r.opts.Store.Conn.Exec(ctx, convsql.RollupQuery("state_put"),
		clickhouse.Named("name", x.name), clickhouse.Named("metric", x.metric), clickhouse.Named("spec", x.spec),
		clickhouse.Named("status", x.status), clickhouse.Named("watermark", string(marks)),
		clickhouse.Named("generation", x.generation), clickhouse.Named("as_of", x.asOf.UTC().Format("2006-01-02 15:04:05.000")),
		clickhouse.Named("error", x.err))
	if err != nil {
		return fmt.Errorf("rollup %s: write state: %w", x.name, err)
	}
	r.rollups.mu.Lock()
	c := *x
	r.rollups.states[x.name] = &c
	r.rollups.mu.Unlock()
	return nil
}

// rollupSpecs are the specs of every defined metric that is rolled up.
func (r *Registry) rollupSpecs(ctx context.Context) []*rollupSpec {
	var out []*rollupSpec
	for _, d := range r.List() {
		if d.Kind != Simple {
			continue
		}
		sp, err := r.rollupSpecOf(ctx, d)
		if err != nil {
			var nr *notRollable
			if !errors.As(err, &nr) {
				r.log.Warn("rollup: cannot derive", "metric", d.Name, "err", err)
			}
			continue
		}
		out = append(out, sp)
	}
	return out
}

// buildChunk is how many months one INSERT of a rebuild computes.
const buildChunk = 12

// upkeepOne brings one rollup up to date; it returns the partitions it
// fold sets x's watermark of tables to blocks: they are folded in.
func (x *rollupRecord) fold(tables []string, blocks warehouse.PartBlocks) {
	for _, t := range tables {
		x.marks[t] = maps.Clone(blocks[t])
		if x.marks[t] == nil {
			x.marks[t] = map[string]int64{}
		}
	}
}

// noteAsOf records that an upkeep round found table current as of asOf.
func (r *Registry) noteAsOf(table string, asOf time.Time) {
	r.rollups.mu.Lock()
	r.rollups.asOf[table] = asOf
	r.rollups.mu.Unlock()
}

// recomputed and whether it (re)created the table.
func (r *Registry) upkeepOne(ctx context.Context, sp *rollupSpec, old *rollupRecord, blocks warehouse.PartBlocks, asOf time.Time) (int, bool, error) {
	x := &rollupRecord{name: sp.table, metric: sp.metric, spec: sp.hash, status: RollupReady, marks: warehouse.PartBlocks{}}
	built := false
	if old != nil && old.spec == sp.hash {
		x.generation, x.marks, x.status, x.asOf = old.generation, cloneMarks(old.marks), old.status, old.asOf
	} else {
		built = true
		if old != nil {
			x.generation = old.generation
		}
		x.status = RollupBuilding
		if err := r.createRollup(ctx, sp); err != nil {
			return 0, built, r.failRollup(ctx, x, err)
		}
		if err := r.putState(ctx, x); err != nil {
			return 0, built, err
		}
	}
	ident, err := r.identityPartitions(ctx, sp, x.marks, blocks)
	if err != nil {
		return 0, built, r.failRollup(ctx, x, err)
	}
	dirty := dirtyPartitions(sp, x.marks, blocks, ident)
	if len(dirty) == 0 {
		// An identity change that moved none of sp's facts is folded in as is.
		folded := ident != nil && !maps.Equal(x.marks["identities"], blocks["identities"])
		if folded {
			x.marks["identities"] = maps.Clone(blocks["identities"])
		}
		if x.status != RollupReady || folded {
			x.status, x.err, x.asOf = RollupReady, "", asOf
			return 0, built, r.putState(ctx, x)
		}
		r.noteAsOf(sp.table, asOf)
		return 0, built, nil
	}
	done := 0
	for len(dirty) > 0 {
		chunk := dirty[:min(len(dirty), buildChunk)]
		dirty = dirty[len(chunk):]
		if err := r.recompute(ctx, sp, chunk); err != nil {
			return done, built, r.failRollup(ctx, x, err)
		}
		done += len(chunk)
		if r.rollups.fault != nil {
			if err := r.rollups.fault("replaced"); err != nil {
				return done, built, err
			}
		}
		// The partitions replaced are current as of the snapshot: fold them in.
		for _, t := range sp.tables {
			if x.marks[t] == nil {
				x.marks[t] = map[string]int64{}
			}
			if t != sp.fact {
				continue
			}
			for _, id := range chunk {
				for k := range x.marks[t] {
					if warehouse.PartitionID(k) == id {
						delete(x.marks[t], k)
					}
				}
				for k, b := range blocks[t] {
					if warehouse.PartitionID(k) == id {
						x.marks[t][k] = b
					}
				}
			}
		}
		if len(dirty) > 0 {
			x.generation++
			if err := r.putState(ctx, x); err != nil {
				return done, built, err
			}
		}
	}
	// Every dirty partition is replaced: the whole snapshot is folded in.
	x.marks = warehouse.PartBlocks{}
	x.fold(sp.tables, blocks)
	x.generation++
	x.status, x.err, x.asOf = RollupReady, "", asOf
	if err := r.putState(ctx, x); err != nil {
		return done, built, err
	}
	r.noteAsOf(sp.table, asOf)
	return done, built, nil
}

func cloneMarks(m warehouse.PartBlocks) warehouse.PartBlocks {
	out := warehouse.PartBlocks{}
	for t, p := range m {
		out[t] = maps.Clone(p)
	}
	return out
}

// failRollup records err as why x's upkeep failed (its queries read raw rows
// until a later round succeeds) and returns it.
func (r *Registry) failRollup(ctx context.Context, x *rollupRecord, err error) error {
	err = fmt.Errorf("rollup %s (metric %s): %w", x.name, x.metric, err)
	x.status, x.err = RollupFailed, err.Error()
	if perr := r.putState(context.WithoutCancel(ctx), x); perr != nil {
		return errors.Join(err, perr)
	}
	return err
}

// dirtyPartitions are the fact partitions (ids, sorted) sp must recompute to
// fold in blocks: those whose blocks moved since marks, appeared or
// disappeared; every one when another table it reads changed and the answer
// depends on it, except identities when ident (identityPartitions) names
// the partitions their change dirties.
func dirtyPartitions(sp *rollupSpec, marks warehouse.PartBlocks, blocks warehouse.PartBlocks, ident map[string]bool) []string {
	set := map[string]bool{}
	all := func() {
		for k := range blocks[sp.fact] {
			set[warehouse.PartitionID(k)] = true
		}
		for k := range marks[sp.fact] {
			set[warehouse.PartitionID(k)] = true
		}
	}
	_, seen := marks[sp.fact]
	if !seen || marks[sp.fact][warehouse.MutationsKey] != blocks[sp.fact][warehouse.MutationsKey] {
		all()
	}
	for k, b := range blocks[sp.fact] {
		if m, ok := marks[sp.fact][k]; !ok || m != b {
			set[warehouse.PartitionID(k)] = true
		}
	}
	for k := range marks[sp.fact] {
		if _, ok := blocks[sp.fact][k]; !ok {
			set[warehouse.PartitionID(k)] = true
		}
	}
	for _, t := range sp.tables {
		if t == sp.fact || !sp.identity && t == "identities" {
			continue
		}
		if t == "identities" && ident != nil {
			for id := range ident {
				set[id] = true
			}
			continue
		}
		if !maps.Equal(marks[t], blocks[t]) {
			all()
		}
	}
	delete(set, warehouse.MutationsKey)
	out := sortedKeys(set)
	sort.Strings(out)
	return out
}

// createRollup (re)creates sp's table, empty.
func (r *Registry) createRollup(ctx context.Context, sp *rollupSpec) error {
	st := r.opts.Store
	if err := st.DropDerivedTable(ctx, sp.table); err != nil {
		return err
	}
	cols, order, err := describe(ctx, st.Conn, r.buildSelect(sp), r.buildArgs(sp, "200001", "200002"))
	if err != nil {
		return fmt.Errorf("its build query: %s", chMessage(err))
	}
	var defs []string
	for _, c := range order {
		defs = append(defs, "    `"+c+"` "+cols[c])
	}
	key := []string{"slot"}
	for _, dm := range sp.dims {
		key = append(key, "d_"+dm)
	}
	ddl := "CREATE TABLE IF NOT EXISTS `" + sp.table + "`\n(\n" + strings.Join(defs, ",\n") + "\n)\nENGINE = AggregatingMergeTree\n" +
		"PARTITION BY toYYYYMM(slot)\nORDER BY (" + strings.Join(key, ", ") + ")\nSETTINGS allow_nullable_key = 1"
	return st.CreateDerivedTable(ctx, ddl)
}

// buildSelect is the rows of sp's rollup over [{rb_from}, {rb_to}).
func (r *Registry) buildSelect(sp *rollupSpec) string {
	d, _ := r.Get(sp.metric)
	slot := "toStartOfInterval(m." + d.Time + ", toIntervalMinute(" + fmt.Sprint(slotMinutes) + "), 'UTC')"
	lo, hi := "{rb_from:DateTime64(3, 'UTC')}", "{rb_to:DateTime64(3, 'UTC')}"
	if sp.slotDate {
		slot, lo, hi = "m."+d.Time, "toDate("+lo+")", "toDate("+hi+")"
	}
	cols := []string{slot + " AS slot"}
	group := []string{"slot"}
	for _, x := range d.Dimensions {
		cols = append(cols, "toString(m."+x.Column+") AS d_"+x.Name)
		group = append(group, "d_"+x.Name)
	}
	for _, s := range sp.states {
		cols = append(cols, s.state+" AS "+s.col)
	}
	cols = append(cols, "countState() AS _rows")
	return "SELECT " + strings.Join(cols, ", ") + "\nFROM (\n" + d.SQL + "\n) AS m\nWHERE m." + d.Time + " >= " + lo + " AND m." + d.Time + " < " + hi +
		"\nGROUP BY " + strings.Join(group, ", ")
}

// buildArgs binds buildSelect to the months from (YYYYMM, included) to to (excluded).
func (r *Registry) buildArgs(sp *rollupSpec, from, to string) clickhouse.Parameters {
	p := sampleParams(&Definition{})
	p.Margin = sp.margin
	a := contractArgs(p)
	a["rb_from"], a["rb_to"] = monthStart(from), monthStart(to)
	return a
}

// monthStart is the first instant of month id (YYYYMM), as a bound parameter.
func monthStart(id string) string {
	t, err := time.Parse("200601", id)
	if err != nil {
		return "1970-01-01 00:00:00.000"
	}
	return t.Format("2006-01-02 15:04:05.000")
}

// nextMonth is the month id after id.
func nextMonth(id string) string {
	t, err := time.Parse("200601", id)
	if err != nil {
		return id
	}
	return t.AddDate(0, 1, 0).Format("200601")
}

// recompute rebuilds sp's partitions ids from raw rows, in a staging table
// whose partitions then replace the rollup's.
func (r *Registry) recompute(ctx context.Context, sp *rollupSpec, ids []string) error {
	st := r.opts.Store
	stage := fmt.Sprintf("%s_stage_%d", sp.table, time.Now().UnixNano())
	if err := st.CreateStagingTable(ctx, stage, sp.table); err != nil {
		return err
	}
	defer func() { _ = st.DropStagingTable(context.WithoutCancel(ctx), stage) }()
	if r.rollups.fault != nil {
		if err := r.rollups.fault("recompute"); err != nil {
			return err
		}
	}
	q := "INSERT INTO `" + stage + "`\n" + r.buildSelect(sp)
	for _, run := range monthRuns(ids) {
		args := r.buildArgs(sp, run[0], nextMonth(run[1]))
		if err := st.Conn.Exec(clickhouse.Context(ctx, clickhouse.WithParameters(args)), q); err != nil {
			return fmt.Errorf("recompute %s…%s: %s", run[0], run[1], chMessage(err))
		}
	}
	return st.ReplacePartitions(ctx, stage, sp.table, ids)
}

// monthRuns groups sorted month ids into runs of consecutive months.
func monthRuns(ids []string) [][2]string {
	var out [][2]string
	for _, id := range ids {
		if n := len(out); n > 0 && nextMonth(out[n-1][1]) == id {
			out[n-1][1] = id
			continue
		}
		out = append(out, [2]string{id, id})
	}
	return out
}
