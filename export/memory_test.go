package export

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// wideQuery generates n rows of five columns in the engine: an id, an
// instant, a Decimal amount, a string and a flag.
func wideQuery(n int) string {
	return fmt.Sprintf(`SELECT number AS id, toDateTime('2026-01-01 00:00:00', 'UTC') + number AS at,
       toDecimal64(number / 100, 2) AS amount, concat('customer-', toString(number %% 100000)) AS customer,
       number %% 7 = 0 AS flag
FROM numbers(%d)`, n)
}

// TestExportProcess is not a test: with EXPORT_TEST_ROWS=n it exports
// wideQuery(n) as CSV to a file and prints the rows and bytes written; the
// memory test runs it as a child process to measure its peak RSS.
func TestExportProcess(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("EXPORT_TEST_ROWS"))
	if err != nil {
		t.Skip("runs in a child process of TestExportMemoryBounded")
	}
	st := whtest.EmptyStore(t)
	f, err := os.Create(os.Getenv("EXPORT_TEST_OUT"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := SQL(context.Background(), st, warehouse.Console{Timeout: 10 * time.Minute, MaxMemory: 1 << 30}, wideQuery(n), f, Options{Raw: true})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("exported rows=%d bytes=%d\n", m.Rows, m.Bytes)
}

// peakRSS runs the export of n rows in a child process and returns its peak
// resident set (KiB) and what it printed.
func peakRSS(t *testing.T, n int) (int64, string) {
	t.Helper()
	out := t.TempDir() + "/out.csv"
	cmd := exec.Command(os.Args[0], "-test.run=^TestExportProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "EXPORT_TEST_ROWS="+strconv.Itoa(n), "EXPORT_TEST_OUT="+out)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child exporting %d rows: %v\n%s", n, err, b)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("exported rows=%d bytes=%d", n, fi.Size())
	if !strings.Contains(string(b), want) {
		t.Fatalf("child output does not say %q:\n%s", want, b)
	}
	return cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss, string(b)
}

// TestExportMemoryBounded exports 5M rows generated in the engine and checks
// that the process's peak RSS grows by less than 100 MB (95 MiB) over an
// export of 1,000 rows: rows are streamed, not held, and the engine's blocks
// are small (ExportBlockRows). (Holding 5M rows of five values as Go values
// would take well over 1 GiB; with the engine's default block size the
// growth was about 110 MiB.)
func TestExportMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("exports 5M rows")
	}
	small, _ := peakRSS(t, 1000)
	start := time.Now()
	large, _ := peakRSS(t, 5_000_000)
	growth := (large - small) / 1024
	t.Logf("peak RSS: 1,000 rows %d MiB, 5,000,000 rows %d MiB (+%d MiB), %v", small/1024, large/1024, growth, time.Since(start).Round(time.Millisecond))
	if growth >= 95 {
		t.Errorf("peak RSS grew by %d MiB exporting 5M rows; want < 95 MiB (100 MB)", growth)
	}
}

// vmHWM reads the process's peak resident set (KiB) from /proc/self/status.
func vmHWM() int64 { return procStatus("VmHWM:") }

// vmRSS reads the process's resident set (KiB) from /proc/self/status.
func vmRSS() int64 { return procStatus("VmRSS:") }

// procStatus reads a "… kB" field of /proc/self/status (KiB).
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// resetHWM resets the peak resident set to the current one (Linux 4.0+).
func resetHWM() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }
