package metrics

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	convsql "github.com/converge-dev/converge/sql"
	"github.com/converge-dev/converge/warehouse"
)

// A keyed rollup keeps the rows of a model whose rows of one key depend only
// on that key's facts (a definition's "rollup: by customer_id": each
// customer's first order, channel and margin; "rollup: by order_id": an
// order's refunds), so a query reads them instead of aggregating every fact.
// The rows live in a ReplacingMergeTree by (key, _row), _row numbering a
// key's rows (newest _version wins, a _deleted row removes one), partitioned
// by the month of the model's time column so that a query reads the months
// of its range only: a row is identified by (key, _row, month), a row whose
// time moves to another month is deleted from its old one, and every read
// merges versions within a partition (finalSettings). When facts
// land, the keys of the rows in the fact parts written since the watermark
// are recomputed from the model, restricted to those keys, and a key's rows
// beyond its new count are deleted; an identity change recomputes the keys
// it moves (rollup_identity.go); a change to a table without the key, or one
// that cannot be followed by key, rebuilds the rows whole and replaces them
// at once.
// The measure, dimensions and time column then run over the kept rows
// exactly as over the model's.

// finalSettings make FINAL merge versions within a partition, which lets the
// engine skip the partitions outside a query's range: a keyed row's versions
// share its month's partition.
const finalSettings = "SETTINGS do_not_merge_across_partitions_select_final = 1"

// keyChunk is how many keys one recompute statement binds.
const keyChunk = 50_000

// deriveKeyed writes the spec of a keyed rollup of d, or says why none.
func deriveKeyed(d *Definition, margin float64, hasColumn func(table, column string) (bool, error)) (*rollupSpec, error) {
	sp := &rollupSpec{metric: d.Name, table: "rollup_" + d.Name, key: d.RollupKey, keyed: map[string]bool{}}
	for _, m := range paramRe.FindAllStringSubmatch(d.SQL+" "+d.Measure, -1) {
		if m[1] != "default_margin" {
			return nil, rawOnly("its model reads the parameter {%s}, which each query sets", m[1])
		}
		sp.baked, sp.margin = true, margin
	}
	sp.tables = d.Tables()
	sp.identity = slices.Contains(sp.tables, "identities")
	for _, t := range sp.tables {
		if t == "identities" {
			continue
		}
		ok, err := hasColumn(t, d.RollupKey)
		if err != nil {
			return nil, err
		}
		sp.keyed[t] = ok
	}
	for _, x := range d.Dimensions {
		sp.dims = append(sp.dims, x.Name)
	}
	h := sha256.New()
	fmt.Fprintf(h, "keyed monthly rows %s\x00%s\x00%s\x00%s\x00%v", rollupFormat, d.SQL, d.RollupKey, d.Time, sp.baked)
	if sp.baked {
		h.Write([]byte(strconv.FormatFloat(margin, 'g', -1, 64)))
	}
	sp.hash = hex.EncodeToString(h.Sum(nil))[:16]
	return sp, nil
}

// hasColumn tells whether table has column.
func (r *Registry) hasColumn(ctx context.Context, table, column string) (bool, error) {
	var ok bool
	err := r.opts.Store.Conn.QueryRow(ctx, convsql.RollupQuery("table_has_column"), clickhouse.Named("table", table), clickhouse.Named("column", column)).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("rollup: columns of %s: %w", table, err)
	}
	return ok, nil
}

// keyedSource is what planOver reads to answer d from its keyed rollup: the
// kept model rows.
func keyedSource(d *Definition, sp *rollupSpec, timeIsDate bool) planSource {
	src := planSource{from: "(SELECT * EXCEPT (_row, _version, _deleted) FROM `" + sp.table + "` FINAL WHERE _deleted = 0 " + finalSettings + ") AS m",
		time: "m." + d.Time, timeIsDate: timeIsDate, measure: d.Measure, rows: "count()"}
	src.dim = func(name string) string {
		x, _ := d.Dimension(name)
		return "toString(m." + x.Column + ")"
	}
	return src
}

// keyedColumns are the model's columns, in order, with their types.
func (r *Registry) keyedColumns(ctx context.Context, d *Definition, sp *rollupSpec) ([]string, map[string]string, error) {
	cols, order, err := describe(ctx, r.opts.Store.Conn, d.SQL, r.buildArgs(sp, "200001", "200002"))
	if err != nil {
		return nil, nil, fmt.Errorf("its model: %s", chMessage(err))
	}
	if _, ok := cols[sp.key]; !ok {
		return nil, nil, fmt.Errorf("rollup: by %s: the model has no column %s (columns: %s)", sp.key, sp.key, strings.Join(order, ", "))
	}
	return order, cols, nil
}

// keyedMonth is the partition expression of d's keyed rollup over x (the
// time column, or an expression of it): its month, or "" when the model has
// no time column or it may be NULL (the rollup is then one partition).
func keyedMonth(d *Definition, cols map[string]string, x string) string {
	if t, ok := cols[d.Time]; !ok || strings.HasPrefix(t, "Nullable(") {
		return ""
	}
	return "toYYYYMM(" + x + ")"
}

// keyedRow numbers the model rows m of each key within their month: the
// numbers a month's rows take are then 1…n whichever order the engine reads
// them in, so the rows a recompute replaces are the same set in both of its
// reads of the model.
func keyedRow(d *Definition, sp *rollupSpec, cols map[string]string) string {
	by := "m.`" + sp.key + "`"
	if m := keyedMonth(d, cols, "m.`"+d.Time+"`"); m != "" {
		by += ", " + m
	}
	return "row_number() OVER (PARTITION BY " + by + ")"
}

// createKeyed (re)creates sp's table, empty.
func (r *Registry) createKeyed(ctx context.Context, d *Definition, sp *rollupSpec) error {
	st := r.opts.Store
	if err := st.DropDerivedTable(ctx, sp.table); err != nil {
		return err
	}
	order, cols, err := r.keyedColumns(ctx, d, sp)
	if err != nil {
		return err
	}
	var defs []string
	for _, c := range order {
		defs = append(defs, "    `"+c+"` "+cols[c])
	}
	defs = append(defs, "    `_row` UInt64", "    `_version` UInt64", "    `_deleted` UInt8")
	part := ""
	if m := keyedMonth(d, cols, "`"+d.Time+"`"); m != "" {
		part = "PARTITION BY " + m + "\n"
	}
	ddl := "CREATE TABLE IF NOT EXISTS `" + sp.table + "`\n(\n" + strings.Join(defs, ",\n") + "\n)\nENGINE = ReplacingMergeTree(_version, _deleted)\n" + part +
		"ORDER BY (`" + sp.key + "`, _row)\nSETTINGS allow_nullable_key = 1"
	return st.CreateDerivedTable(ctx, ddl)
}

// upkeepKeyed brings a keyed rollup up to date (see upkeepOne).
func (r *Registry) upkeepKeyed(ctx context.Context, sp *rollupSpec, old *rollupRecord, blocks warehouse.PartBlocks, asOf time.Time) (int, bool, error) {
	d, _ := r.Get(sp.metric)
	x := &rollupRecord{name: sp.table, metric: sp.metric, spec: sp.hash, status: RollupReady, marks: warehouse.PartBlocks{}}
	built := old == nil || old.spec != sp.hash
	full := built
	if built {
		if old != nil {
			x.generation = old.generation
		}
		x.status = RollupBuilding
		if err := r.createKeyed(ctx, d, sp); err != nil {
			return 0, built, r.failRollup(ctx, x, err)
		}
		if err := r.putState(ctx, x); err != nil {
			return 0, built, err
		}
	} else {
		x.generation, x.marks, x.status, x.asOf = old.generation, cloneMarks(old.marks), old.status, old.asOf
	}
	keys := map[string]bool{}
	changed := false
	for _, t := range sp.tables {
		if full {
			break
		}
		if maps.Equal(x.marks[t], blocks[t]) {
			continue
		}
		changed = true
		if t == "identities" {
			ok, err := r.identityKeys(ctx, sp, x.marks[t], blocks[t], keys)
			if err != nil {
				return 0, built, r.failRollup(ctx, x, err)
			}
			if !ok {
				full = true
				break
			}
			continue
		}
		if !sp.keyed[t] || x.marks[t][warehouse.MutationsKey] != blocks[t][warehouse.MutationsKey] {
			full = true
			break
		}
		parts, err := r.opts.Store.NewParts(ctx, t, x.marks[t])
		if err != nil {
			return 0, built, r.failRollup(ctx, x, err)
		}
		if err := r.affectedKeys(ctx, sp, t, parts, keys); err != nil {
			return 0, built, r.failRollup(ctx, x, err)
		}
	}
	n := 0
	switch {
	case full:
		if err := r.rebuildKeyed(ctx, d, sp); err != nil {
			return 0, built, r.failRollup(ctx, x, err)
		}
		n = 1
	case len(keys) > 0:
		if err := r.recomputeKeys(ctx, d, sp, sortedKeys(keys)); err != nil {
			return 0, built, r.failRollup(ctx, x, err)
		}
		n = 1
	case !changed && x.status == RollupReady:
		r.noteAsOf(sp.table, asOf)
		return 0, built, nil
	}
	if r.rollups.fault != nil && n > 0 {
		if err := r.rollups.fault("replaced"); err != nil {
			return n, built, err
		}
	}
	x.marks = warehouse.PartBlocks{}
	x.fold(sp.tables, blocks)
	if n > 0 {
		x.generation++
	}
	x.status, x.err, x.asOf = RollupReady, "", asOf
	if err := r.putState(ctx, x); err != nil {
		return n, built, err
	}
	r.noteAsOf(sp.table, asOf)
	return n, built, nil
}

// affectedKeys adds to keys the model keys of the rows of table in parts.
func (r *Registry) affectedKeys(ctx context.Context, sp *rollupSpec, table string, parts []string, keys map[string]bool) error {
	if len(parts) == 0 {
		return nil
	}
	q := convsql.RollupQuery("affected_keys")
	args := []any{clickhouse.Named("table", table), clickhouse.Named("parts", parts), clickhouse.Named("key", sp.key)}
	if sp.identity && sp.key == "customer_id" {
		q = convsql.RollupQuery("affected_customers")
		args = args[:2]
	}
	if err := collect(ctx, r.opts.Store, q, keys, args...); err != nil {
		return fmt.Errorf("keys changed in %s: %s", table, chMessage(err))
	}
	return nil
}

// rebuildKeyed computes every row of the model into a staging table and
// replaces the rollup's rows with them at once.
func (r *Registry) rebuildKeyed(ctx context.Context, d *Definition, sp *rollupSpec) error {
	st := r.opts.Store
	order, cols, err := r.keyedColumns(ctx, d, sp)
	if err != nil {
		return err
	}
	stage := fmt.Sprintf("%s_stage_%d", sp.table, time.Now().UnixNano())
	if err := st.CreateStagingTable(ctx, stage, sp.table); err != nil {
		return err
	}
	defer func() { _ = st.DropStagingTable(context.WithoutCancel(ctx), stage) }()
	args := r.buildArgs(sp, "200001", "200002")
	args["rv"] = strconv.FormatInt(time.Now().UnixNano(), 10)
	q := "INSERT INTO `" + stage + "` (" + quotedList(order) + ", _row, _version, _deleted)\nSELECT " + quotedList(order) +
		", " + keyedRow(d, sp, cols) + ", {rv:UInt64}, 0 FROM (\n" + d.SQL + "\n) AS m"
	if err := st.Conn.Exec(clickhouse.Context(ctx, clickhouse.WithParameters(args)), q); err != nil {
		return fmt.Errorf("rebuild: %s", chMessage(err))
	}
	if err := st.CompactStaging(ctx, stage); err != nil {
		return err
	}
	// Every month of the new rows and of the old ones: a month no row has any more is dropped.
	ids, err := st.StagedPartitions(ctx, stage)
	if err != nil {
		return err
	}
	old, err := st.StagedPartitions(ctx, sp.table)
	if err != nil {
		return err
	}
	ids = append(ids, old...)
	slices.Sort(ids)
	return st.ReplacePartitions(ctx, stage, sp.table, slices.Compact(ids))
}

// recomputeKeys writes the model's rows of keys anew (and a deleted row for
// each kept row that is not among them: beyond its key's new count, or in
// another month), in one statement per chunk of keys. The deleted rows carry
// the old row's time, so they land in its month's partition, and an older
// version than the new rows, so that a read merging across partitions still
// finds the new row.
func (r *Registry) recomputeKeys(ctx context.Context, d *Definition, sp *rollupSpec, keys []string) error {
	order, cols, err := r.keyedColumns(ctx, d, sp)
	if err != nil {
		return err
	}
	month := func(x string) string {
		if m := keyedMonth(d, cols, x); m != "" {
			return m
		}
		return "0"
	}
	tomb := make([]string, len(order))
	for i, c := range order {
		switch {
		case c == sp.key:
			tomb[i] = "CAST(k, '" + strings.ReplaceAll(cols[c], "'", `\'`) + "')"
		case c == d.Time:
			tomb[i] = "tm"
		default:
			tomb[i] = "defaultValueOfTypeName('" + strings.ReplaceAll(cols[c], "'", `\'`) + "')"
		}
	}
	key := "toString(m.`" + sp.key + "`)"
	fresh := "SELECT *, " + keyedRow(d, sp, cols) + " AS _row FROM (\n" + d.SQL + "\n) AS m WHERE " + key + " IN {keys:Array(String)}"
	tm := "defaultValueOfTypeName('DateTime')"
	if d.Time != "" {
		tm = "`" + d.Time + "`"
	}
	// The keys' rows anew, then a deleted row for each kept row the new ones do not replace.
	q := "INSERT INTO `" + sp.table + "` (" + quotedList(order) + ", _row, _version, _deleted)\n" +
		"SELECT " + quotedList(order) + ", _row, {rv:UInt64} + 1, 0 FROM (" + fresh + ")\n" +
		"UNION ALL\nSELECT " + strings.Join(tomb, ", ") + ", j, {rv:UInt64}, 1 FROM (\n" +
		"    SELECT toString(`" + sp.key + "`) AS k, _row AS j, " + tm + " AS tm FROM `" + sp.table + "` FINAL\n" +
		"    WHERE _deleted = 0 AND toString(`" + sp.key + "`) IN {keys:Array(String)} " + finalSettings + ")\n" +
		"WHERE (k, j, " + month("tm") + ") NOT IN (SELECT toString(`" + sp.key + "`), _row, " + month("`"+d.Time+"`") + " FROM (" + fresh + "))"
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), keyChunk)]
		keys = keys[len(chunk):]
		args := r.buildArgs(sp, "200001", "200002")
		args["rv"] = strconv.FormatInt(time.Now().UnixNano(), 10)
		args["keys"] = warehouse.StringArray(chunk)
		if err := r.opts.Store.Conn.Exec(clickhouse.Context(ctx, clickhouse.WithParameters(args)), q); err != nil {
			return fmt.Errorf("recompute %d keys: %s", len(chunk), chMessage(err))
		}
	}
	return nil
}

func quotedList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = "`" + c + "`"
	}
	return strings.Join(q, ", ")
}
