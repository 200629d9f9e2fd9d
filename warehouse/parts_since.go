package warehouse

import (
	"context"
	"fmt"
	"slices"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// PartsSince is NewParts, and whether the rows written since can be told
// apart from the older ones: pure is false when an active part spans blocks
// at or below since and above it (a merge joined old parts with new ones),
// since a ReplacingMergeTree merge may have dropped, in it, the older
// versions of the keys written since. When pure, every row version at or
// below since is still in a part that is not new (merges among old parts
// keep each key's newest version as of since). The parts are sorted.
func (s *Store) PartsSince(ctx context.Context, table string, since map[string]int64) (parts []string, pure bool, err error) {
	from, name, host := "system.parts", table, "''"
	if s.cfg.Cluster != "" {
		from, name, host = "clusterAllReplicas("+quoteString(s.cfg.Cluster)+", system.parts)", table+localSuffix, "hostName()"
	}
	q := "SELECT DISTINCT if(" + host + " = '', partition_id, concat(" + host + ", '/', partition_id)) AS p, name, min_block_number, max_block_number FROM " + from +
		" WHERE database = currentDatabase() AND active AND table = {t:String}"
	rows, err := s.Conn.Query(ctx, q, clickhouse.Named("t", name))
	if err != nil {
		return nil, false, fmt.Errorf("new parts of %s: %w", table, err)
	}
	defer rows.Close()
	pure = true
	for rows.Next() {
		var p, part string
		var lo, hi int64
		if err := rows.Scan(&p, &part, &lo, &hi); err != nil {
			return nil, false, fmt.Errorf("new parts of %s: %w", table, err)
		}
		m, ok := since[p]
		if ok && hi <= m {
			continue
		}
		parts = append(parts, part)
		if ok && lo <= m {
			pure = false
		}
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("new parts of %s: %w", table, err)
	}
	slices.Sort(parts)
	return parts, pure, nil
}
