// Package whtest gives tests a real embedded ClickHouse: one engine per test
// binary (chDB allows one data directory per process) and a fresh, migrated
// database per test, dropped when the test ends.
//
// A package that uses it declares
//
//	func TestMain(m *testing.M) { os.Exit(whtest.Main(m)) }
package whtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/embedded"
)

var (
	mu       sync.Mutex
	engine   *embedded.Engine
	dir      string
	cleanups []func() // run by Main before the engine closes
)

// Main runs the tests and then closes the shared engine and removes its data.
func Main(m *testing.M) int {
	code := m.Run()
	for _, f := range cleanups {
		f()
	}
	mu.Lock()
	defer mu.Unlock()
	if engine != nil {
		engine.Close()
		os.RemoveAll(dir)
	}
	return code
}

// Engine returns the process's shared engine, opening it on first use. A
// missing chDB library fails the test with how to install it.
func Engine(t testing.TB) *embedded.Engine {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if engine == nil {
		d, err := os.MkdirTemp("", "converge-test-*")
		if err != nil {
			t.Fatal(err)
		}
		e, err := embedded.Open(embedded.Config{Path: d, Lib: embedded.DefaultLibPath(), PoolSize: 4, MaxServerMemory: 6 << 30})
		if err != nil {
			os.RemoveAll(d)
			t.Fatalf("embedded engine: %v (run `make deps` to install chDB)", err)
		}
		engine, dir = e, d
	}
	return engine
}

// Store returns a Store on a fresh database with every migration applied.
func Store(t testing.TB) *warehouse.Store {
	t.Helper()
	s := EmptyStore(t)
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

// LegacyStore returns a Store migrated as converge did before the app
// database existed: every migration applied, converge's own tables
// (warehouse.AppTables) in the main database. Its next Migrate moves them.
func LegacyStore(t testing.TB) *warehouse.Store {
	t.Helper()
	s := Store(t)
	for _, table := range warehouse.AppTables {
		if err := s.Conn.Exec(context.Background(), "RENAME TABLE "+s.AppDatabase+"."+table+" TO "+s.Database+"."+table); err != nil {
			t.Fatalf("legacy layout: %v", err)
		}
	}
	return s
}

// EmptyStore returns a Store on a fresh database (and its app database,
// test_…_app) with no migrations applied.
func EmptyStore(t testing.TB) *warehouse.Store {
	t.Helper()
	e := Engine(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	db := fmt.Sprintf("test_%s", hex.EncodeToString(b[:]))
	s, err := warehouse.OpenOnEngine(context.Background(), e, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Plain DROP: DROP … SYNC can hang in this chDB build (docs/engine.md).
		_ = s.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
		_ = s.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+s.AppDatabase)
		s.Close()
	})
	return s
}

// Golden compares got with the golden file at path, or rewrites the file
// when update (a package's -update flag) is set.
func Golden(t testing.TB, path string, got []byte, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update and review the diff):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
