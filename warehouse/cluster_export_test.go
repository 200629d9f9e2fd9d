package warehouse

import "context"

// WithCluster returns a Store on s's connection that behaves as in cluster
// mode on cluster, so tests can show what the embedded engine (which never
// runs cluster mode) answers to it. Do not Close it.
func (s *Store) WithCluster(cluster string) *Store {
	c := *s
	c.cfg.Cluster = cluster
	c.ownsEng = false
	return &c
}

// CheckCluster runs the check Open and Migrate make in cluster mode.
func (s *Store) CheckCluster(ctx context.Context) error { return s.checkCluster(ctx, s.Conn) }

// CheckBookkeeping runs Migrate's check of schema_migrations' engine.
func (s *Store) CheckBookkeeping(ctx context.Context) error { return s.checkBookkeeping(ctx) }

// BookkeepingDDL is the DDL of the migrations' own tables for cluster.
func BookkeepingDDL(cluster string) []string {
	b := bookkeeping(cluster)
	out := []string{b.create, b.lock, b.unlock}
	if b.sync != "" {
		out = append(out, b.sync)
	}
	return out
}
