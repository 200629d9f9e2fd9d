package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/converge-dev/converge/export"
	"github.com/converge-dev/converge/warehouse"
)

// exportRows is how many rows the export benchmark writes.
const exportRows = 10_000_000

// exportQuery generates exportRows rows of five columns in the engine (an id, an instant, a
// Decimal amount, a string and a flag): the same rows for converge and for the engine, at
// every demo size.
var exportQuery = fmt.Sprintf(`SELECT number AS id, toDateTime('2026-01-01 00:00:00', 'UTC') + number AS at,
       toDecimal64(number / 100, 2) AS amount, concat('customer-', toString(number %% 100000)) AS customer,
       number %% 7 = 0 AS flag
FROM numbers(%d)`, exportRows)

// exportCSV: a CSV export of 10M rows to a file through export.SQL (the read-only console,
// clickhouse-go, the CSV writer and its SHA-256), vs the engine writing the same rows as CSV
// itself (INTO OUTFILE); rows/s, and how much the process's resident memory grew over what it
// was just before (the engine runs in this process).
func exportCSV(ctx context.Context, cfg *Config) ([]Result, error) {
	dir, err := os.MkdirTemp(cfg.TempDir, "converge-bench-export-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "export.csv")
	run := func(write func() error) (rowsPerSec, growthMiB, peakMiB float64, err error) {
		os.Remove(path)
		resetPeak()
		rss0, _ := memory()
		t0 := time.Now()
		if err := write(); err != nil {
			return 0, 0, 0, err
		}
		d := time.Since(t0)
		_, hwm := memory()
		return exportRows / d.Seconds(), hwm - rss0, hwm, nil
	}
	var conv, eng, convGrowth, engGrowth, convPeak []float64
	for range cfg.Cold {
		r, g, p, err := run(func() error {
			f, err := os.Create(path)
			if err != nil {
				return err
			}
			defer f.Close()
			m, err := export.SQL(ctx, cfg.Store, warehouse.Console{Timeout: time.Hour, MaxMemory: 2 << 30}, exportQuery, f, export.Options{Raw: true})
			if err == nil && m.Rows != exportRows {
				err = fmt.Errorf("export wrote %d rows, want %d", m.Rows, exportRows)
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("converge: %w", err)
		}
		conv, convGrowth, convPeak = append(conv, r), append(convGrowth, g), append(convPeak, p)
		r, g, _, err = run(func() error {
			return cfg.Store.Conn.Exec(warehouse.Materialized(ctx), exportQuery+" INTO OUTFILE '"+path+"' FORMAT CSV")
		})
		if err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
		eng, engGrowth = append(eng, r), append(engGrowth, g)
	}
	cm, _ := quantiles(conv)
	em, _ := quantiles(eng)
	cg, cgp := quantiles(convGrowth)
	eg, _ := quantiles(engGrowth)
	pk, _ := quantiles(convPeak)
	return []Result{
		{Group: "export", Name: "CSV export, 10M rows × 5 columns", Unit: "rows/s", Median: cm, Direct: em, Ratio: cm / em, N: cfg.Cold,
			Note: "export.SQL to a file vs the engine's INTO OUTFILE … FORMAT CSV"},
		{Group: "export", Name: "CSV export, RSS growth", Unit: "MiB", Median: cg, P95: cgp, Direct: eg, Ratio: cg / eg, N: cfg.Cold,
			Note: fmt.Sprintf("peak over the RSS just before; converge's peak %.0f MiB", pk)},
	}, nil
}

// resetPeak resets the process's peak resident set (VmHWM) to the current one (Linux 4.0+).
func resetPeak() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }
