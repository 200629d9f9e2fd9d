package ingest_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// procStatus reads a field of /proc/self/status in bytes (VmRSS, VmHWM).
func procStatus(t testing.TB, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// peakGrowth runs f and returns how far the process's resident memory rose
// above what it was before: from the kernel's high-water mark, reset first
// (clear_refs 5), or, where that cannot be reset, by sampling VmRSS.
func peakGrowth(t testing.TB, f func()) int64 {
	t.Helper()
	before := procStatus(t, "VmRSS")
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err == nil {
		f()
		return procStatus(t, "VmHWM") - before
	}
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for {
			if rss := procStatus(t, "VmRSS"); rss > peak.Load() {
				peak.Store(rss)
			}
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	})
	f()
	close(stop)
	wg.Wait()
	return peak.Load() - before
}

// writeGzipBomb writes a gzip file whose plain text is head, then a line of
// n NUL bytes, then tail: about 2.5 MB for 2 GiB, streamed, never held.
func writeGzipBomb(t testing.TB, path, head string, n int64, tail string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, _ := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	zw.Write([]byte(head))
	zero := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, int64(len(zero)))
		if _, err := zw.Write(zero[:k]); err != nil {
			t.Fatal(err)
		}
		n -= k
	}
	zw.Write([]byte("\n" + tail))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestGzipBomb: a 2.5 MB gzip file whose second record is a 2 GiB line of NUL
// bytes is read in bounded memory: the record is rejected as too_long (file,
// line and limit in the reason, a bounded part of it in quarantine) while it
// is read, the records around it load, and the test process's resident
// memory grows by less than 200 MB (it held 14 GB before the bound).
func TestGzipBomb(t *testing.T) {
	st := whtest.Store(t)
	for _, c := range []struct{ name, entity, file, head, tail string }{
		{"csv", "orders", "bomb.csv.gz", ordersHeader + "o1,c1,2024-03-01,10,EUR\n", "o2,c2,2024-03-02,20,EUR\n"},
		{"ndjson", "touchpoints", "bomb.ndjson.gz", `{"event_id":"e1","occurred_at":"2024-03-01T10:00:00Z","channel":"web","kind":"visit"}` + "\n",
			`{"event_id":"e2","occurred_at":"2024-03-01T11:00:00Z","channel":"web","kind":"visit"}` + "\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), c.file)
			writeGzipBomb(t, path, c.head, 2<<30, c.tail)
			fi, _ := os.Stat(path)
			var sum ingest.Summary
			var err error
			growth := peakGrowth(t, func() {
				sum, err = ingest.LoadFile(context.Background(), st, path, ingest.Options{Entity: c.entity, Source: c.name}, nil)
			})
			t.Logf("%s: %d bytes of gzip, resident memory grew by %d MB", c.name, fi.Size(), growth>>20)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Read != 3 || sum.Loaded != 2 || sum.Rejected != 1 {
				t.Fatalf("read %d loaded %d rejected %d, want 3, 2, 1: %v", sum.Read, sum.Loaded, sum.Rejected, sum.Rejects)
			}
			line := int64(3)
			if c.name == "ndjson" {
				line = 2
			}
			r := sum.Rejects[0]
			limit := fmt.Sprint(ingest.DefaultMaxRecordBytes)
			if r.Code != "too_long" || r.Line != line || !strings.Contains(r.String(), path+" line "+fmt.Sprint(line)+": ") || !strings.Contains(r.Reason, limit) {
				t.Errorf("reject %+v (%s), want too_long at %s line %d naming the limit %s", r, r, path, line, limit)
			}
			if growth > 200<<20 {
				t.Errorf("resident memory grew by %d MB reading the bomb, want < 200 MB", growth>>20)
			}
			raw := queryString(t, st, "SELECT length(raw) FROM quarantine WHERE run_id = '"+sum.RunID+"'")
			if n, _ := strconv.Atoi(raw); n < 1<<10 || n > 70<<10 {
				t.Errorf("quarantined raw text is %s bytes, want its first 64 KiB", raw)
			}
		})
	}
}

// TestRecordBound: records longer than MaxRecordBytes are cut while they are
// read, in every dialect, and the records after them keep their lines.
func TestRecordBound(t *testing.T) {
	st := whtest.Store(t)
	long := strings.Repeat("x", 5000)
	type rej struct {
		line int64
		code string
	}
	cases := []struct {
		name, file, mapping, body string
		runErr                    string
		loaded                    int64
		rejects                   []rej
	}{
		{name: "csv, an unquoted line", file: "a.csv", body: "customer_id,segment\nc1,a\nc2," + long + "\nc3,b\n",
			loaded: 2, rejects: []rej{{3, "too_long"}}},
		{name: "csv, quoted lines", file: "a.csv", body: "customer_id,segment\nc1,\"a\nb\"\nc2,\"" + long + "\n" + long + "\nend\"\nc3,b\nc4,\"x\"y\n",
			loaded: 2, rejects: []rej{{4, "too_long"}, {8, "bad_csv"}}},
		{name: "csv, a runaway quote", file: "a.csv", body: "customer_id,segment\nc1,a\nc2,\"" + long + "\nc3,b\n",
			loaded: 1, rejects: []rej{{3, "too_long"}}},
		{name: "csv, blank lines before", file: "a.csv", body: "customer_id,segment\nc1,a\n\n\nc2," + long + "\nc3,b\n",
			loaded: 2, rejects: []rej{{5, "too_long"}}},
		{name: "tsv without quoting", file: "a.tsv", mapping: "entity: customers\ncsv: {quote: none}\n",
			body: "customer_id\tsegment\nc1\ta\"b\nc2\t" + long + "\nc3\tb\n", loaded: 2, rejects: []rej{{3, "too_long"}}},
		{name: "ndjson", file: "a.ndjson", body: `{"customer_id":"c1"}` + "\n" + `{"customer_id":"` + long + `"}` + "\n" + `{"customer_id":"c3"}` + "\n",
			loaded: 2, rejects: []rej{{2, "too_long"}}},
		{name: "header", file: "a.csv", body: "customer_id," + long + "\nc1,a\n", runErr: "header (line 1): record longer than 4096 bytes"},
		{name: "a long title line skipped", file: "a.csv", mapping: "entity: customers\ncsv: {skip_lines: 1}\n",
			body: long + long + "\ncustomer_id,segment\nc1,a\n", loaded: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), c.file)
			if err := os.WriteFile(path, []byte(c.body), 0o644); err != nil {
				t.Fatal(err)
			}
			opts := ingest.Options{Entity: "customers", Source: c.name, MaxFieldBytes: 1024, MaxRecordBytes: 4096}
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
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sum.Loaded != c.loaded || sum.Rejected != int64(len(c.rejects)) || sum.Read != sum.Loaded+sum.Rejected {
				t.Fatalf("read %d loaded %d rejected %d, want %d loaded, %d rejected: %v", sum.Read, sum.Loaded, sum.Rejected, c.loaded, len(c.rejects), sum.Rejects)
			}
			for i, w := range c.rejects {
				if r := sum.Rejects[i]; r.Line != w.line || r.Code != w.code {
					t.Errorf("reject %d: %+v, want line %d %s", i, r, w.line, w.code)
				}
			}
			if len(c.rejects) > 0 && c.rejects[0].code == "too_long" {
				raw := queryString(t, st, "SELECT raw FROM quarantine WHERE run_id = '"+sum.RunID+"' ORDER BY line LIMIT 1")
				if !strings.Contains(raw, "truncated: the record is longer than 4096 bytes") || len(raw) > 64<<10+200 {
					t.Errorf("quarantined raw %q… (%d bytes): want at most 64 KiB of it, marked as cut", raw[:min(len(raw), 80)], len(raw))
				}
			}
		})
	}
}

// TestMappingFileBound: a mapping or preset file is read up to 1 MiB, never further.
func TestMappingFileBound(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(path, []byte("entity: orders\n# "+strings.Repeat("x", 2<<20)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, load := range []func() (*ingest.Mapping, error){
		func() (*ingest.Mapping, error) { return ingest.LoadMappingFile(path) },
		func() (*ingest.Mapping, error) { return ingest.Preset("big", dir) },
	} {
		if _, err := load(); err == nil || !strings.Contains(err.Error(), path+": larger than 1048576 bytes") {
			t.Errorf("error %v, want one naming %s and the limit", err, path)
		}
	}
}
