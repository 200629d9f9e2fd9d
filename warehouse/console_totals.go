package warehouse

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// A statement's WITH TOTALS row. The native protocol sends it as a block of its own
// (clickhouse-go's rows.Totals); the Native format over HTTP drops it (ClickHouse's Native
// output writes no totals), which is what the console reads there. So the console asks for
// the totals apart, once the rows are read: the statement again (at most one data row, the
// setting limit = 1; the totals are over all rows all the same) in TabSeparatedWithNamesAndTypes,
// which carries them after an empty line, and the engine parses that text back into each
// column's type (CAST of a bound parameter). The statement runs twice: WITH TOTALS costs a
// second run of it, with the same limits.

// HasTotals reports whether stmt asks for totals (WITH TOTALS, at any depth: the totals of a
// subquery are not the result's, and ask for nothing more than a run that finds none).
func HasTotals(stmt string) bool {
	toks, err := tokenize(stmt)
	if err != nil {
		return false
	}
	for i := 0; i+1 < len(toks); i++ {
		if toks[i].is("WITH") && toks[i+1].is("TOTALS") {
			return true
		}
	}
	return false
}

// Totals returns the statement's totals row as pointers (as Scan does), or nil when it has
// none. Call it once Next returned false; it ends the rows' query first.
func (r *ConsoleRows) Totals() ([]any, error) {
	if r.tdone {
		return r.totals, r.terr
	}
	r.tdone = true
	if r.err != nil || len(r.Columns) == 0 || !HasTotals(r.Statement) {
		return nil, nil
	}
	dest := r.src.dest()
	if supported, present := r.src.totals(dest); supported {
		if present {
			r.totals = dest
		}
		return r.totals, nil
	}
	r.Close()
	r.totals, r.terr = r.c.readTotals(r.parent, r.st, r.Statement, r.Columns)
	return r.totals, r.terr
}

// readTotals runs stmt for its totals row (see the top of this file).
func (c Console) readTotals(ctx context.Context, st *Store, stmt string, cols []ConsoleColumn) ([]any, error) {
	qctx, cancel := context.WithTimeout(ctx, c.Timeout+2*time.Second)
	defer cancel()
	qctx = WithResultLimit(noDeadline{qctx}, ResultLimit{Block: c.MaxResultBytes})
	s := c.settings(ctx, true)
	s["limit"] = 1
	s["wait_end_of_query"] = 1 // the bridge streams no output with totals
	body, err := st.console.QueryFormat(clickhouse.Context(qctx, clickhouse.WithSettings(s)), "TabSeparatedWithNamesAndTypes", stmt+consoleTrailer)
	if err != nil {
		return nil, totalsError(c.queryError(err))
	}
	b, err := io.ReadAll(io.LimitReader(body, c.MaxResultBytes+1))
	body.Close()
	if err != nil {
		return nil, totalsError(c.queryError(err))
	}
	if int64(len(b)) > c.MaxResultBytes {
		return nil, totalsError(&ResultTooLargeError{Limit: c.MaxResultBytes})
	}
	// Names, types, at most one row, an empty line, the totals.
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) < 2 {
		return nil, nil
	}
	blank := slices.Index(lines[2:], "")
	if blank < 0 || 2+blank+1 >= len(lines) {
		return nil, nil // WITH TOTALS of a subquery: the result has none
	}
	fields := strings.Split(lines[2+blank+1], "\t")
	if len(fields) != len(cols) {
		return nil, totalsError(fmt.Errorf("%d values for %d columns", len(fields), len(cols)))
	}
	sel := make([]string, len(fields))
	params := clickhouse.Parameters{}
	for i, f := range fields {
		k := strconv.Itoa(i)
		sel[i] = "CAST({v" + k + ":Nullable(String)}, {t" + k + ":String}) AS c" + k
		params["v"+k], params["t"+k] = f, cols[i].Type
	}
	ro := clickhouse.Settings{"readonly": 1, "max_execution_time": s["max_execution_time"], "priority": c.Priority}
	src, _, err := openBlocks(clickhouse.Context(qctx, clickhouse.WithParameters(params)), st, "SELECT "+strings.Join(sel, ", "), ro, c.MaxResultBytes, 0)
	if err != nil {
		return nil, totalsError(c.queryError(err))
	}
	defer src.close()
	dest := src.dest()
	ok, err := src.next()
	if err == nil && ok {
		err = src.scan(dest)
	}
	if err != nil || !ok {
		return nil, totalsError(fmt.Errorf("the engine did not read them back: %v", err))
	}
	return dest, nil
}

// TotalsError is why a statement's totals row could not be read (its rows could).
type TotalsError struct{ Err error }

func (e *TotalsError) Error() string { return "the totals row could not be read: " + e.Err.Error() }

func (e *TotalsError) Unwrap() error { return e.Err }

func totalsError(err error) error { return &TotalsError{Err: err} }
