package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/converge-dev/converge/ingest/demo"
	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse"
)

func init() {
	subcommands = append(subcommands, func(a *app) *cobra.Command { return a.demoCmd() })
}

func (a *app) demoCmd() *cobra.Command {
	var (
		size, end string
		seed      uint64
		months    int
		ifEmpty   bool
	)
	cmd := &cobra.Command{
		Use:   "demo [--size small|medium|large] [--seed N] [--end YYYY-MM-DD] [--if-empty]",
		Short: "Generate one coherent demo company and load it through the ingest path",
		Long: `Generates customers, orders, marketing spend, touchpoints, tickets, surveys,
consents and rewards of one company (see ingest/demo) and loads them with the
same validation, deduplication and run bookkeeping as files. The same seed,
size and end date give the same data, so running it twice loads nothing new.
small: 2,000 customers; medium: 50,000; large: 1,000,000 (benchmarks).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sz, err := demo.ParseSize(size)
			if err != nil {
				return usageError{fmt.Errorf("--size: %w", err)}
			}
			cfg := demo.Config{Size: sz, Seed: seed, Months: months}
			if end != "" {
				t, err := time.Parse("2006-01-02", end)
				if err != nil {
					return usageError{fmt.Errorf("--end: %q is not a date YYYY-MM-DD", end)}
				}
				cfg.End = t
			}
			ctx := cmd.Context()
			st, err := a.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			if _, err := st.Migrate(ctx); err != nil {
				return err
			}
			if ifEmpty {
				var n uint64
				if err := st.Conn.QueryRow(ctx, "SELECT count() FROM orders").Scan(&n); err != nil {
					return err
				}
				if n > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "demo: the store already has %d orders; nothing loaded (--if-empty)\n", n)
					return nil
				}
			}
			return a.loadDemo(ctx, st, cfg, cmd)
		},
	}
	f := cmd.Flags()
	f.StringVar(&size, "size", "small", "small, medium or large")
	f.Uint64Var(&seed, "seed", 1, "random seed")
	f.StringVar(&end, "end", "", "last day of data (default today, UTC)")
	f.IntVar(&months, "months", 36, "months of history")
	f.BoolVar(&ifEmpty, "if-empty", false, "load only when the store has no orders yet (make run)")
	return cmd
}

func (a *app) loadDemo(ctx context.Context, st *warehouse.Store, cfg demo.Config, cmd *cobra.Command) error {
	host, _ := os.Hostname()
	rep, err := demo.Load(ctx, st, cfg, demo.LoadOptions{Host: host, Log: a.log, Identity: a.cfg.IdentityRules})
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "%-18s %-9s %10s %10s %10s %10s\n", "entity", "source", "read", "loaded", "rejected", "duplicate")
	for _, t := range rep.Totals {
		fmt.Fprintf(out, "%-18s %-9s %10d %10d %10d %10d\n", t.Entity, t.Source, t.Read, t.Loaded, t.Rejected, t.Duplicates)
	}
	for _, r := range rep.Rejects {
		fmt.Fprintf(cmd.ErrOrStderr(), "  rejected: %s\n", r)
	}
	if err != nil {
		return err
	}
	ids := rep.Identity
	fmt.Fprintf(out, "identities: %d source ids resolved into %d customers (%d in several sources); %d written, %d removed\n",
		ids.Identities, ids.Customers, ids.MultiSource, ids.Changed, ids.Removed)
	fmt.Fprintf(out, "demo %s (seed %d) loaded in %s\n", cfg.Size, cfg.Seed, rep.Took.Round(time.Millisecond))
	// Predicted CLV for the dashboard: fitted on the whole demo, calibration end = its last day.
	start := time.Now()
	fit, err := metrics.FitCLV(ctx, st, metrics.CLVOptions{CalibrationEnd: demoEnd(cfg), Write: true})
	if err != nil {
		return fmt.Errorf("demo: clv fit: %w", err)
	}
	fmt.Fprintf(out, "clv fit: %d customers to %s, mean predicted CLV %.2f %s over %d months, %d rows in customer_value (%s)\n",
		fit.Customers, fit.CalibrationEnd, fit.MeanCLV, fit.Currency, fit.HorizonMonths, fit.Written, time.Since(start).Round(time.Millisecond))
	return nil
}

// demoEnd is the last day of cfg's data (UTC): its End, or today as demo.Generate defaults it.
func demoEnd(cfg demo.Config) time.Time {
	if cfg.End.IsZero() {
		return time.Now().UTC()
	}
	return cfg.End
}
