package warehouse_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/embedded"
)

// serveEndpoint serves st's engine on a loopback port as `converge serve`
// does: the full-access user (password full) and the analyst user.
func serveEndpoint(t *testing.T, st *warehouse.Store, full, analyst string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- st.Engine.ServeAccess(ctx, ln, embedded.Access{Password: full,
			Analyst: &embedded.Analyst{User: "analyst", Password: analyst, Database: st.Database, Check: st.AnalystCheck}})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return "http://" + ln.Addr().String()
}

// TestEndpointAnalyst: the loopback endpoint's analyst user reads the main
// database but none of converge's own tables (every console escape is
// refused, over HTTP, without their values), cannot write, and tools'
// FORMAT clauses work; the full-access user still reads everything.
func TestEndpointAnalyst(t *testing.T) {
	st := appStore(t)
	base := serveEndpoint(t, st, "full-pw", "analyst-pw")
	post := func(user, password, sql string) (int, string, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, base+"/?"+url.Values{"default_format": {"TSV"}}.Encode(), strings.NewReader(sql))
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
	for _, c := range consoleEscapes {
		sql := expand(c.sql, st)
		want := strings.ReplaceAll(expand(c.want, st), "the console", "the endpoint's analyst user")
		code, ex, body := post("analyst", "analyst-pw", sql)
		if code != http.StatusForbidden || ex != "497" || !strings.Contains(body, want) {
			t.Errorf("%q: %d %s %q, want 403 ACCESS_DENIED saying %q", sql, code, ex, body, want)
		}
		if strings.Contains(body, "secret-hash") {
			t.Errorf("%q: the answer carries a value: %q", sql, body)
		}
	}
	for _, c := range []struct{ sql, want string }{
		{"SELECT order_id FROM orders", "o1\n"},
		{"SELECT order_id FROM orders FORMAT CSV", "\"o1\"\n"},
		{"WITH users AS (SELECT order_id FROM orders) SELECT count() FROM users", "1\n"},
		{"SELECT count() FROM system.tables WHERE database = '" + st.AppDatabase + "' AND name = 'users'", "1\n"},
		{"SHOW TABLES LIKE 'orders'", "orders\n"},
	} {
		if code, _, body := post("analyst", "analyst-pw", c.sql); code != 200 || body != c.want {
			t.Errorf("%q: %d %q, want %q", c.sql, code, body, c.want)
		}
	}
	for _, sql := range []string{
		"INSERT INTO orders (order_id, source, ordered_at, revenue, currency) VALUES ('x', 'y', now64(3), 1, 'EUR')",
		"DROP TABLE orders",
		"ALTER TABLE orders DELETE WHERE 1",
		"SELECT 1 INTO OUTFILE '/tmp/converge-analyst.csv'",
		"SELECT * FROM file('/etc/passwd', 'LineAsString')",
	} {
		if code, _, body := post("analyst", "analyst-pw", sql); code != http.StatusForbidden {
			t.Errorf("%q: %d %q, want 403", sql, code, body)
		}
	}
	// The full-access user (other converge commands) reads converge's own tables.
	if code, _, body := post("default", "full-pw", "SELECT email FROM "+st.AppDatabase+".users"); code != 200 || body != "admin@x\n" {
		t.Errorf("full user: %d %q", code, body)
	}

	// Another converge command through the endpoint: full access on its
	// connections, the console as the analyst user.
	rc, err := warehouse.RemoteConfig(warehouse.Config{Database: st.Database}, base, "full-pw", "analyst", "analyst-pw")
	if err != nil {
		t.Fatal(err)
	}
	remote, err := warehouse.Open(context.Background(), rc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	ctx := context.Background()
	var n uint64
	if err := remote.App.QueryRow(ctx, "SELECT count() FROM users").Scan(&n); err != nil || n != 1 {
		t.Fatalf("app connection through the endpoint: %d, %v", n, err)
	}
	res, err := warehouse.Console{}.Run(ctx, remote, "SELECT count() FROM orders")
	if err != nil || len(res.Rows) != 1 {
		t.Fatalf("console through the endpoint: %v, %v", res, err)
	}
	_, err = warehouse.Console{}.Run(ctx, remote, "SELECT * FROM "+st.AppDatabase+".users")
	var re *warehouse.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("console through the endpoint read users: %v", err)
	}
	// The console's own connection is the analyst's: it cannot read users
	// even unchecked.
	rows, err := warehouse.Console{}.OpenUnchecked(ctx, remote, "SELECT password_hash FROM "+st.AppDatabase+".users")
	if err == nil {
		for rows.Next() {
			t.Errorf("the console's connection read %v", rows.Values())
		}
		err = rows.Err()
		rows.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "is converge's own") {
		t.Fatalf("unchecked console query as the analyst: %v", err)
	}
}
