package warehouse_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// records keeps the log records of a Store.
type records struct {
	mu   sync.Mutex
	list []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, rec)
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// at are the messages logged at level, and empties the list.
func (r *records) at(level slog.Level) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.list {
		if rec.Level == level {
			msg := rec.Message
			rec.Attrs(func(a slog.Attr) bool {
				msg += " " + a.String()
				return true
			})
			out = append(out, msg)
		}
	}
	return out
}

func (r *records) reset() {
	r.mu.Lock()
	r.list = nil
	r.mu.Unlock()
}

// A new store's first migration says so in one INFO line, each migration at DEBUG; a store
// that is up to date logs nothing; an upgrade says how many migrations it applied, in one line.
func TestMigrateLogsOneLine(t *testing.T) {
	ctx := context.Background()
	all, err := warehouse.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	db := "test_log_" + hex.EncodeToString(b[:])
	rec := &records{}
	open := func() *warehouse.Store {
		s, err := warehouse.OpenOnEngine(ctx, whtest.Engine(t), db, slog.New(rec))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	s := open()
	t.Cleanup(func() { _ = s.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
	last := all[len(all)-1]

	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("created store in (shared engine): %d migrations applied schema_version=%d", len(all), last.Version)
	if info := rec.at(slog.LevelInfo); len(info) != 1 || info[0] != want {
		t.Errorf("INFO %q, want only %q", info, want)
	}
	if debug := rec.at(slog.LevelDebug); len(debug) != len(all) || !strings.HasPrefix(debug[0], "migration applied version=1 name=") {
		t.Errorf("%d DEBUG lines, want one per migration (%d): %q", len(debug), len(all), debug)
	}
	if warn := rec.at(slog.LevelWarn); len(warn) != 0 {
		t.Errorf("WARN %q", warn)
	}

	rec.reset()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if info := rec.at(slog.LevelInfo); len(info) != 0 {
		t.Errorf("an up-to-date store logged %q", info)
	}

	// A store an older converge left (all but the last three), brought up to date.
	_ = s.Conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
	s = open()
	if _, err := s.MigrateFirst(ctx, len(all)-3); err != nil {
		t.Fatal(err)
	}
	rec.reset()
	applied, err := s.Migrate(ctx)
	if err != nil || len(applied) != 3 {
		t.Fatalf("upgrade applied %d: %v", len(applied), err)
	}
	a := all[len(all)-3]
	want = fmt.Sprintf("migrated store in (shared engine): 3 migrations applied schema_version=%d first=%04d_%s last=%04d_%s", last.Version, a.Version, a.Name, last.Version, last.Name)
	if info := rec.at(slog.LevelInfo); len(info) != 1 || info[0] != want {
		t.Errorf("upgrade INFO %q, want %q", info, want)
	}
}
