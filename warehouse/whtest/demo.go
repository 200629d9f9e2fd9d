package whtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/converge-dev/converge/warehouse"
)

// DemoEnd is the last day of the shared demo store's data.
var DemoEnd = time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)

// DemoSeed is the shared demo store's seed.
const DemoSeed = 7

var (
	demoMu    sync.Mutex
	demoStore *warehouse.Store
	demoErr   error
)

// Loader loads data into a fresh store; Demo calls it once per test binary.
type Loader func(ctx context.Context, st *warehouse.Store) error

// Demo returns a store shared by the tests of one binary, migrated and filled
// by load on first use (a package passes a function that loads the small demo
// with DemoSeed and DemoEnd: whtest cannot import ingest, which imports it).
// Tests must only read it; it is dropped by Main.
func Demo(t testing.TB, load Loader) *warehouse.Store {
	t.Helper()
	demoMu.Lock()
	defer demoMu.Unlock()
	if demoStore == nil && demoErr == nil {
		e := Engine(t)
		st, err := warehouse.OpenOnEngine(context.Background(), e, "test_demo", nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		_ = st.Conn.Exec(ctx, "DROP DATABASE IF EXISTS test_demo")
		st.Close()
		st, err = warehouse.OpenOnEngine(ctx, e, "test_demo", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Migrate(ctx); err != nil {
			demoErr = err
		} else if err := load(ctx, st); err != nil {
			demoErr = err
		}
		demoStore = st
		cleanups = append(cleanups, func() {
			_ = st.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS test_demo")
			st.Close()
		})
	}
	if demoErr != nil {
		t.Fatalf("demo store: %v", demoErr)
	}
	return demoStore
}
