package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/warehouse/whtest"
)

const ordersHeader = "order_id,customer_id,ordered_at,revenue,currency\n"

// TestMalformed: broken files give precise errors (file, line, field) and
// lose nothing: read = loaded + rejected + duplicates, and every reject is
// in quarantine with its raw record.
func TestMalformed(t *testing.T) {
	type rej struct {
		line  int64
		field string
		code  string
	}
	cases := []struct {
		name    string
		entity  string
		file    string // name; .gz is gzipped
		body    string
		mapping string // YAML, optional
		runErr  string // substring of the run error, when the run fails
		read    int64
		loaded  int64
		dups    int64
		rejects []rej
	}{
		{name: "bad date", entity: "orders", body: ordersHeader + "o1,c1,2024-03-01 10:00:00,10.5,EUR\no2,c1,2024-13-45 10:00,3,EUR\n",
			read: 2, loaded: 1, rejects: []rej{{3, "ordered_at", "bad_time"}}},
		{name: "wrong column count", entity: "orders", body: ordersHeader + "o1,c1,2024-03-01,10,EUR\no2,c1,2024-03-01,10,EUR,extra\no3,c1\n",
			read: 3, loaded: 1, rejects: []rej{{3, "", "field_count"}, {4, "", "field_count"}}},
		{name: "bad encoding", entity: "orders", body: ordersHeader + "o1,M\xfcller,2024-03-01,10,EUR\no2,c2,2024-03-01,10,EUR\n",
			read: 2, loaded: 1, rejects: []rej{{2, "customer_id", "bad_encoding"}}},
		{name: "empty file", entity: "orders", body: "", runErr: "empty file"},
		{name: "header only", entity: "orders", body: ordersHeader, read: 0},
		{name: "huge field", entity: "customers", body: "customer_id,segment\nc1,vip\nc2," + strings.Repeat("x", 2<<20) + "\n",
			read: 2, loaded: 1, rejects: []rej{{3, "segment", "too_long"}}},
		{name: "bad quoting", entity: "orders", body: ordersHeader + "o1,\"c\"1\",2024-03-01,10,EUR\no2,c2,2024-03-01,10,EUR\n",
			read: 2, loaded: 1, rejects: []rej{{2, "", "bad_csv"}}},
		{name: "missing required", entity: "orders", body: ordersHeader + "o1,c1,2024-03-01,10,\n,c1,2024-03-01,10,EUR\n",
			read: 2, rejects: []rej{{2, "currency", "missing_field"}, {3, "order_id", "missing_field"}}},
		{name: "missing column", entity: "orders", body: "order_id,ordered_at\no1,2024-03-01\n", read: 1, rejects: []rej{{2, "revenue", "missing_field"}}},
		{name: "bad number", entity: "orders", body: ordersHeader + "o1,c1,2024-03-01,ten,EUR\n", read: 1, rejects: []rej{{2, "revenue", "bad_number"}}},
		{name: "duplicates in file", entity: "orders", body: ordersHeader + "o1,c1,2024-03-01,10,EUR\no1,c1,2024-03-01,10,EUR\no1,c1,2024-03-01,11,EUR\n",
			read: 3, loaded: 1, dups: 1, rejects: []rej{{4, "order_id", "conflicting_duplicate"}}},
		{name: "multi-line field keeps line numbers", entity: "customers", body: "customer_id,segment\nc1,\"two\nlines\"\nc2,ok\nc3,\"bad\"x\n",
			read: 3, loaded: 2, rejects: []rej{{5, "", "bad_csv"}}},
		{name: "bom and gzip", entity: "orders", file: "o.csv.gz", body: "\ufeff" + ordersHeader + "o1,c1,2024-03-01T10:00:00Z,10,eur\n", read: 1, loaded: 1},
		{name: "tsv", entity: "orders", file: "o.tsv", body: "order_id\tordered_at\trevenue\tcurrency\no1\t2024-03-01\t1\tEUR\n", read: 1, loaded: 1},
		{name: "ndjson", entity: "touchpoints", file: "t.ndjson",
			body: `{"event_id":"e1","occurred_at":"2024-03-01T10:00:00Z","channel":"web","kind":"visit","utm_source":"google"}` + "\n" +
				`{"event_id":"e2","occurred_at":"2024-03-01T10:00:00Z","channel":"web"` + "\n" +
				"{\"event_id\":\"e3\",\"occurred_at\":\"2024-03-01T10:00:00Z\",\"channel\":\"w\xffb\",\"kind\":\"visit\"}\n" +
				"\n" + `{"event_id":"e4","occurred_at":1709287200,"channel":"web","kind":"visit"}` + "\n" +
				`{"event_id":"e5","occurred_at":"2024-03-01T10:00:00Z","channel":"web"}` + "\n",
			read: 5, loaded: 2, rejects: []rej{{2, "", "bad_json"}, {3, "channel", "bad_encoding"}, {6, "kind", "missing_field"}}},
		{name: "decimal comma and semicolons", entity: "marketing_spend", file: "s.csv",
			mapping: "entity: marketing_spend\ncsv: {delimiter: \";\"}\ndecimal: \",\"\nfields:\n  date: {column: Tag, layout: \"02.01.2006\"}\n  channel: {value: search}\n  spend: {column: Kosten}\n  currency: {value: EUR}\n",
			body:    "Tag;Kosten\n01.03.2024;1.234,56\n02.03.2024;12,5\n31.02.2024;1\n",
			read:    3, loaded: 2, rejects: []rej{{4, "date", "bad_date"}}},
		{name: "mapped column not in header", entity: "orders", mapping: "entity: orders\nfields:\n  order_id: {column: Nr}\n  revenue: {column: Total}\n",
			body: "Nr,Summe\n1,2\n", runErr: `column "Total" (mapped to revenue) is not in the header`},
		{name: "survey score range", entity: "survey_responses", body: "response_id,answered_at,kind,score\nr1,2024-03-01,nps,11\nr2,2024-03-01,csat,5\nr3,2024-03-01,xyz,1\n",
			read: 3, loaded: 1, rejects: []rej{{2, "score", "out_of_range"}, {4, "kind", "bad_value"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := whtest.Store(t)
			dir := t.TempDir()
			name := c.file
			if name == "" {
				name = "in.csv"
			}
			path := filepath.Join(dir, name)
			data := []byte(c.body)
			if strings.HasSuffix(name, ".gz") {
				var b bytes.Buffer
				zw := gzip.NewWriter(&b)
				zw.Write(data)
				zw.Close()
				data = b.Bytes()
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			opts := ingest.Options{Entity: c.entity}
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
					t.Fatalf("error %v, want one naming %s and containing %q", err, path, c.runErr)
				}
				if got := queryString(t, st, "SELECT concat(status, ' ', error) FROM ingest_runs FINAL WHERE run_id = '"+sum.RunID+"'"); !strings.HasPrefix(got, "failed ") {
					t.Errorf("ingest_runs: %q, want failed", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sum.Read != c.read || sum.Loaded != c.loaded || sum.Duplicates != c.dups || sum.Rejected != int64(len(c.rejects)) {
				t.Fatalf("read %d loaded %d dups %d rejected %d, want %d %d %d %d: %v", sum.Read, sum.Loaded, sum.Duplicates, sum.Rejected, c.read, c.loaded, c.dups, len(c.rejects), sum.Rejects)
			}
			if sum.Read != sum.Loaded+sum.Rejected+sum.Duplicates {
				t.Fatal("read != loaded + rejected + duplicates")
			}
			for i, want := range c.rejects {
				got := sum.Rejects[i]
				if got.Line != want.line || got.Field != want.field || got.Code != want.code || got.File != path {
					t.Errorf("reject %d: %+v, want line %d field %q code %s in %s", i, got, want.line, want.field, want.code, path)
				}
				if !strings.Contains(got.String(), path+" line ") {
					t.Errorf("reject message %q does not name file and line", got)
				}
			}
			q := "SELECT toString(count()) FROM quarantine WHERE run_id = '" + sum.RunID + "' AND raw != ''"
			if got := queryString(t, st, q); got != itoa(int64(len(c.rejects))) {
				t.Errorf("quarantine rows with raw record: %s, want %d", got, len(c.rejects))
			}
			if c.read == 0 && (len(sum.Warnings) == 0 || !strings.Contains(sum.Warnings[0], "header only")) {
				t.Errorf("warnings %q, want header only", sum.Warnings)
			}
		})
	}
}

// TestLoaderRecords pushes records from Go, as the events API and the demo
// generator do, through the same validation, dedup and quarantine.
func TestLoaderRecords(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	l, err := ingest.NewLoader(ctx, st, ingest.Options{Entity: "touchpoints", Source: "events"}, "")
	if err != nil {
		t.Fatal(err)
	}
	recs := []map[string]string{
		{"event_id": "a", "occurred_at": "2024-03-01T10:00:00Z", "channel": "web", "kind": "visit"},
		{"event_id": "a", "occurred_at": "2024-03-01T10:00:00Z", "channel": "web", "kind": "visit"},
		{"event_id": "b", "occurred_at": "yesterday", "channel": "web", "kind": "visit"},
		{"occurred_at": "2024-03-01T10:00:00Z", "channel": "email", "kind": "open", "customer_id": "c1"},
	}
	for i, r := range recs {
		if err := l.Add(ctx, ingest.Record{Line: int64(i + 1), Fields: r}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sum, err := l.Close(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Read != 4 || sum.Loaded != 2 || sum.Duplicates != 1 || sum.Rejected != 1 || sum.Rejects[0].Line != 3 || sum.Rejects[0].Field != "occurred_at" {
		t.Fatalf("%+v", sum)
	}
	if got := queryString(t, st, "SELECT length(event_id) FROM touchpoints FINAL WHERE customer_id = 'c1'"); got != "32" {
		t.Errorf("derived event id length %s, want 32", got)
	}
	if got := queryString(t, st, "SELECT raw FROM quarantine WHERE run_id = '"+sum.RunID+"'"); !strings.Contains(got, "yesterday") {
		t.Errorf("raw %q", got)
	}
	_ = errors.New
}
