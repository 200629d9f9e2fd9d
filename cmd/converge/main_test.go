package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func run(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown key", nil, []string{"--config", write("a.yaml", "engine:\n  poool: 3\n"), "config", "keys"}, "unknown key engine.poool"},
		{"bad yaml", nil, []string{"--config", write("b.yaml", "engine: [\n"), "config", "keys"}, "config " + filepath.Join(dir, "b.yaml")},
		{"pool not a number", map[string]string{"CONVERGE_ENGINE_POOL": "many"}, []string{"config", "keys"}, "engine.pool"},
		{"pool out of range", map[string]string{"CONVERGE_ENGINE_POOL": "0"}, []string{"config", "keys"}, "engine.pool"},
		{"memory size", map[string]string{"CONVERGE_ENGINE_MAX_SERVER_MEMORY": "lots"}, []string{"config", "keys"}, "engine.max_server_memory"},
		{"query memory above server", map[string]string{"CONVERGE_ENGINE_MAX_SERVER_MEMORY": "1GiB", "CONVERGE_ENGINE_MAX_QUERY_MEMORY": "2GiB"}, []string{"config", "keys"}, "engine.max_query_memory"},
		{"protocol", map[string]string{"CONVERGE_CLICKHOUSE_PROTOCOL": "grpc"}, []string{"--clickhouse-addr", "h:8123", "config", "keys"}, "clickhouse.protocol"},
		{"addr", nil, []string{"--clickhouse-addr", "nohost", "config", "keys"}, "clickhouse.addr"},
		{"database", map[string]string{"CONVERGE_CLICKHOUSE_DATABASE": "a-b"}, []string{"config", "keys"}, "clickhouse.database"},
		{"cluster without a server", map[string]string{"CONVERGE_CLICKHOUSE_CLUSTER": "c1"}, []string{"config", "keys"}, `clickhouse.cluster: "c1" is set but clickhouse.addr is not: the embedded store is a single node`},
		{"cluster name", map[string]string{"CONVERGE_CLICKHOUSE_CLUSTER": "a b"}, []string{"--clickhouse-addr", "h:8123", "config", "keys"}, `clickhouse.cluster: "a b" is not a cluster name (letters, digits, _, - and .`},
		{"cluster name quote", nil, []string{"--config", write("c.yaml", "clickhouse:\n  addr: h:8123\n  cluster: \"c'1\"\n"), "config", "keys"}, `clickhouse.cluster: "c'1" is not a cluster name`},
		{"secure", map[string]string{"CONVERGE_CLICKHOUSE_SECURE": "sometimes"}, []string{"config", "keys"}, "clickhouse.secure"},
		{"log level", nil, []string{"--log-level", "loud", "config", "keys"}, "log.level"},
		{"public endpoint", map[string]string{"CONVERGE_ENGINE_HTTP_LISTEN": "0.0.0.0:8124"}, []string{"config", "keys"}, "engine.http_listen"},
		{"app database", map[string]string{"CONVERGE_CLICKHOUSE_APP_DATABASE": "converge"}, []string{"config", "keys"}, "clickhouse.app_database"},
		{"app database name", map[string]string{"CONVERGE_CLICKHOUSE_APP_DATABASE": "a-b"}, []string{"config", "keys"}, "clickhouse.app_database"},
		{"analyst user", map[string]string{"CONVERGE_ENGINE_ANALYST_USER": "default"}, []string{"config", "keys"}, "engine.analyst_user"},
		{"console rows", map[string]string{"CONVERGE_CONSOLE_MAX_ROWS": "200000"}, []string{"config", "keys"}, "console.max_rows"},
		{"console timeout", map[string]string{"CONVERGE_CONSOLE_TIMEOUT": "soon"}, []string{"config", "keys"}, "console.timeout"},
		{"console memory", map[string]string{"CONVERGE_CONSOLE_MAX_MEMORY": "0"}, []string{"config", "keys"}, "console.max_memory"},
		{"export rows", map[string]string{"CONVERGE_EXPORT_MAX_ROWS": "-1"}, []string{"config", "keys"}, "export.max_rows"},
		{"report currency", map[string]string{"CONVERGE_REPORT_CURRENCY": "XX"}, []string{"config", "keys"}, `report.currency: "XX" is not an ISO 4217 currency code`},
		{"server addr", nil, []string{"serve", "--addr", "8080"}, "server.addr"},
		{"sql format", nil, []string{"--data-dir", dir, "sql", "--format", "xml", "SELECT 1"}, "--format"},
		{"missing store", nil, []string{"--data-dir", filepath.Join(dir, "nope"), "sql", "SELECT 1"}, "no store at"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			_, err := run(t, context.Background(), c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "4GiB": 4 << 30, "512MiB": 512 << 20, "2g": 2 << 30, "1KiB": 1024} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "1.5GiB", "12XB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// While serve holds the data directory, sql, migrate and version reach the
// store through its loopback ClickHouse endpoint.
func TestServeThenCommandsThroughEndpoint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	addr, chAddr := freeAddr(t), freeAddr(t)
	t.Setenv("CONVERGE_ENGINE_HTTP_LISTEN", chAddr)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	var serveOut string
	go func() {
		out, err := run(t, ctx, "--data-dir", dir, "serve", "--addr", addr)
		serveOut = out
		served <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-served:
			t.Fatalf("serve ended: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("server not ready after 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	checkUsersWhileServing(t, dir, addr)
	out, err := run(t, context.Background(), "--data-dir", dir, "sql", "--format", "csv", "SELECT name FROM system.tables WHERE database = 'converge' AND name IN ('orders', 'customers') ORDER BY name")
	if err != nil {
		t.Fatalf("sql while serving: %v\n%s", err, out)
	}
	if out != "name\ncustomers\norders\n" {
		t.Fatalf("sql output %q", out)
	}
	out, err = run(t, context.Background(), "--data-dir", dir, "migrate")
	if err != nil || !strings.Contains(out, "schema up to date") {
		t.Fatalf("migrate while serving: %v\n%s", err, out)
	}
	out, err = run(t, context.Background(), "--data-dir", dir, "version")
	if err != nil || !strings.Contains(out, "engine: ClickHouse 26.") {
		t.Fatalf("version while serving: %v\n%s", err, out)
	}
	// The demo company loads through the ingest path (here through the
	// running server's endpoint), rejects nothing, and loads nothing new the
	// second time.
	out, err = run(t, context.Background(), "--data-dir", dir, "demo", "--size", "small", "--end", "2026-06-30")
	if err != nil || !strings.Contains(out, "demo small (seed 1) loaded") || !strings.Contains(out, "in several sources)") ||
		!strings.Contains(out, "rows in customer_value") {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	out, err = run(t, context.Background(), "--data-dir", dir, "sql", "--format", "csv",
		"SELECT (SELECT count() FROM converge.orders FINAL) > 15000, (SELECT count() FROM converge.quarantine) = 0, (SELECT uniqExact(source) FROM converge.customers) = 3")
	if err != nil || !strings.HasSuffix(out, "\n1,1,1\n") {
		t.Fatalf("demo data: %v\n%s", err, out)
	}
	// The demo fits the predictive CLV, so the customer pages have predictions.
	out, err = run(t, context.Background(), "--data-dir", dir, "sql", "--format", "csv",
		"SELECT (SELECT count() FROM converge.customer_value FINAL WHERE as_of = '2026-06-30') > 1000, (SELECT count() FROM converge.clv_fits FINAL) = 1")
	if err != nil || !strings.HasSuffix(out, "\n1,1\n") {
		t.Fatalf("demo clv fit: %v\n%s", err, out)
	}
	if _, err := runIn(t, context.Background(), "a long password 3\n", "--data-dir", dir, "user", "add", "--email", "exec@example.com", "--role", "executive"); err != nil {
		t.Fatal(err)
	}
	client, status, _ := signIn(t, "http://"+addr, "exec@example.com", "a long password 3")
	if status != http.StatusOK {
		t.Fatalf("sign-in: %d", status)
	}
	if resp, err := client.Get("http://" + addr + "/customers"); err != nil {
		t.Fatal(err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Best customers by predicted CLV") || !strings.Contains(string(body), `href="/customers/C0`) {
			t.Fatalf("/customers after the demo: %d", resp.StatusCode)
		}
	}
	out, err = run(t, context.Background(), "--data-dir", dir, "demo", "--size", "small", "--end", "2026-06-30")
	if err != nil {
		t.Fatalf("demo again: %v\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n")[1:] {
		if f := strings.Fields(line); len(f) == 6 && f[3] != "0" {
			t.Fatalf("second demo load loaded rows: %q", line)
		}
	}
	out, err = run(t, context.Background(), "--data-dir", dir, "demo", "--if-empty")
	if err != nil || !strings.Contains(out, "nothing loaded") {
		t.Fatalf("demo --if-empty: %v\n%s", err, out)
	}

	// An ingest token, then events over HTTP: acknowledged means stored.
	tokOut, err := run(t, context.Background(), "--data-dir", dir, "token", "create", "--scope", "ingest", "--name", "test")
	if err != nil {
		t.Fatalf("token create: %v\n%s", err, tokOut)
	}
	token := strings.Fields(tokOut)[0]
	req, _ := http.NewRequest("POST", "http://"+addr+"/api/v1/events/touchpoints",
		strings.NewReader(`{"event_id":"ev-live-1","customer_id":"C0000001","occurred_at":"2026-06-29T10:00:00Z","channel":"email","kind":"open"}`+"\n"))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"accepted":1`) {
		t.Fatalf("events: %d %s", resp.StatusCode, body)
	}
	out, err = run(t, context.Background(), "--data-dir", dir, "sql", "--format", "csv", "SELECT count() FROM converge.touchpoints WHERE event_id = 'ev-live-1'")
	if err != nil || !strings.HasSuffix(out, "\n1\n") {
		t.Fatalf("event not in the store after its 200: %v %q", err, out)
	}

	// A wrong password is refused by the endpoint.
	resp, err = http.Get("http://" + chAddr + "/?query=SELECT%201")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("endpoint without password: status %d", resp.StatusCode)
	}
	checkAnalystEndpoint(t, dir, chAddr)
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
		// The first run created an admin and said its password once.
		if n := strings.Count(serveOut, "password="); n != 1 || !strings.Contains(serveOut, "first run: created an admin") || !strings.Contains(serveOut, "email=admin@localhost") {
			t.Fatalf("serve's first-run admin (%d passwords in the log):\n%s", n, serveOut)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not shut down within 15s")
	}
	if _, err := os.Stat(filepath.Join(dir, endpointFile)); !os.IsNotExist(err) {
		t.Fatalf("endpoint file left after shutdown: %v", err)
	}
}
