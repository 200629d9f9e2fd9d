package metrics

import (
	"context"
	"strings"
	"testing"

	"github.com/converge-dev/converge/warehouse"
)

// TestMetricBoundary: a metric file that reads converge's own tables (or
// other sessions' queries, or files) is refused at load, on the line that
// names the table, and never loaded; the refusal carries none of their rows.
func TestMetricBoundary(t *testing.T) {
	st := fixture(t)
	ctx := context.Background()
	if err := st.App.Exec(ctx, "INSERT INTO users (email, role, password_hash) VALUES ('ann@x', 'admin', '$argon2id$secret-hash')"); err != nil {
		t.Fatal(err)
	}
	app := st.AppDatabase
	head := func(name string) string { return strings.Replace(goodHead, "big_orders", name, 1) }
	custom := func(name string) string {
		return "-- name: " + name + "\n-- title: T\n-- description: d\n-- owner: CFO\n-- unit: count\n-- polarity: neutral\n-- kind: custom\n"
	}
	dir := t.TempDir()
	writeFile(t, dir, "ok.sql", head("b_ok")+"SELECT * FROM orders FINAL WHERE revenue >= 100")
	writeFile(t, dir, "users.sql", head("b1")+"SELECT *\nFROM orders FINAL\nWHERE customer_id IN (SELECT email FROM "+app+".users)")
	writeFile(t, dir, "bare.sql", head("b2")+"SELECT o.*\nFROM orders AS o FINAL\nJOIN users AS u ON u.email = o.customer_id")
	writeFile(t, dir, "measure.sql", strings.Replace(head("b3"), "count()", "count() + length((SELECT max(password_hash) FROM "+app+".users))", 1)+"SELECT * FROM orders FINAL")
	writeFile(t, dir, "custom.sql", custom("b4")+"SELECT toDate(at) AS bucket, count() AS value\nFROM "+app+".audit_log\nWHERE at >= {from:DateTime64(3, 'UTC')} AND at < {to:DateTime64(3, 'UTC')}\nGROUP BY bucket")
	writeFile(t, dir, "log.sql", custom("b5")+"SELECT toDate(event_time) AS bucket, count() AS value\nFROM system.query_log\nGROUP BY bucket")
	writeFile(t, dir, "file.sql", custom("b6")+"SELECT toDate('2026-01-01') AS bucket,\n  length(file('/etc/hostname')) AS value")
	writeFile(t, dir, "merge.sql", custom("b7")+"SELECT toDate(created_at) AS bucket, count() AS value\nFROM merge('"+app+"', '^users$')\nGROUP BY bucket")
	r, err := New(ctx, Options{Store: st, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"users.sql":   "users.sql:13: model SQL: table " + app + ".users is converge's own (" + strings.Join(warehouse.AppTables, ", ") + "): a metric cannot read it",
		"bare.sql":    "bare.sql:13: model SQL: table " + app + ".users is converge's own",
		"measure.sql": "measure.sql:9: measure: table " + app + ".users is converge's own",
		"custom.sql":  "custom.sql:9: custom SQL: table " + app + ".audit_log is converge's own",
		"log.sql":     "log.sql:9: custom SQL: table system.query_log is not open to a metric",
		"file.sql":    "file.sql:9: custom SQL: function file() is not allowed: it reads files of the server",
		"merge.sql":   "merge.sql:9: custom SQL: table function merge() is not allowed",
	}
	all := ""
	for _, e := range r.Errors() {
		all += e.Error() + "\n"
	}
	for f, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("no error %q for %s in:\n%s", w, f, all)
		}
	}
	if strings.Contains(all, "secret-hash") {
		t.Errorf("an error carries a password hash:\n%s", all)
	}
	for _, name := range []string{"b1", "b2", "b3", "b4", "b5", "b6", "b7"} {
		if _, ok := r.Get(name); ok {
			t.Errorf("metric %s was loaded", name)
		}
	}
	if _, ok := r.Get("b_ok"); !ok {
		t.Error("the metric over orders was not loaded")
	}
	// Every built-in passes the same check (roas and marketing_roi read the
	// attribution view, which reads the *_resolved views).
	if errs := r.Check(ctx); len(errs) != len(want) {
		t.Errorf("Check: %d errors, want the %d refused files only:\n%v", len(errs), len(want), errs)
	}
}
