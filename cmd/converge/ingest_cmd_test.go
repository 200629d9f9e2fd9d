package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIngestAllOrNothing: `converge ingest` stores a file whole or not at all. With a
// rejected record and without --allow-rejects nothing is stored, it exits 1 and says so
// (and how to store the good ones); with --allow-rejects the good records are stored.
// Columns no field reads are a warning, and with --strict a refusal.
func TestIngestAllOrNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs converge in child processes")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := write("bad.csv", "order_id,ordered_at,revenue,currency\no1,2026-03-01,10,EUR\no2,2026-03-02,ten,EUR\no3,2026-03-03,30,EUR\n")
	extra := write("extra.csv", "order_id,ordered_at,revenue,currency,colour\no4,2026-03-04,40,EUR,red\n")
	count := func() string {
		out, code := converge(t, "", "--data-dir", data, "sql", "--format", "csv", "SELECT count() FROM orders FINAL")
		if code != 0 {
			t.Fatalf("sql: exit %d\n%s", code, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return lines[len(lines)-1] // after the CSV header
	}
	steps := []struct {
		name   string
		args   []string
		code   int
		want   []string
		orders string
	}{
		{"rejects without --allow-rejects", []string{"ingest", "--entity", "orders", bad}, 1,
			[]string{bad + ": nothing was stored: 1 record rejected (in quarantine; see the lines above); pass --allow-rejects to store the 2 good ones",
				"line 3 field revenue", "not stored: 2 valid records"}, "0"},
		{"with --allow-rejects", []string{"ingest", "--entity", "orders", "--allow-rejects", bad}, 0, []string{"succeeded", "loaded 2, rejected 1"}, "2"},
		{"--strict and an unknown column", []string{"ingest", "--entity", "orders", "--strict", extra}, 1,
			[]string{"columns not in orders: colour (unknown: reject", "(nothing of it was stored)"}, "2"},
		{"an unknown column", []string{"ingest", "--entity", "orders", extra}, 0, []string{"warning: columns not in orders: colour (ignored)"}, "3"},
		{"two files, one with rejects", []string{"ingest", "--entity", "orders", bad, write("good.csv", "order_id,ordered_at,revenue,currency\no5,2026-03-05,50,EUR\n")}, 1,
			[]string{"pass --allow-rejects to store the 2 good ones", "the other 1 file was stored"}, "4"},
	}
	for _, s := range steps {
		out, code := converge(t, "", append([]string{"--data-dir", data}, s.args...)...)
		if code != s.code {
			t.Fatalf("%s: exit %d, want %d\n%s", s.name, code, s.code, out)
		}
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", s.name, w, out)
			}
		}
		if got := count(); got != s.orders {
			t.Errorf("%s: %s orders stored, want %s", s.name, got, s.orders)
		}
	}
}
