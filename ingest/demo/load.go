package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/ingest/identity"
	"github.com/converge-dev/converge/warehouse"
)

// LoadOptions tune Load.
type LoadOptions struct {
	// Host names the machine in ingest_runs.
	Host string
	// Log receives the loaders' log lines; nil discards them.
	Log *slog.Logger
	// Identity is the rule set identity resolution runs with after the load
	// (the same identity.source_priority as every other resolution).
	Identity identity.Rules
	// RunRecords ends an ingest run after this many records of one entity
	// and source; a run remembers every key it has seen, so rotating bounds
	// that memory (dedup across runs goes through the store's ingest_keys).
	// Default 2,000,000.
	RunRecords int64
}

// closeParallel is how many of the demo's runs end (commit) at once.
const closeParallel = 4

// EntityTotal is what was done with the records of one entity and source.
type EntityTotal struct {
	Entity, Source string
	ingest.Summary
}

// LoadReport is what Load did.
type LoadReport struct {
	Totals   []EntityTotal // by entity, then source
	Rejects  []ingest.Reject
	Rejected int64
	Identity identity.Stats
	Took     time.Duration
}

// Load generates cfg's company and loads it into st through the same
// Loader, validation, deduplication and run bookkeeping as files, then
// resolves identities. A generated record that is rejected is an error (a bug
// in the generator or the entity contract); the report still lists it.
func Load(ctx context.Context, st *warehouse.Store, cfg Config, o LoadOptions) (LoadReport, error) {
	start := time.Now()
	if o.RunRecords <= 0 {
		o.RunRecords = 2_000_000
	}
	type key struct{ entity, source string }
	loaders := map[key]*ingest.Loader{}
	lines := map[key]int64{}
	totals := map[key]*ingest.Summary{}
	var rep LoadReport
	account := func(k key, sum ingest.Summary) {
		t := totals[k]
		if t == nil {
			t = &ingest.Summary{}
			totals[k] = t
		}
		t.Read += sum.Read
		t.Loaded += sum.Loaded
		t.Rejected += sum.Rejected
		t.Duplicates += sum.Duplicates
		rep.Rejects = append(rep.Rejects, sum.Rejects...)
	}
	closeRun := func(k key, runErr error) error {
		sum, err := loaders[k].Close(ctx, runErr)
		delete(loaders, k)
		account(k, sum)
		return err
	}
	file := fmt.Sprintf("demo:%s:seed=%d", cfg.Size, cfg.Seed)
	sink := func(entity, source string, rec Record) error {
		k := key{entity, source}
		l := loaders[k]
		if l == nil {
			var err error
			l, err = ingest.NewLoader(ctx, st, ingest.Options{Entity: entity, Source: source, Preset: "demo", Host: o.Host, Log: o.Log}, file)
			if err != nil {
				return err
			}
			loaders[k] = l
		}
		lines[k]++
		if err := l.Add(ctx, ingest.Record{Line: lines[k], Fields: rec}); err != nil {
			return err
		}
		if lines[k]%o.RunRecords == 0 {
			return closeRun(k, nil)
		}
		return nil
	}
	_, genErr := Generate(cfg, sink)
	errs := []error{genErr}
	// The runs still open end together: each commits its staged partitions
	// (one statement per table), and the engine moves those of different
	// tables at once.
	open := make([]key, 0, len(loaders))
	for k := range loaders {
		open = append(open, k)
	}
	sums, cerrs := make([]ingest.Summary, len(open)), make([]error, len(open))
	var wg sync.WaitGroup
	slots := make(chan struct{}, closeParallel)
	for i, k := range open {
		l := loaders[k]
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			sums[i], cerrs[i] = l.Close(ctx, genErr)
		})
	}
	wg.Wait()
	for i, k := range open {
		delete(loaders, k)
		account(k, sums[i])
		errs = append(errs, cerrs[i])
	}
	for k, sum := range totals {
		rep.Totals = append(rep.Totals, EntityTotal{Entity: k.entity, Source: k.source, Summary: *sum})
		rep.Rejected += sum.Rejected
	}
	sort.Slice(rep.Totals, func(i, j int) bool {
		a, b := rep.Totals[i], rep.Totals[j]
		return a.Entity < b.Entity || a.Entity == b.Entity && a.Source < b.Source
	})
	rep.Took = time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return rep, err
	}
	if rep.Rejected > 0 {
		return rep, fmt.Errorf("demo: %d generated records were rejected (a bug in the generator or the entity contract)", rep.Rejected)
	}
	ids, err := identity.Resolve(ctx, st, o.Identity)
	rep.Identity = ids
	rep.Took = time.Since(start)
	return rep, err
}
