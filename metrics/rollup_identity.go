package metrics

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/ClickHouse/clickhouse-go/v2"

	convsql "github.com/converge-dev/converge/sql"
	"github.com/converge-dev/converge/warehouse"
)

// Rollups follow an identity change incrementally. Identity resolution writes
// a new version only of the identities it changes (ingest/identity), so the
// identity rows in the parts written since a rollup's watermark name every
// source id (source, source_key) whose canonical customer may have moved: a
// superset, as a merged part may also hold older rows. A fact row's resolved
// customer depends only on its own (source, customer_id), so:
//   - a slot rollup (one row per fact row) recomputes the fact partitions
//     holding rows of those source ids;
//   - a rollup by another key (order_id) recomputes the keys of those rows
//     (a key's rows depend only on that key's facts);
//   - a rollup by customer_id recomputes the canonical ids those rows had
//     before the change and have after it. After is the newest version.
//     Before is the version current at the watermark, or, for a source id
//     without one, the id itself (an id absent from identity_map is its own
//     canonical). Every version of those source ids in the table (no FINAL)
//     plus the ids themselves is a superset of both, as long as the
//     version current at the watermark is still in the table: a
//     ReplacingMergeTree merge of an old part with a new one keeps only the
//     newest version, so that is proven by no active part spanning blocks
//     on both sides of the watermark (Store.PartsSince) before and after
//     the versions are read. (The source ids written since need no such
//     proof: a merge drops a version only for a newer one of the same id,
//     which is then in a new part too.)
//
// What cannot be followed this way is recomputed whole: a mutation on
// identities (identity resolution deletes the identities of records that are
// gone, and the versions deleted, with the canonical ids they held, are no
// longer in the table), for a rollup by customer_id a merge across the
// watermark, or a change larger
// than identityDeltaMax source ids, which a whole recompute handles faster.

// identityDeltaMax bounds the source ids followed incrementally.
const identityDeltaMax = 200_000

// identityChunk is how many source ids one statement binds.
const identityChunk = 20_000

// identityDelta is what changed in identities since a rollup's watermark.
type identityDelta struct {
	srcs, keys []string // source ids written since the watermark (srcs[i], keys[i])
	canonicals []string // for a rollup by customer_id: every canonical id they had or have (when asked)
}

// identityDelta reads the identity rows written since marks (the rollup's
// watermark of identities; blocks: the round's snapshot) or returns nil when
// the change cannot be followed incrementally and the rollup must be
// recomputed whole. With canonicals it also reads the canonical ids before
// and after (see above).
func (r *Registry) identityDelta(ctx context.Context, marks, blocks map[string]int64, canonicals bool) (*identityDelta, error) {
	if marks == nil || marks[warehouse.MutationsKey] != blocks[warehouse.MutationsKey] {
		return nil, nil
	}
	// A merge of the parts read while they are read is told by the parts
	// listed after: read again (a few times, then recompute whole).
	for range identityTries {
		d, again, err := r.readIdentityDelta(ctx, marks, blocks, canonicals)
		if !again {
			return d, err
		}
	}
	return nil, nil
}

// identityTries is how often identityDelta reads when parts merge meanwhile.
const identityTries = 3

// readIdentityDelta is one try of identityDelta: again when a part it read
// was merged meanwhile.
func (r *Registry) readIdentityDelta(ctx context.Context, marks, blocks map[string]int64, canonicals bool) (_ *identityDelta, again bool, _ error) {
	st := r.opts.Store
	parts, pure, err := st.PartsSince(ctx, "identities", marks)
	if err != nil || canonicals && !pure {
		return nil, false, err
	}
	d := &identityDelta{}
	if len(parts) == 0 {
		return d, false, nil
	}
	rows, err := st.Conn.Query(ctx, convsql.RollupQuery("identity_written"), clickhouse.Named("parts", parts))
	if err != nil {
		return nil, false, fmt.Errorf("identities written: %s", chMessage(err))
	}
	for rows.Next() {
		var s, k string
		if err := rows.Scan(&s, &k); err != nil {
			rows.Close()
			return nil, false, err
		}
		d.srcs, d.keys = append(d.srcs, s), append(d.keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("identities written: %s", chMessage(err))
	}
	if len(d.keys) > identityDeltaMax {
		return nil, false, nil
	}
	if canonicals {
		set := map[string]bool{}
		for _, k := range d.keys {
			set[k] = true
		}
		if err := d.each(func(srcs, keys string) error {
			return collect(ctx, st, convsql.RollupQuery("identity_canonicals"), set,
				clickhouse.Named("srcs", srcs), clickhouse.Named("keys", keys))
		}); err != nil {
			return nil, false, fmt.Errorf("canonical ids of the identities written: %s", chMessage(err))
		}
		d.canonicals = sortedKeys(set)
		slices.Sort(d.canonicals)
	}
	// The versions read are the ones current at the watermark only if no
	// merge across it happened meanwhile: the parts read are still there,
	// none spans the watermark (canonical ids only: a merge never drops the
	// newest version of a source id, so the source ids written since are
	// all read either way), and no mutation ran.
	after, pure, err := st.PartsSince(ctx, "identities", marks)
	if err != nil || canonicals && !pure {
		return nil, false, err
	}
	for _, p := range parts {
		if _, ok := slices.BinarySearch(after, p); !ok {
			return nil, true, nil
		}
	}
	now, err := st.PartBlocks(ctx, []string{"identities"})
	if err != nil {
		return nil, false, err
	}
	if now["identities"][warehouse.MutationsKey] != blocks[warehouse.MutationsKey] {
		return nil, false, nil
	}
	return d, false, nil
}

// each calls f with the source ids in chunks, as Array(String) parameter values.
func (d *identityDelta) each(f func(srcs, keys string) error) error {
	for i := 0; i < len(d.keys); i += identityChunk {
		j := min(len(d.keys), i+identityChunk)
		if err := f(warehouse.StringArray(d.srcs[i:j]), warehouse.StringArray(d.keys[i:j])); err != nil {
			return err
		}
	}
	return nil
}

// collect adds the first column of q's rows to set.
func collect(ctx context.Context, st *warehouse.Store, q string, set map[string]bool, args ...any) error {
	rows, err := st.Conn.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return err
		}
		set[k] = true
	}
	return rows.Err()
}

// identityPartitions are the fact partitions of slot rollup sp that an
// identity change since marks dirties, or nil when they cannot be told (the
// rollup then recomputes every partition, as for any other table it reads).
// An empty, non-nil set means identities did not change for sp.
func (r *Registry) identityPartitions(ctx context.Context, sp *rollupSpec, marks, blocks warehouse.PartBlocks) (map[string]bool, error) {
	if !sp.identity || !slices.Contains(sp.tables, "identities") {
		return nil, nil
	}
	if _, seen := marks["identities"]; !seen {
		return nil, nil
	}
	out := map[string]bool{}
	if maps.Equal(marks["identities"], blocks["identities"]) {
		return out, nil
	}
	for _, c := range []string{"source", "customer_id"} {
		if ok, err := r.hasColumn(ctx, sp.fact, c); err != nil || !ok {
			return nil, err
		}
	}
	d, err := r.identityDelta(ctx, marks["identities"], blocks["identities"], false)
	if err != nil || d == nil {
		return nil, err
	}
	err = d.each(func(srcs, keys string) error {
		return collect(ctx, r.opts.Store, convsql.RollupQuery("identity_partitions"), out,
			clickhouse.Named("table", sp.fact), clickhouse.Named("srcs", srcs), clickhouse.Named("keys", keys))
	})
	if err != nil {
		return nil, fmt.Errorf("partitions of %s an identity change dirties: %s", sp.fact, chMessage(err))
	}
	return out, nil
}

// identityKeys adds to keys the keys of keyed rollup sp that an identity
// change since marks dirties; false when they cannot be told and the rollup
// must be rebuilt whole.
func (r *Registry) identityKeys(ctx context.Context, sp *rollupSpec, marks, blocks map[string]int64, keys map[string]bool) (bool, error) {
	byCustomer := sp.key == "customer_id"
	var tables []string
	if !byCustomer {
		// The rows of one key follow from the identities of that key's fact
		// rows only when every table the model reads carries the key.
		for _, t := range sp.tables {
			if t == "identities" {
				continue
			}
			if !sp.keyed[t] {
				return false, nil
			}
			has := true
			for _, c := range []string{"source", "customer_id"} {
				ok, err := r.hasColumn(ctx, t, c)
				if err != nil {
					return false, err
				}
				has = has && ok
			}
			if has {
				tables = append(tables, t)
			}
		}
	}
	d, err := r.identityDelta(ctx, marks, blocks, byCustomer)
	if err != nil || d == nil {
		return false, err
	}
	if byCustomer {
		for _, k := range d.canonicals {
			keys[k] = true
		}
		return true, nil
	}
	for _, t := range tables {
		err := d.each(func(srcs, ks string) error {
			return collect(ctx, r.opts.Store, convsql.RollupQuery("identity_keys"), keys,
				clickhouse.Named("table", t), clickhouse.Named("key", sp.key), clickhouse.Named("srcs", srcs), clickhouse.Named("keys", ks))
		})
		if err != nil {
			return false, fmt.Errorf("keys of %s an identity change dirties: %s", t, chMessage(err))
		}
	}
	return true, nil
}
