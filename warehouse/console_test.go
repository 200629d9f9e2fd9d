package warehouse_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

func TestConsoleRefuses(t *testing.T) {
	cases := []struct{ sql, want string }{
		{"INSERT INTO orders (order_id) VALUES ('x')", "INSERT statements are not allowed"},
		{"ALTER TABLE orders DELETE WHERE 1", "ALTER statements are not allowed"},
		{"DROP TABLE orders", "DROP statements are not allowed"},
		{"SYSTEM FLUSH LOGS", "SYSTEM statements are not allowed"},
		{"CREATE TABLE x (a UInt8) ENGINE = Memory", "CREATE statements are not allowed"},
		{"TRUNCATE TABLE orders", "TRUNCATE statements are not allowed"},
		{"SET max_memory_usage = 0", "SET statements are not allowed"},
		{"EXISTS orders", "EXISTS statements are not allowed"},
		{"/* SELECT */ INSERT INTO orders (order_id) VALUES ('x')", "INSERT statements"},
		{"-- SELECT\nDELETE FROM orders WHERE 1", "DELETE statements"},
		{"(SHOW TABLES)", "SHOW statements are not allowed"},
		{"$$SELECT$$", "must start with one of SELECT"},
		{"EXPLAIN AST INSERT INTO orders (order_id) VALUES ('x')", "EXPLAIN INSERT is not allowed"},
		{"EXPLAIN PIPELINE header = 1 ALTER TABLE orders DELETE WHERE 1", "EXPLAIN ALTER is not allowed"},
		{"SELECT * FROM file('/etc/passwd', 'LineAsString')", "function file() is not allowed: it reads files"},
		{"SELECT length(file('/etc/hostname'))", "function file() is not allowed"},
		{"SELECT * FROM url('http://example.com/x.csv', CSV)", "function url() is not allowed: it reads URLs"},
		{"SELECT * FROM remote('127.0.0.1', system.one)", "function remote() is not allowed: it queries other servers"},
		{"SELECT * FROM remoteSecure('127.0.0.1', system.one)", "function remoteSecure()"},
		{"SELECT * FROM clusterAllReplicas('default', system.one)", "function clusterAllReplicas()"},
		{"SELECT * FROM s3('https://bucket.s3.amazonaws.com/x.csv')", "function s3() is not allowed: it reads object storage"},
		{"SELECT * FROM s3Cluster('c', 'https://b/x.csv')", "function s3Cluster()"},
		{"SELECT * FROM icebergS3('https://b/t')", "function icebergS3()"},
		{"SELECT * FROM mysql('h:3306', 'db', 't', 'u', 'p')", "function mysql() is not allowed: it queries another database"},
		{"SELECT * FROM postgresql('h:5432', 'db', 't', 'u', 'p')", "function postgresql()"},
		{"SELECT * FROM executable('x.sh', TSV, 'a String')", "function executable() is not allowed: it runs programs"},
		{"SELECT 1; SELECT 2", "one statement at a time: a second statement starts at offset 10 (SELECT 2…)"},
		{"SELECT 1;\nDROP TABLE orders;", "a second statement starts at offset 10 (DROP TABLE orders;…)"},
		{"SELECT 1 SETTINGS max_memory_usage = 0", "SETTINGS clause (max_memory_usage = …) is not allowed"},
		{"SELECT x FROM (SELECT 1 AS x SETTINGS readonly = 0)", "SETTINGS clause (readonly = …)"},
		{"SELECT 1 settings\n\tmax_threads=1", "SETTINGS clause (max_threads = …)"},
		{"SELECT 1 SETTINGS /* c */ \"max_threads\" = 1", "SETTINGS clause (max_threads = …)"},
		{"SELECT 1 INTO OUTFILE '/tmp/converge-console.csv'", "INTO OUTFILE is not allowed"},
		{"SELECT 1 FORMAT JSON", "FORMAT JSON is not allowed"},
		// Spellings that must not hide a function call.
		{"SELECT FILE ('/etc/passwd')", "function FILE() is not allowed"},
		{"SELECT `file`('/etc/hostname')", "function file() is not allowed"},
		{`SELECT "url"('http://example.com/')`, "function url() is not allowed"},
		{"SELECT file/**/('/etc/hostname')", "function file() is not allowed"},
		{"SELECT file\u00a0('/etc/hostname')", "function file() is not allowed"},
		{"SELECT file\u200b('/etc/hostname')", "function file() is not allowed"},
		{"SELECT file\n\t('/etc/hostname')", "function file() is not allowed"},
		{"SELECT 1.file('/etc/hostname')", "function file() is not allowed"},
		{"SELECT 'a' || file('/etc/hostname') -- 'b", "function file() is not allowed"},
		{"SELECT $a$x$a$ || file('/etc/hostname')", "function file() is not allowed"},
		{"SELECT 'it''s', file('/etc/hostname')", "function file() is not allowed"},
		{`SELECT 'it\'s', file('/etc/hostname')`, "function file() is not allowed"},
		{"SELECT 1 /* a /* nested */ still a comment */, file('/etc/hostname')", "function file() is not allowed"},
		{"SELECT 1 # comment\n, file('/etc/hostname')", "function file() is not allowed"},
		{"SELECT 1 /* unclosed", "cannot read the statement: comment starting at offset 9 is not closed"},
		{"SELECT 'unclosed", "cannot read the statement: string starting at offset 7 is not closed"},
		{"SELECT 1 #x", "cannot read the statement"},
		{"  ;  ", "empty statement"},
	}
	for _, c := range cases {
		_, err := warehouse.CheckReadOnly(c.sql)
		var re *warehouse.RefusedError
		if !errors.As(err, &re) {
			t.Errorf("%q: got %v, want a refusal", c.sql, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want it to say %q", c.sql, err, c.want)
		}
	}
}

// TestConsoleAllows runs statements the console must accept through the
// engine, including names and strings that look like refused ones.
func TestConsoleAllows(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	if err := st.Conn.Exec(ctx, "CREATE TABLE links (url String, file String, `remote` UInt8, `s3` String, settings String, format String) ENGINE = Memory"); err != nil {
		t.Fatal(err)
	}
	if err := st.Conn.Exec(ctx, "INSERT INTO links VALUES ('https://x.org', 'a.csv', 1, 'b', 'c', 'd')"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		sql  string
		want string // the first row, cells joined with |
	}{
		{"SELECT 'file(' AS s", "file("},
		{"SELECT 'remote(''x'')', $$url('y')$$", "remote('x')|url('y')"},
		{"SELECT 1 -- file('/etc/passwd')", "1"},
		{"SELECT 1 /* remote('x') /* nested */ s3('y') */", "1"},
		{"SELECT url, file, `remote`, \"s3\", settings, format FROM links", "https://x.org|a.csv|1|b|c|d"},
		{"SELECT format FROM links WHERE settings = 'c' ORDER BY format DESC", "d"},
		{"select count() from links;", "1"},
		{"SELECT count() FROM links ;  ; -- done", "1"},
		{"WITH t AS (SELECT 2 AS x) SELECT x FROM t", "2"},
		{"(SELECT 1)", "1"},
		{"SHOW TABLES LIKE 'links'", "links"},
		{"DESCRIBE TABLE links", "url|String|||||"},
		{"DESC links", "url|String|||||"},
		{"EXPLAIN SYNTAX SELECT 1", "SELECT 1"},
		{"SELECT URLHash('x') > 0", "1"},
		{"SELECT value FROM system.settings WHERE name = 'readonly'", "1"},
	}
	for _, c := range cases {
		res, err := warehouse.Console{}.Run(ctx, st, c.sql)
		if err != nil {
			t.Errorf("%q: %v", c.sql, err)
			continue
		}
		if len(res.Rows) == 0 {
			t.Errorf("%q: no rows", c.sql)
			continue
		}
		cells := make([]string, len(res.Rows[0]))
		for i, v := range res.Rows[0] {
			cells[i] = strings.TrimSpace(toText(v))
		}
		if got := strings.Join(cells, "|"); got != c.want {
			t.Errorf("%q: first row %q, want %q", c.sql, got, c.want)
		}
	}
}

func toText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		if x {
			return "true"
		}
		return "false"
	}
	return fmt.Sprint(v)
}

// TestConsoleEngineRefusesWrites bypasses the console's own checks: the
// engine still refuses writes, DDL and setting changes because the query
// runs with readonly=1, and the store's next ordinary query is not read-only.
func TestConsoleEngineRefusesWrites(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	for _, q := range []string{
		"INSERT INTO orders (order_id, source, ordered_at, revenue, currency) VALUES ('x', 'y', now(), 1, 'EUR')",
		"CREATE TABLE t2 (a UInt8) ENGINE = Memory",
		"DROP TABLE orders",
		"SET max_memory_usage = 0",
		"SELECT 1 SETTINGS max_memory_usage = 0",
		"SELECT count() FROM file('/etc/passwd', 'LineAsString')",
	} {
		rows, err := warehouse.Console{}.OpenUnchecked(ctx, st, q)
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
			rows.Close()
		}
		var ex *clickhouse.Exception
		if !errors.As(err, &ex) || ex.Code != 164 {
			t.Errorf("%q: got %v, want the engine's READONLY (164)", q, err)
		}
	}
	var n uint64
	if err := st.Conn.QueryRow(ctx, "SELECT count() FROM orders").Scan(&n); err != nil || n != 0 {
		t.Fatalf("orders: %d rows, %v", n, err)
	}
	// The connection that ran read-only does not leak readonly to others.
	if err := st.Conn.Exec(ctx, "INSERT INTO orders (order_id, source, ordered_at, revenue, currency) VALUES ('x', 'y', now(), 1, 'EUR')"); err != nil {
		t.Fatalf("insert after console queries: %v", err)
	}
}

func TestConsoleLimits(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()

	c := warehouse.Console{MaxRows: 10, Timeout: 7 * time.Second, MaxMemory: 300 << 20}
	res, err := c.Run(ctx, st, "SELECT getSetting('readonly'), getSetting('max_execution_time'), getSetting('max_memory_usage')")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join([]string{toText(res.Rows[0][0]), toText(res.Rows[0][1]), toText(res.Rows[0][2])}, " "); got != "1 7 314572800" {
		t.Errorf("settings in force: %q, want readonly 1, 7 s, 300 MiB", got)
	}

	for _, n := range []int{9, 10, 11, 1000} {
		res, err := c.Run(ctx, st, "SELECT number FROM numbers("+strconv.Itoa(n)+")")
		if err != nil {
			t.Fatal(err)
		}
		wantRows, wantLimited := min(n, 10), n > 10
		if len(res.Rows) != wantRows || res.Limited != wantLimited {
			t.Errorf("%d rows: got %d rows, limited %v", n, len(res.Rows), res.Limited)
		}
		if wantLimited && res.Summary() != "first 10 rows of more (row limit 10)" {
			t.Errorf("%d rows: summary %q", n, res.Summary())
		}
		if !wantLimited && res.Summary() != strconv.Itoa(n)+" rows" {
			t.Errorf("%d rows: summary %q", n, res.Summary())
		}
	}

	_, err = warehouse.Console{MaxMemory: 64 << 20}.Run(ctx, st, "SELECT length(groupArray(number)) FROM numbers(50000000)")
	var le *warehouse.ConsoleLimitError
	if !errors.As(err, &le) || !strings.HasPrefix(le.Limit, "memory") {
		t.Errorf("64 MiB limit: got %v, want a memory limit error", err)
	}

	start := time.Now()
	_, err = warehouse.Console{Timeout: time.Second}.Run(ctx, st, "SELECT sum(cityHash64(number)) FROM numbers(1000000000000)")
	var ex *clickhouse.Exception
	if !errors.As(err, &le) || !strings.HasPrefix(le.Limit, "time") || !errors.As(err, &ex) || ex.Code != 159 {
		// 159 TIMEOUT_EXCEEDED: the engine's max_execution_time, not the
		// context, stopped it (clickhouse-go must not have replaced it).
		t.Errorf("1 s limit: got %v, want the engine's TIMEOUT_EXCEEDED", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("1 s limit: the query ran %v", d)
	}
}
