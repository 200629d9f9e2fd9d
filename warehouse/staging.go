package warehouse

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Staging tables make a load visible whole or not at all: rows go to a
// staging table made like the table they are for, and when the load is
// complete its partitions are attached to that table (ALTER TABLE …
// ATTACH PARTITION … FROM: per partition atomic, the parts are hard-linked,
// no row is copied) and the staging table is dropped. A staging table that
// is dropped without that leaves the table as it was. Readers of the table
// never see staged rows.
//
// In cluster mode a staging table is, like every table of the migrations, a
// Replicated table per shard (<stage>_local, with a Keeper path of its own)
// under a Distributed <stage> sharded like the table it is made like, so its
// rows land on the shards their table's rows live on, and each shard
// attaches its own partitions.

// CreateStagingTable creates the empty table stage with the columns, engine,
// keys, indices and settings of like, a MergeTree table of the migrations.
// It is a no-op when stage exists.
func (s *Store) CreateStagingTable(ctx context.Context, stage, like string) error {
	if !identRe.MatchString(stage) || !identRe.MatchString(like) {
		return fmt.Errorf("staging table %q like %q: not identifiers", stage, like)
	}
	if s.cfg.Cluster == "" {
		if err := s.Conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+quoteIdent(stage)+" AS "+quoteIdent(like)); err != nil {
			return fmt.Errorf("create staging table %s like %s: %w", stage, like, err)
		}
		return nil
	}
	stmts, err := s.clusterStagingDDL(ctx, stage, like)
	if err != nil {
		return err
	}
	for _, q := range stmts {
		if err := s.Conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("create staging table %s like %s: %w", stage, like, err)
		}
	}
	return nil
}

// clusterStagingDDL reads the engines of like's tables and returns the
// statements that create stage's.
func (s *Store) clusterStagingDDL(ctx context.Context, stage, like string) ([]string, error) {
	engineOf := func(table string) (string, error) {
		var e string
		err := s.Conn.QueryRow(ctx, "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
			clickhouse.Named("t", table)).Scan(&e)
		if err != nil {
			return "", fmt.Errorf("staging table %s: the engine of %s: %w", stage, table, err)
		}
		return e, nil
	}
	local, err := engineOf(like + localSuffix)
	if err != nil {
		return nil, err
	}
	dist, err := engineOf(like)
	if err != nil {
		return nil, err
	}
	return clusterStagingStatements(s.cfg.Cluster, stage, like, local, dist)
}

// replicatedPath is the Keeper path argument of a Replicated*MergeTree engine.
var replicatedPath = regexp.MustCompile(`^(Replicated[A-Za-z]*MergeTree\(\s*)'(?:[^'\\]|\\.)*'`)

// clusterStagingStatements are the statements creating stage in cluster mode
// from the engines (system.tables.engine_full) of like's shard table
// (localEngine) and Distributed table (distEngine): the shard table with a
// Keeper path of its own (everything else as like's), then the Distributed
// table over it with like's sharding key.
func clusterStagingStatements(cluster, stage, like, localEngine, distEngine string) ([]string, error) {
	m := replicatedPath.FindStringSubmatchIndex(localEngine)
	if m == nil {
		return nil, fmt.Errorf("staging table %s: %s%s is not a Replicated MergeTree table (engine %s)", stage, like, localSuffix, localEngine)
	}
	localEngine = localEngine[:m[3]] + quoteString("/clickhouse/tables/{shard}/{database}/"+stage) + localEngine[m[1]:]
	ref := quoteString(like + localSuffix)
	if !strings.HasPrefix(distEngine, "Distributed(") || strings.Count(distEngine, ref) != 1 {
		return nil, fmt.Errorf("staging table %s: %s is not a Distributed table over %s%s (engine %s)", stage, like, like, localSuffix, distEngine)
	}
	distEngine = strings.Replace(distEngine, ref, quoteString(stage+localSuffix), 1)
	on := " ON CLUSTER " + quoteIdent(cluster)
	return []string{
		"CREATE TABLE IF NOT EXISTS " + quoteIdent(stage+localSuffix) + on + " AS " + quoteIdent(like+localSuffix) + " ENGINE = " + localEngine,
		"CREATE TABLE IF NOT EXISTS " + quoteIdent(stage) + on + " AS " + quoteIdent(stage+localSuffix) + " ENGINE = " + distEngine,
	}, nil
}

// StagedPartitions lists the ids of stage's partitions that hold rows (on
// every replica in cluster mode), sorted.
func (s *Store) StagedPartitions(ctx context.Context, stage string) ([]string, error) {
	if !identRe.MatchString(stage) {
		return nil, fmt.Errorf("staging table %q: not an identifier", stage)
	}
	from, table := "system.parts", stage
	if s.cfg.Cluster != "" {
		from, table = "clusterAllReplicas("+quoteString(s.cfg.Cluster)+", system.parts)", stage+localSuffix
	}
	rows, err := s.Conn.Query(ctx, "SELECT partition_id FROM "+from+
		" WHERE database = currentDatabase() AND table = {t:String} AND active AND rows > 0 GROUP BY partition_id ORDER BY partition_id",
		clickhouse.Named("t", table))
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", stage, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("partitions of %s: %w", stage, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", stage, err)
	}
	return ids, nil
}

// attachChunk is how many partitions one ALTER attaches.
const attachChunk = 64

// AttachPartitions attaches the partitions ids of stage to table, which
// stage was made like (ALTER TABLE table ATTACH PARTITION ID … FROM stage;
// in cluster mode on the shards' tables, ON CLUSTER). The parts are
// hard-linked, not copied, and each partition is attached in one
// transaction: a reader of table sees all of its staged rows or none. stage
// keeps its parts, so attaching a partition again adds its rows again:
// finish an interrupted attach with the partitions PartitionsWith does not
// list yet. (MOVE PARTITION … TO TABLE does the same and empties the staging
// table, but measured 10-20 times slower here: it writes an empty part in
// place of each one it moves.)
func (s *Store) AttachPartitions(ctx context.Context, stage, table string, ids []string) error {
	if !identRe.MatchString(stage) || !identRe.MatchString(table) {
		return fmt.Errorf("attach partitions of %q to %q: not identifiers", stage, table)
	}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), attachChunk)]
		ids = ids[len(chunk):]
		params := clickhouse.Parameters{}
		for i, id := range chunk {
			params[fmt.Sprintf("p%d", i)] = id
		}
		if err := s.Conn.Exec(clickhouse.Context(ctx, clickhouse.WithParameters(params)), s.attachStatement(stage, table, len(chunk))); err != nil {
			return fmt.Errorf("attach partitions %s of %s to %s: %w", strings.Join(chunk, ", "), stage, table, err)
		}
	}
	return nil
}

// attachStatement attaches n partitions, the parameters p0…p<n-1>, of stage to table.
func (s *Store) attachStatement(stage, table string, n int) string {
	to, from := quoteIdent(table), quoteIdent(stage)
	if s.cfg.Cluster != "" {
		to, from = quoteIdent(table+localSuffix)+" ON CLUSTER "+quoteIdent(s.cfg.Cluster), quoteIdent(stage+localSuffix)
	}
	cmds := make([]string, n)
	for i := range cmds {
		cmds[i] = fmt.Sprintf("ATTACH PARTITION ID {p%d:String} FROM %s", i, from)
	}
	return "ALTER TABLE " + to + " " + strings.Join(cmds, ", ")
}

// PartitionsWith lists the ids of table's partitions holding a row whose
// column is value (a scan of that column), sorted.
func (s *Store) PartitionsWith(ctx context.Context, table, column, value string) ([]string, error) {
	if !identRe.MatchString(table) || !identRe.MatchString(column) {
		return nil, fmt.Errorf("partitions of %q by %q: not identifiers", table, column)
	}
	rows, err := s.Conn.Query(ctx, "SELECT DISTINCT _partition_id FROM "+quoteIdent(table)+" WHERE "+quoteIdent(column)+" = {v:String} ORDER BY _partition_id",
		clickhouse.Named("v", value))
	if err != nil {
		return nil, fmt.Errorf("partitions of %s holding %s: %w", table, column, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("partitions of %s holding %s: %w", table, column, err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// DropStagingTable drops stage (its shard tables too in cluster mode); a
// table that is not there is no error.
func (s *Store) DropStagingTable(ctx context.Context, stage string) error {
	if !identRe.MatchString(stage) {
		return fmt.Errorf("staging table %q: not an identifier", stage)
	}
	stmts := []string{"DROP TABLE IF EXISTS " + quoteIdent(stage)} // not SYNC: it can hang in the embedded engine (docs/engine.md)
	if s.cfg.Cluster != "" {
		on := " ON CLUSTER " + quoteIdent(s.cfg.Cluster) + " SYNC"
		stmts = []string{"DROP TABLE IF EXISTS " + quoteIdent(stage) + on, "DROP TABLE IF EXISTS " + quoteIdent(stage+localSuffix) + on}
	}
	for _, q := range stmts {
		if err := s.Conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("drop staging table %s: %w", stage, err)
		}
	}
	return nil
}

// CompactStaging merges each partition of stage into one part (OPTIMIZE …
// FINAL; in cluster mode on the shards' tables) before its partitions are
// attached: a table read with FINAL then starts with one part per partition,
// where an INSERT … SELECT leaves several, each merged again by every read
// until the background merges catch up.
func (s *Store) CompactStaging(ctx context.Context, stage string) error {
	if !identRe.MatchString(stage) {
		return fmt.Errorf("staging table %q: not an identifier", stage)
	}
	q := "OPTIMIZE TABLE " + quoteIdent(stage) + " FINAL"
	if s.cfg.Cluster != "" {
		q = "OPTIMIZE TABLE " + quoteIdent(stage+localSuffix) + " ON CLUSTER " + quoteIdent(s.cfg.Cluster) + " FINAL"
	}
	if err := s.Conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("compact staging table %s: %w", stage, err)
	}
	return nil
}

// StagingTable is a staging table found in the store.
type StagingTable struct {
	Name    string
	Created time.Time // when its metadata was written (server time)
	Age     time.Duration
}

// StagingTables lists the staging tables whose names start with prefix (in
// cluster mode the Distributed ones, not their shard tables).
func (s *Store) StagingTables(ctx context.Context, prefix string) ([]StagingTable, error) {
	q := "SELECT name, metadata_modification_time, toInt64(dateDiff('second', metadata_modification_time, now())) FROM system.tables WHERE database = currentDatabase() AND startsWith(name, {p:String})"
	if s.cfg.Cluster != "" {
		q += " AND engine = 'Distributed'"
	}
	rows, err := s.Conn.Query(ctx, q+" ORDER BY name", clickhouse.Named("p", prefix))
	if err != nil {
		return nil, fmt.Errorf("staging tables: %w", err)
	}
	defer rows.Close()
	var out []StagingTable
	for rows.Next() {
		var t StagingTable
		var age int64
		if err := rows.Scan(&t.Name, &t.Created, &age); err != nil {
			return nil, fmt.Errorf("staging tables: %w", err)
		}
		t.Age = time.Duration(age) * time.Second
		out = append(out, t)
	}
	return out, rows.Err()
}
