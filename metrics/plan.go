package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/converge-dev/converge/warehouse"
)

// shape is what the store said about a definition when it was checked.
type shape struct {
	cols       map[string]string // simple: the model's columns; custom: the output columns → type
	order      []string          // custom: output column order
	timeIsDate bool              // simple: the time column is a Date (a calendar day already)
	empty      *float64          // simple: the measure over no rows (0 for sum/count, nil for avg)
	series     bool              // custom: returns bucket, value (and dim)
	hasDim     bool
}

// checkStore validates d against the store and caches the result by version.
func (r *Registry) checkStore(ctx context.Context, d *Definition, _ any) (*shape, error) {
	if d.Kind == Derived || d.Kind == Score {
		return &shape{}, nil
	}
	r.mu.RLock()
	sh, ok := r.checked[d.Version]
	r.mu.RUnlock()
	if ok {
		return sh, nil
	}
	if r.opts.Store == nil {
		return nil, fmt.Errorf("metrics: no store to check %s against", d.Name)
	}
	conn := r.opts.Store.Conn
	fail := func(line int, format string, args ...any) error {
		return &Error{File: d.File, Line: line, Reason: fmt.Sprintf(format, args...)}
	}
	sh = &shape{cols: map[string]string{}}
	p := sampleParams(d)
	if err := r.checkBoundary(ctx, d, p); err != nil {
		return nil, err
	}
	switch d.Kind {
	case Simple:
		cols, order, err := describe(ctx, conn, d.SQL, contractArgs(p))
		if err != nil {
			return nil, fail(d.bodyLine, "model SQL: %s", chMessage(err))
		}
		_ = order
		sh.cols = cols
		tt, ok := cols[d.Time]
		if !ok {
			return nil, fail(d.Line("time"), "unknown column %q: the model has no such column (%s)", d.Time, strings.Join(sortedKeys(cols), ", "))
		}
		base := strings.TrimSuffix(strings.TrimPrefix(tt, "Nullable("), ")")
		switch {
		case base == "Date" || base == "Date32":
			sh.timeIsDate = true
		case strings.HasPrefix(base, "DateTime"):
		default:
			return nil, fail(d.Line("time"), "time column %q is %s, not a Date or DateTime", d.Time, tt)
		}
		for _, dim := range d.Dimensions {
			if _, ok := cols[dim.Column]; !ok {
				return nil, fail(dim.Line, "unknown column %q for dimension %q (model columns: %s)", dim.Column, dim.Name, strings.Join(sortedKeys(cols), ", "))
			}
		}
		// The measure over no rows: what an empty bucket is worth.
		var v *float64
		q := measureQuery(d)
		if err := conn.QueryRow(clickhouse.Context(ctx, clickhouse.WithParameters(contractArgs(p))), q).Scan(&v); err != nil {
			return nil, fail(d.Line("measure"), "measure: %s", chMessage(err))
		}
		sh.empty = finite(v)
		for _, by := range append([]string{""}, dimNamesList(d)...) {
			p.By = by
			q, args := planSimple(d, sh, p)
			if err := runEmpty(ctx, conn, q, args); err != nil {
				return nil, fail(d.Line("measure"), "planned query: %s", chMessage(err))
			}
		}
	case Custom:
		cols, order, err := describe(ctx, conn, d.SQL, customArgs(d, p))
		if err != nil {
			return nil, fail(d.bodyLine, "custom SQL: %s", chMessage(err))
		}
		sh.cols, sh.order = cols, order
		_, hasB := cols["bucket"]
		_, hasV := cols["value"]
		_, hasD := cols["dim"]
		sh.series = hasB && hasV && (len(cols) == 2 || len(cols) == 3 && hasD)
		sh.hasDim = hasD
	}
	r.mu.Lock()
	r.checked[d.Version] = sh
	r.mu.Unlock()
	return sh, nil
}

// measureQuery is the measure over the model's rows, none of them.
func measureQuery(d *Definition) string {
	return measurePrefix + d.Measure + measureMiddle + d.SQL + "\n) AS m WHERE 0"
}

const (
	measurePrefix = "SELECT CAST("
	measureMiddle = " AS Nullable(Float64)) FROM ("
)

// checkBoundary refuses a definition whose SQL (a simple metric's model and
// measure, a custom metric's query) reads outside what analysts may read
// (warehouse.CheckBoundary): converge's own tables (users, sessions, …),
// other databases, system tables with other sessions' queries, files, URLs.
// It runs before anything else asks the store about the SQL, since the
// engine's analysis folds scalar subqueries and its errors would carry what
// they read. The error is on the line that names the table.
func (r *Registry) checkBoundary(ctx context.Context, d *Definition, p Params) error {
	var err error
	sqlAt := 0 // where d.SQL starts in the statement checked
	what := "custom SQL"
	switch d.Kind {
	case Simple:
		what = "model SQL"
		sqlAt = len(measurePrefix) + len(d.Measure) + len(measureMiddle)
		err = r.opts.Store.CheckBoundary(ctx, measureQuery(d), contractArgs(p), "a metric")
	case Custom:
		err = r.opts.Store.CheckBoundary(ctx, d.SQL, customArgs(d, p), "a metric")
	default:
		return nil
	}
	var re *warehouse.RefusedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		line := d.bodyLine
		switch off := re.Offset - sqlAt; {
		case d.Kind == Simple && re.Offset >= len(measurePrefix) && re.Offset < sqlAt:
			line, what = d.Line("measure"), "measure"
		case re.Offset >= 0 && off >= 0 && off <= len(d.SQL):
			line += strings.Count(d.SQL[:off], "\n")
		}
		return &Error{File: d.File, Line: line, Reason: what + ": " + re.Reason}
	}
	// The engine rejected the SQL (an unknown column, say) after the boundary's
	// first steps found nothing outside it: the checks below say where.
	return nil
}

func dimNamesList(d *Definition) []string {
	var out []string
	for _, x := range d.Dimensions {
		out = append(out, x.Name)
	}
	return out
}

func sampleParams(d *Definition) Params {
	p := Params{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC),
		Grain: Month, TZ: time.UTC, WeekStart: time.Monday, FiscalYearStart: time.January, Args: map[string]string{}, Margin: DefaultMargin}
	for _, x := range d.Params {
		p.Args[x.Name] = x.Default
	}
	return p
}

// describe returns the columns of query q (run with args) in order.
func describe(ctx context.Context, conn driver.Conn, q string, args clickhouse.Parameters) (map[string]string, []string, error) {
	if args != nil {
		ctx = clickhouse.Context(ctx, clickhouse.WithParameters(args))
	}
	rows, err := conn.Query(ctx, "DESCRIBE TABLE (\n"+q+"\n)")
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	cols := map[string]string{}
	var order []string
	for rows.Next() {
		dest := make([]any, len(rows.Columns()))
		for i := range dest {
			dest[i] = new(string)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, nil, err
		}
		n, t := *dest[0].(*string), *dest[1].(*string)
		cols[n] = t
		order = append(order, n)
	}
	return cols, order, rows.Err()
}

// runEmpty runs q (with args) to the end, for its error.
func runEmpty(ctx context.Context, conn driver.Conn, q string, args clickhouse.Parameters) error {
	if args != nil {
		ctx = clickhouse.Context(ctx, clickhouse.WithParameters(args))
	}
	rows, err := conn.Query(ctx, "SELECT * FROM (\n"+q+"\n) LIMIT 0")
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	rows.Close()
	return rows.Err()
}

// chMessage shortens a ClickHouse error to its message.
func chMessage(err error) string {
	s := err.Error()
	if i := strings.Index(s, "message: "); i >= 0 {
		s = s[i+len("message: "):]
	}
	if i := strings.Index(s, "DB::Exception: "); i >= 0 {
		s = s[i+len("DB::Exception: "):]
	}
	if i := strings.Index(s, ". Stack trace"); i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(s, " (version "); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// finite returns v rounded to 12 significant digits (float artefacts of
// decimal sums such as 67716.48999999999 become 67716.49), or nil for NaN
// and ±Inf (a ratio over nothing has no value).
func finite(v *float64) *float64 {
	if v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) {
		return nil
	}
	x, err := strconv.ParseFloat(strconv.FormatFloat(*v, 'g', 12, 64), 64)
	if err != nil {
		return v
	}
	return &x
}

// bucketExpr maps a day to the start of its bucket (see bucketStart, which
// must agree).
func bucketExpr(g Grain, day string) string {
	switch g {
	case Week:
		return "toStartOfWeek(" + day + ", {week_mode:UInt8})"
	case Month:
		return "toStartOfMonth(" + day + ")"
	case Quarter:
		return "addMonths(toStartOfQuarter(addMonths(" + day + ", -{fy_shift:Int32})), {fy_shift:Int32})"
	case Year:
		return "addMonths(toStartOfYear(addMonths(" + day + ", -{fy_shift:Int32})), {fy_shift:Int32})"
	}
	return day
}

// contractArgs are the bound parameters every query gets.
func contractArgs(p Params) clickhouse.Parameters {
	wm := "1"
	if p.WeekStart == time.Sunday {
		wm = "0"
	}
	return clickhouse.Parameters{
		"from":      p.From.UTC().Format("2006-01-02 15:04:05.000"),
		"to":        p.To.UTC().Format("2006-01-02 15:04:05.000"),
		"tz":        p.TZ.String(),
		"grain":     string(p.Grain),
		"week_mode": wm,
		"fy_shift":  fmt.Sprint(int(p.FiscalYearStart) - 1),
		// Gross margin assumed where an order's cost is unknown (pitfall 5).
		"default_margin": strconv.FormatFloat(p.margin(), 'f', -1, 64),
	}
}

func customArgs(d *Definition, p Params) clickhouse.Parameters {
	a := contractArgs(p)
	for _, x := range d.Params {
		v, ok := p.Args[x.Name]
		if !ok {
			v = x.Default
		}
		a[x.Name] = paramText(v)
	}
	return a
}

// paramEscaper escapes what ClickHouse's escaped text format gives a meaning to.
var paramEscaper = strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`, "\x00", `\0`)

// paramText is a value as the text of a bound parameter. ClickHouse reads a parameter's text
// in its escaped format (a backslash starts an escape sequence; a tab or a line end ends the
// value, an error), so these are escaped here: the query then receives exactly v, whatever it
// holds. (clickhouse.Named does the same; clickhouse.Parameters, used here, sends text as is.)
func paramText(v string) string { return paramEscaper.Replace(v) }

// planSimple writes the query of a simple metric: the model's rows in [from, to), filtered,
// grouped by bucket and the breakdown dimension and, in the same pass over the rows, by the
// dimension alone for the whole range (GROUPING SETS; those rows have whole = true), the
// measure computed per group from raw rows: a distinct count's total is not a sum of buckets.
func planSimple(d *Definition, sh *shape, p Params) (string, clickhouse.Parameters) {
	return planOver(d, rawSource(d, sh), p)
}

// planSource is what a simple metric's statement reads: the model's raw rows, or its rollup.
type planSource struct {
	from       string // the FROM clause, aliased m
	time       string // the time column
	timeIsDate bool
	dim        func(name string) string // a dimension's value as String
	measure    string
	rows       string // the count of model rows
}

func rawSource(d *Definition, sh *shape) planSource {
	return planSource{from: "(\n" + d.SQL + "\n) AS m", time: "m." + d.Time, timeIsDate: sh.timeIsDate, measure: d.Measure, rows: "count()",
		dim: func(name string) string {
			x, _ := d.Dimension(name)
			return "toString(m." + x.Column + ")"
		}}
}

// planOver writes planSimple's statement over src: in two steps when the
// measure is only distinct counts of one key (planDistinct), else in one.
func planOver(d *Definition, src planSource, p Params) (string, clickhouse.Parameters) {
	return planOverSplit(d, src, p, true)
}

// planOverSplit is planOver; split false keeps a distinct measure in one step.
func planOverSplit(d *Definition, src planSource, p Params, split bool) (string, clickhouse.Parameters) {
	args := contractArgs(p)
	day := "toDate(" + src.time + ", {tz:String})"
	if src.timeIsDate {
		day = src.time
	}
	bucket := bucketExpr(p.Grain, day)
	dim := "''"
	if p.By != "" {
		dim = src.dim(p.By)
	}
	var where []string
	if src.timeIsDate {
		where = append(where, src.time+" >= toDate({from:DateTime64(3, 'UTC')}, {tz:String})",
			src.time+" < toDate({to:DateTime64(3, 'UTC')}, {tz:String})")
	} else {
		where = append(where, src.time+" >= {from:DateTime64(3, 'UTC')}", src.time+" < {to:DateTime64(3, 'UTC')}")
	}
	for i, f := range p.Filters {
		name := fmt.Sprintf("f%d", i)
		where = append(where, src.dim(f.Dim)+" = {"+name+":String}")
		args[name] = paramText(f.Value)
	}
	extra, sets := "", "(bucket, dim), (dim)"
	if restricted(d, p) {
		extra, sets = plannedCurrency(src.dim("currency"), src.rows, p)
	} else if ds, ok := splitDistinct(src.measure); ok && split && p.By == "" {
		return planDistinct(ds, src, bucket, where), args
	}
	q := "SELECT " + bucket + " AS bucket, " + dim + " AS dim, CAST(" + src.measure + " AS Nullable(Float64)) AS value, toBool(grouping(bucket)) AS whole" + extra + "\n" +
		"FROM " + src.from + "\nWHERE " + strings.Join(where, "\n  AND ") +
		"\nGROUP BY GROUPING SETS (" + sets + ")\nORDER BY whole, bucket, dim"
	return q, args
}

// raw is a metric's values over one range: dim → bucket day → value, the
// total per dim, or a table for a custom metric of another shape; left is what
// the values leave out (rows in other currencies), its inputs' for a derived one.
type raw struct {
	vals   map[string]map[string]*float64
	totals map[string]*float64
	empty  *float64 // value of a bucket with no rows
	table  *Table
	left   []leftOut
}

// add stores a row of a planned series query: a whole-range total, or a bucket's value.
func (x *raw) add(r row) {
	if r.whole {
		x.totals[r.dim] = r.value
		return
	}
	if x.vals[r.dim] == nil {
		x.vals[r.dim] = map[string]*float64{}
	}
	x.vals[r.dim][r.bucket.Format(time.DateOnly)] = r.value
}

func (x *raw) get(dim, day string) *float64 {
	if m, ok := x.vals[dim]; ok {
		if v, ok := m[day]; ok {
			return v
		}
	}
	return x.empty
}

func (x *raw) total(dim string) *float64 {
	if v, ok := x.totals[dim]; ok {
		return v
	}
	return x.empty
}

func (x *raw) dims() []string {
	set := map[string]bool{}
	for d := range x.vals {
		set[d] = true
	}
	for d := range x.totals {
		set[d] = true
	}
	out := sortedKeys(set)
	if len(out) == 0 {
		out = []string{""}
	}
	return out
}

// memo shares the values of the metrics one Query computes (an input read
// by several formulas is computed once), and lets inputs run concurrently.
type memo struct {
	mu    sync.Mutex
	calls map[string]*memoCall
}

type memoCall struct {
	done    chan struct{}
	res     *raw
	err     error
	stopped bool // the computing caller's context had ended
}

// compute returns the values of d over p's range.
func (r *Registry) compute(ctx context.Context, d *Definition, p Params) (*raw, error) {
	return r.computeWith(ctx, sharedMemo(ctx), d, p)
}

func (r *Registry) computeWith(ctx context.Context, m *memo, d *Definition, p Params) (*raw, error) {
	key := d.Name + "|" + p.Key()
	m.mu.Lock()
	if c, ok := m.calls[key]; ok {
		m.mu.Unlock()
		select {
		case <-c.done:
			if c.err != nil && c.stopped && ctx.Err() == nil {
				// The caller that computed it stopped (its widget's time budget ran out);
				// this one has time left: compute it again, unshared.
				return r.computeOne(ctx, m, d, p)
			}
			return c.res, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &memoCall{done: make(chan struct{})}
	m.calls[key] = c
	m.mu.Unlock()
	c.res, c.err = r.computeOne(ctx, m, d, p)
	c.stopped = ctx.Err() != nil
	close(c.done)
	return c.res, c.err
}

func (r *Registry) computeOne(ctx context.Context, m *memo, d *Definition, p Params) (*raw, error) {
	ctx = tracing(warehouse.Materialized(ctx), d.Name)
	switch d.Kind {
	case Derived, Score:
		eval := func(get func(string) *float64) *float64 {
			if d.Kind == Score {
				return d.scoreOf(get)
			}
			return d.formula.eval(get)
		}
		names := d.Inputs()
		results := make([]*raw, len(names))
		errs := make([]error, len(names))
		same := r.restrictsInputs(d, p) // the inputs in the report currency: d combines amounts
		var wg sync.WaitGroup
		for i, name := range names {
			dep, ok := r.Get(name)
			if !ok {
				return nil, fmt.Errorf("%s: input %s is not defined", d.Name, name)
			}
			ip := p
			// An amount is in the report currency anyway: the same parameters (and shared
			// value) as when it is asked alone.
			ip.sameCurrency = same && dep.Unit != "currency"
			wg.Go(func() { results[i], errs[i] = r.computeWith(ctx, m, dep, ip) })
		}
		wg.Wait()
		ins := map[string]*raw{}
		dims := map[string]bool{}
		for i, name := range names {
			if errs[i] != nil {
				return nil, fmt.Errorf("%s: input %s: %w", d.Name, name, errs[i])
			}
			ins[name] = results[i]
			for _, k := range results[i].dims() {
				dims[k] = true
			}
		}
		out := &raw{vals: map[string]map[string]*float64{}, totals: map[string]*float64{}}
		for _, name := range names {
			for _, l := range ins[name].left {
				l.amount = nil // in an input's units, not the derived metric's
				out.left = append(out.left, l)
			}
		}
		for _, b := range buckets(p) {
			day := b.Format(time.DateOnly)
			months := periodMonths(p, b, nextBucket(p.Grain, b, 1))
			for dim := range dims {
				v := eval(func(n string) *float64 {
					if n == PeriodMonths {
						return &months
					}
					return ins[n].get(dim, day)
				})
				if out.vals[dim] == nil {
					out.vals[dim] = map[string]*float64{}
				}
				out.vals[dim][day] = finite(v)
			}
		}
		whole := periodMonths(p, time.Time{}, time.Time{})
		for dim := range dims {
			out.totals[dim] = finite(eval(func(n string) *float64 {
				if n == PeriodMonths {
					return &whole
				}
				return ins[n].total(dim)
			}))
		}
		return out, nil
	case Simple:
		sh, err := r.checkStore(ctx, d, nil)
		if err != nil {
			return nil, err
		}
		// One statement: the buckets and the whole range's total (planSimple).
		out := &raw{vals: map[string]map[string]*float64{}, totals: map[string]*float64{}, empty: sh.empty}
		restrict := restricted(d, p)
		left := map[string]*leftOut{}
		q, args := planSimple(d, sh, p)
		if sp, _, _ := r.rollupPath(ctx, d, p); sp != nil {
			src := rollupSource(sp)
			if sp.key != "" {
				src = keyedSource(d, sp, sh.timeIsDate)
			}
			q, args = planOver(d, src, p)
		}
		err = r.scan(ctx, q, args, func(x row) {
			if !restrict || collectLeftOut(d, p, x, left) {
				out.add(x)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %s", d.Name, chMessage(err))
		}
		out.left = sortedLeftOut(left)
		return out, nil
	default:
		sh, err := r.checkStore(ctx, d, nil)
		if err != nil {
			return nil, err
		}
		args := customArgs(d, p)
		body, _, _, _ := r.customPath(ctx, d, p, args)
		if sh.series {
			// Rows with a NULL bucket are whole-range totals, rows with a NULL dim the
			// series over all dims (see the package doc).
			out := &raw{vals: map[string]map[string]*float64{}, totals: map[string]*float64{}}
			dim := "''"
			if sh.hasDim {
				dim = "ifNull(toString(dim), '')"
			}
			// Output names differ from the inputs' so that bucket below is always
			// the query's column, not an alias of this SELECT.
			q := "SELECT toDate(ifNull(bucket, toDate(0))) AS b, " + dim + " AS d, CAST(value AS Nullable(Float64)) AS v, toBool(isNull(bucket)) AS whole FROM (\n" + body + "\n) ORDER BY b, d"
			err := r.scan(ctx, q, args, out.add)
			if err != nil {
				return nil, fmt.Errorf("%s: %s", d.Name, chMessage(err))
			}
			return out, nil
		}
		trace(ctx, body, args)
		t, err := r.table(clickhouse.Context(ctx, clickhouse.WithParameters(args)), body)
		if err != nil {
			return nil, fmt.Errorf("%s: %s", d.Name, chMessage(err))
		}
		return &raw{table: t}, nil
	}
}

// row is one row of a planned series query: bucket, dim, value, and the optional columns
// whole (a whole-range total: of a simple metric, or of a custom series), and, of a simple
// metric restricted to the report currency (plannedCurrency), currency, rows (the model rows
// counted) and alldims (a total over every value of the breakdown dimension).
type row struct {
	bucket   time.Time
	dim      string
	value    *float64
	whole    bool
	currency string
	rows     uint64
	alldims  bool
}

func (r *Registry) scan(ctx context.Context, q string, args clickhouse.Parameters, f func(row)) error {
	trace(ctx, q, args)
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(args))
	// f stores by bucket and dim, so the rows of a failed attempt are overwritten by the retry's.
	return r.lanes.run(ctx, r.log, q, func() error { return r.scanOnce(ctx, q, f) })
}

func (r *Registry) scanOnce(ctx context.Context, q string, f func(row)) error {
	rows, err := r.opts.Store.Conn.Query(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var x row
		dest := []any{&x.bucket, &x.dim, &x.value}
		for _, c := range rows.Columns()[3:] {
			switch c {
			case "whole":
				dest = append(dest, &x.whole)
			case "currency":
				dest = append(dest, &x.currency)
			case "rows":
				dest = append(dest, &x.rows)
			case "alldims":
				dest = append(dest, &x.alldims)
			}
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		x.value = finite(x.value)
		f(x)
	}
	return rows.Err()
}

// Table is the result of a custom metric that is not a series (a cohort
// matrix, a funnel, segments): columns in query order and rows of values
// (numbers as float64 or int64, text as string, dates as "YYYY-MM-DD").
type Table struct {
	Columns []string `json:"columns"`
	Types   []string `json:"types"`
	Rows    [][]any  `json:"rows"`
}

// MaxTableRows bounds a custom metric's table; more is an error, never a
// silent truncation.
const MaxTableRows = 100000

func (r *Registry) table(ctx context.Context, q string) (t *Table, err error) {
	err = r.lanes.run(ctx, r.log, q, func() error {
		t, err = r.tableOnce(ctx, q)
		return err
	})
	return t, err
}

func (r *Registry) tableOnce(ctx context.Context, q string) (*Table, error) {
	rows, err := r.opts.Store.Conn.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	t := &Table{Columns: rows.Columns()}
	cts := rows.ColumnTypes()
	for _, ct := range cts {
		t.Types = append(t.Types, ct.DatabaseTypeName())
	}
	for rows.Next() {
		dest := make([]any, len(cts))
		for i, ct := range cts {
			dest[i] = newScan(ct.ScanType())
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		row := make([]any, len(dest))
		for i, x := range dest {
			row[i] = plain(x)
		}
		t.Rows = append(t.Rows, row)
		if len(t.Rows) > MaxTableRows {
			return nil, fmt.Errorf("more than %d rows; narrow the range", MaxTableRows)
		}
	}
	return t, rows.Err()
}
