package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIngestOptions(t *testing.T) {
	dir := t.TempDir()
	user := filepath.Join(dir, "my_orders.yaml")
	if err := os.WriteFile(user, []byte("name: my_orders\nentity: orders\nfields:\n  order_id: {column: Nr}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("entity: orders\nfields:\n  order_idd: {column: Nr}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name                                        string
		entity, preset, mapping, presetsDir, format string
		tz                                          string
		wantEntity, wantErr                         string
	}{
		{name: "canonical", entity: "orders", wantEntity: "orders"},
		{name: "preset implies entity", preset: "online_retail", wantEntity: "orders"},
		{name: "user preset", preset: "my_orders", presetsDir: dir, wantEntity: "orders"},
		{name: "mapping file", mapping: user, wantEntity: "orders"},
		{name: "no entity", wantErr: "--entity: missing"},
		{name: "unknown entity", entity: "invoices", wantErr: `unknown entity "invoices"`},
		{name: "unknown preset", preset: "nope", wantErr: `unknown preset "nope"`},
		{name: "both", preset: "online_retail", mapping: user, wantErr: "not both"},
		{name: "entity mismatch", entity: "tickets", preset: "online_retail", wantErr: "loads orders"},
		{name: "bad format", entity: "orders", format: "xml", wantErr: "--format"},
		{name: "bad zone", entity: "orders", tz: "Mars/Olympus", wantErr: "--tz"},
		{name: "bad mapping", mapping: bad, wantErr: "fields.order_idd: not a field of orders"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts, err := ingestOptions(c.entity, c.preset, c.mapping, c.presetsDir, c.format, c.tz, "")
			if c.wantErr != "" {
				var ue usageError
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.As(err, &ue) {
					t.Fatalf("error %v, want a usage error containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if opts.Entity != c.wantEntity {
				t.Errorf("entity %q, want %q", opts.Entity, c.wantEntity)
			}
		})
	}
}
