package main

import (
	"os"
	"path/filepath"
	"testing"
)

// clickhouse.cluster is read from the file and the environment (trimmed);
// TestConfigErrors has its refusals.
func TestClusterConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte("clickhouse:\n  addr: ch1:8123\n  cluster: prod-eu.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w := cfg.warehouseConfig(); w.Cluster != "prod-eu.1" || w.Addr != "ch1:8123" {
		t.Fatalf("from the file: cluster %q addr %q", w.Cluster, w.Addr)
	}
	t.Setenv("CONVERGE_CLICKHOUSE_CLUSTER", " converge ")
	if cfg, err = loadConfig(file, nil); err != nil || cfg.ClickHouse.Cluster != "converge" {
		t.Fatalf("the environment over the file: %+v, %v", cfg, err)
	}
}
