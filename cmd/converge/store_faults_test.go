package main

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readyState reads /readyz: its status and the reason it gives.
func readyState(t *testing.T, base string) (int, string) {
	t.Helper()
	code, body := httpGet(base + "/readyz")
	var r struct{ Status, Error string }
	if code != 0 {
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatalf("/readyz %d: %q is not JSON", code, body)
		}
	}
	return code, r.Error
}

// waitReadyz polls /readyz until it answers want.
func waitReadyz(t *testing.T, base string, want int, within time.Duration, what string) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, reason := readyState(t, base)
		if code == want {
			return reason
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: /readyz %d (%s) after %s, want %d", what, code, reason, within, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The store unreachable at start, then lost and back: serve (here in this process, on a remote
// store) starts anyway, /readyz answers 503 with the reason, and turns 200 without a restart
// when the store answers. The "remote" store is the loopback ClickHouse endpoint of another
// converge serve on the embedded engine (engine.http_listen), started later, stopped and
// started again on the same port.
func TestServeStoreUnreachable(t *testing.T) {
	if testing.Short() {
		t.Skip("runs converge serve in child processes")
	}
	chAddr := freeAddr(t) // nothing listens there yet
	const password = "fault-test-password"
	addr, metricsAddr := freeAddr(t), freeAddr(t)
	base := "http://" + addr
	t.Setenv("CONVERGE_CLICKHOUSE_PASSWORD", password)
	t.Setenv("CONVERGE_CLICKHOUSE_DATABASE", "converge_remote")
	t.Setenv("CONVERGE_SERVER_METRICS_ADDR", metricsAddr)
	t.Setenv("CONVERGE_LOG_LEVEL", "warn")
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		_, err := run(t, ctx, "--clickhouse-addr", chAddr, "serve", "--addr", addr)
		served <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-served:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})

	// Up, not ready, and saying why.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _ := httpGet(base + "/healthz"); code == http.StatusOK {
			break
		}
		select {
		case err := <-served:
			t.Fatalf("serve ended with the store unreachable: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("serve did not answer /healthz within 30s with the store unreachable")
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, reason := readyState(t, base)
	// Anyone may ask /readyz: it says the store did not answer and where the log has why,
	// never the store's address or error (they are in the server log under that request ID).
	if code != http.StatusServiceUnavailable || !strings.Contains(reason, "did not answer") || !strings.Contains(reason, "request ID") ||
		strings.Contains(reason, chAddr) || strings.Contains(reason, "connection refused") {
		t.Fatalf("/readyz with the store unreachable: %d %q, want 503 saying the store did not answer and the request ID, without the store's address %s or error", code, reason, chAddr)
	}
	t.Logf("/readyz at start: %d %s", code, reason)
	if _, body := httpGet("http://" + metricsAddr + "/metrics"); !strings.Contains(body, "converge_store_up 0") {
		t.Errorf("converge_store_up is not 0 while the store is unreachable")
	}

	// The store comes up: ready without a restart, the database created and migrated.
	dir := filepath.Join(t.TempDir(), "remote")
	storeEnv := func() []string {
		return []string{"CONVERGE_DATA_DIR=" + dir, "CONVERGE_SERVER_ADDR=" + freeAddr(t), "CONVERGE_ENGINE_HTTP_LISTEN=" + chAddr,
			"CONVERGE_ENGINE_HTTP_PASSWORD=" + password, "CONVERGE_ENGINE_POOL=2", "CONVERGE_ENGINE_MAX_SERVER_MEMORY=2GiB",
			"CONVERGE_CLICKHOUSE_ADDR=", "CONVERGE_CLICKHOUSE_DATABASE=converge", "CONVERGE_SERVER_METRICS_ADDR=", "CONVERGE_LOG_LEVEL=warn"}
	}
	remote := startChild(t, storeEnv(), "serve")
	waitReadyz(t, base, http.StatusOK, time.Minute, "after the store came up")
	if _, body := httpGet("http://" + metricsAddr + "/metrics"); !strings.Contains(body, "converge_store_up 1") {
		t.Errorf("converge_store_up is not 1 once the store answers")
	}
	// The server works on it: the sign-in page and a token-protected API answer as usual
	// (401 without a token, not 503).
	if code, _ := httpGet(base + "/api/v1/metrics"); code != http.StatusUnauthorized {
		t.Errorf("the API once ready: %d, want 401", code)
	}
	tables := sqlOverEndpoint(t, chAddr, password, "SELECT count() FROM system.tables WHERE database = 'converge_remote' AND name = 'orders'")
	if tables != "1" {
		t.Errorf("the remote database was not migrated when the store came up: orders tables %s", tables)
	}

	// Lost while serving: not ready, with the reason; back: ready again.
	remote.stop(t, syscall.SIGKILL)
	reason = waitReadyz(t, base, http.StatusServiceUnavailable, 30*time.Second, "after the store was lost")
	t.Logf("/readyz with the store lost: %s", reason)
	if strings.Contains(reason, chAddr) || !strings.Contains(reason, "request ID") {
		t.Errorf("/readyz reason %q names the store %s or no request ID", reason, chAddr)
	}
	startChild(t, storeEnv(), "serve")
	waitReadyz(t, base, http.StatusOK, time.Minute, "after the store came back")
}

// sqlOverEndpoint runs a query on a ClickHouse HTTP endpoint with converge sql and returns the
// single value.
func sqlOverEndpoint(t *testing.T, addr, password, query string) string {
	t.Helper()
	cmd := []string{"--clickhouse-addr", addr, "--log-level", "error", "sql", "--format", "csv", query}
	t.Setenv("CONVERGE_CLICKHOUSE_PASSWORD", password)
	out, code := convergeOut(t, cmd...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) < 2 {
		t.Fatalf("sql over %s: exit %d\n%s", addr, code, out)
	}
	return lines[1]
}
