package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/converge-dev/converge/metrics"
)

func init() {
	subcommands = append(subcommands, func(a *app) *cobra.Command { return a.rollupsCmd() })
}

// rollupRounds bounds the upkeep rounds `rollups rebuild` runs itself: one round builds every
// marked rollup; more mean an upkeep that keeps failing to finish.
const rollupRounds = 5

// rollupPoll is how often `rollups rebuild --wait` reads the state of a rollup a running
// server rebuilds.
const rollupPoll = 500 * time.Millisecond

func (a *app) rollupsCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "rollups",
		Short: "Show the rollups the metrics are answered from, and rebuild them",
	}
	cmd.PersistentFlags().StringVar(&dir, "metrics-dir", "", "folder of the user's metric definitions (*.sql; key metrics.dir, env CONVERGE_METRICS_DIR)")

	var format string
	status := &cobra.Command{
		Use:   "status [--format table|json]",
		Short: "Each rollup's status, rows, bytes on disk, generation, as-of and lag; the metrics read from raw rows and why",
		Long: `Each rollup table with its status (building, ready, failed, missing, outdated), rows, bytes on
disk, generation, as-of (every fact committed before it is folded in; in the report time zone,
report.tz) and lag (now − as-of); then the simple metrics answered from raw rows, with the reason.
A failed rollup is listed with its error; the command still exits 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return usageError{fmt.Errorf("--format: %q is not one of table, json", format)}
			}
			r, st, err := a.metricsRegistry(cmd.Context(), dir, true)
			if err != nil {
				return err
			}
			defer st.Close()
			rs, raw, err := r.RollupsStatus(cmd.Context())
			if err != nil {
				return err
			}
			if format == "json" {
				return writeRollupsJSON(cmd.OutOrStdout(), rs, raw, a.cfg.ReportTZ)
			}
			return writeRollupsTable(cmd.OutOrStdout(), rs, raw, a.cfg.ReportTZ)
		},
	}
	status.Flags().StringVar(&format, "format", "table", "table or json")

	var (
		wait        bool
		waitTimeout time.Duration
	)
	rebuild := &cobra.Command{
		Use:   "rebuild [NAME] [--wait]",
		Short: "Rebuild the rollup of metric NAME (every rollup without NAME) from raw rows",
		Long: `Marks the rollup of metric NAME (every rollup without NAME) for a rebuild from raw rows; its
metric is answered from raw rows until the rebuild is done.

Without a running server on the data directory, this command rebuilds it itself, one upkeep round
at a time, and ends when the rollups are ready. When ` + "`converge serve`" + ` runs on it (or the store is a
ClickHouse server), the running server rebuilds it in the background and pages keep serving; --wait
waits until it is ready (exit 1 when it fails, with its error). An interrupted rebuild resumes with
the next upkeep round (of serve, or of this command run again).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			if waitTimeout <= 0 {
				return usageError{fmt.Errorf("--wait-timeout: %s is not a positive duration", waitTimeout)}
			}
			ctx := cmd.Context()
			r, st, err := a.metricsRegistry(ctx, dir, true)
			if err != nil {
				return err
			}
			defer st.Close()
			if name != "" {
				if _, ok := r.Get(name); !ok {
					return usageError{fmt.Errorf("unknown metric %q (see `converge metrics list`)", name)}
				}
			}
			marked, err := r.RebuildRollup(ctx, name)
			var pe *metrics.ParamError
			if errors.As(err, &pe) {
				return usageError{errors.New(pe.Reason)}
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if len(marked) == 0 {
				fmt.Fprintln(w, "no metric has a rollup: nothing to rebuild")
				return nil
			}
			fmt.Fprintf(w, "marked for a rebuild: %s\n", strings.Join(marked, ", "))
			if st.Engine != nil { // the data directory is this process's: rebuild here
				return rebuildHere(ctx, w, r, marked)
			}
			fmt.Fprintf(w, "%s rebuilds %s in the background; its pages read raw rows for %s meanwhile\n", a.runningServer(),
				plural(int64(len(marked)), "it", "them"), plural(int64(len(marked)), "this metric", "these metrics"))
			if !wait {
				fmt.Fprintln(w, "follow it with `converge rollups status`, or run this command with --wait")
				return nil
			}
			return waitRebuilt(ctx, w, r, marked, waitTimeout)
		},
	}
	rebuild.Flags().BoolVar(&wait, "wait", false, "when a running server rebuilds it: wait until it is ready (exit 1 if it fails)")
	rebuild.Flags().DurationVar(&waitTimeout, "wait-timeout", 30*time.Minute, "with --wait: give up after this long (exit 1; the rebuild goes on)")

	cmd.AddCommand(status, rebuild)
	return cmd
}

// runningServer names what rebuilds the rollups of a store this process reached through
// someone else: the converge serve holding the data directory, or the servers of a remote store.
func (a *app) runningServer() string {
	if a.cfg.ClickHouse.Addr == "" {
		if ep, err := readEndpoint(a.cfg.DataDir); err == nil {
			return fmt.Sprintf("the running server (converge serve, pid %d)", ep.PID)
		}
		return "the running server (converge serve)"
	}
	return "each converge serve on this store"
}

// rebuildHere runs upkeep rounds until every marked metric's rollup is ready, printing each
// round; a rollup that fails is an error naming it and why.
func rebuildHere(ctx context.Context, w io.Writer, r *metrics.Registry, marked []string) error {
	for round := 1; round <= rollupRounds; round++ {
		up, uerr := r.UpkeepRollups(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("rebuild interrupted in round %d; it resumes with the next upkeep (converge serve, or this command again): %w", round, ctx.Err())
		}
		built := "none"
		if len(up.Built) > 0 {
			built = strings.Join(up.Built, ", ")
		}
		fmt.Fprintf(w, "round %d: %d rollups, %d partitions recomputed, built %s, took %s\n", round, up.Rollups, up.Partitions, built, up.Took.Round(time.Millisecond))
		done, err := rebuilt(ctx, r, marked)
		if err != nil || done {
			return err
		}
		if uerr != nil {
			fmt.Fprintf(w, "round %d: %v\n", round, uerr)
		}
	}
	return fmt.Errorf("rollups of %s not ready after %d upkeep rounds (see `converge rollups status`)", strings.Join(marked, ", "), rollupRounds)
}

// waitRebuilt polls the rollups' state until every marked metric's rollup is ready, printing
// each change of state, for at most timeout.
func waitRebuilt(ctx context.Context, w io.Writer, r *metrics.Registry, marked []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	t := time.NewTicker(rollupPoll)
	defer t.Stop()
	for {
		done, err := rebuilt(ctx, r, marked)
		if err != nil || done {
			if done {
				fmt.Fprintln(w, "rebuilt: "+strings.Join(marked, ", "))
			}
			return err
		}
		if s := statesLine(ctx, r, marked); s != last {
			fmt.Fprintln(w, s)
			last = s
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rollups of %s not ready after %s; the server goes on rebuilding them (see `converge rollups status`): %w", strings.Join(marked, ", "), timeout, ctx.Err())
		case <-t.C:
		}
	}
}

// rebuilt tells whether every marked metric's rollup is ready; a failed one is an error with
// its reason.
func rebuilt(ctx context.Context, r *metrics.Registry, marked []string) (bool, error) {
	rs, _, err := r.RollupsStatus(ctx)
	if err != nil {
		return false, err
	}
	done := true
	var failed []string
	for _, s := range rs {
		if !slices.Contains(marked, s.Metric) {
			continue
		}
		switch s.Status {
		case metrics.RollupReady:
		case metrics.RollupFailed:
			failed = append(failed, fmt.Sprintf("%s (%s): %s", s.Metric, s.Table, s.Error))
		default:
			done = false
		}
	}
	if len(failed) > 0 {
		return false, fmt.Errorf("rollup rebuild failed: %s", strings.Join(failed, "; "))
	}
	return done, nil
}

// statesLine is the marked rollups' states in one line ("orders building, nps ready").
func statesLine(ctx context.Context, r *metrics.Registry, marked []string) string {
	rs, _, err := r.RollupsStatus(ctx)
	if err != nil {
		return "state not read: " + err.Error()
	}
	var parts []string
	for _, s := range rs {
		if slices.Contains(marked, s.Metric) {
			parts = append(parts, s.Metric+" "+s.Status)
		}
	}
	return strings.Join(parts, ", ")
}

// rollupJSON is one rollup as `rollups status --format json` prints it (the fields of GET
// /api/rollups): as_of in the report zone, null when never built.
type rollupJSON struct {
	Table      string     `json:"table"`
	Metric     string     `json:"metric"`
	Status     string     `json:"status"`
	Rows       uint64     `json:"rows"`
	Bytes      uint64     `json:"bytes"`
	Generation uint64     `json:"generation"`
	AsOf       *time.Time `json:"as_of"`
	Lag        float64    `json:"lag_seconds"`
	Sources    []string   `json:"sources"`
	Serves     []string   `json:"serves,omitempty"`
	Error      string     `json:"error,omitempty"`
}

type rawMetricJSON struct {
	Metric string   `json:"metric"`
	Tables []string `json:"tables"`
	Reason string   `json:"reason"`
}

func writeRollupsJSON(w io.Writer, rs []metrics.RollupStatus, raw []metrics.ExplainLeaf, zone *time.Location) error {
	out := struct {
		Rollups []rollupJSON    `json:"rollups"`
		Raw     []rawMetricJSON `json:"raw"`
	}{Rollups: []rollupJSON{}, Raw: []rawMetricJSON{}}
	for _, s := range rs {
		x := rollupJSON{Table: s.Table, Metric: s.Metric, Status: s.Status, Rows: s.Rows, Bytes: s.Bytes, Generation: s.Generation,
			Sources: s.Sources, Serves: s.Serves, Error: s.Error}
		if built(s.AsOf) {
			t := s.AsOf.In(zone)
			x.AsOf, x.Lag = &t, s.Lag
		}
		out.Rollups = append(out.Rollups, x)
	}
	for _, l := range raw {
		out.Raw = append(out.Raw, rawMetricJSON{Metric: l.Metric, Tables: l.Tables, Reason: l.Reason})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writeRollupsTable(w io.Writer, rs []metrics.RollupStatus, raw []metrics.ExplainLeaf, zone *time.Location) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "TABLE\tMETRIC\tSTATUS\tROWS\tBYTES\tGENERATION\tAS OF (%s)\tLAG\tERROR\n", zone)
	for _, s := range rs {
		asOf, lag := "-", "-"
		if built(s.AsOf) {
			asOf = s.AsOf.In(zone).Format("2006-01-02 15:04:05")
			lag = (time.Duration(s.Lag * float64(time.Second))).Round(time.Millisecond).String()
		}
		metric := s.Metric
		if len(s.Serves) > 0 {
			metric += " (view of " + strings.Join(s.Serves, ", ") + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\n", s.Table, metric, s.Status, s.Rows, sizeText(s.Bytes), s.Generation, asOf, lag, oneLine(s.Error))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(raw) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nanswered from raw rows (%d):\n", len(raw))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tTABLES\tREASON")
	for _, l := range raw {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Metric, strings.Join(l.Tables, ","), oneLine(l.Reason))
	}
	return tw.Flush()
}

// built tells an as-of of a rollup that folded facts in from the store's empty one (the
// zero time, or the column's zero, 1900-01-01, of a rollup never built).
func built(asOf time.Time) bool { return asOf.Unix() > 0 }

// sizeText is n bytes with its unit (powers of 1,024), exact below 1 KiB.
func sizeText(n uint64) string {
	if n < 1024 {
		return strconv.FormatUint(n, 10) + " B"
	}
	x := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		x /= 1024
		if x < 1024 || u == "TiB" {
			return strconv.FormatFloat(x, 'f', 1, 64) + " " + u
		}
	}
	return ""
}

// oneLine keeps a table row on one line ("-" for nothing).
func oneLine(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Join(strings.Fields(s), " ")
}

// writeExplain prints how a metric is answered: per metric read from the store, the path,
// its tables and, when from raw rows, why.
func writeExplain(w io.Writer, format string, ex *metrics.Explain) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(ex)
	}
	fmt.Fprintf(w, "%s (%s): %d %s read from the store\n", ex.Metric, ex.Kind, len(ex.Inputs), plural(int64(len(ex.Inputs)), "metric", "metrics"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tPATH\tTABLES\tROLLUP\tSTATUS\tREASON")
	for _, l := range ex.Inputs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", l.Metric, l.Path, strings.Join(l.Tables, ","), oneLine(l.Rollup), oneLine(l.Status), oneLine(l.Reason))
	}
	return tw.Flush()
}
