package metrics_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse"
)

// compareDistinct: for every simple metric whose measure is only distinct
// counts of one key, the two-step statement gives the rows of the one-pass
// statement (GROUPING SETS) over random ranges, grains, zones and filters
// (a breakdown keeps the one pass): the same buckets, dims and whole-range totals, values to 1e-9.
func compareDistinct(t *testing.T, st *warehouse.Store, reg *metrics.Registry, rng *rand.Rand, n int) {
	t.Helper()
	ctx := context.Background()
	var split []string
	for _, d := range reg.List() {
		if d.Kind != metrics.Simple {
			continue
		}
		for i := 0; i < n; i++ {
			p := randomParams(rng)
			randomFilter(t, reg, rng, d, &p)
			two, one, args, ok, err := reg.PlannedBoth(ctx, d.Name, p)
			if err != nil {
				t.Fatalf("%s: %v", d.Name, err)
			}
			if !ok {
				break
			}
			if i == 0 {
				split = append(split, d.Name)
			}
			if len(d.Dimensions) > 0 {
				by := p
				by.By = d.Dimensions[0].Name
				if _, _, _, ok, err := reg.PlannedBoth(ctx, d.Name, by); err != nil || ok {
					t.Fatalf("%s by %s: planned in two steps (%v), want one pass", d.Name, by.By, err)
				}
			}
			name := fmt.Sprintf("%s %s..%s %s %s filters=%v", d.Name, p.From.Format(time.DateOnly), p.To.Format(time.DateOnly), p.Grain, p.TZ, p.Filters)
			a, b := plannedRows(t, st, two, args), plannedRows(t, st, one, args)
			// Over no rows the one pass still gives the whole range's row, the measure
			// over no rows (0, or NaN for a ratio); the two steps give none, and the
			// answer then takes the measure over no rows all the same.
			if len(a) == 0 && len(b) == 1 && b[0].whole && b[0].value != nil && (*b[0].value == 0 || math.IsNaN(*b[0].value)) {
				continue
			}
			if len(a) != len(b) {
				t.Fatalf("%s: two steps give %d rows, one pass %d", name, len(a), len(b))
			}
			for j := range a {
				x, y := a[j], b[j]
				if x.bucket != y.bucket || x.dim != y.dim || x.whole != y.whole || (x.value == nil) != (y.value == nil) ||
					x.value != nil && !(*x.value == *y.value || math.Abs(*x.value-*y.value) <= 1e-9*math.Max(1, math.Abs(*y.value)) || math.IsNaN(*x.value) && math.IsNaN(*y.value)) {
					t.Fatalf("%s: row %d: two steps %s, one pass %s", name, j, x, y)
				}
			}
		}
	}
	for _, want := range []string{"active_customers", "repeat_purchase_rate", "orders", "tickets"} {
		if !slices.Contains(split, want) {
			t.Errorf("%s is not planned in two steps (split: %v)", want, split)
		}
	}
}

type plannedRow struct {
	bucket time.Time
	dim    string
	value  *float64
	whole  bool
}

func (r plannedRow) String() string {
	v := "NULL"
	if r.value != nil {
		v = fmt.Sprint(*r.value)
	}
	return fmt.Sprintf("(%s, %q, %s, whole=%v)", r.bucket.Format(time.DateOnly), r.dim, v, r.whole)
}

func plannedRows(t *testing.T, st *warehouse.Store, q string, args map[string]string) []plannedRow {
	t.Helper()
	rows, err := st.Conn.Query(clickhouse.Context(context.Background(), clickhouse.WithParameters(args)), q)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	defer rows.Close()
	var out []plannedRow
	for rows.Next() {
		var r plannedRow
		if err := rows.Scan(&r.bucket, &r.dim, &r.value, &r.whole); err != nil {
			t.Fatal(err)
		}
		if r.whole {
			r.bucket = time.Time{}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
