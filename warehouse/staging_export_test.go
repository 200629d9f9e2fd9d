package warehouse

// ClusterStagingStatements exposes the cluster DDL of a staging table.
func ClusterStagingStatements(cluster, stage, like, localEngine, distEngine string) ([]string, error) {
	return clusterStagingStatements(cluster, stage, like, localEngine, distEngine)
}

// AttachStatement exposes the statement AttachPartitions runs for n partitions.
func (s *Store) AttachStatement(stage, table string, n int) string {
	return s.attachStatement(stage, table, n)
}
