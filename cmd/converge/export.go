package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/converge-dev/converge/export"
)

func init() {
	subcommands = append(subcommands, func(a *app) *cobra.Command { return a.exportCmd() })
}

// exportFlags are the file options shared by export metric and export sql.
type exportFlags struct {
	out, format, preset, delimiter, decimal, currency string
	raw, csvRaw, bom, crlf                            bool
	maxRows                                           int
}

func (f *exportFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.format, "format", "", "csv or xlsx (default: by the --out extension, else csv)")
	fl.IntVar(&f.maxRows, "max-rows", 0, "at most this many data rows; a longer result is cut, and the file, the manifest and the exit status say so (0: no limit)")
	f.registerFile(cmd)
}

// registerFile registers the flags of the file's name and of its CSV text.
func (f *exportFlags) registerFile(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.out, "out", "", "the file to write (required); the manifest goes to FILE.manifest.json")
	fl.StringVar(&f.preset, "preset", "", "excel: UTF-8 BOM and CRLF (with --delimiter ';' --decimal ',' for a German, French, … Excel)")
	fl.BoolVar(&f.raw, "raw", false, "raw values (full precision, fractions, ISO dates) instead of formatted ones")
	fl.BoolVar(&f.csvRaw, "csv-raw", false, "CSV for programs: text cells as stored; by default a text cell a spreadsheet would run as a formula (starting with = + - @ tab CR) gets a leading '")
	fl.StringVar(&f.delimiter, "delimiter", ",", "CSV field separator: , ; tab or |")
	fl.StringVar(&f.decimal, "decimal", ".", "decimal separator: . or ,")
	fl.BoolVar(&f.bom, "bom", false, "CSV: start with a UTF-8 byte order mark")
	fl.BoolVar(&f.crlf, "crlf", false, "CSV: end lines with CR LF")
	fl.StringVar(&f.currency, "currency", "", "ISO code shown for currency metrics (default report.currency)")
}

func (f *exportFlags) options(a *app) (export.Options, error) {
	o := export.Options{Format: export.Format(f.format), Raw: f.raw, CSVRaw: f.csvRaw, BOM: f.bom, CRLF: f.crlf, Preset: f.preset,
		MaxRows: f.maxRows, Currency: f.currency, Version: convergeVersion()}
	if f.out == "" {
		return o, usageError{errors.New("--out: required (the file to write)")}
	}
	if o.Format == "" && strings.EqualFold(filepath.Ext(f.out), ".xlsx") {
		o.Format = export.XLSX
	}
	if o.Currency == "" {
		o.Currency = a.cfg.ReportCurrency
	}
	o.TZ = a.cfg.ReportTZ
	d, err := parseDelimiter(f.delimiter)
	if err != nil {
		return o, usageError{fmt.Errorf("--delimiter: %v", err)}
	}
	o.Delimiter = d
	if len(f.decimal) != 1 {
		return o, usageError{fmt.Errorf("--decimal: %q is not . or ,", f.decimal)}
	}
	o.Decimal = rune(f.decimal[0])
	if err := o.Validate(); err != nil {
		flag, reason, _ := strings.Cut(err.Error(), ": ")
		return o, usageError{fmt.Errorf("--%s: %s", strings.NewReplacer(" ", "-", "_", "-").Replace(flag), reason)}
	}
	return o, nil
}

// write runs an export into f.out (through a temporary file, renamed once
// complete) and writes the manifest next to it. A truncated export keeps
// both files and returns its error (exit status 1).
func (f *exportFlags) write(w io.Writer, run func(io.Writer) (*export.Manifest, error)) error {
	var m *export.Manifest
	manifest, err := export.WriteFile(f.out, func(file io.Writer) (any, error) {
		var err error
		m, err = run(file)
		if m == nil || m.SHA256 == "" { // the file was not written to the end
			return nil, err
		}
		m.File = filepath.Base(f.out)
		return m, err
	})
	if manifest == "" {
		return err
	}
	note := ""
	if m.Truncated {
		note = fmt.Sprintf(" (TRUNCATED at %d rows)", m.Rows)
	}
	fmt.Fprintf(w, "%s: %d rows, %d bytes, sha256 %s%s\n%s\n", f.out, m.Rows, m.Bytes, m.SHA256, note, manifest)
	return err
}

func (a *app) exportCmd() *cobra.Command {
	var (
		rootReport string
		rootFlags  reportFlags
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export a metric, a read-only query or a report pack (--report finance-monthly) to CSV or XLSX, with a manifest (FILE.manifest.json)",
		Long: "Export a metric (export metric), the rows of a read-only query (export sql), or a report pack:\n" +
			"  converge export --report finance-monthly --month YYYY-MM --out FILE   (the same as: converge export report finance-monthly …)",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rootReport == "" {
				return usageError{errors.New("say what to export: --report finance-monthly --month YYYY-MM --out FILE, or a subcommand (metric, sql, report)")}
			}
			return a.exportReport(cmd, rootReport, &rootFlags)
		},
	}
	cmd.Flags().StringVar(&rootReport, "report", "", "the report pack to export: "+strings.Join(export.Reports, ", "))
	rootFlags.register(cmd)

	var reportF reportFlags
	report := &cobra.Command{
		Use:   "report NAME --month YYYY-MM --out FILE [--format zip|xlsx] [--raw] [--preset excel]",
		Short: "Export a report pack: finance-monthly (revenue, margin, new customers, CAC, CLV, LTV:CAC, payback, ROAS by month and by channel, reconciled)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.exportReport(cmd, args[0], &reportF)
		},
	}
	reportF.register(report)

	var (
		dir string
		q   metricQueryFlags
		mf  exportFlags
	)
	metric := &cobra.Command{
		Use:   "metric NAME --from D --to D [--grain G] [--by DIM] [--filter DIM=V ...] [--compare previous|year] [--format csv|xlsx] [--preset excel] [--raw] --out FILE",
		Short: "Export a metric's values by bucket (with breakdown, comparison, target and totals), --from to --to, both days included",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := mf.options(a)
			if err != nil {
				return err
			}
			r, st, p, err := a.openMetricQuery(cmd, dir, args[0], &q)
			if err != nil {
				return err
			}
			defer st.Close()
			p.Margin = a.cfg.ReportDefaultMargin
			return mf.write(cmd.OutOrStdout(), func(w io.Writer) (*export.Manifest, error) {
				return export.Metric(cmd.Context(), r, st, args[0], p, w, o)
			})
		},
	}
	metric.Flags().StringVar(&dir, "metrics-dir", "", "folder of the user's metric definitions (*.sql; key metrics.dir)")
	q.register(metric)
	mf.register(metric)

	var (
		query   string
		sf      exportFlags
		console consoleFlags
	)
	sqlc := &cobra.Command{
		Use:   `sql --read-only-query "SELECT ..." --out FILE [--format csv|xlsx] [--preset excel] [--raw]`,
		Short: "Export the rows of a read-only query (the SQL console's rules and limits), streamed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := sf.options(a)
			if err != nil {
				return err
			}
			if strings.TrimSpace(query) == "" {
				return usageError{errors.New("--read-only-query: required")}
			}
			c, err := console.console(a.cfg)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := a.openStore(ctx, false)
			if err != nil {
				return err
			}
			defer st.Close()
			return sf.write(cmd.OutOrStdout(), func(w io.Writer) (*export.Manifest, error) {
				return export.SQL(ctx, st, c, query, w, o)
			})
		},
	}
	sqlc.Flags().StringVar(&query, "read-only-query", "", "the query: one SELECT, WITH, SHOW, DESCRIBE or EXPLAIN statement (see `converge sql --read-only`)")
	sf.register(sqlc)
	console.registerLimits(sqlc, 10*time.Minute)

	cmd.AddCommand(metric, sqlc, report)
	return cmd
}

// reportFlags are the flags of a report pack.
type reportFlags struct {
	file                             exportFlags
	month, format, tz, roas, metrics string
}

func (f *reportFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.month, "month", "", "the month, YYYY-MM (required); the by-month table also holds the 12 months before it")
	fl.StringVar(&f.format, "format", "", "zip (one CSV file per table, and manifest.json) or xlsx (one sheet per table); default by the --out extension, else zip")
	fl.StringVar(&f.tz, "tz", "", "report time zone: months are calendar months there (default report.tz)")
	fl.StringVar(&f.roas, "roas-model", "last_touch", "attribution model of ROAS: first_touch, last_touch, linear, u_shaped, w_shaped, time_decay")
	fl.StringVar(&f.metrics, "metrics-dir", "", "folder of the user's metric definitions (*.sql; key metrics.dir)")
	f.file.registerFile(cmd)
}

// exportReport writes report pack name as the flags say, with its manifest
// next to it, and prints its wall time to stderr. A pack that does not
// reconcile is written, and is an error (exit status 1).
func (a *app) exportReport(cmd *cobra.Command, name string, f *reportFlags) error {
	start := time.Now()
	if name != export.FinanceMonthly {
		return usageError{fmt.Errorf("--report: unknown report %q (reports: %s)", name, strings.Join(export.Reports, ", "))}
	}
	if f.month == "" {
		return usageError{errors.New("--month: required (YYYY-MM)")}
	}
	month, err := export.ParseMonth(f.month)
	if err != nil {
		return usageError{fmt.Errorf("--month: %v", err)}
	}
	xlsx := strings.EqualFold(filepath.Ext(f.file.out), ".xlsx")
	switch f.format {
	case "":
	case "zip":
		if xlsx {
			return usageError{fmt.Errorf("--format zip: --out %s ends in .xlsx", f.file.out)}
		}
	case "xlsx":
		xlsx = true
	default:
		return usageError{fmt.Errorf("--format: %q is not zip or xlsx", f.format)}
	}
	f.file.format = ""
	if xlsx {
		f.file.format = "xlsx"
	}
	o, err := f.file.options(a)
	if err != nil {
		return err
	}
	tz := a.cfg.ReportTZ
	if f.tz != "" {
		if tz, err = time.LoadLocation(f.tz); err != nil {
			return usageError{fmt.Errorf("--tz: %q is not an IANA time zone", f.tz)}
		}
	}
	r, st, err := a.metricsRegistry(cmd.Context(), f.metrics, true)
	if err != nil {
		return err
	}
	defer st.Close()
	opened := time.Since(start)
	var m *export.PackManifest
	manifest, err := export.WriteFile(f.file.out, func(w io.Writer) (any, error) {
		var err error
		m, err = export.FinancePack(cmd.Context(), r, st, export.PackParams{Month: month, TZ: tz, ROASModel: f.roas, Margin: a.cfg.ReportDefaultMargin}, w, o)
		if err != nil {
			return nil, err
		}
		m.File = filepath.Base(f.file.out)
		return m, nil
	})
	if manifest == "" {
		return paramUsage(cmd, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: finance pack %s (%s, %s), %d tables, %d bytes, sha256 %s\n%s\n", f.file.out, m.Month, m.TimeZone, m.Format,
		len(m.Files), m.Bytes, m.SHA256, manifest)
	fmt.Fprintf(cmd.ErrOrStderr(), "finance pack %s: wall time %s (pack %s; store and definitions %s)\n", m.Month,
		time.Since(start).Round(time.Millisecond), m.Took, opened.Round(time.Millisecond))
	if !m.Reconciled {
		return fmt.Errorf("the pack of %s does not reconcile: %s (see its reconciliation table); the file is written", m.Month, strings.Join(m.Unreconciled, ", "))
	}
	return nil
}
