package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/ingest/demo"
	"github.com/converge-dev/converge/ingest/identity"
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
	start := time.Now()
	host, _ := os.Hostname()
	type key struct{ entity, source string }
	loaders := map[key]*ingest.Loader{}
	lines := map[key]int64{}
	totals := map[key]*ingest.Summary{}
	var rejects []ingest.Reject
	// A run remembers every key it has seen; rotating runs bounds that
	// memory (dedup across runs goes through the store's ingest_keys).
	const runRecords = 2_000_000
	closeRun := func(k key, runErr error) error {
		sum, err := loaders[k].Close(ctx, runErr)
		delete(loaders, k)
		t := totals[k]
		if t == nil {
			t = &ingest.Summary{}
			totals[k] = t
		}
		t.Read += sum.Read
		t.Loaded += sum.Loaded
		t.Rejected += sum.Rejected
		t.Duplicates += sum.Duplicates
		rejects = append(rejects, sum.Rejects...)
		return err
	}
	file := fmt.Sprintf("demo:%s:seed=%d", cfg.Size, cfg.Seed)
	sink := func(entity, source string, rec demo.Record) error {
		k := key{entity, source}
		l := loaders[k]
		if l == nil {
			var err error
			l, err = ingest.NewLoader(ctx, st, ingest.Options{Entity: entity, Source: source, Preset: "demo", Host: host, Log: a.log}, file)
			if err != nil {
				return err
			}
			loaders[k] = l
		}
		lines[k]++
		if err := l.Add(ctx, ingest.Record{Line: lines[k], Fields: rec}); err != nil {
			return err
		}
		if lines[k]%runRecords == 0 {
			return closeRun(k, nil)
		}
		return nil
	}
	_, genErr := demo.Generate(cfg, sink)
	errs := []error{genErr}
	for k := range loaders {
		errs = append(errs, closeRun(k, genErr))
	}
	keys := make([]key, 0, len(totals))
	for k := range totals {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].entity < keys[j].entity || keys[i].entity == keys[j].entity && keys[i].source < keys[j].source
	})
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "%-18s %-9s %10s %10s %10s %10s\n", "entity", "source", "read", "loaded", "rejected", "duplicate")
	var rejected int64
	for _, k := range keys {
		sum := totals[k]
		rejected += sum.Rejected
		fmt.Fprintf(out, "%-18s %-9s %10d %10d %10d %10d\n", k.entity, k.source, sum.Read, sum.Loaded, sum.Rejected, sum.Duplicates)
	}
	for _, r := range rejects {
		fmt.Fprintf(cmd.ErrOrStderr(), "  rejected: %s\n", r)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if rejected > 0 {
		return fmt.Errorf("demo: %d generated records were rejected (a bug in the generator or the entity contract)", rejected)
	}
	ids, err := identity.Resolve(ctx, st, a.cfg.IdentityRules)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "identities: %d source ids resolved into %d customers (%d in several sources)\n", ids.Identities, ids.Customers, ids.MultiSource)
	fmt.Fprintf(out, "demo %s (seed %d) loaded in %s\n", cfg.Size, cfg.Seed, time.Since(start).Round(time.Millisecond))
	return nil
}
