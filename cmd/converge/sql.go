package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) sqlCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "sql [--format table|csv|json] QUERY",
		Short: "Run a query against the store and print the result (QUERY - reads it from stdin)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "table", "csv", "json":
			default:
				return usageError{fmt.Errorf("--format: %q is not one of table, csv, json", format)}
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
			ctx := cmd.Context()
			st, err := a.openStore(ctx, false)
			if err != nil {
				return err
			}
			defer st.Close()
			rows, err := st.Conn.Query(ctx, query)
			if err != nil {
				return err
			}
			defer rows.Close()
			types := rows.ColumnTypes()
			names := rows.Columns()
			w := newRowWriter(format, cmd.OutOrStdout(), names)
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
	return cmd
}

// rowWriter prints result rows in one of the sql command's formats.
type rowWriter struct {
	format string
	names  []string
	tw     *tabwriter.Writer
	cw     *csv.Writer
	enc    *json.Encoder
	n      int
}

func newRowWriter(format string, out io.Writer, names []string) *rowWriter {
	w := &rowWriter{format: format, names: names}
	switch format {
	case "table":
		w.tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w.tw, strings.Join(names, "\t"))
	case "csv":
		w.cw = csv.NewWriter(out)
		_ = w.cw.Write(names)
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

func cellText(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return x.Format("2006-01-02 15:04:05.999999999Z07:00")
	case fmt.Stringer:
		return x.String()
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
	return v
}
