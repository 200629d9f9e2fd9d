package warehouse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Derived tables hold what is computed from the facts as they land
// (rollups): plain MergeTree-family tables and inserts, created at run time
// from a CREATE TABLE statement the caller writes, and rewritten for cluster
// mode by the same rules as the migrations (a Replicated table per shard
// under a Distributed one). They are replaced a partition at a time from a
// staging table made like them (ReplacePartitions), so a reader sees a
// partition's old rows or its new ones, never a mixture.

// CreateDerivedTable runs ddl, one CREATE TABLE IF NOT EXISTS statement of a
// MergeTree-family table in the main database (ON CLUSTER, Replicated and
// Distributed in cluster mode).
func (s *Store) CreateDerivedTable(ctx context.Context, ddl string) error {
	stmts := []string{ddl}
	if s.cfg.Cluster != "" {
		cms, err := ClusterMigrations([]Migration{{Version: 1, Name: "derived", SQL: ddl}}, s.cfg.Cluster, s.Database, s.AppDatabase)
		if err != nil {
			return fmt.Errorf("derived table: %w", err)
		}
		stmts = cms[0].Statements
	}
	for _, q := range stmts {
		if err := s.Conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("create derived table: %w", err)
		}
	}
	return nil
}

// DropDerivedTable drops table (its shard tables too in cluster mode); a table
// that is not there is no error.
func (s *Store) DropDerivedTable(ctx context.Context, table string) error {
	return s.DropStagingTable(ctx, table)
}

// ReplacePartitions replaces the partitions ids of table with those of stage,
// a table made like it (ALTER TABLE table DROP PARTITION ID …, ATTACH
// PARTITION ID … FROM stage; on the shards' tables ON CLUSTER in cluster
// mode). Each partition is swapped in one statement; a partition stage does
// not hold is emptied. A query that takes its snapshot of the parts in the
// instant between the two commands misses that partition (see docs/engine.md).
func (s *Store) ReplacePartitions(ctx context.Context, stage, table string, ids []string) error {
	if !identRe.MatchString(stage) || !identRe.MatchString(table) {
		return fmt.Errorf("replace partitions of %q from %q: not identifiers", table, stage)
	}
	to, from := quoteIdent(table), quoteIdent(stage)
	if s.cfg.Cluster != "" {
		to, from = quoteIdent(table+localSuffix)+" ON CLUSTER "+quoteIdent(s.cfg.Cluster), quoteIdent(stage+localSuffix)
	}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), attachChunk)]
		ids = ids[len(chunk):]
		params := clickhouse.Parameters{}
		cmds := make([]string, len(chunk))
		for i, id := range chunk {
			params[fmt.Sprintf("p%d", i)] = id
			// DROP then ATTACH FROM, not REPLACE PARTITION: the engine leaves the parts
			// REPLACE swaps out on disk, and loads them as active again when the table is
			// next opened (a restart); a dropped partition stays dropped.
			cmds[i] = fmt.Sprintf("DROP PARTITION ID {p%d:String}, ATTACH PARTITION ID {p%d:String} FROM %s", i, i, from)
		}
		q := "ALTER TABLE " + to + " " + strings.Join(cmds, ", ")
		if err := s.Conn.Exec(clickhouse.Context(ctx, clickhouse.WithParameters(params)), q); err != nil {
			return fmt.Errorf("replace partitions %s of %s from %s: %w", strings.Join(chunk, ", "), table, stage, err)
		}
	}
	return nil
}

// PartBlocks is, per table, per partition, the highest block number of its
// active parts: an insert (or an attached or replaced partition) raises it, a
// merge does not (a merged part spans the blocks of its sources). Partition
// keys are "<host>/<partition id>" in cluster mode, where block numbers are
// per shard.
type PartBlocks map[string]map[string]int64

// PartBlocks reads the active parts of tables (main database).
func (s *Store) PartBlocks(ctx context.Context, tables []string) (PartBlocks, error) {
	from, suffix := "system.parts", ""
	host := "''"
	if s.cfg.Cluster != "" {
		from, suffix, host = "clusterAllReplicas("+quoteString(s.cfg.Cluster)+", system.parts)", localSuffix, "hostName()"
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t + suffix
	}
	q := "SELECT table, if(" + host + " = '', partition_id, concat(" + host + ", '/', partition_id)) AS p, toInt64(max(max_block_number))" +
		" FROM " + from + " WHERE database = currentDatabase() AND active AND table IN {t:Array(String)} GROUP BY table, p"
	rows, err := s.Conn.Query(ctx, q, clickhouse.Named("t", names))
	if err != nil {
		return nil, fmt.Errorf("parts of %s: %w", strings.Join(tables, ", "), err)
	}
	defer rows.Close()
	out := PartBlocks{}
	for _, t := range tables {
		out[t] = map[string]int64{}
	}
	for rows.Next() {
		var t, p string
		var b int64
		if err := rows.Scan(&t, &p, &b); err != nil {
			return nil, fmt.Errorf("parts of %s: %w", strings.Join(tables, ", "), err)
		}
		t = strings.TrimSuffix(t, suffix)
		if out[t] == nil {
			out[t] = map[string]int64{}
		}
		out[t][p] = b
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("parts of %s: %w", strings.Join(tables, ", "), err)
	}
	muts, err := s.mutationCounts(ctx, names)
	if err != nil {
		return nil, err
	}
	for t, n := range muts {
		t = strings.TrimSuffix(t, suffix)
		if out[t] == nil {
			out[t] = map[string]int64{}
		}
		out[t][MutationsKey] = n
	}
	return out, nil
}

// MutationsKey is the PartBlocks entry counting a table's mutations (ALTER …
// DELETE/UPDATE, lightweight deletes): they change rows without new blocks.
const MutationsKey = "~mutations"

// mutationCounts counts the mutations of tables (names as in system.parts).
func (s *Store) mutationCounts(ctx context.Context, names []string) (map[string]int64, error) {
	from := "system.mutations"
	if s.cfg.Cluster != "" {
		from = "clusterAllReplicas(" + quoteString(s.cfg.Cluster) + ", system.mutations)"
	}
	rows, err := s.Conn.Query(ctx, "SELECT table, toInt64(count()) FROM "+from+" WHERE database = currentDatabase() AND table IN {t:Array(String)} GROUP BY table",
		clickhouse.Named("t", names))
	if err != nil {
		return nil, fmt.Errorf("mutations of %s: %w", strings.Join(names, ", "), err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var t string
		var n int64
		if err := rows.Scan(&t, &n); err != nil {
			return nil, fmt.Errorf("mutations of %s: %w", strings.Join(names, ", "), err)
		}
		out[t] = n
	}
	return out, rows.Err()
}

// DataMark identifies the data of tables: it changes when rows are inserted,
// replaced, attached, dropped or mutated in any of them, and, unlike
// DataVersion, not when the engine merges parts (a merge changes parts, not
// data). It also returns the latest modification time of their parts (zero
// when they hold none).
func (s *Store) DataMark(ctx context.Context, tables []string) (string, time.Time, error) {
	var names []string
	for _, t := range tables {
		if identRe.MatchString(t) {
			names = append(names, t)
		}
	}
	blocks, err := s.PartBlocks(ctx, names)
	if err != nil {
		return "", time.Time{}, err
	}
	_, _, at, err := s.DataVersion(ctx, names)
	if err != nil {
		return "", time.Time{}, err
	}
	h := sha256.New()
	for _, t := range names {
		keys := make([]string, 0, len(blocks[t]))
		for k := range blocks[t] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(h, "%s/%s=%d;", t, k, blocks[t][k])
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:20], at, nil
}

// PartitionID is a partition key's id: the part after the host in cluster mode.
func PartitionID(key string) string {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		return key[i+1:]
	}
	return key
}

// NewParts names the active parts of table holding blocks above since (a
// PartBlocks entry of the table: partition key → block): every part of a
// partition since does not list. A merged part spans old blocks too, so the
// rows of these parts are a superset of the rows written after since.
func (s *Store) NewParts(ctx context.Context, table string, since map[string]int64) ([]string, error) {
	parts, _, err := s.PartsSince(ctx, table, since)
	return parts, err
}
