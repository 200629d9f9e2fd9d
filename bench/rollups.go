package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse"
)

// rollupBudget and rollupMaxLoads bound the extra load pairs of a quick metric in the
// rollups step: a median of five loads of a few milliseconds is mostly noise.
const (
	rollupBudget   = 2 * time.Second
	rollupMaxLoads = 30
)

// rollupsVsRaw: the rollups built from scratch (one upkeep round after every rollup is
// marked for a rebuild: the full rebuild), their bytes on disk beside the raw tables' they
// fold; then every metric that is not custom (built-ins, and Config.MetricsDir's), over the overview's default range and
// over the year, loaded cold from raw rows and from the rollups in turn (raw, rollup, raw,
// rollup… on a registry without result cache, so noise hits both); and the upkeep that folds
// a CSV ingest in, beside the ingest's own time.
func rollupsVsRaw(ctx context.Context, cfg *Config) ([]Result, error) {
	reg, err := metrics.New(ctx, metrics.Options{Store: cfg.Store, Dir: cfg.MetricsDir, Lanes: cfg.Lanes, CacheTTL: -1})
	if err != nil {
		return nil, err
	}
	if _, err := reg.RebuildRollup(ctx, ""); err != nil {
		return nil, fmt.Errorf("mark the rollups for a rebuild: %w", err)
	}
	up, uerr := reg.UpkeepRollups(ctx)
	if uerr != nil {
		// A rollup that failed is read from raw rows (Explain says so below): reported, not fatal.
		cfg.Log.Warn("bench: rollup rebuild", "failed", up.Failed, "err", uerr)
	}
	status, rawOnly, err := reg.RollupsStatus(ctx)
	if err != nil {
		return nil, err
	}
	var rollupBytes uint64
	var sources []string
	ready := 0
	for _, s := range status {
		rollupBytes += s.Bytes
		if s.Status == metrics.RollupReady {
			ready++
		}
		for _, t := range s.Sources {
			if !slices.Contains(sources, t) {
				sources = append(sources, t)
			}
		}
	}
	slices.Sort(sources)
	rawBytes, err := bytesOnDisk(ctx, cfg.Store, sources)
	if err != nil {
		return nil, err
	}
	note := fmt.Sprintf("%d rollups (%d ready), %d partitions; %d simple metrics read raw rows", len(status), ready, up.Partitions, len(rawOnly))
	if len(up.Failed) > 0 {
		note += "; failed: " + strings.Join(up.Failed, ", ")
	}
	out := []Result{
		{Group: "rollup", Name: "full rebuild", Unit: "ms", Median: msOf(up.Took), N: 1, Note: note},
	}
	if rawBytes > 0 {
		pct := 100 * float64(rollupBytes) / float64(rawBytes)
		out = append(out, Result{Group: "rollup", Name: "rollups on disk vs raw tables", Unit: "%", Median: pct, N: len(status),
			Note: fmt.Sprintf("%s of rollups vs %s of %s (target ≤ 15 %%)", mib(rollupBytes), mib(rawBytes), strings.Join(sources, ", "))})
	}

	last, err := lastOrder(ctx, cfg)
	if err != nil {
		return nil, err
	}
	yFrom, yTo := yearBefore(last)
	views := []struct {
		name string
		v    map[string][]string
	}{
		// As the overview opens (server: last_30_days, day grain, compared with the period before).
		{"last 30 days", map[string][]string{"from": {last.AddDate(0, 0, -29).Format(time.DateOnly)}, "to": {last.Format(time.DateOnly)},
			"grain": {"day"}, "compare": {"previous"}}},
		{"year", map[string][]string{"from": {yFrom.Format(time.DateOnly)}, "to": {yTo.AddDate(0, 0, -1).Format(time.DateOnly)}, "grain": {"month"}}},
	}
	for _, d := range reg.List() {
		if len(cfg.Metrics) > 0 && !slices.Contains(cfg.Metrics, d.Name) || d.Kind == metrics.Custom && !readsRollup(ctx, reg, d) {
			continue // a custom metric read from raw rows either way is timed by the metrics step
		}
		for _, view := range views {
			r, err := metricPaths(ctx, cfg, reg, d, view.name, view.v)
			if err != nil {
				return nil, fmt.Errorf("%s over %s: %w", d.Name, view.name, err)
			}
			out = append(out, r)
		}
	}
	if s := pathSummary(out); s.N > 0 {
		out = append(out, s)
	}

	up2, err := upkeepPerIngest(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("upkeep per ingest: %w", err)
	}
	return append(out, up2), nil
}

// readsRollup reports whether a month of d with its parameters' defaults is answered from a
// rollup.
func readsRollup(ctx context.Context, reg *metrics.Registry, d *metrics.Definition) bool {
	p, err := reg.ParseParams(d.Name, map[string][]string{"from": {"2024-01-01"}, "to": {"2024-01-31"}})
	if err != nil {
		return false
	}
	ex, err := reg.Explain(ctx, d.Name, p)
	if err != nil {
		return false
	}
	path, _ := explainPath(ex)
	return path != "raw"
}

// metricPaths loads metric d with the parameters v from raw rows and from its rollups in
// turn and says which path the rollup load took.
func metricPaths(ctx context.Context, cfg *Config, reg *metrics.Registry, d *metrics.Definition, view string, v map[string][]string) (Result, error) {
	name := d.Name + " (" + string(d.Kind) + "), " + view
	p, err := reg.ParseParams(d.Name, v)
	if err != nil {
		return Result{}, err
	}
	if _, err := reg.Query(ctx, d.Name, p); err != nil { // definition checks, not timed
		return Result{}, err
	}
	ex, err := reg.Explain(ctx, d.Name, p)
	if err != nil {
		return Result{}, err
	}
	path, how := explainPath(ex)
	timed := func(ctx context.Context) (float64, error) {
		t0 := time.Now()
		_, err := reg.Query(ctx, d.Name, p)
		return msOf(time.Since(t0)), err
	}
	var planned, raw []float64
	for began := time.Now(); len(planned) < cfg.RollupLoads || time.Since(began) < rollupBudget && len(planned) < rollupMaxLoads; {
		if path != "raw" { // a metric read from raw rows either way has one path to time
			ms, err := timed(metrics.RawRows(ctx))
			if err != nil {
				return Result{}, fmt.Errorf("raw rows: %w", err)
			}
			raw = append(raw, ms)
		}
		ms, err := timed(ctx)
		if err != nil {
			return Result{}, err
		}
		planned = append(planned, ms)
	}
	pm, pp := quantiles(planned)
	res := Result{Group: "rollup", Name: name, Unit: "ms", Median: pm, P95: pp, N: len(planned), Path: path}
	if path == "raw" {
		res.Note = "raw rows either way: " + how
		cfg.Log.Info("bench: metric paths", "name", d.Name, "view", view, "path", path, "ms", pm)
		return res, nil
	}
	res.Direct, res.DirectP95 = quantiles(raw)
	res.Ratio = res.Direct / pm
	res.Note = fmt.Sprintf("%s; raw rows p95 %.1f ms; ratio raw/rollup", how, res.DirectP95)
	cfg.Log.Info("bench: metric paths", "name", d.Name, "view", view, "path", path, "rollup_ms", pm, "raw_ms", res.Direct, "ratio", res.Ratio)
	return res, nil
}

// explainPath is the path of an answer (rollup, raw, or mixed when a derived metric's inputs
// took both) and what it read: the rollup tables, and why an input read raw rows.
func explainPath(ex *metrics.Explain) (string, string) {
	var rolled, raw []string
	for _, l := range ex.Inputs {
		if l.Path == "rollup" {
			rolled = append(rolled, strings.Join(l.Tables, "+"))
		} else {
			// The reason's first clause ("its model uses JOIN"): the rest repeats for every metric.
			why, _, _ := strings.Cut(l.Reason, ": ")
			raw = append(raw, l.Metric+": "+why)
		}
	}
	var parts []string
	if len(rolled) > 0 {
		parts = append(parts, "rollup "+strings.Join(rolled, ", "))
	}
	if len(raw) > 0 {
		parts = append(parts, "raw "+strings.Join(raw, "; "))
	}
	switch {
	case len(raw) == 0 && len(rolled) > 0:
		return "rollup", strings.Join(parts, "; ")
	case len(rolled) == 0:
		return "raw", strings.Join(parts, "; ")
	default:
		return "mixed", strings.Join(parts, "; ")
	}
}

// pathSummary sums the rollup group's per-metric loads: how many metrics took each path and
// the median speed-up of those answered from rollups.
func pathSummary(rs []Result) Result {
	var ratios []float64
	count := map[string]int{}
	n := 0
	for _, r := range rs {
		if r.Path == "" {
			continue
		}
		n++
		count[r.Path]++
		if r.Ratio > 0 {
			ratios = append(ratios, r.Ratio)
		}
	}
	rm, rp := quantiles(ratios)
	return Result{Group: "rollup", Name: "speed-up raw/rollup, all metrics", Unit: "×", Median: rm, P95: percentile(ratios, 5), N: n,
		Note: fmt.Sprintf("p95 column: the 5th percentile (the least speed-up); best %.1f×; paths: %d rollup, %d mixed, %d raw", rp, count["rollup"], count["mixed"], count["raw"])}
}

// upkeepPerIngest: in a scratch database holding IngestRows orders and their rollups, three
// more CSV files of as many orders in the same months are loaded as the ingest step loads
// one, each followed by the upkeep round that folds it in; the upkeep's time as a share of
// the ingest's.
func upkeepPerIngest(ctx context.Context, cfg *Config) (Result, error) {
	st, drop, err := scratch(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	defer drop()
	reg, err := metrics.New(ctx, metrics.Options{Store: st, Lanes: cfg.Lanes, CacheTTL: -1})
	if err != nil {
		return Result{}, err
	}
	load := func(batch int) (time.Duration, error) {
		path := filepath.Join(cfg.TempDir, fmt.Sprintf("converge-bench-upkeep-%d-%d.csv", os.Getpid(), batch))
		if err := writeOrders(path, batch*cfg.IngestRows, cfg.IngestRows); err != nil {
			return 0, err
		}
		defer os.Remove(path)
		t0 := time.Now()
		sum, err := ingest.LoadFile(ctx, st, path, ingest.Options{Entity: "orders", Source: "bench"}, nil)
		d := time.Since(t0)
		if err != nil {
			return 0, err
		}
		if sum.Loaded != int64(cfg.IngestRows) {
			return 0, fmt.Errorf("loaded %d of %d rows (%d rejected)", sum.Loaded, cfg.IngestRows, sum.Rejected)
		}
		return d, nil
	}
	if _, err := load(0); err != nil {
		return Result{}, err
	}
	if _, err := reg.UpkeepRollups(ctx); err != nil { // the rollups built: not timed
		return Result{}, err
	}
	var pct, upMs, inMs []float64
	parts := 0
	for batch := 1; batch <= 3; batch++ {
		d, err := load(batch)
		if err != nil {
			return Result{}, err
		}
		up, err := reg.UpkeepRollups(ctx)
		if err != nil {
			return Result{}, err
		}
		if up.Partitions == 0 {
			return Result{}, fmt.Errorf("the upkeep after loading %d orders recomputed no partition", cfg.IngestRows)
		}
		parts = up.Partitions
		pct, upMs, inMs = append(pct, 100*up.Took.Seconds()/d.Seconds()), append(upMs, msOf(up.Took)), append(inMs, msOf(d))
	}
	m, p := quantiles(pct)
	return Result{Group: "rollup", Name: "upkeep per ingest", Unit: "%", Median: m, P95: p, N: len(pct),
		Note: fmt.Sprintf("upkeep %.0f ms vs ingest.LoadFile %.0f ms of %d orders (medians; %d partitions folded in; target ≤ 25 %%)",
			median(upMs), median(inMs), cfg.IngestRows, parts)}, nil
}

// bytesOnDisk is the bytes on disk of the active parts of tables.
func bytesOnDisk(ctx context.Context, st *warehouse.Store, tables []string) (uint64, error) {
	var n uint64
	err := st.Conn.QueryRow(ctx, "SELECT toUInt64(sum(bytes_on_disk)) FROM system.parts WHERE database = currentDatabase() AND active AND table IN {tables:Array(String)}",
		clickhouse.Named("tables", tables)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("bytes on disk of %s: %w", strings.Join(tables, ", "), err)
	}
	return n, nil
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
