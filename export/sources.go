package export

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	convsql "github.com/converge-dev/converge/sql"
	"github.com/converge-dev/converge/warehouse"
)

// Watermark is how far a source table's data goes: the latest load
// (loaded_at, or matched_at for identities) and the ingest run that wrote it.
// A table without load times (a view without them, a model output) has the
// time of its last change instead.
type Watermark struct {
	Table           string     `json:"table"`
	LatestLoadedAt  *time.Time `json:"latest_loaded_at,omitempty"`
	LatestIngestRun string     `json:"latest_ingest_run,omitempty"`
	ModifiedAt      *time.Time `json:"modified_at,omitempty"`
	Empty           bool       `json:"empty,omitempty"`
}

// loadTimeColumns are the columns a table's load time is read from, in
// order of preference.
var loadTimeColumns = []string{"loaded_at", "matched_at"}

// watermarks reads the watermark of each of tables that exists in the
// store's database (others, such as CTE names, are left out).
func watermarks(ctx context.Context, st *warehouse.Store, tables []string) ([]Watermark, error) {
	if len(tables) == 0 {
		return []Watermark{}, nil
	}
	pctx := clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{"tables": warehouse.StringArray(tables)}))
	cols := map[string][]string{}
	rows, err := st.Conn.Query(pctx, convsql.ExportQuery("source_columns"))
	if err != nil {
		return nil, fmt.Errorf("export: source columns: %w", err)
	}
	for rows.Next() {
		var t string
		var names []string
		if err := rows.Scan(&t, &names); err != nil {
			rows.Close()
			return nil, err
		}
		cols[t] = names
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("export: source columns: %w", err)
	}
	modified := map[string]time.Time{}
	rows, err = st.Conn.Query(pctx, convsql.ExportQuery("source_parts"))
	if err != nil {
		return nil, fmt.Errorf("export: source parts: %w", err)
	}
	for rows.Next() {
		var t string
		var at time.Time
		var n uint64
		if err := rows.Scan(&t, &at, &n); err != nil {
			rows.Close()
			return nil, err
		}
		modified[t] = at.UTC()
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("export: source parts: %w", err)
	}

	out := []Watermark{}
	for _, t := range slices.Sorted(slices.Values(tables)) {
		names, ok := cols[t]
		if !ok {
			continue
		}
		w := Watermark{Table: t}
		i := slices.IndexFunc(loadTimeColumns, func(c string) bool { return slices.Contains(names, c) })
		if i >= 0 && slices.Contains(names, "ingest_run_id") {
			var at time.Time
			var run string
			qctx := clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{"table": t, "time": loadTimeColumns[i]}))
			if err := st.Conn.QueryRow(qctx, convsql.ExportQuery("source_watermark")).Scan(&at, &run); err != nil {
				return nil, fmt.Errorf("export: watermark of %s: %w", t, err)
			}
			if at.IsZero() || at.Unix() <= 0 {
				w.Empty = true
			} else {
				at = at.UTC()
				w.LatestLoadedAt, w.LatestIngestRun = &at, run
			}
		} else if at, ok := modified[t]; ok {
			w.ModifiedAt = &at
		} else {
			w.Empty = true
		}
		out = append(out, w)
	}
	return out, nil
}

// steady runs compute between two readings of the watermarks of tables and
// returns the first reading. When a load lands in between, it computes
// again, three times at most; then it gives up with an error that starts
// with what.
func steady(ctx context.Context, st *warehouse.Store, tables []string, what string, compute func() error) ([]Watermark, error) {
	for attempt := 0; ; attempt++ {
		before, err := watermarks(ctx, st, tables)
		if err != nil {
			return nil, err
		}
		if err := compute(); err != nil {
			return nil, err
		}
		after, err := watermarks(ctx, st, tables)
		if err != nil {
			return nil, err
		}
		if sameWatermarks(before, after) {
			return before, nil
		}
		if attempt == 2 {
			return nil, fmt.Errorf("%s: its source tables changed during each of three attempts (data is being loaded): try again later", what)
		}
	}
}

// sameWatermarks reports whether two readings agree.
func sameWatermarks(a, b []Watermark) bool {
	return slices.EqualFunc(a, b, func(x, y Watermark) bool {
		return x.Table == y.Table && x.LatestIngestRun == y.LatestIngestRun && x.Empty == y.Empty &&
			timeEqual(x.LatestLoadedAt, y.LatestLoadedAt) && timeEqual(x.ModifiedAt, y.ModifiedAt)
	})
}

func timeEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}
