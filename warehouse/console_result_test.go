package warehouse_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// Run holds at most MaxResultBytes, whatever makes the result large: many rows, wide rows,
// one huge block, constants the engine counts as one value.
func TestConsoleRunResultBytes(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	c := warehouse.Console{MaxRows: 10000, MaxResultBytes: 1 << 20}
	cases := []struct {
		name, sql string
		tooLarge  bool
		rows      int
	}{
		{"small", "SELECT number, toString(number) FROM numbers(1000)", false, 1000},
		{"cut by rows, not bytes", "SELECT number FROM numbers(1000000)", false, 10000},
		{"one block of constants", "SELECT repeat('y', 100000) FROM numbers(100)", true, 0},
		{"wide rows", "SELECT repeat('y', 1000 + number % 2) FROM numbers(5000)", true, 0},
		{"many rows in many blocks", "SELECT toString(number) || repeat('x', 200) FROM numbers(9000)", true, 0},
		{"one huge value", "SELECT arrayStringConcat(arrayMap(x -> toString(x), range(1000000)))", true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.Run(ctx, st, tc.sql)
			var tl *warehouse.ResultTooLargeError
			if tc.tooLarge {
				if !errors.As(err, &tl) || tl.Limit != 1<<20 {
					t.Fatalf("got %v, want a *ResultTooLargeError of 1 MiB", err)
				}
				if !strings.HasPrefix(err.Error(), "result ") || !strings.Contains(err.Error(), "1 MiB") {
					t.Errorf("message %q should say the result is larger than 1 MiB", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Rows) != tc.rows || res.Bytes > 1<<20 || res.Bytes <= 0 {
				t.Errorf("%d rows of %d bytes, want %d rows under 1 MiB", len(res.Rows), res.Bytes, tc.rows)
			}
		})
	}
}

// Open streams rows whatever their total, one block at a time: a first block too large for
// the block limit is asked for again in smaller blocks; a later one ends the rows with the
// error, after the rows before it.
func TestConsoleOpenBlockBytes(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	c := warehouse.Console{MaxRows: warehouse.NoRowLimit, BlockBytes: 1 << 20, BlockRows: 1000}

	rows, err := c.Open(ctx, st, "SELECT number, repeat('y', 50000) AS s FROM numbers(100)")
	if err != nil {
		t.Fatal(err)
	}
	n, size := 0, 0
	for rows.Next() {
		v := rows.Values()
		n, size = n+1, size+len(v[1].(string))
	}
	if err := rows.Err(); err != nil || n != 100 || size != 100*50000 {
		t.Fatalf("5 MB in rows of 50 kB, 1 MiB blocks: %d rows, %d bytes, %v", n, size, err)
	}
	rows.Close()

	// 1.5 MB of rows of 500 bytes go out first (over the MiB the bridge holds back before
	// its status), then a block of 10 rows of 300 kB.
	rows, err = c.Open(ctx, st, "SELECT number, repeat('y', if(number < 3000, 500, 300000)) FROM numbers(3010)")
	if err != nil {
		t.Fatal(err)
	}
	n = 0
	for rows.Next() {
		n++
	}
	var tl *warehouse.ResultTooLargeError
	if !errors.As(rows.Err(), &tl) || !tl.Block || tl.Limit != 1<<20 {
		t.Fatalf("a 3 MB block after 3,000 rows: %v, want a block too large", rows.Err())
	}
	if n != 3000 {
		t.Errorf("%d rows before the error, want the 3,000 of the blocks before it", n)
	}
	if !strings.Contains(tl.Error(), "block larger than 1 MiB") {
		t.Errorf("message %q", tl.Error())
	}
	rows.Close()
}

// The query of issue #15 (400 values of 1 MB) through the console page and a download:
// before, the page took the process from 0.4 to 2.8 GB and the download to 2.56 GB; now
// the page refuses it and the download streams it in blocks under the limit, and the
// process's peak rises by less than 1.6 GiB in either (the engine's own share, about three
// times the 400 MB block it builds for the first attempt, is most of it; Go holds at most the
// limits).
func TestConsoleMemoryOfWideResult(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	const q = "SELECT repeat('y', 1000000) FROM numbers(400)"
	const bound = 1600 << 20
	c := warehouse.Console{MaxRows: 10000}

	var runErr error
	page := whtest.PeakGrowth(t, func() { _, runErr = c.Run(ctx, st, q) })
	var tl *warehouse.ResultTooLargeError
	if !errors.As(runErr, &tl) || tl.Limit != warehouse.DefaultConsoleResultBytes {
		t.Fatalf("page: %v, want the result refused at %d bytes", runErr, warehouse.DefaultConsoleResultBytes)
	}
	var n, size int
	var openErr error
	download := whtest.PeakGrowth(t, func() {
		rows, err := warehouse.Console{MaxRows: warehouse.NoRowLimit, BlockRows: 8192}.Open(ctx, st, q)
		if err != nil {
			openErr = err
			return
		}
		defer rows.Close()
		for rows.Next() {
			n++
			size += len(*rows.Scan()[0].(*string))
		}
		openErr = rows.Err()
	})
	if openErr != nil || n != 400 || size != 400_000_000 {
		t.Fatalf("download: %d rows, %d bytes, %v", n, size, openErr)
	}
	t.Logf("peak RSS growth: page %d MiB, download %d MiB", page>>20, download>>20)
	if page > bound || download > bound {
		t.Errorf("peak RSS growth: page %d MiB, download %d MiB; want both under %d MiB", page>>20, download>>20, bound>>20)
	}
}

// A statement WITH TOTALS gets its totals row, in the columns' own types; a statement
// without, or with totals in a subquery only, gets none.
func TestConsoleTotals(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	cases := []struct {
		name, sql string
		rows      int
		want      string // the totals, cells joined with |; "" none
	}{
		{"count and sum", "SELECT number % 3 AS k, count() AS n, sum(number) AS s FROM numbers(10) GROUP BY k WITH TOTALS ORDER BY k", 3, "0|10|45"},
		{"decimal, string, date, nullable, array", `SELECT number % 2 AS k, sum(toDecimal64(number, 2)) AS d,
			max(toDate('2026-01-01') + number) AS day, max(toDateTime('2026-01-01 10:00:00', 'UTC') + number) AS at,
			any(if(number > 100, number, NULL)) AS maybe, arraySort(groupArray(number)) AS xs, max(toString(number)) AS s
			FROM numbers(4) GROUP BY k WITH TOTALS ORDER BY k`, 2, "0|6.00|2026-01-04|2026-01-01 10:00:03 +0000 UTC||[0 1 2 3]|3"},
		// A constant key is the constant in the totals too: its tab and quote come back.
		{"quotes and tabs in a string", "SELECT 'a\\tb''c' AS k, count() FROM numbers(2) GROUP BY k WITH TOTALS", 1, "a\tb'c|2"},
		{"no totals", "SELECT number % 3 AS k, count() FROM numbers(10) GROUP BY k ORDER BY k", 3, ""},
		// The engine passes a subquery's totals on to the result.
		{"totals of a subquery", "SELECT * FROM (SELECT number % 3 AS k, count() AS n FROM numbers(10) GROUP BY k WITH TOTALS) ORDER BY k", 3, "0|10"},
		{"cut rows, totals of all", "SELECT number AS k, count() FROM numbers(100) GROUP BY k WITH TOTALS ORDER BY k", 10, "0|100"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := warehouse.Console{MaxRows: 10}.Run(ctx, st, tc.sql)
			if err != nil {
				t.Fatal(err)
			}
			if res.TotalsError != "" {
				t.Fatalf("totals: %s", res.TotalsError)
			}
			if len(res.Rows) != tc.rows {
				t.Errorf("%d rows, want %d", len(res.Rows), tc.rows)
			}
			got := ""
			if res.Totals != nil {
				cells := make([]string, len(res.Totals))
				for i, v := range res.Totals {
					cells[i] = cellString(v)
				}
				got = strings.Join(cells, "|")
			}
			if got != tc.want {
				t.Errorf("totals %q, want %q", got, tc.want)
			}
		})
	}
}

func cellString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case time.Time:
		if x.Hour() == 0 && x.Minute() == 0 && x.Second() == 0 {
			return x.Format(time.DateOnly)
		}
		return x.UTC().String()
	case decimal.Decimal:
		return x.StringFixed(2)
	}
	return fmt.Sprint(v)
}

// The engine's own limits of a console query: its priority and threads, and the bytes it
// may read (refused up front when the estimate is over).
func TestConsoleQueryQuota(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	res, err := warehouse.Console{MaxThreads: 1, Priority: 7}.Run(ctx, st, "SELECT getSetting('max_threads'), getSetting('priority')")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(res.Rows[0]...); got != "1 7" && got != "17" {
		t.Errorf("max_threads and priority in force: %v, want 1 and 7", res.Rows[0])
	}
	_, err = warehouse.Console{MaxBytesToRead: 1 << 20}.Run(ctx, st, "SELECT count() FROM numbers(10000000) WHERE number % 7 = 1")
	var le *warehouse.ConsoleLimitError
	if !errors.As(err, &le) || !strings.HasPrefix(le.Limit, "bytes read (1 MiB)") {
		t.Errorf("1 MiB to read, 80 MB read: %v, want the bytes-read limit", err)
	}
}

// Any query run with a ResultLimit (the metric answers') is bounded: the whole response by the
// store's transport, each block by the bridge, whichever comes first; both read as a
// *ResultTooLargeError.
func TestResultLimitTransport(t *testing.T) {
	st := whtest.Store(t)
	cases := []struct {
		name  string
		limit warehouse.ResultLimit
		sql   string
		ok    bool
		block bool
	}{
		{"under both", warehouse.ResultLimit{Total: 1 << 20, Block: 1 << 20}, "SELECT number FROM numbers(1000)", true, false},
		{"total, many blocks", warehouse.ResultLimit{Total: 1 << 20}, "SELECT number FROM numbers(1000000) SETTINGS max_block_size = 1000", false, false},
		{"block", warehouse.ResultLimit{Block: 1 << 20}, "SELECT repeat('y', 100000) FROM numbers(100)", false, true},
		{"block, materialised", warehouse.ResultLimit{Block: 1 << 20}, "SELECT groupArray(repeat('y', 1000 + number % 2)) FROM numbers(5000)", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := warehouse.WithResultLimit(context.Background(), tc.limit)
			if tc.name == "block, materialised" {
				ctx = warehouse.Materialized(ctx)
			}
			rows, err := st.Conn.Query(ctx, tc.sql)
			n := 0
			if err == nil {
				for rows.Next() {
					n++
				}
				err = rows.Err()
				rows.Close()
			}
			tl, big := warehouse.AsResultTooLarge(err, 0)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("%v", err)
			case tc.ok:
				return
			case !big || tl.Block != tc.block || tl.Limit != 1<<20:
				t.Fatalf("%d rows, %v: want a result too large (block %v) at 1 MiB", n, err, tc.block)
			}
			if tc.block && tl.Bytes <= 1<<20 {
				t.Errorf("the bridge's refusal names the block's size: %+v", tl)
			}
		})
	}
}
