package embedded

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The endpoint's analyst user: its own password, read-only whatever it
// asks, in its database only, no INSERT read, and every statement passed to
// Check first; the full-access user is unchanged.
func TestHTTPAnalyst(t *testing.T) {
	conn := testDB(t)
	ctx := context.Background()
	if err := conn.Exec(ctx, "CREATE TABLE kv (k String, v UInt32) ENGINE = MergeTree ORDER BY k"); err != nil {
		t.Fatal(err)
	}
	var db string
	if err := conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	var checked []string
	analyst := &Analyst{User: "analyst", Password: "an4lyst", Database: db, Check: func(_ context.Context, sql string, _ map[string]string) error {
		checked = append(checked, sql)
		switch {
		case strings.Contains(sql, "forbidden"):
			return errors.New("table forbidden is out of bounds")
		case strings.Contains(sql, "engine_error"):
			return NewException(47, "UNKNOWN_IDENTIFIER", "Unknown expression identifier `engine_error`")
		}
		return nil
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- testEngine.ServeAccess(sctx, ln, Access{Password: "s3cret", Analyst: analyst}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	do := func(user, password, sql string, params url.Values, body string) (int, string, string) {
		t.Helper()
		v := url.Values{"query": {sql}, "default_format": {"TSV"}}
		for k, x := range params {
			v[k] = x
		}
		req, err := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/?"+v.Encode(), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(user, password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("X-ClickHouse-Exception-Code"), string(b)
	}
	inDB := url.Values{"database": {db}}

	// The full-access user writes; the analyst reads, in its database by default.
	if code, _, body := do("default", "s3cret", "INSERT INTO kv VALUES ('a', 1)", inDB, ""); code != 200 {
		t.Fatalf("full user insert: %d %s", code, body)
	}
	if code, _, body := do("analyst", "an4lyst", "SELECT currentDatabase(), count() FROM kv", nil, ""); code != 200 || body != db+"\t1\n" {
		t.Fatalf("analyst select: %d %q", code, body)
	}
	for _, c := range []struct {
		name, user, password, sql string
		params                    url.Values
		body, code                string
		want                      string
	}{
		{"wrong password", "analyst", "s3cret", "SELECT 1", nil, "", "516", "analyst: Authentication failed"},
		{"full password claiming the analyst", "default", "s3cret", "SELECT 1", url.Values{"user": {"analyst"}}, "", "516", "analyst: Authentication failed"},
		{"readonly asked away", "analyst", "an4lyst", "SELECT getSetting('readonly'), getSetting('dialect')", url.Values{"readonly": {"0"}, "dialect": {"prql"}}, "", "", "1\tclickhouse\n"},
		{"insert with data", "analyst", "an4lyst", "INSERT INTO kv FORMAT TSV", nil, "b\t2\n", "164", "readonly mode"},
		{"insert select", "analyst", "an4lyst", "INSERT INTO kv SELECT 'c', 3", nil, "", "164", "readonly mode"},
		{"DDL", "analyst", "an4lyst", "CREATE TABLE t2 (a UInt8) ENGINE = Memory", nil, "", "164", "readonly mode"},
		{"SETTINGS clause", "analyst", "an4lyst", "SELECT 1 SETTINGS max_threads = 1", nil, "", "164", "readonly mode"},
		{"another database", "analyst", "an4lyst", "SELECT 1", url.Values{"database": {"system"}}, "", "497", "database system is not open to this user, which reads database " + db},
		{"refused by the check", "analyst", "an4lyst", "SELECT * FROM forbidden", nil, "", "497", "analyst: table forbidden is out of bounds"},
		{"engine error from the check", "analyst", "an4lyst", "SELECT engine_error", nil, "", "47", "UNKNOWN_IDENTIFIER"},
	} {
		code, exCode, body := do(c.user, c.password, c.sql, c.params, c.body)
		if c.code == "" && code != 200 || exCode != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d code %q %q, want code %q saying %q", c.name, code, exCode, body, c.code, c.want)
		}
	}
	var n string
	if _, _, n = do("default", "s3cret", "SELECT count() FROM kv", inDB, ""); n != "1\n" {
		t.Errorf("kv holds %q rows after the analyst's attempts, want 1", n)
	}
	for _, sql := range checked {
		if strings.HasPrefix(sql, "INSERT INTO kv FORMAT") {
			t.Errorf("the analyst's INSERT got as far as the check: %q", sql)
		}
	}
	// The full-access user is untouched by the analyst's settings.
	if _, _, body := do("default", "s3cret", "SELECT getSetting('readonly')", inDB, ""); body != "0\n" {
		t.Errorf("full user readonly: %q", body)
	}
}
