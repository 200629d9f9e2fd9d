package warehouse_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// secret is in every app table's rows: no refusal may carry it.
const secret = "$argon2id$v=19$m=65536,t=3,p=2$c2VjcmV0$secret-hash"

// appStore is a migrated store with a row in each of converge's own tables
// and in orders.
func appStore(t *testing.T) *warehouse.Store {
	t.Helper()
	st := whtest.Store(t)
	ctx := context.Background()
	for _, q := range []string{
		"INSERT INTO users (email, role, password_hash) VALUES ('admin@x', 'admin', {s:String})",
		"INSERT INTO sessions (id_hash, email, ip, user_agent, created_at, last_seen) VALUES ({s:String}, 'admin@x', '10.0.0.1', 'agent', now64(3), now64(3))",
		"INSERT INTO api_tokens (token_id, scope, hash) VALUES ('t1', 'admin', {s:String})",
		"INSERT INTO audit_log (actor, action, detail) VALUES ('admin@x', 'login', {s:String})",
		"INSERT INTO console_history (user, at, query, duration_ms, rows, ok) VALUES ('admin@x', now64(3), {s:String}, 1, 1, true)",
		"INSERT INTO report_runs (run_id, schedule, report, trigger, scheduled_at, started_at, finished_at, status, attempts, emailed_to, error) VALUES ('r', 's', 'metric', 'manual', now64(3), now64(3), now64(3), 'ok', 1, [], {s:String})",
	} {
		if err := st.App.Exec(ctx, q, clickhouse.Named("s", secret)); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := st.Conn.Exec(ctx, "INSERT INTO orders (order_id, source, ordered_at, revenue, currency) VALUES ('o1', 'shop', now64(3), 12, 'EUR')"); err != nil {
		t.Fatal(err)
	}
	return st
}

// consoleEscapes are ways to read converge's own tables (and other
// sessions' queries) from the console: each must be refused, saying why.
// APP stands for the store's app database, MAIN for its main one. The
// spellings are those the console's lexer tests already try for function
// names (quotes, comments, Unicode spaces, case), applied to table names.
var consoleEscapes = []struct{ sql, want string }{
	// Named as before the app database existed.
	{"SELECT * FROM users", "table APP.users is converge's own (" + ownTables + "): the console cannot read it"},
	{"SELECT * FROM sessions", "table APP.sessions is converge's own"},
	{"SELECT hash FROM api_tokens", "table APP.api_tokens is converge's own"},
	{"SELECT * FROM audit_log", "table APP.audit_log is converge's own"},
	{"SELECT query FROM console_history", "table APP.console_history is converge's own"},
	{"SELECT * FROM report_runs", "table APP.report_runs is converge's own"},
	{"SELECT * FROM MAIN.users", "table APP.users is converge's own"},
	// Qualified, in every spelling.
	{"SELECT * FROM APP.users", "table APP.users is converge's own"},
	{"SELECT * FROM APP.sessions", "table APP.sessions is converge's own"},
	{"SELECT * FROM APP.api_tokens", "table APP.api_tokens is converge's own"},
	{"SELECT * FROM APP.audit_log", "table APP.audit_log is converge's own"},
	{"SELECT * FROM APP.console_history", "table APP.console_history is converge's own"},
	{"SELECT * FROM APP.report_runs", "table APP.report_runs is converge's own"},
	{"SELECT * FROM `APP`.`users`", "table APP.users is converge's own"},
	{`SELECT * FROM "APP"."users"`, "table APP.users is converge's own"},
	{"SELECT * FROM APP . users", "table APP.users is converge's own"},
	{"SELECT * FROM APP/**/./* x */users", "table APP.users is converge's own"},
	{"SELECT * FROM APP\u00a0.\u200busers", "table APP.users is converge's own"},
	{"SELECT * FROM APP\n\t.users", "table APP.users is converge's own"},
	{"SELECT * FROM UPPERAPP.users", "table UPPERAPP.users is converge's own"},
	{"SELECT * FROM APP.USERS", "table APP.USERS is converge's own"},
	{"SELECT 1 -- x\n, * FROM APP.users", "table APP.users is converge's own"},
	{"SELECT 1 /* a /* nested */ */, * FROM APP.users", "table APP.users is converge's own"},
	{"SELECT 1 # c\n, * FROM APP.users", "table APP.users is converge's own"},
	{"SELECT 'it''s', $a$x$a$, * FROM APP.users", "table APP.users is converge's own"},
	// Through the query's shapes.
	{"WITH u AS (SELECT * FROM APP.users) SELECT * FROM u", "table APP.users is converge's own"},
	{"SELECT * FROM (SELECT password_hash FROM APP.users)", "table APP.users is converge's own"},
	{"SELECT * FROM orders AS o JOIN APP.users AS u ON 1 = 1", "table APP.users is converge's own"},
	{"SELECT order_id FROM orders UNION ALL SELECT email FROM APP.users", "table APP.users is converge's own"},
	{"SELECT 1 WHERE 'admin@x' IN APP.users", "table APP.users is converge's own"},
	{"SELECT 1 WHERE 'admin@x' IN (SELECT email FROM APP.users)", "table APP.users is converge's own"},
	{"SELECT (SELECT max(password_hash) FROM APP.users)", "table APP.users is converge's own"},
	{"SELECT toUInt8((SELECT max(password_hash) FROM APP.users))", "table APP.users is converge's own"},
	{"(SELECT * FROM APP.users)", "table APP.users is converge's own"},
	// Table functions that read tables by name.
	{"SELECT * FROM merge('APP', '^users$')", "table function merge() is not allowed"},
	{"SELECT * FROM merge(REGEXP('_app$'), 'users')", "table function merge() is not allowed"},
	{"SELECT * FROM loop('APP', 'users') LIMIT 1", "table function loop() is not allowed"},
	{"SELECT * FROM mergeTreeIndex('APP', 'users', with_marks = true)", "table function mergeTreeIndex() is not allowed"},
	{"SELECT * FROM mergeTreeProjection('APP', 'users', 'p')", "table function mergeTreeProjection() is not allowed"},
	{"SELECT * FROM view(SELECT * FROM APP.users)", "table APP.users is converge's own"},
	{"SELECT * FROM view(SELECT 1)", "table function view() is not allowed: write the query as a subquery"},
	{"SELECT * FROM remote('localhost', APP.users)", "function remote() is not allowed"},
	{"SELECT * FROM remote('127.0.0.1', 'APP', 'users')", "function remote() is not allowed"},
	{"SELECT * FROM cluster('default', APP.users)", "function cluster() is not allowed"},
	{"SELECT * FROM clusterAllReplicas('default', 'APP', 'users')", "function clusterAllReplicas() is not allowed"},
	{"SELECT * FROM dictionary('d')", "function dictionary() is not allowed: it reads a dictionary"},
	{"SELECT dictGet('APP.d', 'password_hash', 'admin@x')", "function dictGet() is not allowed: it reads a dictionary"},
	{"SELECT joinGet('APP.j', 'v', 1)", "function joinGet() is not allowed"},
	// Other sessions' queries and the engine's users.
	{"SELECT query FROM system.query_log", "table system.query_log is not open to the console"},
	{"SELECT query FROM system.query_thread_log", "table system.query_thread_log is not open to the console"},
	{"SELECT query FROM system.processes", "table system.processes is not open to the console"},
	{"SELECT * FROM system.asynchronous_inserts", "table system.asynchronous_inserts is not open"},
	{"SELECT * FROM system.query_cache", "table system.query_cache is not open"},
	{"SELECT * FROM system.errors", "table system.errors is not open"},
	{"SELECT * FROM system.named_collections", "table system.named_collections is not open"},
	{"SELECT * FROM system.users", "table system.users is not open"},
	{"SELECT * FROM `system`.`processes`", "table system.processes is not open"},
	{"SELECT * FROM SYSTEM.PROCESSES", "table system.PROCESSES is not open"},
	{"SELECT * FROM merge('system', '^query_log$')", "table function merge() is not allowed"},
	{"SHOW PROCESSLIST", "SHOW PROCESSLIST is not allowed"},
	{"SHOW FULL PROCESSLIST", "SHOW PROCESSLIST is not allowed"},
	{"SHOW GRANTS", "SHOW GRANTS is not allowed"},
	{"SHOW USERS", "SHOW USERS is not allowed"},
	{"SHOW CREATE USER default", "SHOW CREATE USER is not allowed"},
	// EXPLAIN and DESCRIBE analyse (and fold scalar subqueries) too.
	{"EXPLAIN QUERY TREE SELECT (SELECT max(password_hash) FROM APP.users)", "table APP.users is converge's own"},
	{"EXPLAIN SYNTAX SELECT * FROM APP.users", "table APP.users is converge's own"},
	{"EXPLAIN PLAN SELECT * FROM merge('APP', 'users')", "table function merge() is not allowed"},
	{"DESCRIBE (SELECT toUInt8((SELECT max(password_hash) FROM APP.users)))", "table APP.users is converge's own"},
	{"DESCRIBE TABLE view(SELECT 1)", "table function view() is not allowed"},
	{"SHOW CREATE TABLE APP.users", "table APP.users is converge's own"},
}

func expand(s string, st *warehouse.Store) string {
	return strings.NewReplacer("UPPERAPP", strings.ToUpper(st.AppDatabase), "APP", st.AppDatabase, "MAIN", st.Database).Replace(s)
}

// TestBoundaryRefuses: every escape is refused before it runs, naming what
// it reads, and no refusal or error carries an app table's values.
func TestBoundaryRefuses(t *testing.T) {
	st := appStore(t)
	ctx := context.Background()
	for _, c := range consoleEscapes {
		sql, want := expand(c.sql, st), expand(c.want, st)
		res, err := warehouse.Console{}.Run(ctx, st, sql)
		var re *warehouse.RefusedError
		if !errors.As(err, &re) {
			t.Errorf("%q: got %v (%v), want a refusal", sql, err, res)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want it to say %q", sql, err, want)
		}
		if strings.Contains(err.Error(), "secret-hash") {
			t.Errorf("%q: the refusal carries a value: %v", sql, err)
		}
	}
}

// TestBoundaryThroughObjects: views, parameterized views, views of views,
// Merge, Buffer, Dictionary and materialized-view tables in the main
// database (which only a full-access user could create) are resolved by the
// analyzer: reading them is refused, naming the table behind and the view it
// is read through.
func TestBoundaryThroughObjects(t *testing.T) {
	st := appStore(t)
	ctx := context.Background()
	app := st.AppDatabase
	for _, q := range []string{
		"CREATE VIEW v_users AS SELECT * FROM " + app + ".users",
		"CREATE VIEW v_users2 AS SELECT email FROM v_users",
		"CREATE VIEW v_in AS SELECT order_id FROM orders WHERE order_id IN (SELECT email FROM " + app + ".users)",
		"CREATE VIEW pv_users AS SELECT * FROM " + app + ".users WHERE email = {e:String}",
		"CREATE VIEW v_procs AS SELECT query FROM system.processes",
		"CREATE TABLE mg AS " + app + ".users ENGINE = Merge('" + app + "', '^users$')",
		"CREATE TABLE buf AS " + app + ".users ENGINE = Buffer('" + app + "', 'users', 1, 10, 100, 10000, 1000000, 10000000, 100000000)",
		"CREATE MATERIALIZED VIEW mv ENGINE = MergeTree ORDER BY email AS SELECT email, password_hash FROM " + app + ".users",
		"CREATE DICTIONARY d (email String, password_hash String) PRIMARY KEY email SOURCE(CLICKHOUSE(DATABASE '" + app + "' TABLE 'users')) LAYOUT(COMPLEX_KEY_HASHED()) LIFETIME(0)",
	} {
		if err := st.Conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, c := range []struct{ sql, want string }{
		{"SELECT * FROM v_users", "table APP.users is converge's own (" + ownTables + "): the console cannot read it (read through the view MAIN.v_users)"},
		{"SELECT * FROM v_users2", "(read through the view MAIN.v_users) (read through the view MAIN.v_users2)"},
		{"SELECT * FROM orders WHERE order_id IN (SELECT email FROM v_users)", "read through the view MAIN.v_users"},
		{"SELECT * FROM v_in", "table APP.users is converge's own"},
		{"SELECT * FROM pv_users(e = 'admin@x')", "read through the view MAIN.pv_users"},
		{"SELECT * FROM v_procs", "table system.processes is not open to the console"},
		{"SELECT * FROM mg", "table MAIN.mg is a Merge table"},
		{"SELECT * FROM buf", "table MAIN.buf is a Buffer table"},
		{"SELECT * FROM mv", "table MAIN.mv is a MaterializedView table"},
		{"SELECT * FROM d", "table MAIN.d is a Dictionary table"},
	} {
		sql, want := expand(c.sql, st), expand(c.want, st)
		_, err := warehouse.Console{}.Run(ctx, st, sql)
		var re *warehouse.RefusedError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want a refusal saying %q", sql, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret-hash") {
			t.Errorf("%q: the refusal carries a value: %v", sql, err)
		}
	}
	// Another database is out of reach too.
	other := st.Database + "_other"
	if err := st.Conn.Exec(ctx, "CREATE DATABASE "+other); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+other) })
	if err := st.Conn.Exec(ctx, "CREATE TABLE "+other+".t (a UInt8) ENGINE = Memory"); err != nil {
		t.Fatal(err)
	}
	_, err := warehouse.Console{}.Run(ctx, st, "SELECT * FROM "+other+".t")
	if want := "table " + other + ".t is in database " + other + ": the console reads database " + st.Database; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("other database: %v, want %q", err, want)
	}
}

// TestBoundaryAnalyzerAlone: the analyzer's list refuses an app table by
// itself, without the lexer's first step (defence in depth).
func TestBoundaryAnalyzerAlone(t *testing.T) {
	st := appStore(t)
	err := st.AnalyzeBoundary(context.Background(), "SELECT * FROM "+st.AppDatabase+".users")
	var re *warehouse.RefusedError
	if !errors.As(err, &re) || re.Table != st.AppDatabase+".users" || !strings.Contains(err.Error(), "is converge's own") {
		t.Fatalf("got %v", err)
	}
}

// TestBoundaryAllows: what analysts legitimately run still runs, including a
// CTE named like an app table, the names of the app database's tables, and
// the views the migrations create.
func TestBoundaryAllows(t *testing.T) {
	st := appStore(t)
	ctx := context.Background()
	for _, c := range []struct{ sql, want string }{
		{"SELECT count() FROM orders", "1"},
		{"WITH users AS (SELECT order_id FROM orders) SELECT count() FROM users", "1"},
		{"SELECT count() FROM (SELECT 1 AS users) AS sessions", "1"},
		{"SELECT 'APP.users'", "APP.users"},
		{"SELECT count() > 0 FROM system.tables WHERE database = currentDatabase()", "1"},
		{"SELECT count() FROM system.tables WHERE database = 'APP' AND name = 'users'", "1"},
		{"SELECT count() > 0 FROM system.columns WHERE database = currentDatabase() AND table = 'orders'", "1"},
		{"SELECT count() > 0 FROM information_schema.tables WHERE table_schema = currentDatabase()", "1"},
		{"SELECT count() > 0 FROM INFORMATION_SCHEMA.COLUMNS", "1"},
		{"SELECT value FROM system.settings WHERE name = 'readonly'", "1"},
		{"SELECT count() FROM numbers(3)", "3"},
		{"SELECT count() FROM orders_resolved", "1"},
		{"SELECT count() FROM identity_map", "0"},
		{"SELECT count() FROM orders WHERE order_id IN (SELECT order_id FROM orders_resolved)", "1"},
		{"SELECT count() FROM attribution(from = toDateTime64('2020-01-01', 3, 'UTC'), to = toDateTime64('2030-01-01', 3, 'UTC'), tz = 'UTC', grain = 'month', " +
			"week_mode = 1, fy_shift = 0, default_margin = 0.3, model = 'last_touch', level = 'channel', lookback_days = 30, half_life_days = 7)", "0"},
		{"SHOW TABLES LIKE 'orders'", "orders"},
		{"SHOW CREATE TABLE orders", ""},
		{"DESCRIBE (SELECT order_id FROM orders)", "order_id|String|||||"},
		{"EXPLAIN SYNTAX SELECT 1", "SELECT 1"},
	} {
		sql := expand(c.sql, st)
		res, err := warehouse.Console{}.Run(ctx, st, sql)
		if err != nil {
			t.Errorf("%q: %v", sql, err)
			continue
		}
		if c.want == "" {
			continue
		}
		if len(res.Rows) == 0 {
			t.Errorf("%q: no rows", sql)
			continue
		}
		cells := make([]string, len(res.Rows[0]))
		for i, v := range res.Rows[0] {
			cells[i] = strings.TrimSpace(toText(v))
		}
		if got := strings.Join(cells, "|"); got != expand(c.want, st) {
			t.Errorf("%q: first row %q, want %q", sql, got, expand(c.want, st))
		}
	}
}

// ownTables is how a refusal lists converge's own tables.
var ownTables = strings.Join(warehouse.AppTables, ", ")
