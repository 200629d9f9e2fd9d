package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/converge-dev/converge/export"
	"github.com/converge-dev/converge/warehouse"
)

func (a *app) sqlCmd() *cobra.Command {
	var (
		format   string
		csvRaw   bool
		readOnly bool
		console  consoleFlags
	)
	cmd := &cobra.Command{
		Use:   "sql [--format table|csv|json] [--read-only] QUERY",
		Short: "Run a query against the store and print the result (QUERY - reads it from stdin)",
		Long: `Run a query against the store and print the result (QUERY - reads it from stdin).

With --read-only the query goes through the read-only console (the SQL console page's rules):
one SELECT, WITH, SHOW, DESCRIBE or EXPLAIN statement, no SETTINGS, no INTO OUTFILE, no
functions that reach files, URLs or other servers, run with readonly=1 and the --timeout,
--max-memory and --max-rows limits. A result longer than --max-rows is cut there and says so
on stderr ("first N rows of more").`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "table", "csv", "json":
			default:
				return usageError{fmt.Errorf("--format: %q is not one of table, csv, json", format)}
			}
			c, err := console.console(a.cfg)
			if err != nil {
				return err
			}
			query := strings.Join(args, " ")
			if query == "-" {
				b, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return err
				}
				query = string(b)
			}
			if strings.TrimSpace(query) == "" {
				return usageError{fmt.Errorf("empty query")}
			}
			if readOnly {
				// Refused before the store is opened.
				if _, err := warehouse.CheckReadOnly(query); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			st, err := a.openStore(ctx, false)
			if err != nil {
				return err
			}
			defer st.Close()
			if readOnly {
				rows, err := c.Open(ctx, st, query)
				if err != nil {
					return err
				}
				defer rows.Close()
				var names []string
				for _, col := range rows.Columns {
					names = append(names, col.Name)
				}
				w := newRowWriter(format, csvRaw, cmd.OutOrStdout(), names)
				for rows.Next() {
					if err := w.row(rows.Values()); err != nil {
						return err
					}
				}
				if err := rows.Err(); err != nil {
					w.flush()
					return err
				}
				totals, err := rows.Totals()
				if err != nil {
					w.flush()
					return err
				}
				if totals != nil {
					if err := w.totals(warehouse.ScannedValues(totals)); err != nil {
						return err
					}
				}
				if err := w.flush(); err != nil {
					return err
				}
				if rows.Limited() {
					fmt.Fprintf(cmd.ErrOrStderr(), "first %d rows of more (row limit %d; --max-rows raises it, 0 for none)\n", rows.Count(), rows.Limit())
				}
				return nil
			}
			// One block of the result at a time, each at most console.block_bytes (the embedded
			// store's bridge refuses a larger one).
			rows, err := st.Conn.Query(warehouse.WithResultLimit(ctx, warehouse.ResultLimit{Block: c.WithDefaults().BlockBytes}), query)
			if err != nil {
				return err
			}
			defer rows.Close()
			types := rows.ColumnTypes()
			names := rows.Columns()
			w := newRowWriter(format, csvRaw, cmd.OutOrStdout(), names)
			dest := make([]any, len(types))
			for rows.Next() {
				for i, ct := range types {
					dest[i] = reflect.New(ct.ScanType()).Interface()
				}
				if err := rows.Scan(dest...); err != nil {
					return err
				}
				vals := make([]any, len(dest))
				for i, d := range dest {
					vals[i] = reflect.ValueOf(d).Elem().Interface()
				}
				if err := w.row(vals); err != nil {
					return err
				}
			}
			if err := rows.Err(); err != nil {
				w.flush()
				return err
			}
			return w.flush()
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table, csv or json (one object per line)")
	cmd.Flags().BoolVar(&csvRaw, "csv-raw", false, "with --format csv: text cells as stored; by default a text cell a spreadsheet would run as a formula (starting with = + - @ tab CR) gets a leading '")
	cmd.Flags().BoolVar(&readOnly, "read-only", false, "run through the read-only console: one query, readonly=1, limits, no files/URLs/other servers")
	console.register(cmd, 10000, warehouse.DefaultConsoleTimeout)
	return cmd
}

// consoleFlags are the read-only console's limits as flags (sql --read-only,
// export sql).
type consoleFlags struct {
	maxRows   int
	timeout   time.Duration
	maxMemory string
}

func (f *consoleFlags) register(cmd *cobra.Command, rows int, timeout time.Duration) {
	cmd.Flags().IntVar(&f.maxRows, "max-rows", rows, "read-only: at most this many rows; a longer result is cut and says so (0: no limit)")
	f.registerLimits(cmd, timeout)
}

// registerLimits registers the time and memory limits only.
func (f *consoleFlags) registerLimits(cmd *cobra.Command, timeout time.Duration) {
	cmd.Flags().DurationVar(&f.timeout, "timeout", timeout, "read-only: time limit of the query (the engine's max_execution_time)")
	cmd.Flags().StringVar(&f.maxMemory, "max-memory", "1GiB", "read-only: memory limit of the query (max_memory_usage): bytes, or with KiB, MiB, GiB")
}

// console is the console's limits: the configuration's (console.*), with the flags' rows,
// time and memory.
func (f *consoleFlags) console(cfg *Config) (warehouse.Console, error) {
	c := cfg.console()
	c.MaxRows, c.Timeout = f.maxRows, f.timeout
	if f.maxRows < 0 {
		return c, usageError{fmt.Errorf("--max-rows: %d is negative (0 means no limit)", f.maxRows)}
	}
	if f.maxRows == 0 {
		c.MaxRows = warehouse.NoRowLimit
	}
	if f.timeout <= 0 {
		return c, usageError{fmt.Errorf("--timeout: %v is not positive", f.timeout)}
	}
	n, err := parseSize(f.maxMemory)
	if err != nil || n <= 0 {
		return c, usageError{fmt.Errorf("--max-memory: %q is not a positive size (e.g. 512MiB, 2GiB)", f.maxMemory)}
	}
	c.MaxMemory = n
	return c, nil
}

// rowWriter prints result rows in one of the sql command's formats.
type rowWriter struct {
	format string
	raw    bool // csv: text cells as stored, not guarded against formulas (export.GuardText)
	names  []string
	tw     *tabwriter.Writer
	cw     *csv.Writer
	enc    *json.Encoder
	n      int
}

func newRowWriter(format string, raw bool, out io.Writer, names []string) *rowWriter {
	w := &rowWriter{format: format, raw: raw, names: names}
	switch format {
	case "table":
		w.tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w.tw, strings.Join(names, "\t"))
	case "csv":
		w.cw = csv.NewWriter(out)
		header := slices.Clone(names)
		for i := range header {
			header[i] = w.guard(header[i])
		}
		_ = w.cw.Write(header)
	case "json":
		w.enc = json.NewEncoder(out)
	}
	return w
}

func (w *rowWriter) row(vals []any) error {
	w.n++
	switch w.format {
	case "table", "csv":
		cells := make([]string, len(vals))
		for i, v := range vals {
			cells[i] = cellText(v)
			if _, text := v.(string); text && w.cw != nil {
				cells[i] = w.guard(cells[i])
			}
		}
		if w.tw != nil {
			for i, c := range cells {
				cells[i] = strings.NewReplacer("\t", `\t`, "\n", `\n`).Replace(c)
			}
			_, err := fmt.Fprintln(w.tw, strings.Join(cells, "\t"))
			return err
		}
		return w.cw.Write(cells)
	default:
		obj := make(map[string]any, len(vals))
		for i, v := range vals {
			obj[w.names[i]] = jsonValue(v)
		}
		return w.enc.Encode(obj)
	}
}

// totals writes a query's WITH TOTALS row after its rows, marked: a line "totals" then the
// row (table), a TOTALS line then the row (csv, as downloads do), {"totals": {…}} (json).
func (w *rowWriter) totals(vals []any) error {
	switch w.format {
	case "table":
		fmt.Fprintln(w.tw, "-- totals")
		w.n-- // the totals are not a row of the result
	case "csv":
		if err := w.cw.Write([]string{"TOTALS"}); err != nil {
			return err
		}
		w.n--
	default:
		obj := make(map[string]any, len(vals))
		for i, v := range vals {
			obj[w.names[i]] = jsonValue(v)
		}
		return w.enc.Encode(map[string]any{"totals": obj})
	}
	return w.row(vals)
}

// guard is a CSV text cell as a spreadsheet may open it safely (unless raw).
func (w *rowWriter) guard(text string) string {
	if w.raw {
		return text
	}
	return export.GuardText(text)
}

func (w *rowWriter) flush() error {
	switch {
	case w.tw != nil:
		if err := w.tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%d rows\n", w.n)
	case w.cw != nil:
		w.cw.Flush()
		return w.cw.Error()
	}
	return nil
}

// cellText is a value for the table and csv formats: NULL, instants with their offset, arrays,
// maps and tuples as JSON (as downloads write them, and close to ClickHouse's own CSV), not Go's
// syntax.
func cellText(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return x.Format("2006-01-02 15:04:05.999999999Z07:00")
	case fmt.Stringer:
		return x.String()
	}
	if text, ok := export.CompositeText(v); ok {
		return text
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return "NULL"
		}
		return cellText(rv.Elem().Interface())
	}
	return fmt.Sprint(v)
}

func jsonValue(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case fmt.Stringer:
		return x.String()
	}
	if text, ok := export.CompositeText(v); ok {
		return json.RawMessage(text)
	}
	return v
}
