package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/ingest/identity"
)

func init() {
	subcommands = append(subcommands, func(a *app) *cobra.Command { return a.ingestCmd() })
}

func (a *app) ingestCmd() *cobra.Command {
	var (
		entity, presetName, mappingFile, format, tz, presetsDir, source string
		allowRejects, strict, asJSON, listPresets                       bool
		batchRows                                                       int
	)
	cmd := &cobra.Command{
		Use:   "ingest --entity E [--preset P | --mapping FILE] [--format csv|tsv|ndjson] [--tz ZONE] [--allow-rejects] [--strict] [--json] FILE...",
		Short: "Load files of a canonical entity (CSV, TSV, NDJSON, gzip) into the store",
		Long: `Load files into one canonical entity (` + strings.Join(ingest.EntityNames(), ", ") + `).
A file whose header uses the entity's field names loads without a mapping; otherwise
name a preset (--preset, built in or a file in --presets-dir) or a mapping file.
Every record is loaded, rejected into quarantine (file, line, field, reason) or
counted as a duplicate; each file is one run in ingest_runs, stored whole or not
at all: a file with rejected records stores nothing (its rejects stay in
quarantine) and the command exits 1, unless --allow-rejects, which stores its
good records. Columns no field reads are named in a warning of the run; --strict
refuses such a file. Loading a file again, or re-running after an interruption,
is idempotent.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if listPresets {
				names, err := ingest.PresetNames(presetsDir)
				if err != nil {
					return err
				}
				for _, n := range names {
					m, err := ingest.Preset(n, presetsDir)
					if err != nil {
						fmt.Fprintf(cmd.OutOrStdout(), "%-22s (invalid: %v)\n", n, err)
						continue
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%-22s %-16s %s\n", n, m.Entity, m.Description)
				}
				return nil
			}
			if len(args) == 0 {
				return usageError{fmt.Errorf("no FILE given")}
			}
			opts, err := ingestOptions(entity, presetName, mappingFile, presetsDir, format, tz, source)
			if err != nil {
				return err
			}
			opts.BatchRows = batchRows
			opts.AllOrNothing = !allowRejects // a file with rejects stores nothing, unless asked
			if strict {
				opts.Unknown = ingest.UnknownReject
			}
			// warnings are in the printed summary; not logged twice
			opts.Host, _ = os.Hostname()
			for _, f := range args {
				if _, err := os.Stat(f); err != nil {
					return usageError{err}
				}
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
			var sums []ingest.Summary
			var failed []fileError
			for _, f := range args {
				sum, err := loadWithProgress(ctx, a, cmd.ErrOrStderr(), f, func(stats func(*ingest.Stats)) (ingest.Summary, error) {
					return ingest.LoadFile(ctx, st, f, opts, stats)
				})
				sums = append(sums, sum)
				if !asJSON {
					printSummary(cmd.OutOrStdout(), sum)
				}
				if err != nil {
					failed = append(failed, fileError{file: f, err: err})
				}
				if err != nil && ctx.Err() != nil {
					break
				}
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(map[string]any{"runs": sums}); err != nil {
					return err
				}
			}
			// New customer records may join or split people: resolve identities again
			// (for the files that were stored, also when others were not).
			var customersLoaded int64
			for _, s := range sums {
				if c := s.Tables["customers"]; c != nil && s.Status == ingest.StatusSucceeded {
					customersLoaded += c.Written
				}
			}
			if customersLoaded > 0 && ctx.Err() == nil {
				ids, err := identity.Resolve(ctx, st, a.cfg.IdentityRules)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "identities: %d source ids resolved into %d customers (%d in several sources); %d written, %d removed\n",
					ids.Identities, ids.Customers, ids.MultiSource, ids.Changed, ids.Removed)
			}
			return ingestFailure(failed, len(args))
		},
	}
	f := cmd.Flags()
	f.StringVar(&entity, "entity", "", "canonical entity: "+strings.Join(ingest.EntityNames(), ", ")+" (default: the preset's)")
	f.StringVar(&presetName, "preset", "", "source preset (see --list-presets)")
	f.StringVar(&mappingFile, "mapping", "", "mapping file (YAML)")
	f.StringVar(&presetsDir, "presets-dir", "", "folder of user presets (NAME.yaml), tried before the built-in ones")
	f.StringVar(&format, "format", "", "csv, tsv or ndjson (default: the mapping's, else from the file name)")
	f.StringVar(&tz, "tz", "", "time zone of times without one, e.g. Europe/Berlin (overrides the mapping's; default UTC)")
	f.StringVar(&source, "source", "", "source name stored with the records, which scopes their ids (default: the preset's, else file)")
	f.BoolVar(&allowRejects, "allow-rejects", false, "store the good records of a file that has rejected ones, and exit 0 (default: such a file stores nothing, exit 1)")
	f.BoolVar(&strict, "strict", false, "refuse a file with columns no field of the mapping reads (default: load it and name them in a warning)")
	f.BoolVar(&asJSON, "json", false, "print the run summaries as JSON")
	f.BoolVar(&listPresets, "list-presets", false, "list the presets and exit")
	f.IntVar(&batchRows, "batch-rows", ingest.DefaultBatchRows, "records per write")
	return cmd
}

// fileError is a file whose run failed.
type fileError struct {
	file string
	err  error
}

// ingestFailure is the command's error for the files whose runs failed
// (nil when none did): what was and was not stored, and what to do.
func ingestFailure(failed []fileError, files int) error {
	if len(failed) == 0 {
		return nil
	}
	msgs := make([]string, len(failed))
	for i, f := range failed {
		var re *ingest.RejectsError
		if errors.As(f.err, &re) {
			msgs[i] = fmt.Sprintf("%s: nothing was stored: %d %s rejected (in quarantine; see the lines above); pass --allow-rejects to store the %d good %s",
				f.file, re.Rejected, plural(re.Rejected, "record", "records"), re.Good, plural(re.Good, "one", "ones"))
			continue
		}
		msgs[i] = f.err.Error()
		if !strings.Contains(msgs[i], f.file) {
			msgs[i] = f.file + ": " + msgs[i]
		}
		msgs[i] += " (nothing of it was stored)"
	}
	if stored := files - len(failed); stored > 0 {
		msgs = append(msgs, fmt.Sprintf("the other %d %s stored", stored, plural(int64(stored), "file was", "files were")))
	}
	return errors.New(strings.Join(msgs, "\n"))
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func ingestOptions(entity, presetName, mappingFile, presetsDir, format, tz, source string) (ingest.Options, error) {
	var opts ingest.Options
	if presetName != "" && mappingFile != "" {
		return opts, usageError{fmt.Errorf("give --preset or --mapping, not both")}
	}
	switch format {
	case "", "csv", "tsv", "ndjson":
	default:
		return opts, usageError{fmt.Errorf("--format: %q is not csv, tsv or ndjson", format)}
	}
	var err error
	switch {
	case presetName != "":
		if opts.Mapping, err = ingest.Preset(presetName, presetsDir); err != nil {
			return opts, usageError{err}
		}
		opts.Preset = presetName
	case mappingFile != "":
		if opts.Mapping, err = ingest.LoadMappingFile(mappingFile); err != nil {
			return opts, usageError{err}
		}
		opts.Preset = opts.Mapping.Name
	}
	if entity == "" && opts.Mapping != nil {
		entity = opts.Mapping.Entity
	}
	if entity == "" {
		return opts, usageError{fmt.Errorf("--entity: missing (one of %s)", strings.Join(ingest.EntityNames(), ", "))}
	}
	if _, err := ingest.LookupEntity(entity); err != nil {
		return opts, usageError{fmt.Errorf("--entity: %w", err)}
	}
	if opts.Mapping != nil && opts.Mapping.Entity != entity {
		return opts, usageError{fmt.Errorf("--entity %s: the mapping %s loads %s", entity, opts.Mapping.Name, opts.Mapping.Entity)}
	}
	opts.Entity = entity
	opts.Format = format
	opts.Source = source
	if tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			return opts, usageError{fmt.Errorf("--tz: %w", err)}
		}
		opts.TZ = loc
	}
	return opts, nil
}

// loadWithProgress runs load while showing progress on stderr: a bar on a
// terminal, a log line every 5 seconds otherwise.
func loadWithProgress(ctx context.Context, a *app, w io.Writer, file string, load func(func(*ingest.Stats)) (ingest.Summary, error)) (ingest.Summary, error) {
	var size int64
	if fi, err := os.Stat(file); err == nil {
		size = fi.Size()
	}
	var stats atomic.Pointer[ingest.Stats]
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		start := time.Now()
		every := 5 * time.Second
		if tty {
			every = 200 * time.Millisecond
		}
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-done:
				if tty {
					fmt.Fprint(w, "\r\033[K")
				}
				return
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			s := stats.Load()
			if s == nil {
				continue
			}
			rows, bytes := s.Read.Load(), s.Bytes.Load()
			el := time.Since(start).Seconds()
			rate := float64(rows) / max(el, 1e-3)
			eta := "?"
			if size > 0 && bytes > 0 && bytes < size {
				eta = (time.Duration(el*float64(size-bytes)/float64(bytes)) * time.Second).Round(time.Second).String()
			}
			if tty {
				width := 30
				frac := 0.0
				if size > 0 {
					frac = min(float64(bytes)/float64(size), 1)
				}
				n := int(frac * float64(width))
				fmt.Fprintf(w, "\r\033[K[%s%s] %3.0f%% %d rows  %.0f rows/s  %s/%s  ETA %s",
					strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100, rows, rate, mib(bytes), mib(size), eta)
			} else {
				a.log.Info("ingest progress", "file", file, "rows", rows, "rows_per_s", int64(rate), "bytes", bytes, "size", size, "eta", eta)
			}
		}
	}()
	sum, err := load(func(s *ingest.Stats) { stats.Store(s) })
	close(done)
	<-finished
	return sum, err
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func printSummary(w io.Writer, s ingest.Summary) {
	fmt.Fprintf(w, "%s: %s %s (source %s, run %s): read %d, loaded %d, rejected %d, duplicates %d in %.1fs\n",
		s.File, s.Entity, s.Status, s.Source, s.RunID, s.Read, s.Loaded, s.Rejected, s.Duplicates, s.Seconds)
	if s.NotStored > 0 {
		fmt.Fprintf(w, "  not stored: %d valid records (the run failed, so none of its records were stored)\n", s.NotStored)
	}
	names := make([]string, 0, len(s.Tables))
	for n := range s.Tables {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s written %d, unchanged %d\n", n, s.Tables[n].Written, s.Tables[n].Duplicates)
	}
	for _, x := range s.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", x)
	}
	for _, r := range s.Rejects {
		fmt.Fprintf(w, "  rejected: %s\n", r)
	}
	if s.Rejected > int64(len(s.Rejects)) {
		fmt.Fprintf(w, "  … %d more in quarantine: converge sql \"SELECT line, field, reason FROM quarantine WHERE run_id = '%s' ORDER BY line\"\n", s.Rejected-int64(len(s.Rejects)), s.RunID)
	}
	if s.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", s.Error)
	}
}
