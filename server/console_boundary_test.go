package server

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/warehouse"
)

// The attack of issue #15: an analyst in /sql reading converge's own tables
// (password hashes, sessions, token hashes, the audit log, others' console
// history) or other sessions' queries. Each is a 400 saying which table and
// why, on the page and for the download, and no answer carries their rows;
// a CTE named users over orders still runs.
func TestConsoleBoundary(t *testing.T) {
	env, svc := consoleEnv(t)
	st := svc.Store
	if err := st.App.Exec(context.Background(), "INSERT INTO users (email, role, password_hash) VALUES ('root@x', 'admin', {h:String})",
		clickhouse.Named("h", "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$secret-hash")); err != nil {
		t.Fatal(err)
	}
	app := st.AppDatabase
	sess := env.session(t, access.RoleAnalyst)
	own := "is converge's own (" + strings.Join(warehouse.AppTables, ", ") + "): the console cannot read it"
	for _, tc := range []struct{ query, why string }{
		{"SELECT * FROM users", "table " + app + ".users " + own},
		{"SELECT * FROM " + app + ".users", "table " + app + ".users " + own},
		{"SELECT * FROM `" + app + "`.`sessions`", "table " + app + ".sessions " + own},
		{"SELECT hash FROM " + app + ".api_tokens", "table " + app + ".api_tokens " + own},
		{"SELECT * FROM audit_log", "table " + app + ".audit_log " + own},
		{"SELECT query FROM " + app + ".console_history", "table " + app + ".console_history " + own},
		{"SELECT toUInt8((SELECT max(password_hash) FROM " + app + ".users))", "table " + app + ".users " + own},
		{"SELECT * FROM merge('" + app + "', '^users$')", "table function merge() is not allowed"},
		{"SELECT query FROM system.query_log", "table system.query_log is not open to the console"},
		{"SELECT query FROM system.processes", "table system.processes is not open to the console"},
		{"SHOW PROCESSLIST", "SHOW PROCESSLIST is not allowed"},
	} {
		code, body := env.runSQL(t, sess, "/sql", tc.query, nil)
		text := html.UnescapeString(body)
		if code != http.StatusBadRequest || !strings.Contains(text, "Refused:") || !strings.Contains(text, tc.why) {
			t.Errorf("%q: %d, want 400 saying %q:\n%.2000s", tc.query, code, tc.why, text)
		}
		code, body = env.runSQL(t, sess, "/sql/download", tc.query, url.Values{"format": {"csv"}})
		if code != http.StatusBadRequest || !strings.Contains(html.UnescapeString(body), tc.why) {
			t.Errorf("download %q: %d", tc.query, code)
		}
		for _, b := range []string{text, body} {
			if strings.Contains(b, "secret-hash") || strings.Contains(b, "root@x") {
				t.Errorf("%q: the answer carries a row of users", tc.query)
			}
		}
	}
	code, body := env.runSQL(t, sess, "/sql", "WITH users AS (SELECT order_id FROM orders) SELECT count() AS n FROM users", nil)
	if code != http.StatusOK || !strings.Contains(body, "<td") {
		t.Errorf("a CTE named users over orders: %d %.1500s", code, body)
	}
}
