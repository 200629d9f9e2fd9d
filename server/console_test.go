package server

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/export"
)

// consoleEnv is a server with real sessions and the console over the export fixture (twelve
// orders), showing at most 5 rows.
func consoleEnv(t *testing.T) (*accessEnv, *export.Service) {
	t.Helper()
	_, reg, svc := exportFixture(t)
	svc.Console = export.Console{MaxRows: 5, Timeout: 20 * time.Second}
	env := newAccessEnv(t, Config{TZ: "Europe/Berlin"}, access.Config{}, Deps{Exports: svc,
		Metrics: NewRegistryMetrics(reg, RegistryConfig{Currency: "EUR", WeekStart: time.Monday})})
	return env, svc
}

// run posts a query to the console as sess, with its CSRF token.
func (e *accessEnv) runSQL(t *testing.T, sess access.Session, path, query string, extra url.Values) (int, string) {
	t.Helper()
	form := url.Values{"query": {query}, csrfField: {sess.CSRFToken()}}
	for k, v := range extra {
		form[k] = v
	}
	rec := e.send(t, context.Background(), http.MethodPost, path, &sess, form, nil)
	return rec.Code, rec.Body.String()
}

// What the console refuses is a 400 with the page, saying why, the query still in the editor.
func TestConsoleRefusals(t *testing.T) {
	env, _ := consoleEnv(t)
	sess := env.session(t, access.RoleAnalyst)
	for _, tc := range []struct{ query, why string }{
		{"INSERT INTO orders (order_id) VALUES ('x')", "INSERT statements are not allowed"},
		{"DROP TABLE orders", "DROP statements are not allowed"},
		{"SELECT * FROM file('/etc/passwd', 'LineAsString')", "function file() is not allowed"},
		{"SELECT 1; SELECT 2", "one statement at a time"},
		{"SELECT count() FROM orders SETTINGS readonly = 0", "SETTINGS clause (readonly = …) is not allowed"},
		{"SELECT * FROM url('http://example.com/x.csv', CSV)", "function url() is not allowed"},
		{"   ", "Write a query first"},
	} {
		code, body := env.runSQL(t, sess, "/sql", tc.query, nil)
		text := html.UnescapeString(body)
		if code != http.StatusBadRequest || !strings.Contains(text, "Refused:") || !strings.Contains(text, tc.why) {
			t.Errorf("%q: %d, want 400 saying %q:\n%.2000s", tc.query, code, tc.why, text)
		}
		if strings.TrimSpace(tc.query) != "" && !strings.Contains(text, ">"+tc.query+"</textarea>") {
			t.Errorf("%q is not kept in the editor", tc.query)
		}
		// The download refuses the same.
		if code, body := env.runSQL(t, sess, "/sql/download", tc.query, url.Values{"format": {"csv"}}); code != http.StatusBadRequest ||
			!strings.Contains(html.UnescapeString(body), tc.why) {
			t.Errorf("download %q: %d", tc.query, code)
		}
	}
	// The engine's own refusals and errors are the query's fault too.
	code, body := env.runSQL(t, sess, "/sql", "SELECT nope FROM orders", nil)
	if code != http.StatusBadRequest || !strings.Contains(body, "The query failed:") || !strings.Contains(body, "nope") {
		t.Errorf("unknown column: %d %.1500s", code, body)
	}
	// The rules are on the page.
	rec := env.send(t, context.Background(), http.MethodGet, "/sql", &sess, nil, nil)
	for _, want := range []string{"Read-only", "Refused:", "SETTINGS", "INTO OUTFILE", "file()", "first 5 rows", "20s", "1 GiB of memory"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("the page does not state %q", want)
		}
	}
}

var resultRowRe = regexp.MustCompile(`(?s)<table class="console-table">.*?</table>`)

// A SELECT shows its rows with the column types; a long result is cut at the row limit and
// says so.
func TestConsoleSelect(t *testing.T) {
	env, _ := consoleEnv(t)
	sess := env.session(t, access.RoleAnalyst)
	code, body := env.runSQL(t, sess, "/sql",
		"SELECT order_id, revenue, cost, ordered_at, toDate(ordered_at) AS day FROM orders WHERE order_id IN ('o1', 'o2', 'o6') ORDER BY order_id", nil)
	table := resultRowRe.FindString(body)
	if code != http.StatusOK || table == "" {
		t.Fatalf("select: %d\n%.3000s", code, body)
	}
	for _, want := range []string{
		"3 rows in", "Decimal(18, 4)", "Nullable(Decimal(18, 4))", "DateTime64(3, &#39;UTC&#39;)", "shown in Europe/Berlin",
		">o1<", ">100<", ">60<", // o1: revenue 100, cost 60
		">o2<", ">NULL<", // o2's cost is unknown
		">2026-01-05 11:00:00<",                         // o1 at 10:00 UTC, in Berlin
		">o6<", ">2026-03-01 00:30:00<", ">2026-02-28<", // o6 at 23:30 UTC on the 28th: the 1st in Berlin; its date is the engine's
	} {
		if !strings.Contains(body, want) {
			t.Errorf("result lacks %q", want)
		}
	}
	code, body = env.runSQL(t, sess, "/sql", "SELECT number FROM numbers(12)", nil)
	if code != http.StatusOK || !strings.Contains(body, "first 5 rows of more (row limit 5)") || strings.Count(resultRowRe.FindString(body), "<tr>") != 6 {
		t.Errorf("row limit: %d\n%.2000s", code, body)
	}
}

// Each user's history lists their own queries, newest first, each re-runnable; one user never
// sees another's, not even by its id. A request without the CSRF token runs nothing.
func TestConsoleHistory(t *testing.T) {
	env, svc := consoleEnv(t)
	ctx := context.Background()
	analyst, admin := env.session(t, access.RoleAnalyst), env.session(t, access.RoleAdmin)
	env.runSQL(t, analyst, "/sql", "SELECT 'analyst-first'", nil)
	env.runSQL(t, analyst, "/sql", "SELECT 'analyst-second' FROM nowhere", nil)
	env.runSQL(t, admin, "/sql", "SELECT 'admin-only'", nil)

	// Without the token: 403, nothing run, nothing recorded.
	rec := env.send(t, ctx, http.MethodPost, "/sql", &analyst, url.Values{"query": {"SELECT 'no-token'"}}, nil)
	if rec.Code != http.StatusForbidden || strings.Contains(rec.Body.String(), "no-token") {
		t.Errorf("POST without the CSRF token: %d", rec.Code)
	}
	rec = env.send(t, ctx, http.MethodPost, "/sql/download", &analyst, url.Values{"query": {"SELECT 'no-token'"}, csrfField: {admin.CSRFToken()}}, nil)
	if rec.Code != http.StatusForbidden {
		t.Errorf("download with another session's token: %d", rec.Code)
	}

	list, err := svc.History(ctx, "analyst@test", 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Query != "SELECT 'analyst-second' FROM nowhere" || list[0].OK || list[0].Error == "" ||
		list[1].Query != "SELECT 'analyst-first'" || !list[1].OK || list[1].Rows != 1 || list[1].Kind != "run" {
		t.Fatalf("analyst's history %+v", list)
	}
	page := env.send(t, ctx, http.MethodGet, "/sql", &analyst, nil, nil).Body.String()
	if !strings.Contains(page, "analyst-first") || !strings.Contains(page, "analyst-second") || strings.Contains(page, "admin-only") ||
		strings.Contains(page, "no-token") || strings.Index(page, "analyst-second") > strings.Index(page, "analyst-first") {
		t.Errorf("analyst's page history wrong:\n%.4000s", page)
	}
	// Run again: one form per entry, posting the query with the token.
	if !strings.Contains(page, `<input type="hidden" name="query" value="SELECT &#39;analyst-first&#39;">`) {
		t.Errorf("no re-run form for the first query")
	}
	adminPage := env.send(t, ctx, http.MethodGet, "/sql", &admin, nil, nil).Body.String()
	if !strings.Contains(adminPage, "admin-only") || strings.Contains(adminPage, "analyst-first") {
		t.Errorf("admin's history shows another user's queries")
	}
	// Opening an entry puts it in the editor; another user's entry is not found.
	if rec := env.send(t, ctx, http.MethodGet, "/sql?h="+list[1].ID, &analyst, nil, nil); rec.Code != http.StatusOK ||
		!strings.Contains(rec.Body.String(), ">SELECT &#39;analyst-first&#39;</textarea>") {
		t.Errorf("open own entry: %d", rec.Code)
	}
	if rec := env.send(t, ctx, http.MethodGet, "/sql?h="+list[1].ID, &admin, nil, nil); rec.Code != http.StatusNotFound {
		t.Errorf("open another user's entry: %d", rec.Code)
	}
	// Every run is in the audit log: who ran which SQL.
	entries, _, err := env.svc.AuditLog(ctx, access.AuditQuery{Action: "sql.run"})
	if err != nil {
		t.Fatal(err)
	}
	var ran []string
	for _, e := range entries {
		var d struct {
			Query string `json:"query"`
			OK    bool   `json:"ok"`
		}
		if err := json.Unmarshal([]byte(e.Detail), &d); err != nil {
			t.Fatal(err)
		}
		ran = append(ran, e.Actor+": "+d.Query)
		if e.Target != d.Query {
			t.Errorf("audit target %q, query %q", e.Target, d.Query)
		}
	}
	slices.Sort(ran)
	if want := []string{"admin@test: SELECT 'admin-only'", "analyst@test: SELECT 'analyst-first'", "analyst@test: SELECT 'analyst-second' FROM nowhere"}; !slices.Equal(ran, want) {
		t.Errorf("audited runs %q, want %q", ran, want)
	}
}

// The download streams the query's rows through the export engine (CSV, or a zip with the
// manifest), is kept in the history and audited.
func TestConsoleDownload(t *testing.T) {
	env, svc := consoleEnv(t)
	ctx := context.Background()
	sess := env.session(t, access.RoleAnalyst)
	q := "SELECT order_id, channel, revenue FROM orders WHERE status = 'completed' AND ordered_at >= '2026-03-01' ORDER BY order_id"
	form := url.Values{"query": {q}, csrfField: {sess.CSRFToken()}, "format": {"csv"}}
	rec := env.send(t, ctx, http.MethodPost, "/sql/download", &sess, form, nil)
	// A text a spreadsheet would run as a formula ("+promo…") is guarded by default; csv_raw=1
	// gives it as stored.
	want := "order_id,channel,revenue\no8,\"'+promo, \"\"spring\"\"\",20.0000\no9,ads,60.0000\n"
	if rec.Code != http.StatusOK || rec.Body.String() != want || rec.Header().Get("Content-Type") != "text/csv; charset=utf-8" ||
		!regexp.MustCompile(`^attachment; filename="query_\d{8}-\d{6}\.csv"$`).MatchString(rec.Header().Get("Content-Disposition")) {
		t.Fatalf("download: %d %v\n%q", rec.Code, rec.Header(), rec.Body.String())
	}
	raw := url.Values{"query": {q}, csrfField: {sess.CSRFToken()}, "format": {"csv"}, "csv_raw": {"1"}}
	if rec := env.send(t, ctx, http.MethodPost, "/sql/download", &sess, raw, nil); rec.Body.String() != "order_id,channel,revenue\no8,\"+promo, \"\"spring\"\"\",20.0000\no9,ads,60.0000\n" {
		t.Errorf("csv_raw=1: %d %q", rec.Code, rec.Body.String())
	}
	form.Set("bundle", "zip")
	form.Set("preset", "excel")
	rec = env.send(t, ctx, http.MethodPost, "/sql/download", &sess, form, nil)
	files := unzip(t, rec.Body.Bytes())
	var data []byte
	var m export.Manifest
	for name, b := range files {
		if strings.HasSuffix(name, ".csv.manifest.json") {
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
		} else {
			data = b
		}
	}
	excel := "\ufefforder_id,channel,revenue\r\no8,\"'+promo, \"\"spring\"\"\",20.0000\r\no9,ads,60.0000\r\n"
	if string(data) != excel || len(files) != 2 || m.SHA256 != sha256Hex(data) || m.Kind != "sql" || m.Query != q || m.Rows != 2 ||
		!slices.ContainsFunc(m.Sources, func(w export.Watermark) bool { return w.Table == "orders" }) {
		t.Errorf("zip: %q, manifest %+v", data, m)
	}
	list, err := svc.History(ctx, "analyst@test", 50)
	if err != nil || len(list) != 3 || list[0].Kind != "zip" || list[1].Kind != "csv" || list[1].Rows != 2 || !list[1].OK {
		t.Errorf("history %+v %v", list, err)
	}
	// Audited with the file's checksum (the test clock stands still: both at the same time).
	entries, _, err := env.svc.AuditLog(ctx, access.AuditQuery{Action: "sql.download", Actor: "analyst@test"})
	if err != nil || len(entries) != 3 || !slices.ContainsFunc(entries, func(e access.AuditEntry) bool {
		return e.Target == q && strings.Contains(e.Detail, `"format":"zip"`) && strings.Contains(e.Detail, `"sha256":"`+m.SHA256+`"`)
	}) {
		t.Errorf("audited downloads %+v %v", entries, err)
	}
	// Finance and executives cannot use the console.
	for _, role := range []access.Role{access.RoleFinance, access.RoleExecutive} {
		s := env.session(t, role)
		if code, _ := env.runSQL(t, s, "/sql/download", q, url.Values{"format": {"csv"}}); code != http.StatusForbidden {
			t.Errorf("%s download: %d", role, code)
		}
	}
}
