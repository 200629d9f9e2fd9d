package ingest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/embedded"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// totalsQueries are what a KPI sees: every total read with FINAL.
var totalsQueries = []string{
	"SELECT toString(count()) FROM orders FINAL",
	"SELECT toString(sum(revenue)) FROM orders FINAL",
	"SELECT toString(uniqExact(customer_id)) FROM orders FINAL",
	"SELECT toString(count()) FROM order_lines FINAL",
	"SELECT toString(sum(amount)) FROM order_lines FINAL",
	"SELECT toString(count()) FROM refunds FINAL",
	"SELECT toString(sum(amount)) FROM refunds FINAL",
}

func totals(t testing.TB, st *warehouse.Store) []string {
	out := make([]string, len(totalsQueries))
	for i, q := range totalsQueries {
		out[i] = queryString(t, st, q)
	}
	return out
}

// writeRetailLike writes an Online-Retail-shaped file: invoices of 1-8
// lines, some cancellations, some identical lines, some anonymous.
func writeRetailLike(t testing.TB, path string, rows int) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, `"InvoiceNo","StockCode","Description","Quantity","InvoiceDate","UnitPrice","CustomerID","Country"`)
	r := rand.New(rand.NewPCG(1, 2))
	inv, n := 600000, 0
	at := time.Date(2011, 1, 1, 8, 0, 0, 0, time.UTC)
	for n < rows {
		inv++
		lines := 1 + r.IntN(8)
		no, sign := strconv.Itoa(inv), 1
		if r.IntN(20) == 0 {
			no, sign = "C"+no, -1
		}
		cust := strconv.Itoa(12000 + r.IntN(3000))
		if r.IntN(5) == 0 {
			cust = "NA"
		}
		at = at.Add(time.Duration(r.IntN(3600)) * time.Second)
		for i := 0; i < lines && n < rows; i++ {
			sku := fmt.Sprintf("%05d", r.IntN(4000))
			if i > 0 && r.IntN(10) == 0 {
				sku = "00001" // repeated line
			}
			fmt.Fprintf(w, "%q,%q,%q,%d,%s,%.2f,%s,%q\n", no, sku, "ITEM "+sku, sign*(1+r.IntN(24)), at.Format("2006-01-02 15:04:05"), float64(r.IntN(2000))/100, cust, "United Kingdom")
			n++
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestKillChild is the child process of TestKillAndRerun and TestKillInCommit
// (skipped otherwise): with INGEST_CHILD_FILE it loads the file, printing a
// line per flush and per table committed (pausing after each with
// INGEST_CHILD_PAUSE, stopping for good after the first table committed with
// INGEST_CHILD_HANG_IN_COMMIT, to be killed there); without a file it
// inspects the store before and after the start's recovery.
func TestKillChild(t *testing.T) {
	dir := os.Getenv("INGEST_CHILD_DIR")
	if dir == "" {
		t.Skip("child of TestKillAndRerun")
	}
	ctx := context.Background()
	st, err := warehouse.Open(ctx, warehouse.Config{DataDir: dir, EngineLib: embedded.DefaultLibPath(), EnginePool: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	file := os.Getenv("INGEST_CHILD_FILE")
	if file == "" {
		before := inspect(t, st)
		rec, err := ingest.Recover(ctx, st, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(map[string]any{"before": before, "recovered": rec, "after": inspect(t, st)})
		fmt.Printf("RESULT %s\n", b)
		return
	}
	pause := os.Getenv("INGEST_CHILD_PAUSE") != ""
	hang := os.Getenv("INGEST_CHILD_HANG_IN_COMMIT") != ""
	opts := ingest.Options{Mapping: preset(t, "online_retail"), Preset: "online_retail", BatchRows: 2000,
		AfterFlush: func(loaded int64) {
			fmt.Printf("FLUSHED %d\n", loaded)
			if pause {
				time.Sleep(100 * time.Millisecond)
			}
		},
		AfterAttach: func(table string) {
			fmt.Printf("COMMITTED %s\n", table)
			if hang {
				select {} // killed here, half-way through the commit
			}
		}}
	sum, err := ingest.LoadFile(ctx, st, file, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"summary": sum, "totals": totals(t, st), "state": inspect(t, st)})
	fmt.Printf("RESULT %s\n", b)
}

// storeState is what a store holds of the runs: each run's row, the rows
// each run wrote that are visible, and the staging tables.
type storeState struct {
	Runs    map[string]runRow           `json:"runs"`
	Visible map[string]map[string]int64 `json:"visible"` // run -> table -> rows
	Stages  []string                    `json:"stages"`
	Totals  []string                    `json:"totals"`
}

type runRow struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Loaded int64  `json:"loaded"`
	Read   int64  `json:"read"`
}

func inspect(t testing.TB, st *warehouse.Store) storeState {
	ctx := context.Background()
	s := storeState{Runs: map[string]runRow{}, Visible: map[string]map[string]int64{}, Totals: totals(t, st)}
	rows, err := st.Conn.Query(ctx, "SELECT run_id, toString(status), error, rows_loaded, rows_read FROM ingest_runs FINAL")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var r runRow
		var loaded, read uint64
		if err := rows.Scan(&id, &r.Status, &r.Error, &loaded, &read); err != nil {
			t.Fatal(err)
		}
		r.Loaded, r.Read = int64(loaded), int64(read)
		s.Runs[id] = r
	}
	rows.Close()
	for _, table := range []string{"order_lines", "orders", "refunds", "ingest_keys"} {
		rows, err := st.Conn.Query(ctx, "SELECT toString(ingest_run_id), count() FROM "+table+" GROUP BY ingest_run_id")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			var n uint64
			if err := rows.Scan(&id, &n); err != nil {
				t.Fatal(err)
			}
			if s.Visible[id] == nil {
				s.Visible[id] = map[string]int64{}
			}
			s.Visible[id][table] = int64(n)
		}
		rows.Close()
	}
	rows, err = st.Conn.Query(ctx, "SELECT name FROM system.tables WHERE database = currentDatabase() AND startsWith(name, 'ingest_stage_') ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		s.Stages = append(s.Stages, n)
	}
	rows.Close()
	return s
}

// child runs TestKillChild on dataDir: loading file, or inspecting when file is "".
func child(dataDir, file string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.v")
	cmd.Env = append(os.Environ(), "INGEST_CHILD_DIR="+dataDir, "INGEST_CHILD_FILE="+file)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	return cmd
}

// startAndKill starts c and kills it (SIGKILL) once it has printed a line
// starting with prefix n times.
func startAndKill(t *testing.T, c *exec.Cmd, prefix string, n int) {
	t.Helper()
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	seen := 0
	for seen < n && sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "RESULT") {
			t.Fatal("the child finished before it was killed")
		}
		if strings.HasPrefix(line, prefix) {
			seen++
		}
	}
	if seen < n {
		c.Wait()
		t.Fatalf("child stopped after %d %s lines", seen, prefix)
	}
	if err := c.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = bufio.NewReader(out).WriteTo(devNull{}) }()
	_ = c.Wait()
}

// result runs c to the end and decodes its RESULT line into v.
func result(t *testing.T, c *exec.Cmd, v any) {
	t.Helper()
	b, err := c.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, b)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			if err := json.Unmarshal([]byte(rest), v); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no result from the child:\n%s", b)
}

type inspection struct {
	Before    storeState       `json:"before"`
	Recovered ingest.Recovered `json:"recovered"`
	After     storeState       `json:"after"`
}

type loadResult struct {
	Summary ingest.Summary `json:"summary"`
	Totals  []string       `json:"totals"`
	State   storeState     `json:"state"`
}

// TestKillAndRerun: an ingest killed with SIGKILL mid-file leaves nothing of
// it visible (its rows are staged); the next start marks it failed, with
// nothing loaded, and drops its staging tables; the file loaded again to
// completion leaves every total as one load does, and the run's loaded
// count is the rows it stored.
func TestKillAndRerun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	tmp := t.TempDir()
	file := filepath.Join(tmp, "retail.csv")
	writeRetailLike(t, file, 40000)
	dataDir := filepath.Join(tmp, "data")

	// 1. start, wait for a few flushes, SIGKILL
	startAndKill(t, child(dataDir, file, "INGEST_CHILD_PAUSE=1"), "FLUSHED", 4)

	// 2. the next start: nothing of the killed run visible, then it is failed
	var in inspection
	result(t, child(dataDir, ""), &in)
	var killed string
	for id, r := range in.Before.Runs {
		if r.Status != ingest.StatusRunning {
			t.Errorf("run %s is %s before recovery, want running", id, r.Status)
		}
		killed = id
	}
	if len(in.Before.Runs) != 1 || len(in.Before.Visible) != 0 || len(in.Before.Stages) != 2 {
		t.Fatalf("before recovery: runs %v, visible rows %v, staging tables %v; want one running run, nothing visible, its 2 staging tables (order_lines and ingest_keys: orders are written at the end)", in.Before.Runs, in.Before.Visible, in.Before.Stages)
	}
	for i, q := range totalsQueries {
		if v := in.Before.Totals[i]; v != "0" {
			t.Errorf("%s = %s after the kill, want 0", q, v)
		}
	}
	after := in.After.Runs[killed]
	if len(in.Recovered.Failed) != 1 || in.Recovered.Failed[0] != killed || after.Status != ingest.StatusFailed || after.Loaded != 0 ||
		!strings.Contains(after.Error, "ended before the run finished; nothing of it was stored") || len(in.After.Stages) != 0 {
		t.Fatalf("after recovery: %+v, run %+v, staging tables %v; want the run failed, nothing loaded, no staging table", in.Recovered, after, in.After.Stages)
	}

	// 3. run again to completion
	var res loadResult
	result(t, child(dataDir, file), &res)
	s := res.Summary
	t.Logf("re-run: read %d loaded %d duplicates %d rejected %d", s.Read, s.Loaded, s.Duplicates, s.Rejected)
	if s.Read != 40000 || s.Rejected != 0 || s.Loaded != 40000 || s.Duplicates != 0 {
		t.Errorf("re-run summary: %+v", s)
	}
	row, vis := res.State.Runs[s.RunID], res.State.Visible[s.RunID]
	if row.Status != ingest.StatusSucceeded || row.Loaded != vis["order_lines"] || row.Loaded != s.Loaded || vis["ingest_keys"] == 0 || len(res.State.Stages) != 0 {
		t.Errorf("completed run: row %+v, rows stored %v, staging tables %v; want loaded = the order lines stored", row, vis, res.State.Stages)
	}
	if killedRow := res.State.Runs[killed]; killedRow.Status != ingest.StatusFailed || res.State.Visible[killed] != nil {
		t.Errorf("killed run after the re-run: %+v, rows %v", killedRow, res.State.Visible[killed])
	}

	// 4. one clean load of the same file
	st := whtest.Store(t)
	load(t, st, file, ingest.Options{Mapping: preset(t, "online_retail"), Preset: "online_retail"})
	want := totals(t, st)
	for i := range want {
		if res.Totals[i] != want[i] {
			t.Errorf("%s: killed+re-run %s, one load %s", totalsQueries[i], res.Totals[i], want[i])
		}
	}
}

// TestKillInCommit: a run killed half-way through its commit (one table's
// partitions moved, the others still staged) is finished by the next start:
// afterwards every table holds the whole file, as one load does, once.
func TestKillInCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	tmp := t.TempDir()
	file := filepath.Join(tmp, "retail.csv")
	writeRetailLike(t, file, 20000)
	dataDir := filepath.Join(tmp, "data")
	startAndKill(t, child(dataDir, file, "INGEST_CHILD_HANG_IN_COMMIT=1"), "COMMITTED", 1)

	var in inspection
	result(t, child(dataDir, ""), &in)
	if len(in.Before.Runs) != 1 {
		t.Fatalf("runs %v, want one", in.Before.Runs)
	}
	var id string
	var before runRow
	for id, before = range in.Before.Runs {
	}
	vis := in.Before.Visible[id]
	if before.Status != ingest.StatusCommitting || vis["order_lines"] != 20000 || vis["orders"] != 0 || len(in.Before.Stages) != 4 {
		t.Fatalf("before recovery: run %+v, rows visible %v, staging tables %v; want committing, order_lines moved, orders still staged", before, vis, in.Before.Stages)
	}
	after := in.After.Runs[id]
	vis = in.After.Visible[id]
	if len(in.Recovered.Committed) != 1 || after.Status != ingest.StatusSucceeded || after.Loaded != 20000 || vis["order_lines"] != 20000 || vis["orders"] == 0 || vis["ingest_keys"] == 0 || len(in.After.Stages) != 0 {
		t.Fatalf("after recovery: %+v, run %+v, rows %v, staging tables %v; want the commit finished", in.Recovered, after, vis, in.After.Stages)
	}
	st := whtest.Store(t)
	load(t, st, file, ingest.Options{Mapping: preset(t, "online_retail"), Preset: "online_retail"})
	want := totals(t, st)
	for i := range want {
		if in.After.Totals[i] != want[i] {
			t.Errorf("%s: killed in commit and recovered %s, one load %s", totalsQueries[i], in.After.Totals[i], want[i])
		}
	}
	// Recovering again changes nothing.
	var again inspection
	result(t, child(dataDir, ""), &again)
	if len(again.Recovered.Failed)+len(again.Recovered.Committed)+len(again.Recovered.Dropped) != 0 || fmt.Sprint(again.After.Totals) != fmt.Sprint(in.After.Totals) {
		t.Errorf("second recovery: %+v, totals %v then %v", again.Recovered, in.After.Totals, again.After.Totals)
	}
}

type devNull struct{}

func (devNull) Write(p []byte) (int, error) { return len(p), nil }
