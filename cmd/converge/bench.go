package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/converge-dev/converge/bench"
	"github.com/converge-dev/converge/ingest/demo"
)

func init() {
	subcommands = append(subcommands, func(a *app) *cobra.Command { return a.benchCmd() })
}

func (a *app) benchCmd() *cobra.Command {
	var (
		size, out, only, steps string
		cold, warm, coldPages  int
		ingestRows             int
		rollupLoads            int
		streamRate             int
		streamFor              time.Duration
	)
	cmd := &cobra.Command{
		Use:   "bench [--size small|large] [--out DIR]",
		Short: "Measure ingest, events, rollups, every metric, the overview and memory; print one table",
		Long: `Runs converge's benchmarks on the embedded store in --data-dir and prints one
table: median, p95 and, where there is one, the engine doing the same work
directly, measured in the same run, with the ratio. When the store has no
orders yet, the demo company of --size is generated into it first (seed 1,
ending yesterday): small takes seconds, large about 15 minutes and 5 GB of RAM.
With --out the results are also written as bench.json, bench.txt and bench.md.
Run it on an otherwise idle machine: the figures are wall-clock times.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sz, err := demo.ParseSize(size)
			if err != nil {
				return usageError{fmt.Errorf("--size: %w", err)}
			}
			if a.cfg.ClickHouse.Addr != "" {
				return usageError{fmt.Errorf("bench runs on the embedded store (its engine-direct comparisons need it); unset clickhouse.addr")}
			}
			ctx := cmd.Context()
			st, err := a.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			if st.Engine == nil {
				return fmt.Errorf("bench: the data directory %s is in use by a running converge; stop it first (bench needs the engine in this process)", a.cfg.DataDir)
			}
			if _, err := st.Migrate(ctx); err != nil {
				return err
			}
			var n uint64
			if err := st.Conn.QueryRow(ctx, "SELECT count() FROM orders").Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "bench: the store is empty; loading the %s demo first\n", sz)
				end := time.Now().UTC().AddDate(0, 0, -1)
				if err := a.loadDemo(ctx, st, demo.Config{Size: sz, Seed: 1, End: end}, cmd); err != nil {
					return err
				}
			}
			// The statements' costs known from earlier runs on this store, as serve knows them.
			lanes := a.lanes()
			defer a.saveLanes(lanes)
			cfg := bench.Config{Store: st, MetricsDir: a.cfg.MetricsDir, Size: string(sz), Cold: cold, Warm: warm, PageCold: coldPages, IngestRows: ingestRows, Log: a.log, Lanes: lanes,
				RollupLoads: rollupLoads, StreamFor: streamFor, StreamRate: streamRate}
			if only != "" {
				cfg.Metrics = strings.Split(only, ",")
			}
			if steps != "" {
				cfg.Steps = strings.Split(steps, ",")
			}
			rep, err := bench.Run(ctx, cfg)
			if err != nil {
				return err
			}
			if err := rep.WriteTable(cmd.OutOrStdout()); err != nil {
				return err
			}
			if out != "" {
				if err := rep.Save(out); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "bench: results in %s (bench.json, bench.txt, bench.md)\n", out)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&size, "size", "small", "demo size to load when the store is empty: small, medium or large")
	f.StringVar(&out, "out", "", "directory for bench.json, bench.txt and bench.md")
	f.IntVar(&cold, "cold", 3, "cold runs per metric and of the overview")
	f.IntVar(&warm, "warm", 50, "warm loads of the overview")
	f.IntVar(&coldPages, "cold-pages", 50, "cold loads of the pages that take seconds: the overview as it opens (last 30 days) and the customer 360")
	f.IntVar(&ingestRows, "ingest-rows", 200_000, "rows of the CSV ingest benchmark")
	f.IntVar(&rollupLoads, "rollup-loads", 5, "least cold loads of each path (raw rows, rollup) per metric and range in the rollups step")
	f.DurationVar(&streamFor, "stream-for", 30*time.Second, "how long the stream step streams events")
	f.IntVar(&streamRate, "stream-rate", 1000, "events per second the stream step aims at (touchpoints and orders)")
	f.StringVar(&only, "metrics", "", "comma-separated metrics to measure (default all)")
	f.StringVar(&steps, "steps", "", "comma-separated steps to run, of "+strings.Join(bench.Steps(), ",")+" (default all)")
	return cmd
}
