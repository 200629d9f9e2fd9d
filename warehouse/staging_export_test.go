package warehouse

// ClusterStagingStatements exposes the cluster DDL of a staging table.
func ClusterStagingStatements(cluster, stage, like, localEngine, distEngine string) ([]string, error) {
	return clusterStagingStatements(cluster, stage, like, localEngine, distEngine)
}

// MoveStatement exposes the statement MovePartitions runs for n partitions.
func (s *Store) MoveStatement(stage, table string, n int) string {
	return s.moveStatement(stage, table, n)
}
