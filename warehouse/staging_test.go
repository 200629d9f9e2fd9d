package warehouse_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// TestStagingTables: a staging table is made like its table (keys, indices,
// engine), its partitions attach to the table whole, an interrupted attach is
// finished by attaching what PartitionsWith does not list (each row once),
// and dropping the staging table leaves the table as it was.
func TestStagingTables(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	count := func(q string) uint64 {
		t.Helper()
		var n uint64
		if err := st.Conn.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := st.CreateStagingTable(ctx, "ingest_stage_orders_a", "orders"); err != nil {
		t.Fatal(err)
	}
	var same uint64
	if err := st.Conn.QueryRow(ctx, `SELECT count() FROM system.tables AS s, system.tables AS o
		WHERE s.database = currentDatabase() AND o.database = currentDatabase() AND s.name = 'ingest_stage_orders_a' AND o.name = 'orders'
		AND s.engine_full = o.engine_full AND s.sorting_key = o.sorting_key AND s.partition_key = o.partition_key`).Scan(&same); err != nil || same != 1 {
		t.Fatalf("the staging table is not made like orders (%v)", err)
	}
	if err := st.Conn.Exec(ctx, `INSERT INTO ingest_stage_orders_a (order_id, ordered_at, revenue, currency, source, ingest_run_id)
		SELECT toString(number), toDateTime64('2024-01-01', 3) + toIntervalDay(number * 10), 1, 'EUR', 's', 'run-a' FROM numbers(90)`); err != nil {
		t.Fatal(err)
	}
	// a second load into the same months leaves a second part in each; compacting merges them
	if err := st.Conn.Exec(ctx, `INSERT INTO ingest_stage_orders_a (order_id, ordered_at, revenue, currency, source, ingest_run_id)
		SELECT toString(number), toDateTime64('2024-01-01', 3) + toIntervalDay(number * 10), 1, 'EUR', 's', 'run-a' FROM numbers(90)`); err != nil {
		t.Fatal(err)
	}
	parts := "SELECT count() FROM system.parts WHERE database = currentDatabase() AND table = 'ingest_stage_orders_a' AND active"
	if n := count(parts); n != 60 {
		t.Fatalf("%d parts after two loads into 30 months, want 60", n)
	}
	if err := st.CompactStaging(ctx, "ingest_stage_orders_a"); err != nil {
		t.Fatal(err)
	}
	if n, rows := count(parts), count("SELECT count() FROM ingest_stage_orders_a"); n != 30 || rows != 90 {
		t.Fatalf("compacted: %d parts, %d rows; want 30 parts (one per month) and the 90 orders (the repeats replaced)", n, rows)
	}
	if err := st.CompactStaging(ctx, "a;b"); err == nil {
		t.Error("CompactStaging took a name that is not an identifier")
	}
	ids, err := st.StagedPartitions(ctx, "ingest_stage_orders_a")
	if err != nil || len(ids) != 30 || ids[0] != "202401" {
		t.Fatalf("partitions %v (%v), want the 30 months from 202401", ids, err)
	}
	// 7 of them, then the others as a resumed commit finds them: each row once
	if err := st.AttachPartitions(ctx, "ingest_stage_orders_a", "orders", ids[:7]); err != nil {
		t.Fatal(err)
	}
	n := count("SELECT count() FROM orders")
	done, err := st.PartitionsWith(ctx, "orders", "ingest_run_id", "run-a")
	if err != nil || !slices.Equal(done, ids[:7]) || n == 0 || n >= 90 {
		t.Fatalf("after 7 partitions: %d rows, partitions holding the run %v (%v)", n, done, err)
	}
	rest := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return slices.Contains(done, id) })
	if err := st.AttachPartitions(ctx, "ingest_stage_orders_a", "orders", append(rest, "209912")); err != nil {
		t.Fatal(err)
	}
	if n := count("SELECT count() FROM orders"); n != 90 {
		t.Errorf("%d rows in orders, want 90 (each once)", n)
	}
	tabs, err := st.StagingTables(ctx, "ingest_stage_")
	if err != nil || len(tabs) != 1 || tabs[0].Name != "ingest_stage_orders_a" {
		t.Fatalf("staging tables %v (%v)", tabs, err)
	}
	if err := st.DropStagingTable(ctx, "ingest_stage_orders_a"); err != nil {
		t.Fatal(err)
	}
	if err := st.DropStagingTable(ctx, "ingest_stage_orders_a"); err != nil {
		t.Errorf("dropping it again: %v", err)
	}
	if tabs, _ := st.StagingTables(ctx, "ingest_stage_"); len(tabs) != 0 {
		t.Errorf("staging tables after the drop: %v", tabs)
	}
	if n := count("SELECT count() FROM orders FINAL"); n != 90 {
		t.Errorf("%d rows in orders after the staging table is gone, want 90", n)
	}
	for _, bad := range []string{"a;b", "x y"} {
		if err := st.CreateStagingTable(ctx, bad, "orders"); err == nil {
			t.Errorf("staging table %q accepted", bad)
		}
	}
}

// TestClusterStagingStatements: in cluster mode a staging table is a
// Replicated shard table with a Keeper path of its own, made like the
// table's shard table, under a Distributed table sharded as the table is; its
// partitions attach on the shards' tables ON CLUSTER. Every statement parses.
func TestClusterStagingStatements(t *testing.T) {
	local := "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/converge/orders', '{replica}', loaded_at) PARTITION BY toYYYYMM(ordered_at) ORDER BY (source, order_id) SETTINGS index_granularity = 8192"
	dist := "Distributed('converge', 'converge', 'orders_local', cityHash64(source, order_id))"
	stmts, err := warehouse.ClusterStagingStatements("converge", "ingest_stage_orders_x", "orders", local, dist)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"CREATE TABLE IF NOT EXISTS `ingest_stage_orders_x_local` ON CLUSTER `converge` AS `orders_local` ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/ingest_stage_orders_x', '{replica}', loaded_at) PARTITION BY toYYYYMM(ordered_at) ORDER BY (source, order_id) SETTINGS index_granularity = 8192",
		"CREATE TABLE IF NOT EXISTS `ingest_stage_orders_x` ON CLUSTER `converge` AS `ingest_stage_orders_x_local` ENGINE = Distributed('converge', 'converge', 'ingest_stage_orders_x_local', cityHash64(source, order_id))",
	}
	if !slices.Equal(stmts, want) {
		t.Fatalf("statements\n%s\nwant\n%s", strings.Join(stmts, "\n"), strings.Join(want, "\n"))
	}
	for _, c := range []struct{ local, dist string }{
		{"ReplacingMergeTree(loaded_at) ORDER BY (source, order_id)", dist},
		{local, "Distributed('converge', 'converge', 'refunds_local', rand())"},
	} {
		if _, err := warehouse.ClusterStagingStatements("converge", "s", "orders", c.local, c.dist); err == nil {
			t.Errorf("engines %q / %q accepted", c.local, c.dist)
		}
	}
	st := whtest.EmptyStore(t)
	attach := st.WithCluster("converge").AttachStatement("ingest_stage_orders_x", "orders", 2)
	if attach != "ALTER TABLE `orders_local` ON CLUSTER `converge` ATTACH PARTITION ID {p0:String} FROM `ingest_stage_orders_x_local`, ATTACH PARTITION ID {p1:String} FROM `ingest_stage_orders_x_local`" {
		t.Errorf("attach statement %s", attach)
	}
	for _, q := range append(stmts, strings.NewReplacer("{p0:String}", "'202401'", "{p1:String}", "'202402'").Replace(attach)) {
		var formatted string
		if err := st.Conn.QueryRow(clickhouse.Context(context.Background(), clickhouse.WithParameters(clickhouse.Parameters{"q": escapeParam(q)})),
			"SELECT formatQuery({q:String})").Scan(&formatted); err != nil {
			t.Errorf("does not parse: %v\n%s", err, q)
		}
	}
}
