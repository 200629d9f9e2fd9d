package warehouse_test

import (
	"context"
	"errors"
	"github.com/ClickHouse/clickhouse-go/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

func TestMain(m *testing.M) { os.Exit(whtest.Main(m)) }

func TestMigrateIdempotent(t *testing.T) {
	s := whtest.EmptyStore(t)
	ctx := context.Background()
	all, err := warehouse.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 14 {
		t.Fatalf("only %d migrations embedded", len(all))
	}
	applied, err := s.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != len(all) {
		t.Fatalf("first run applied %d of %d", len(applied), len(all))
	}
	again, err := s.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Fatalf("second run applied %d migrations", len(again))
	}
	var recorded uint64
	if err := s.Conn.QueryRow(ctx, "SELECT count() FROM schema_migrations").Scan(&recorded); err != nil {
		t.Fatal(err)
	}
	if int(recorded) != len(all) {
		t.Fatalf("schema_migrations has %d rows, want %d", recorded, len(all))
	}
	for _, table := range []string{"customers", "identities", "orders", "marketing_spend", "touchpoints", "tickets",
		"survey_responses", "consents", "rewards", "ingest_runs", "quarantine", "customer_value"} {
		var n uint64
		if err := s.Conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
			clickhouse.Named("t", table)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("table %s missing", table)
		}
	}
}

func TestMigrationEditedAfterApply(t *testing.T) {
	s := whtest.Store(t)
	ctx := context.Background()
	// Pretend the recorded checksum of the first migration differs from the file.
	if err := s.Conn.Exec(ctx, "ALTER TABLE schema_migrations UPDATE checksum = 'deadbeefdeadbeefdeadbeef' WHERE version = 1 SETTINGS mutations_sync = 2"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Migrate(ctx)
	if err == nil || !strings.Contains(err.Error(), "changed after it was applied") || !strings.Contains(err.Error(), "0001_") {
		t.Fatalf("err = %v", err)
	}
}

func TestMigrateConcurrentRefused(t *testing.T) {
	s := whtest.EmptyStore(t)
	ctx := context.Background()
	// Hold the lock as another process would, then try.
	if err := s.Conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC'), applied_by String) ENGINE = MergeTree ORDER BY version"); err != nil {
		t.Fatal(err)
	}
	if err := s.Conn.Exec(ctx, "CREATE TABLE schema_migrations_lock (holder String, since DateTime64(3, 'UTC')) ENGINE = Memory"); err != nil {
		t.Fatal(err)
	}
	if err := s.Conn.Exec(ctx, "INSERT INTO schema_migrations_lock VALUES ('other-host pid 42', now64(3))"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Migrate(ctx)
	if !errors.Is(err, warehouse.ErrMigrationLocked) || !strings.Contains(err.Error(), "other-host pid 42") || !strings.Contains(err.Error(), "--force-unlock") {
		t.Fatalf("err = %v", err)
	}
	if err := s.ForceUnlock(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("after unlock: %v", err)
	}

	// Two migrations at once in one database: exactly one wins, the other is refused or finds nothing to do.
	s2 := whtest.EmptyStore(t)
	var wg sync.WaitGroup
	results := make([]error, 2)
	counts := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			applied, err := s2.Migrate(ctx)
			results[i], counts[i] = err, len(applied)
		}()
	}
	wg.Wait()
	all, _ := warehouse.Migrations()
	total := counts[0] + counts[1]
	for _, err := range results {
		if err != nil && !errors.Is(err, warehouse.ErrMigrationLocked) {
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if total != len(all) {
		t.Fatalf("concurrent migrations applied %d in all, want %d exactly once (%v)", total, len(all), results)
	}
}

func TestBatchWriter(t *testing.T) {
	s := whtest.Store(t)
	ctx := context.Background()
	w, err := s.NewBatchWriter("marketing_spend", []string{"date", "channel", "campaign", "spend", "currency", "source"}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 2500 {
		if err := w.Append(ctx, day.AddDate(0, 0, i%365), "search", "c"+string(rune('a'+i%26)), "12.5000", "EUR", "test"); err != nil {
			t.Fatal(err)
		}
	}
	if w.Sent() != 2000 {
		t.Fatalf("sent %d before flush, want 2000 (batches of 1000)", w.Sent())
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	var n uint64
	var total string
	if err := s.Conn.QueryRow(ctx, "SELECT count(), toString(sum(spend)) FROM marketing_spend").Scan(&n, &total); err != nil {
		t.Fatal(err)
	}
	if n != 2500 || total != "31250" {
		t.Fatalf("count %d sum %s", n, total)
	}
	if _, err := s.NewBatchWriter("orders; DROP TABLE x", nil, 0); err == nil {
		t.Fatal("invalid table name accepted")
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		cfg  warehouse.Config
		want string
	}{
		{warehouse.Config{}, "data_dir"},
		{warehouse.Config{DataDir: "x", Database: "bad-name"}, "clickhouse.database"},
		{warehouse.Config{Addr: "nohostport"}, "clickhouse.addr"},
		{warehouse.Config{Addr: "h:9000", Protocol: "grpc"}, "clickhouse.protocol"},
		{warehouse.Config{DataDir: "x", EnginePool: 1000}, "engine.pool"},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want it to name %s", c.cfg, err, c.want)
		}
	}
}

func TestRemoteUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := warehouse.Open(ctx, warehouse.Config{Addr: "127.0.0.1:1", DialTimeout: time.Second}, nil)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("err = %v", err)
	}
}

// TestMigrateMovesAppTables: a store migrated before the app database
// existed gets converge's own tables moved there, rows and all, by its next
// Migrate; the main database keeps none of them; a second Migrate has
// nothing to move; a table found in both databases stops Migrate, naming it.
func TestMigrateMovesAppTables(t *testing.T) {
	s := whtest.LegacyStore(t)
	ctx := context.Background()
	count := func(db, table string) (n uint64, exists bool) {
		var tables uint64
		if err := s.Conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
			clickhouse.Named("db", db), clickhouse.Named("t", table)).Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables == 0 {
			return 0, false
		}
		if err := s.Conn.QueryRow(ctx, "SELECT count() FROM "+db+"."+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n, true
	}
	inserts := map[string]string{
		"users":           "INSERT INTO users (email, role, password_hash) VALUES ('ann@x', 'admin', 'h1'), ('bob@x', 'analyst', 'h2')",
		"sessions":        "INSERT INTO sessions (id_hash, email, created_at, last_seen) VALUES ('s1', 'ann@x', now64(3), now64(3))",
		"api_tokens":      "INSERT INTO api_tokens (token_id, scope, hash) VALUES ('t1', 'read', 'h')",
		"audit_log":       "INSERT INTO audit_log (actor, action) VALUES ('ann@x', 'login'), ('bob@x', 'login'), ('ann@x', 'export')",
		"console_history": "INSERT INTO console_history (user, at, query, duration_ms, rows, ok) VALUES ('bob@x', now64(3), 'SELECT 1', 1, 1, true)",
		"report_runs":     "INSERT INTO report_runs (run_id, schedule, report, trigger, scheduled_at, started_at, finished_at, status, attempts, emailed_to) VALUES ('r', 's', 'metric', 'manual', now64(3), now64(3), now64(3), 'ok', 1, [])",
		"login_attempts":  "INSERT INTO login_attempts (at, email, ip, ok) VALUES (now64(3), 'ann@x', '10.0.0.1', false)",
	}
	want := map[string]uint64{}
	for _, table := range warehouse.AppTables {
		q, ok := inserts[table]
		if !ok {
			t.Fatalf("no rows for app table %s: add them to this test", table)
		}
		if err := s.Conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		want[table], _ = count(s.Database, table)
		if _, inApp := count(s.AppDatabase, table); inApp {
			t.Fatalf("legacy store has %s in the app database", table)
		}
	}
	applied, err := s.Migrate(ctx)
	if err != nil || len(applied) != 0 {
		t.Fatalf("migrate: %d applied, %v", len(applied), err)
	}
	for _, table := range warehouse.AppTables {
		if _, inMain := count(s.Database, table); inMain {
			t.Errorf("%s still in the main database", table)
		}
		if n, ok := count(s.AppDatabase, table); !ok || n != want[table] {
			t.Errorf("%s in the app database: %d rows (exists %v), want %d", table, n, ok, want[table])
		}
	}
	// The app connection reads them where they went.
	var hash string
	if err := s.App.QueryRow(ctx, "SELECT password_hash FROM users FINAL WHERE email = 'bob@x'").Scan(&hash); err != nil || hash != "h2" {
		t.Fatalf("users after the move: %q, %v", hash, err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	// A table in both databases is for a person to sort out.
	if err := s.Conn.Exec(ctx, "CREATE TABLE "+s.Database+".sessions AS "+s.AppDatabase+".sessions"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Migrate(ctx)
	if err == nil || !strings.Contains(err.Error(), "table sessions is in both "+s.Database+" and "+s.AppDatabase) {
		t.Fatalf("table in both databases: %v", err)
	}
}

// TestMigrationsKeepDatabasesApart: every migration statement runs in one
// database, and none of the main database reads an app table (a view over
// users there would put it back in the console's reach).
func TestMigrationsKeepDatabasesApart(t *testing.T) {
	cases := []struct{ sql, err string }{
		{"CREATE VIEW v AS SELECT email FROM users", "reads users, one of converge's own tables"},
		{"INSERT INTO orders SELECT * FROM audit_log", "reads audit_log, one of converge's own tables"},
		{"INSERT INTO users SELECT * FROM orders", "reads orders from the app database"},
		{"RENAME TABLE users TO people", "renaming an application table"},
		{"CREATE TABLE users2 (a UInt8) ENGINE = MergeTree ORDER BY a; ALTER TABLE users ADD COLUMN x UInt8", "runs in the other"},
	}
	for _, c := range cases {
		ms := []warehouse.Migration{{Version: 1, Name: "m", SQL: c.sql}}
		err := warehouse.PlanError(ms)
		if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "sql/schema/0001_m.sql") {
			t.Errorf("%q: %v, want %q", c.sql, err, c.err)
		}
	}
	ms, err := warehouse.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if err := warehouse.PlanError(ms); err != nil {
		t.Fatal(err)
	}
}
