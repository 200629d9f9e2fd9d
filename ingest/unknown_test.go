package ingest_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// TestUnknownColumns: columns (and NDJSON fields) no field of the mapping
// reads are never dropped without a word: by default the run warns with
// their names, in its summary and in ingest_runs; with unknown: reject (the
// mapping) or Options.Unknown a file whose header has one fails before any
// record is stored, and an NDJSON record with one is rejected.
func TestUnknownColumns(t *testing.T) {
	st := whtest.Store(t)
	mapping := "entity: orders\nfields:\n  order_id: {column: Nr}\n  ordered_at: {column: Datum}\n  revenue: {column: Summe}\n  currency: {value: EUR}\n"
	cases := []struct {
		name, file, body, mapping, unknown string
		warning, runErr                    string
		loaded, rejected                   int64
	}{
		{name: "canonical csv", file: "a.csv", body: "order_id,ordered_at,revenue,currency,colour,size\no1,2024-03-01,1,EUR,red,L\n",
			warning: "columns not in orders: colour, size (ignored)", loaded: 1},
		{name: "mapped csv", file: "a.csv", mapping: mapping, body: "Nr,Datum,Summe,Notiz\n1,2024-03-01,2,hallo\n",
			warning: "columns not in the mapping: Notiz (ignored)", loaded: 1},
		{name: "every column read", file: "a.csv", mapping: mapping, body: "Nr,Datum,Summe\n1,2024-03-01,2\n", loaded: 1},
		{name: "mapped csv, unknown: reject", file: "a.csv", mapping: mapping + "unknown: reject\n", body: "Nr,Datum,Summe,Notiz\n1,2024-03-01,2,hallo\n",
			runErr: "columns not in the mapping: Notiz (unknown: reject"},
		{name: "csv, Options.Unknown reject", file: "a.csv", unknown: ingest.UnknownReject, body: "order_id,ordered_at,revenue,currency,colour\no1,2024-03-01,1,EUR,red\n",
			runErr: "columns not in orders: colour (unknown: reject"},
		{name: "ndjson", file: "a.ndjson", body: `{"order_id":"o1","ordered_at":"2024-03-01","revenue":1,"currency":"EUR","coupon":"X"}` + "\n" +
			`{"order_id":"o2","ordered_at":"2024-03-01","revenue":1,"currency":"EUR","gift":true}` + "\n",
			warning: "fields not in orders: coupon, gift (ignored)", loaded: 2},
		{name: "ndjson, reject", file: "a.ndjson", unknown: ingest.UnknownReject, body: `{"order_id":"o1","ordered_at":"2024-03-01","revenue":1,"currency":"EUR","coupon":"X"}` + "\n" +
			`{"order_id":"o2","ordered_at":"2024-03-01","revenue":1,"currency":"EUR","coupon":null}` + "\n",
			loaded: 1, rejected: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), c.file)
			if err := os.WriteFile(path, []byte(c.body), 0o644); err != nil {
				t.Fatal(err)
			}
			opts := ingest.Options{Entity: "orders", Source: c.name, Unknown: c.unknown}
			if c.mapping != "" {
				m, err := ingest.ParseMapping("test", []byte(c.mapping))
				if err != nil {
					t.Fatal(err)
				}
				opts.Mapping = m
			}
			sum, err := ingest.LoadFile(context.Background(), st, path, opts, nil)
			if c.runErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.runErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error %v, want one naming %s with %q", err, path, c.runErr)
				}
				if got := queryString(t, st, "SELECT count() FROM orders WHERE source = '"+c.name+"'"); got != "0" {
					t.Errorf("%s orders stored from a refused file", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sum.Loaded != c.loaded || sum.Rejected != c.rejected {
				t.Fatalf("loaded %d rejected %d, want %d, %d: %v", sum.Loaded, sum.Rejected, c.loaded, c.rejected, sum.Rejects)
			}
			if c.rejected > 0 && (sum.Rejects[0].Code != "unknown_field" || sum.Rejects[0].Field != "coupon" || sum.Rejects[0].Line != 1) {
				t.Errorf("reject %+v, want line 1 field coupon unknown_field", sum.Rejects[0])
			}
			stored := queryString(t, st, "SELECT warnings FROM ingest_runs FINAL WHERE run_id = '"+sum.RunID+"'")
			if c.warning == "" {
				if len(sum.Warnings) != 0 || stored != "[]" {
					t.Errorf("warnings %q, in ingest_runs %s; want none", sum.Warnings, stored)
				}
				return
			}
			if !slices.Contains(sum.Warnings, c.warning) || !strings.Contains(stored, c.warning) {
				t.Errorf("warnings %q, in ingest_runs %s; want %q", sum.Warnings, stored, c.warning)
			}
		})
	}
}
