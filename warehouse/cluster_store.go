package warehouse

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// clusterSettings are sent with every query in cluster mode (docs/cluster.md):
//   - distributed_product_mode = global: an IN or JOIN subquery over a
//     Distributed table inside a query over another one (metric SQL such as
//     `channel IN (SELECT channel FROM marketing_spend FINAL …)`) is computed
//     once by the node converge talks to and sent to the shards, instead of
//     being refused (the default, deny);
//   - distributed_foreground_insert = 1: an INSERT into a Distributed table
//     returns once the rows are on their shards, so what ingest reads right
//     after a load (identity resolution, run counts) is there, and a failed
//     shard fails the load instead of a background queue.
var clusterSettings = clickhouse.Settings{
	"distributed_product_mode":      "global",
	"distributed_foreground_insert": 1,
}

// checkCluster makes sure the server conn reaches defines the configured
// cluster.
func (s *Store) checkCluster(ctx context.Context, conn driver.Conn) error {
	rows, err := conn.Query(ctx, "SELECT DISTINCT cluster FROM system.clusters ORDER BY cluster")
	if err != nil {
		return fmt.Errorf("clickhouse.cluster: list the clusters of %s: %w", s.Describe(), err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return err
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if slices.Contains(names, s.cfg.Cluster) {
		return nil
	}
	known := "it defines none"
	if len(names) > 0 {
		known = "it defines " + strings.Join(names, ", ")
	}
	return fmt.Errorf("clickhouse.cluster: the server at %s has no cluster %q (system.clusters: %s); define it in the server's remote_servers, or unset clickhouse.cluster to use the server alone", s.Describe(), s.cfg.Cluster, known)
}

// MutationTarget is what ALTER TABLE names to mutate (DELETE, UPDATE) the
// data of table, a MergeTree table of the migrations: the table itself or,
// in cluster mode, its shards' tables on every node, since a Distributed
// table holds no data. table must be a valid identifier.
func (s *Store) MutationTarget(table string) string {
	if s.cfg.Cluster == "" {
		return quoteIdent(table)
	}
	return quoteIdent(table+localSuffix) + " ON CLUSTER " + quoteIdent(s.cfg.Cluster)
}

// dataVersions remembers DataVersion answers per set of tables.
type dataVersions struct {
	mu sync.Mutex
	m  map[string]dataVersion
}

// dataVersion is a DataVersion answer, remembered with the engine's count of
// writes when it was read.
type dataVersion struct {
	writes      uint64
	read        time.Time
	parts, rows uint64
	at          time.Time
}

// dataVersionReuse is how long the embedded store reuses a DataVersion answer
// while no statement has written (embedded.Engine.Writes): it bounds what
// the engine changes on its own, such as a TTL dropping old parts.
const dataVersionReuse = 10 * time.Second

// DataVersion sums the active parts of tables (the migrations' names): how
// many, their rows and the latest modification time. It changes whenever
// rows are inserted, replaced, merged or dropped in any of them; at is zero
// when they hold no part. In cluster mode it counts the parts of the shards'
// tables on every replica.
//
// The embedded store answers again from memory, without reading
// system.parts, while no statement that may write has started or ended in
// the engine since it last read them (for at most dataVersionReuse): only
// this process, and tools through its endpoint, reach that engine, and
// every statement they run is counted. A server may have other writers:
// a remote store reads system.parts every time.
func (s *Store) DataVersion(ctx context.Context, tables []string) (parts, rows uint64, at time.Time, err error) {
	if s.Engine == nil || s.dv == nil || s.cfg.Cluster != "" {
		return s.readDataVersion(ctx, tables)
	}
	key := strings.Join(tables, ",")
	w := s.Engine.Writes()
	s.dv.mu.Lock()
	v, ok := s.dv.m[key]
	s.dv.mu.Unlock()
	if ok && v.writes == w && time.Since(v.read) < dataVersionReuse {
		return v.parts, v.rows, v.at, nil
	}
	read := time.Now()
	if parts, rows, at, err = s.readDataVersion(ctx, tables); err != nil {
		return 0, 0, time.Time{}, err
	}
	s.dv.mu.Lock()
	if s.dv.m == nil || len(s.dv.m) > 1000 {
		s.dv.m = map[string]dataVersion{}
	}
	s.dv.m[key] = dataVersion{writes: w, read: read, parts: parts, rows: rows, at: at}
	s.dv.mu.Unlock()
	return parts, rows, at, nil
}

// readDataVersion is DataVersion read from system.parts.
func (s *Store) readDataVersion(ctx context.Context, tables []string) (parts, rows uint64, at time.Time, err error) {
	names := make([]string, 0, len(tables))
	for _, t := range tables {
		if identRe.MatchString(t) {
			if s.cfg.Cluster != "" {
				t += localSuffix
			}
			names = append(names, t)
		}
	}
	from := "system.parts"
	if s.cfg.Cluster != "" {
		from = "clusterAllReplicas(" + quoteString(s.cfg.Cluster) + ", system.parts)"
	}
	// Names are identifiers (no comma), so a comma-separated String carries them.
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{"db": s.Database, "tables": strings.Join(names, ",")}))
	err = s.Conn.QueryRow(ctx, "SELECT count(), sum(rows), max(modification_time) FROM "+from+
		" WHERE database = {db:String} AND active AND has(splitByChar(',', {tables:String}), table)").Scan(&parts, &rows, &at)
	if err != nil {
		return 0, 0, time.Time{}, err
	}
	if parts == 0 {
		at = time.Time{}
	}
	return parts, rows, at, nil
}
