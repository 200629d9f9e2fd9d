// Package bench is converge's benchmark harness (`converge bench`): on a store
// made by `converge demo`, it measures what the issues set targets for and
// prints one table, each figure beside the engine doing the same work
// directly where there is such a thing, measured in the same run:
//
//   - CSV ingest: rows/s of a canonical orders file through ingest.LoadFile
//     vs the engine reading it with INSERT … FROM INFILE;
//   - events API: events/s and ack latency of 4 clients posting 1,000-record
//     NDJSON batches vs the engine inserting the same rows as JSONEachRow;
//   - rollups vs raw rows: the full rebuild of the rollups, their bytes on disk
//     vs the raw tables', each metric that is not custom loaded cold from raw
//     rows and from its rollups in turn (ratio raw/rollup, the path Explain
//     names), and the upkeep that folds a CSV ingest in vs the ingest's time;
//   - every built-in metric over a year at month grain: cold answer (no result
//     cache) vs the SQL statements it ran replayed one after another, and the
//     cached answer;
//   - the overview page, over a year and as it opens (last 30 days): cold and
//     warm server time, the cold time vs its raw statements run one after
//     another, HTML and script bytes;
//   - the customer 360 page of the customer with the most orders, likewise;
//   - the other dashboard pages (channels, funnel, retention, 4R, a KPI's detail,
//     customers) as they open: cold, vs their statements one after another, and warm;
//   - the server's memory (RSS) at rest and its peak under the page loads;
//   - the overview's cold load alone and while one analyst keeps six long SQL console
//     queries going (console-load);
//   - the overview while events stream through the events API with the rollup
//     loop running: page median and p95, events/s achieved, and the lag from an
//     order's acknowledgement to the answers that count it (stream).
//
// It imports server, metrics and ingest (it drives them as serve does), so
// only cmd/converge imports it. Benchmarks run in the calling process: the
// figures include Go's and the engine's work on the same cores.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse"
)

// Config says what to measure.
type Config struct {
	// Store is a store loaded with the demo (or any data with orders); it must
	// be embedded (the engine-direct comparisons need the engine).
	Store *warehouse.Store
	// Size names the data for the report (small, large, …).
	Size string
	// IngestRows is the size of the CSV ingest file; default 200,000.
	IngestRows int
	// Events is how many events the events benchmark posts; default 60,000.
	Events int
	// Cold is the number of cold answers of a metric and of cold loads of the
	// overview over a year; default 3. Warm is the number of warm loads of a
	// page; default 50.
	Cold, Warm int
	// PageCold is the number of cold loads of the pages that take seconds rather
	// than minutes: the overview as it opens (last 30 days) and the customer 360;
	// default 50.
	PageCold int
	// RollupLoads is the least number of cold loads of each path (raw rows, rollup) per
	// metric and range in the rollups step; a quick metric is loaded more often (up to
	// rollupMaxLoads pairs within rollupBudget); default 5.
	RollupLoads int
	// StreamFor is how long the stream step streams events; default 30 s. StreamRate is
	// the events per second it aims at; default 1,000.
	StreamFor  time.Duration
	StreamRate int
	// Metrics limits the per-metric benchmark to these names; empty: all.
	Metrics []string
	// MetricsDir is the user's metrics folder (metrics.dir) the rollups step reads beside the
	// built-ins; empty: built-ins only.
	MetricsDir string
	// Steps limits the run to these steps (Steps lists them); empty: all.
	Steps []string
	// Log receives progress lines; nil discards them.
	Log *slog.Logger
	// TempDir holds generated files; default os.TempDir().
	TempDir string

	// Lanes are shared by the run's metric registries, as one server's are: what a
	// statement cost before is known to the next registry (heavy ones share the cores by what they use).
	// Default: new ones, that know no statement.
	Lanes *metrics.Lanes
}

func (c *Config) defaults() {
	if c.Lanes == nil {
		c.Lanes = metrics.NewLanes()
	}
	if c.IngestRows <= 0 {
		c.IngestRows = 200_000
	}
	if c.Events <= 0 {
		c.Events = 60_000
	}
	if c.Cold <= 0 {
		c.Cold = 3
	}
	if c.Warm <= 0 {
		c.Warm = 50
	}
	if c.RollupLoads <= 0 {
		c.RollupLoads = 5
	}
	if c.StreamFor <= 0 {
		c.StreamFor = 30 * time.Second
	}
	if c.StreamRate <= 0 {
		c.StreamRate = 1000
	}
	if c.PageCold <= 0 {
		c.PageCold = 50
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.TempDir == "" {
		c.TempDir = os.TempDir()
	}
}

// Result is one line of the report. Median and P95 are in Unit; Direct is
// the engine doing the same work (0 when there is no such comparison) and
// Ratio = Median / Direct for durations, Median / Direct for rates too (so
// for a rate, higher is better; for a time, lower is better).
//
// The rollup group compares a metric's two paths instead: Median and P95 are
// the rollup path's, Direct and DirectP95 the raw path's, and Ratio is the
// speed-up raw / rollup (0 when the metric reads raw rows either way); Path is
// the path the metric's answer took (rollup, raw, or mixed for a derived
// metric whose inputs took both).
type Result struct {
	Group  string  `json:"group"`
	Name   string  `json:"name"`
	Unit   string  `json:"unit"`
	Median float64 `json:"median"`
	P95    float64 `json:"p95,omitempty"`
	Direct float64 `json:"direct,omitempty"`
	Ratio  float64 `json:"ratio,omitempty"`
	N      int     `json:"n"`
	// DirectP95 is the comparison's 95th percentile, where it has one.
	DirectP95 float64 `json:"direct_p95,omitempty"`
	Path      string  `json:"path,omitempty"`
	Note      string  `json:"note,omitempty"`
}

// Report is a whole run.
type Report struct {
	Size      string    `json:"size"`
	Started   time.Time `json:"started"`
	Took      string    `json:"took"`
	GoVersion string    `json:"go_version"`
	CPUs      int       `json:"cpus"`
	Results   []Result  `json:"results"`
}

type step struct {
	key, name string
	f         func(context.Context, *Config) ([]Result, error)
}

var steps = []step{
	{"memory", "memory at rest", memoryAtRest},
	{"ingest", "CSV ingest", ingestCSV},
	{"events", "events API", eventsAPI},
	{"rollups", "rollups vs raw rows", rollupsVsRaw},
	{"metrics", "metrics", builtins},
	{"overview", "overview", overview},
	{"customer360", "customer 360", customer360},
	{"pages", "dashboard pages", dashboard},
	{"export", "CSV export", exportCSV},
	{"console-load", "overview beside the SQL console", consoleLoad},
	{"stream", "overview while events stream", streamOverview},
}

// Steps names the steps of a run, in order (Config.Steps).
func Steps() []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.key)
	}
	return out
}

// Run measures everything and returns the report. A failing measurement
// ends the run with its error (a benchmark that half ran is not reported).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	if cfg.Store == nil || cfg.Store.Engine == nil {
		return nil, fmt.Errorf("bench: needs the embedded store (the engine-direct comparisons run in it)")
	}
	rep := &Report{Size: cfg.Size, Started: time.Now().UTC(), GoVersion: goVersion(), CPUs: numCPU()}
	for _, name := range cfg.Steps {
		if !slices.ContainsFunc(steps, func(s step) bool { return s.key == name }) {
			return nil, fmt.Errorf("bench: no step %q (the steps are %s)", name, strings.Join(Steps(), ", "))
		}
	}
	for _, s := range steps {
		if len(cfg.Steps) > 0 && !slices.Contains(cfg.Steps, s.key) {
			continue
		}
		cfg.Log.Info("bench: " + s.name + "…")
		t0 := time.Now()
		res, err := s.f(ctx, &cfg)
		if err != nil {
			return nil, fmt.Errorf("bench %s: %w", s.name, err)
		}
		cfg.Log.Info("bench: "+s.name+" done", "took", time.Since(t0).Round(time.Millisecond))
		rep.Results = append(rep.Results, res...)
	}
	rep.Took = time.Since(rep.Started).Round(time.Second).String()
	return rep, nil
}

// WriteTable prints the report as one aligned table.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "group\tmeasure\tunit\tmedian\tp95\tengine direct\tratio\tn\tnote\t\n")
	for _, x := range r.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t\n", x.Group, x.Name, x.Unit, num(x.Median), num(x.P95), num(x.Direct), ratio(x.Ratio), x.N, x.Note)
	}
	fmt.Fprintf(tw, "\n%s data, %d CPUs, %s, took %s\t\t\t\t\t\t\t\t\t\n", r.Size, r.CPUs, r.GoVersion, r.Took)
	return tw.Flush()
}

// WriteMarkdown writes the table for the README.
func (r *Report) WriteMarkdown(w io.Writer) error {
	fmt.Fprintf(w, "| group | measure | unit | median | p95 | engine direct | ratio | n | note |\n|---|---|---|---:|---:|---:|---:|---:|---|\n")
	for _, x := range r.Results {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %d | %s |\n", x.Group, x.Name, x.Unit, num(x.Median), num(x.P95), num(x.Direct), ratio(x.Ratio), x.N, x.Note)
	}
	_, err := fmt.Fprintf(w, "\n%s data, %d CPUs, %s, took %s.\n", r.Size, r.CPUs, r.GoVersion, r.Took)
	return err
}

// Save writes bench.json, bench.txt and bench.md into dir.
func (r *Report) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	for name, write := range map[string]func(io.Writer) error{"bench.txt": r.WriteTable, "bench.md": r.WriteMarkdown} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		werr := write(f)
		if err := f.Close(); werr == nil {
			werr = err
		}
		if werr != nil {
			return werr
		}
	}
	return nil
}

func num(v float64) string {
	switch {
	case v == 0:
		return ""
	case v >= 1000:
		s := fmt.Sprintf("%.0f", v)
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		return b.String()
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func ratio(v float64) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", v)
}

// quantiles returns the median and the 95th percentile (nearest rank) of xs.
func quantiles(xs []float64) (float64, float64) {
	return percentile(xs, 50), percentile(xs, 95)
}

// median is percentile(xs, 50).
func median(xs []float64) float64 { return percentile(xs, 50) }

// percentile is the q-th percentile of xs by nearest rank (the median for q = 50 is the upper
// middle of an even count); 0 for no values.
func percentile(xs []float64, q int) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if q == 50 {
		return s[len(s)/2]
	}
	return s[max((len(s)*q+99)/100-1, 0)]
}

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
