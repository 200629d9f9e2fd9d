package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// checkAnalystEndpoint: serve's endpoint file names the analyst user; with
// it, analysts' tools read the data but none of converge's own tables, and
// write nothing; the console of a command through the endpoint refuses them
// too, while the full-access `converge sql` still reads them (the operator's).
func checkAnalystEndpoint(t *testing.T, dir, chAddr string) {
	t.Helper()
	ep, err := readEndpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ep.AnalystUser != "analyst" || len(ep.AnalystPassword) != 32 || ep.AnalystPassword == ep.Password {
		t.Fatalf("endpoint file: analyst %q, password of %d characters", ep.AnalystUser, len(ep.AnalystPassword))
	}
	ask := func(user, password, sql string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+chAddr+"/?"+url.Values{"default_format": {"TSV"}}.Encode(), strings.NewReader(sql))
		req.SetBasicAuth(user, password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := ask(ep.AnalystUser, ep.AnalystPassword, "SELECT count() > 15000 FROM orders FINAL"); code != 200 || body != "1\n" {
		t.Fatalf("analyst reads orders: %d %q", code, body)
	}
	for _, sql := range []string{
		"SELECT password_hash FROM converge_app.users",
		"SELECT * FROM users",
		"SELECT hash FROM converge_app.api_tokens",
		"SELECT query FROM system.processes",
	} {
		if code, body := ask(ep.AnalystUser, ep.AnalystPassword, sql); code != http.StatusForbidden || !strings.Contains(body, "ACCESS_DENIED") || strings.Contains(body, "$argon2id") {
			t.Errorf("analyst %q: %d %q", sql, code, body)
		}
	}
	if code, body := ask(ep.AnalystUser, ep.AnalystPassword, "INSERT INTO orders (order_id) VALUES ('x')"); code != http.StatusForbidden {
		t.Errorf("analyst insert: %d %q", code, body)
	}
	if code, _ := ask(ep.AnalystUser, ep.Password, "SELECT 1"); code != http.StatusForbidden {
		t.Errorf("analyst with the full password: %d", code)
	}
	out, err := run(t, context.Background(), "--data-dir", dir, "sql", "--read-only", "SELECT password_hash FROM converge_app.users")
	if err == nil || !strings.Contains(err.Error(), "table converge_app.users is converge's own") || strings.Contains(out, "$argon2id") {
		t.Errorf("sql --read-only on users: %v\n%s", err, out)
	}
	out, err = run(t, context.Background(), "--data-dir", dir, "sql", "--format", "csv", "SELECT count() > 0 FROM converge_app.users")
	if err != nil || !strings.HasSuffix(out, "\n1\n") {
		t.Errorf("full-access sql on users: %v\n%s", err, out)
	}
}
