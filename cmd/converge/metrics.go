package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/converge-dev/converge/export"
	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse"
)

func init() {
	subcommands = append(subcommands, func(a *app) *cobra.Command { return a.metricsCmd() })
}

func (a *app) metricsCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "metrics",
		Short: "List, check, show and query the metric definitions (built-ins and the user's folder)",
	}
	cmd.PersistentFlags().StringVar(&dir, "metrics-dir", "", "folder of the user's metric definitions (*.sql; key metrics.dir, env CONVERGE_METRICS_DIR)")
	registry := func(ctx context.Context, withStore bool) (*metrics.Registry, *warehouse.Store, error) {
		return a.metricsRegistry(ctx, dir, withStore)
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List the metrics in force (refused user files are reported on stderr)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, _, err := registry(cmd.Context(), false)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKIND\tUNIT\tOWNER\tTITLE\tDIMENSIONS")
			for _, d := range r.List() {
				var dims []string
				for _, x := range d.Dimensions {
					dims = append(dims, x.Name)
				}
				for _, p := range d.Params {
					dims = append(dims, p.Name+"=")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, d.Kind, d.Unit, d.Owner, d.Title, strings.Join(dims, ","))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, e := range r.Errors() {
				fmt.Fprintln(cmd.ErrOrStderr(), "refused:", e)
			}
			return nil
		},
	}

	check := &cobra.Command{
		Use:   "check",
		Short: "Validate every definition against the store; exits non-zero on any failure",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, st, err := registry(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer st.Close()
			errs := r.Check(cmd.Context())
			for _, e := range errs {
				fmt.Fprintln(cmd.OutOrStdout(), e)
			}
			if len(errs) > 0 {
				return fmt.Errorf("%d metric definition(s) failed", len(errs))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d metrics ok (%s)\n", len(r.List()), st.Describe())
			return nil
		},
	}

	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Print a metric's definition",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, _, err := registry(cmd.Context(), false)
			if err != nil {
				return err
			}
			d, ok := r.Get(args[0])
			if !ok {
				return usageError{fmt.Errorf("unknown metric %q (see `converge metrics list`)", args[0])}
			}
			w := cmd.OutOrStdout()
			field := func(k, v string) {
				if v != "" {
					fmt.Fprintf(w, "%-12s %s\n", k+":", v)
				}
			}
			field("name", d.Name)
			field("title", d.Title)
			field("description", d.Description)
			field("owner", d.Owner)
			field("unit", d.Unit)
			field("format", d.Format)
			field("polarity", d.Polarity)
			if d.Target.Constant != nil {
				field("target", strconv.FormatFloat(*d.Target.Constant, 'f', -1, 64))
			} else if len(d.Target.Series) > 0 {
				field("target", fmt.Sprint(d.Target.Series))
			}
			field("kind", string(d.Kind))
			field("time", d.Time)
			field("measure", d.Measure)
			field("formula", d.Formula)
			if in := d.Inputs(); len(in) > 0 {
				field("inputs", strings.Join(in, ", "))
			}
			for _, x := range d.Dimensions {
				field("dimension", x.Name+" = "+x.Column)
			}
			for _, p := range d.Params {
				s := p.Name + " " + p.Type + " = " + p.Default
				if len(p.Allowed) > 0 {
					s += " | " + strings.Join(p.Allowed, ", ")
				}
				if r := p.Range(); r != "" {
					s += " | " + r
				}
				field("param", s)
			}
			field("roles", strings.Join(d.Roles, ", "))
			field("version", d.Version)
			field("file", d.File)
			if d.SQL != "" {
				fmt.Fprintf(w, "\n%s\n", d.SQL)
			}
			return nil
		},
	}

	var (
		format string
		csvRaw bool
		q      metricQueryFlags
	)
	query := &cobra.Command{
		Use:   "query NAME --from D --to D [--grain G] [--by DIM] [--filter DIM=V ...] [--compare previous|year] [--tz Z] [--arg NAME=V ...] [--format table|csv|json]",
		Short: "Compute a metric from --from to --to, both days included, at a grain in the report time zone",
		Long: `Compute a metric from --from to --to at a grain in the report time zone (--tz, default report.tz).
Both ends are included, as on the dashboard: --from 2025-01-01 --to 2025-12-31 is the whole year 2025,
31 December too; --from 2026-03-01 --to 2026-03-01 is one day. An RFC 3339 instant is itself:
--to 2026-01-01T00:00:00+01:00 includes that millisecond. A snapshot metric (its SQL does not read
{from}: rfm_segments, rfm_best_customers, consented_audience) is as of the end of --to and needs no --from.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "table", "csv", "json":
			default:
				return usageError{fmt.Errorf("--format: %q is not one of table, csv, json", format)}
			}
			if csvRaw && format != "csv" {
				return usageError{fmt.Errorf("--csv-raw: goes with --format csv, not %s", format)}
			}
			r, st, p, err := a.openMetricQuery(cmd, dir, args[0], &q)
			if err != nil {
				return err
			}
			defer st.Close()
			res, err := r.Query(cmd.Context(), args[0], p)
			if err != nil {
				return err
			}
			d, _ := r.Get(args[0])
			return writeResult(cmd.OutOrStdout(), format, res, writeOptions{guard: !csvRaw, snapshot: d.Snapshot()})
		},
	}
	q.register(query)
	query.Flags().StringVar(&format, "format", "table", "table, csv or json")
	query.Flags().BoolVar(&csvRaw, "csv-raw", false, "CSV for programs: text cells as stored; by default a text cell a spreadsheet would run as a formula (starting with = + - @ tab CR) gets a leading '")

	var (
		exFormat string
		exQ      metricQueryFlags
	)
	explain := &cobra.Command{
		Use:   "explain NAME [--from D --to D] [--grain G] [--by DIM] [--filter DIM=V ...] [--tz Z] [--arg NAME=V ...] [--format table|json]",
		Short: "Say how a metric query is answered: per metric it reads, from a rollup or from raw rows (and why), and which tables",
		Long: `Say how ` + "`converge metrics query`" + ` with the same flags is answered now: for the metric (or each input of a
derived metric), the path (rollup: from its rollup table; raw: from the raw tables), the tables read,
and, when from raw rows, why (not a simple metric, its rollup is not built yet or failed, the range or
the time zone is not on the rollup's half-hour slots, …).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if exFormat != "table" && exFormat != "json" {
				return usageError{fmt.Errorf("--format: %q is not one of table, json", exFormat)}
			}
			r, st, p, err := a.openMetricQuery(cmd, dir, args[0], &exQ)
			if err != nil {
				return err
			}
			defer st.Close()
			ex, err := r.Explain(cmd.Context(), args[0], p)
			if err != nil {
				return err
			}
			return writeExplain(cmd.OutOrStdout(), exFormat, ex)
		},
	}
	exQ.register(explain)
	explain.Flags().StringVar(&exFormat, "format", "table", "table or json")

	cmd.AddCommand(list, check, show, query, explain)
	return cmd
}

// metricsRegistry opens the metric definitions (built-ins and the user's
// folder dir, else metrics.dir) with the report defaults, and the store when
// withStore.
func (a *app) metricsRegistry(ctx context.Context, dir string, withStore bool) (*metrics.Registry, *warehouse.Store, error) {
	if dir == "" {
		dir = a.cfg.MetricsDir
	}
	var st *warehouse.Store
	if withStore {
		var err error
		if st, err = a.openStore(ctx, false); err != nil {
			return nil, nil, err
		}
	}
	r, err := metrics.New(ctx, metrics.Options{Store: st, Dir: dir, Log: a.log, Lanes: a.lanes(), Defaults: metrics.Defaults{
		TZ: a.cfg.ReportTZ, SundayWeeks: a.cfg.ReportWeekStart == time.Sunday, FiscalYearStart: a.cfg.ReportFiscalYearStart,
		Margin: a.cfg.ReportDefaultMargin, Currency: a.cfg.ReportCurrency}})
	if err != nil {
		if st != nil {
			st.Close()
		}
		return nil, nil, err
	}
	return r, st, nil
}

// metricQueryFlags are the flags of a metric query (metrics query, export
// metric), named after metrics.ParseParams's parameters.
type metricQueryFlags struct {
	filters, args                    []string
	from, to, grain, by, compare, tz string
	weekStart, fyStart               string
}

func (q *metricQueryFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&q.from, "from", "", "first day, included (YYYY-MM-DD, from midnight in --tz), or an RFC 3339 instant; a snapshot metric needs none")
	f.StringVar(&q.to, "to", "", "last day, included (YYYY-MM-DD: the whole day in --tz, 2025-12-31 holds 31 December), or the last RFC 3339 instant included")
	f.StringVar(&q.grain, "grain", "", "day, week, month (default), quarter or year")
	f.StringVar(&q.by, "by", "", "break down by this dimension")
	f.StringArrayVar(&q.filters, "filter", nil, "DIM=VALUE, repeatable (all must hold)")
	f.StringVar(&q.compare, "compare", "", "previous (the same number of buckets before) or year (a year earlier)")
	f.StringVar(&q.tz, "tz", "", "report time zone (IANA; default report.tz)")
	f.StringVar(&q.weekStart, "week-start", "", "monday or sunday (default report.week_start)")
	f.StringVar(&q.fyStart, "fiscal-year-start", "", "first month of the fiscal year, 1-12 (default report.fiscal_year_start)")
	f.StringArrayVar(&q.args, "arg", nil, "NAME=VALUE for a custom metric's param (e.g. model=linear), repeatable")
}

func (q *metricQueryFlags) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"from": q.from, "to": q.to, "grain": q.grain, "by": q.by, "compare": q.compare, "tz": q.tz,
		"week_start": q.weekStart, "fiscal_year_start": q.fyStart} {
		if s != "" {
			v.Set(k, s)
		}
	}
	v["filter"] = q.filters
	v["arg"] = q.args
	return v
}

// openMetricQuery checks metric name and the query flags against the
// definitions before the store is opened (a mistake is a usage error naming
// the flag), then opens the registry with the store.
func (a *app) openMetricQuery(cmd *cobra.Command, dir, name string, q *metricQueryFlags) (*metrics.Registry, *warehouse.Store, metrics.Params, error) {
	ctx := cmd.Context()
	v := q.values()
	r0, _, err := a.metricsRegistry(ctx, dir, false)
	if err != nil {
		return nil, nil, metrics.Params{}, err
	}
	if _, ok := r0.Get(name); !ok {
		return nil, nil, metrics.Params{}, usageError{fmt.Errorf("unknown metric %q (see `converge metrics list`)", name)}
	}
	if _, err := r0.ParseParams(name, v); err != nil {
		return nil, nil, metrics.Params{}, paramUsage(cmd, err)
	}
	r, st, err := a.metricsRegistry(ctx, dir, true)
	if err != nil {
		return nil, nil, metrics.Params{}, err
	}
	p, err := r.ParseParams(name, v)
	if err != nil {
		st.Close()
		return nil, nil, metrics.Params{}, paramUsage(cmd, err)
	}
	return r, st, p, nil
}

// paramUsage turns a parameter error into a usage error naming the flag.
func paramUsage(cmd *cobra.Command, err error) error {
	var pe *metrics.ParamError
	if !errors.As(err, &pe) {
		return err
	}
	flag := strings.ReplaceAll(pe.Param, "_", "-")
	if cmd.Flags().Lookup(flag) != nil {
		return usageError{fmt.Errorf("--%s: %s", flag, pe.Reason)}
	}
	return usageError{fmt.Errorf("--arg %s: %s", pe.Param, pe.Reason)}
}

// resultJSON is a result as `metrics query --format json` prints it: from and to as --from
// and --to take them (both included), and the instants [start, end) they stand for.
type resultJSON struct {
	*metrics.Result
	From  string    `json:"from"`
	To    string    `json:"to"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"` // the first instant not included
}

// writeOptions shape what writeResult prints.
type writeOptions struct {
	guard    bool // CSV: text cells formula-safe for spreadsheets (export.GuardText); not numbers
	snapshot bool // the metric is a snapshot as of the end of to (metrics.Definition.Snapshot)
}

// writeResult prints a metric result. CSV carries raw values and the
// report time zone on every row.
func writeResult(w io.Writer, format string, res *metrics.Result, o writeOptions) error {
	guard := o.guard
	from, to := metrics.RangeValues(res.From, res.To, loc(res.TZ))
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(resultJSON{Result: res, From: from, To: to, Start: res.From, End: res.To})
	}
	var header []string
	var rows [][]string
	text := func(s string) string {
		if guard && format == "csv" {
			return export.GuardText(s)
		}
		return s
	}
	num := func(v *float64) string {
		if v == nil {
			return ""
		}
		if format == "csv" {
			return strconv.FormatFloat(*v, 'f', -1, 64)
		}
		if res.Unit == "count" && *v == float64(int64(*v)) {
			return strconv.FormatInt(int64(*v), 10)
		}
		return strconv.FormatFloat(*v, 'f', 2, 64)
	}
	if res.Table != nil {
		for _, c := range res.Table.Columns {
			header = append(header, text(c))
		}
		for _, row := range res.Table.Rows {
			cells := make([]string, len(row))
			for i, c := range row {
				switch x := c.(type) {
				case nil:
					cells[i] = ""
				case float64:
					cells[i] = num(&x)
				case string:
					cells[i] = text(x)
				default:
					cells[i] = fmt.Sprint(x)
				}
			}
			rows = append(rows, cells)
		}
	} else {
		header = []string{"bucket"}
		if res.By != "" || len(res.Series) > 1 || len(res.Series) == 1 && res.Series[0].Dim != "" {
			header = append(header, "dim")
		}
		header = append(header, "value")
		if res.Compare != "" {
			header = append(header, "compare_bucket", "compare", "change_pct")
		}
		header = append(header, "target")
		withDim := len(header) > 1 && header[1] == "dim"
		for _, s := range res.Series {
			add := func(bucket string, v, c, target *float64, cb string) {
				row := []string{bucket}
				if withDim {
					row = append(row, text(s.Dim))
				}
				row = append(row, num(v))
				if res.Compare != "" {
					var ch *float64
					if v != nil && c != nil && *c != 0 {
						x := 100 * (*v - *c) / abs(*c)
						ch = &x
					}
					row = append(row, cb, num(c), num(ch))
				}
				rows = append(rows, append(row, num(target)))
			}
			for _, p := range s.Points {
				add(p.Bucket, p.Value, p.Compare, p.Target, p.CompareBucket)
			}
			if s.Total != nil || s.CompareTotal != nil {
				add("total", s.Total, s.CompareTotal, res.Target, "")
			}
		}
	}
	if format == "csv" {
		cw := csv.NewWriter(w)
		_ = cw.Write(append([]string{"metric", "tz"}, header...))
		for _, r := range rows {
			_ = cw.Write(append([]string{text(res.Metric), text(res.TZ)}, r...))
		}
		cw.Flush()
		return cw.Error()
	}
	if o.snapshot {
		fmt.Fprintf(w, "%s (%s, %s) as of the end of %s, time zone %s\n", res.Title, res.Metric, res.Unit, to, res.TZ)
	} else {
		fmt.Fprintf(w, "%s (%s, %s) %s to %s (both included) by %s, time zone %s\n", res.Title, res.Metric, res.Unit, from, to, res.Grain, res.TZ)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
	}
	return tw.Flush()
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func loc(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	return l
}
