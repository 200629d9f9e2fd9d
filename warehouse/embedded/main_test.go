package embedded

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// One engine per test binary: chDB allows one data path per process. Each
// test gets its own database in it.
var testEngine *Engine

func TestMain(m *testing.M) {
	if os.Getenv("CONVERGE_TEST_CHILD") != "" {
		os.Exit(m.Run()) // child processes open their own engine
	}
	dir, err := os.MkdirTemp("", "converge-embedded-test-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testEngine, err = Open(Config{Path: dir, Lib: DefaultLibPath(), PoolSize: 4, MaxServerMemory: 6 << 30})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open embedded engine:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	testEngine.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

var dbSeq int

// testDB creates a fresh database and returns a clickhouse-go connection to
// it through the in-process bridge.
func testDB(t testing.TB) driver.Conn {
	t.Helper()
	dbSeq++
	db := fmt.Sprintf("t%d_%s", dbSeq, randomTag())
	admin := openConn(t, "default")
	ctx := context.Background()
	if err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
		admin.Close()
	})
	return openConn(t, db)
}

func openConn(t testing.TB, db string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(clientOptions(testEngine, db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func clientOptions(e *Engine, db string) *clickhouse.Options {
	rt := e.RoundTripper()
	return &clickhouse.Options{
		Addr:          []string{"embedded:8123"},
		Protocol:      clickhouse.HTTP,
		Auth:          clickhouse.Auth{Database: db, Username: "default"},
		TransportFunc: func(*http.Transport) (http.RoundTripper, error) { return rt, nil },
		MaxOpenConns:  16,
	}
}
