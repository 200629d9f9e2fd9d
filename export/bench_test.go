package export

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// BenchmarkExportCSV10M writes 10M rows of wideQuery to a CSV file three
// ways: through this package (scanned row by row by clickhouse-go, written by
// the CSV writer), by the engine itself (INTO OUTFILE … FORMAT CSV), and by
// the engine through the HTTP bridge (the body of SELECT … FORMAT CSV copied
// to a file). Each reports rows/s, the peak RSS of the process during the
// run (VmHWM after resetting it; the engine runs in this process) and its
// growth over the RSS before the run, and the
// CPU time the process used (user + system, all threads: steadier than wall
// time on a shared machine).
//
//	go test ./export/ -run '^$' -bench ExportCSV10M -benchtime 1x
func BenchmarkExportCSV10M(b *testing.B) {
	const n = 10_000_000
	st := whtest.EmptyStore(b)
	ctx := context.Background()
	q := wideQuery(n)
	dir := b.TempDir()
	run := func(b *testing.B, write func(path string) error) {
		path := filepath.Join(dir, b.Name()+".csv")
		os.MkdirAll(filepath.Dir(path), 0o755)
		resetHWM()
		rss0 := vmRSS()
		var size int64
		cpu0 := cpuTime()
		b.ResetTimer()
		for range b.N {
			os.Remove(path)
			if err := write(path); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		cpu := cpuTime() - cpu0
		if fi, err := os.Stat(path); err == nil {
			size = fi.Size()
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(float64(vmHWM())/1024, "peak-RSS-MiB")
		b.ReportMetric(float64(vmHWM()-rss0)/1024, "RSS-growth-MiB")
		b.ReportMetric(float64(size)/(1<<20), "file-MiB")
		b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	}
	b.Run("converge", func(b *testing.B) {
		run(b, func(path string) error {
			f, err := os.Create(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = SQL(ctx, st, warehouse.Console{Timeout: time.Hour, MaxMemory: 2 << 30}, q, f, Options{Raw: true})
			return err
		})
	})
	b.Run("clickhouse-outfile", func(b *testing.B) {
		run(b, func(path string) error {
			return st.Conn.Exec(warehouse.Materialized(ctx), q+" INTO OUTFILE '"+path+"' FORMAT CSV")
		})
	})
	b.Run("clickhouse-http", func(b *testing.B) {
		run(b, func(path string) error {
			f, err := os.Create(path)
			if err != nil {
				return err
			}
			defer f.Close()
			req, err := http.NewRequestWithContext(ctx, "POST", "http://embedded/?database="+url.QueryEscape(st.Database), nil)
			if err != nil {
				return err
			}
			req.Body = io.NopCloser(strings.NewReader(q + " FORMAT CSV"))
			resp, err := st.Engine.RoundTripper().RoundTrip(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, err = io.Copy(f, resp.Body)
			return err
		})
	})
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
