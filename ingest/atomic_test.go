package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

func ordersFile(t *testing.T, name string, rows int, bad ...int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(ordersHeader)
	for i := range rows {
		rev := fmt.Sprint(10 + i)
		if slices.Contains(bad, i) {
			rev = "ten"
		}
		fmt.Fprintf(&b, "o%d,c%d,2024-%02d-01 10:00:00,%s,EUR\n", i, i%5, 1+i%12, rev)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func stagingTables(t *testing.T, st *warehouse.Store) int {
	t.Helper()
	tabs, err := st.StagingTables(context.Background(), "ingest_stage_")
	if err != nil {
		t.Fatal(err)
	}
	return len(tabs)
}

// TestAllOrNothing: with AllOrNothing a file with one bad record stores
// nothing (the run fails with a *RejectsError, the reject is in quarantine,
// ingest_runs says nothing loaded); without it the good records are stored
// and the bad one quarantined.
func TestAllOrNothing(t *testing.T) {
	st := whtest.Store(t)
	path := ordersFile(t, "o.csv", 100, 37)
	sum, err := ingest.LoadFile(context.Background(), st, path, ingest.Options{Entity: "orders", AllOrNothing: true}, nil)
	var re *ingest.RejectsError
	if !errors.As(err, &re) || re.Rejected != 1 || re.Good != 99 || !strings.Contains(err.Error(), "nothing was stored: 1 record rejected") {
		t.Fatalf("error %v, want a RejectsError: nothing stored, 1 rejected, 99 good", err)
	}
	if sum.Status != ingest.StatusFailed || sum.Loaded != 0 || sum.NotStored != 99 || sum.Rejected != 1 || sum.Tables["orders"].Written != 0 {
		t.Errorf("summary %+v, want failed, nothing loaded, 99 not stored", sum)
	}
	for q, want := range map[string]string{
		"SELECT count() FROM orders":      "0",
		"SELECT count() FROM ingest_keys": "0",
		"SELECT count() FROM quarantine WHERE run_id = '" + sum.RunID + "' AND line = 39":                                                           "1",
		"SELECT concat(status, ' ', toString(rows_loaded), ' ', toString(rows_rejected)) FROM ingest_runs FINAL WHERE run_id = '" + sum.RunID + "'": "failed 0 1",
	} {
		if got := queryString(t, st, q); got != want {
			t.Errorf("%s = %s, want %s", q, got, want)
		}
	}
	if n := stagingTables(t, st); n != 0 {
		t.Errorf("%d staging tables left", n)
	}
	sum = load(t, st, path, ingest.Options{Entity: "orders"})
	if sum.Loaded != 99 || sum.Rejected != 1 || queryString(t, st, "SELECT count() FROM orders FINAL") != "99" {
		t.Errorf("without AllOrNothing: %+v", sum)
	}
}

// TestFailedRunStoresNothing: a file that breaks after several batches were
// written (a gzip stream cut short) stores none of them.
func TestFailedRunStoresNothing(t *testing.T) {
	st := whtest.Store(t)
	var plain bytes.Buffer
	plain.WriteString(ordersHeader)
	for i := range 5000 {
		fmt.Fprintf(&plain, "o%d,c%d,2024-%02d-01 10:00:00,%d,EUR\n", i, i%5, 1+i%12, i)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(plain.Bytes())
	zw.Close()
	path := filepath.Join(t.TempDir(), "cut.csv.gz")
	if err := os.WriteFile(path, z.Bytes()[:z.Len()*3/4], 0o644); err != nil {
		t.Fatal(err)
	}
	flushes := 0
	sum, err := ingest.LoadFile(context.Background(), st, path, ingest.Options{Entity: "orders", BatchRows: 500, AfterFlush: func(int64) { flushes++ }}, nil)
	if err == nil || sum.Status != ingest.StatusFailed || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v, status %s: want the run failed naming the file", err, sum.Status)
	}
	if flushes < 3 || sum.NotStored < 1500 || sum.Loaded != 0 {
		t.Fatalf("%d flushes, %d not stored, %d loaded: want several batches written, none stored", flushes, sum.NotStored, sum.Loaded)
	}
	if got := queryString(t, st, "SELECT count() FROM orders"); got != "0" {
		t.Errorf("%s orders visible from the failed run", got)
	}
	if n := stagingTables(t, st); n != 0 {
		t.Errorf("%d staging tables left", n)
	}
}

// TestStagedResend: through staging a record sent again with new content
// still replaces the stored one, unchanged ones are duplicates, and two runs
// into one entity at once both end up whole.
func TestStagedResend(t *testing.T) {
	st := whtest.Store(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(ordersHeader+body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	load(t, st, write("v1.csv", "o1,c1,2024-03-01,10,EUR\no2,c2,2024-04-01,20,EUR\n"), ingest.Options{Entity: "orders", Source: "shop"})
	sum := load(t, st, write("v2.csv", "o1,c1,2024-03-01,15,EUR\no2,c2,2024-04-01,20,EUR\n"), ingest.Options{Entity: "orders", Source: "shop"})
	if sum.Loaded != 1 || sum.Duplicates != 1 {
		t.Errorf("second load: loaded %d, duplicates %d, want 1 and 1", sum.Loaded, sum.Duplicates)
	}
	if got := queryString(t, st, "SELECT groupArray(toString(revenue)) FROM (SELECT revenue FROM orders FINAL ORDER BY order_id)"); got != "['15','20']" {
		t.Errorf("revenues %s, want the resent 15 to replace 10", got)
	}
	var wg sync.WaitGroup
	for i := range 2 {
		path := ordersFile(t, fmt.Sprintf("p%d.csv", i), 3000)
		wg.Go(func() {
			if _, err := ingest.LoadFile(context.Background(), st, path, ingest.Options{Entity: "orders", Source: fmt.Sprintf("par%d", i), BatchRows: 700}, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := queryString(t, st, "SELECT count() FROM orders FINAL WHERE startsWith(source, 'par')"); got != "6000" {
		t.Errorf("%s orders from the two concurrent runs, want 6000", got)
	}
	if n := stagingTables(t, st); n != 0 {
		t.Errorf("%d staging tables left", n)
	}
}
