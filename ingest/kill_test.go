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

// TestKillChild is the child process of TestKillAndRerun (skipped otherwise).
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
	pause := os.Getenv("INGEST_CHILD_PAUSE") != ""
	opts := ingest.Options{Mapping: preset(t, "online_retail"), Preset: "online_retail", BatchRows: 2000,
		AfterFlush: func(loaded int64) {
			fmt.Printf("FLUSHED %d\n", loaded)
			if pause {
				time.Sleep(100 * time.Millisecond)
			}
		}}
	sum, err := ingest.LoadFile(ctx, st, os.Getenv("INGEST_CHILD_FILE"), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"summary": sum, "totals": totals(t, st)})
	fmt.Printf("RESULT %s\n", b)
}

// TestKillAndRerun: an ingest killed with SIGKILL mid-file and run again to
// completion leaves every total as one load does.
func TestKillAndRerun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	tmp := t.TempDir()
	file := filepath.Join(tmp, "retail.csv")
	writeRetailLike(t, file, 40000)
	dataDir := filepath.Join(tmp, "data")

	child := func(pause bool) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.v")
		cmd.Env = append(os.Environ(), "INGEST_CHILD_DIR="+dataDir, "INGEST_CHILD_FILE="+file)
		if pause {
			cmd.Env = append(cmd.Env, "INGEST_CHILD_PAUSE=1")
		}
		cmd.Stderr = os.Stderr
		return cmd
	}

	// 1. start, wait for a few flushes, SIGKILL
	c1 := child(true)
	out, err := c1.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c1.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	flushes := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "RESULT") {
			t.Fatal("the first child finished before it was killed")
		}
		if strings.HasPrefix(line, "FLUSHED") {
			if flushes++; flushes == 4 {
				break
			}
		}
	}
	if flushes < 4 {
		c1.Wait()
		t.Fatalf("child stopped after %d flushes", flushes)
	}
	if err := c1.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = bufio.NewReader(out).WriteTo(devNull{}) }()
	_ = c1.Wait()
	t.Logf("killed after %d flushes", flushes)

	// 2. run again to completion
	c2 := child(false)
	b, err := c2.Output()
	if err != nil {
		t.Fatalf("re-run: %v\n%s", err, b)
	}
	var res struct {
		Summary ingest.Summary `json:"summary"`
		Totals  []string       `json:"totals"`
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			if err := json.Unmarshal([]byte(rest), &res); err != nil {
				t.Fatal(err)
			}
		}
	}
	if res.Totals == nil {
		t.Fatalf("no result from the re-run:\n%s", b)
	}
	s := res.Summary
	t.Logf("re-run: read %d loaded %d duplicates %d rejected %d", s.Read, s.Loaded, s.Duplicates, s.Rejected)
	if s.Read != 40000 || s.Rejected != 0 || s.Duplicates < 4*2000 || s.Read != s.Loaded+s.Duplicates {
		t.Errorf("re-run summary: %+v", s)
	}

	// 3. one clean load of the same file
	st := whtest.Store(t)
	load(t, st, file, ingest.Options{Mapping: preset(t, "online_retail"), Preset: "online_retail"})
	want := totals(t, st)
	for i := range want {
		if res.Totals[i] != want[i] {
			t.Errorf("%s: killed+re-run %s, one load %s", totalsQueries[i], res.Totals[i], want[i])
		}
	}
}

type devNull struct{}

func (devNull) Write(p []byte) (int, error) { return len(p), nil }
