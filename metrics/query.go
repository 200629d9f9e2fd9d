package metrics

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/converge-dev/converge/warehouse"
)

// Point is one bucket of a series. Bucket is the bucket's first calendar
// day in the report time zone (YYYY-MM-DD). Value is nil when the metric
// has no value there (a ratio over nothing, an average of no rows); sums and
// counts are 0. Compare is the value of the comparison period's bucket at
// the same position; Target the metric's target for the bucket.
type Point struct {
	Bucket        string   `json:"bucket"`
	Value         *float64 `json:"value"`
	CompareBucket string   `json:"compare_bucket,omitempty"`
	Compare       *float64 `json:"compare,omitempty"`
	Target        *float64 `json:"target,omitempty"`
}

// Series is a metric's points for one value of the breakdown dimension
// (Dim "" without a breakdown). Total is computed over the whole range
// from raw rows (never a sum of bucket values).
type Series struct {
	Dim          string   `json:"dim"`
	Points       []Point  `json:"points"`
	Total        *float64 `json:"total"`
	CompareTotal *float64 `json:"compare_total,omitempty"`
}

// Result is what Query returns. A custom metric that is not a series has
// Table instead of Series.
type Result struct {
	Metric   string            `json:"metric"`
	Title    string            `json:"title"`
	Unit     string            `json:"unit"`
	Format   string            `json:"format,omitempty"`
	Polarity string            `json:"polarity"`
	Owner    string            `json:"owner"`
	Version  string            `json:"version"`
	From     time.Time         `json:"from"`
	To       time.Time         `json:"to"`
	Grain    Grain             `json:"grain"`
	TZ       string            `json:"tz"`
	Compare  string            `json:"compare,omitempty"`
	By       string            `json:"by,omitempty"`
	Filters  []Filter          `json:"filters,omitempty"`
	Args     map[string]string `json:"args,omitempty"`
	Target   *float64          `json:"target,omitempty"`
	Series   []Series          `json:"series,omitempty"`
	Table    *Table            `json:"table,omitempty"`
	Currency string            `json:"currency,omitempty"` // the report currency amounts are in (unit currency)
	// Warnings name the rows the answer leaves out (rows in a currency it cannot convert), in the
	// period and in the comparison period; the answer holds every other row.
	Warnings []Warning `json:"warnings,omitempty"`
	Sources  []string  `json:"sources"` // tables the metric reads
	// Freshness is when the data the answer is computed from was current: a rollup's as-of (every
	// fact committed before it is folded in), or the last change (insert, merge, drop) of the raw
	// tables read; zero when empty.
	Freshness time.Time `json:"freshness"`
	Cached    bool      `json:"cached"`
}

// Cache outcomes of a Query (QueryStats.Cache).
const (
	CacheHit  = "hit"  // answered from the result cache
	CacheMiss = "miss" // looked up, not found: computed and stored
)

// QueryStats describe one Query of a defined metric, for monitoring (Options.OnQuery).
type QueryStats struct {
	Metric   string
	Duration time.Duration // wall time of the whole call, cache lookup included
	// Cache is CacheHit, CacheMiss, or "" when the cache was not consulted (the cache is
	// disabled, or the query failed before the lookup).
	Cache string
	Err   error
}

// Query computes metric name with p. Answers are cached by the versions of
// the definitions involved, the parameters and the store's data freshness.
func (r *Registry) Query(ctx context.Context, name string, p Params) (*Result, error) {
	d, ok := r.Get(name)
	if !ok {
		return nil, &ParamError{Param: "metric", Reason: fmt.Sprintf("unknown metric %q", name)}
	}
	st := QueryStats{Metric: d.Name}
	start := time.Now()
	res, err := r.query(ctx, d, p, &st.Cache)
	if warehouse.MemoryLimit(err) {
		err = &MemoryError{Metric: d.Name, Err: err}
	}
	if r.opts.OnQuery != nil {
		st.Duration, st.Err = time.Since(start), err
		r.opts.OnQuery(st)
	}
	return res, err
}

// MemoryError is a metric query stopped by the store's memory limit for one query.
type MemoryError struct {
	Metric string
	Err    error
}

func (e *MemoryError) Error() string {
	return fmt.Sprintf("%s needs more memory than one query may use (engine.max_query_memory, or max_memory_usage on a ClickHouse server): narrow the range or raise the limit (%v)", e.Metric, e.Err)
}

func (e *MemoryError) Unwrap() error { return e.Err }

// query is Query of a defined metric; it sets *cache to CacheHit or CacheMiss when it
// consults the result cache.
func (r *Registry) query(ctx context.Context, d *Definition, p Params, cache *string) (*Result, error) {
	if r.opts.Store == nil {
		return nil, fmt.Errorf("metrics: no store")
	}
	if p.Margin == 0 {
		p.Margin = r.opts.Defaults.Margin
	}
	if p.Currency == "" {
		p.Currency = r.opts.Defaults.Currency
	}
	p.sameCurrency = false // the planner's, for inputs
	if p.TZ == nil || p.Grain == "" || !p.From.Before(p.To) {
		return nil, &ParamError{Param: "params", Reason: "from, to, grain and tz are required and from must be before to (use ParseParams)"}
	}
	for k, val := range p.Args {
		i := slices.IndexFunc(d.Params, func(q Param) bool { return q.Name == k })
		if i < 0 {
			return nil, perr("arg", "%s has no parameter %q", d.Name, k)
		}
		if err := d.Params[i].Check(val); err != nil {
			return nil, perr(k, "%v", err)
		}
	}
	if p.FiscalYearStart == 0 {
		p.FiscalYearStart = time.January
	}
	sources := r.Sources(d.Name)
	fresh, freshAt, err := r.freshFor(ctx, d, p)
	if err != nil {
		return nil, err
	}
	if rawRows(ctx) {
		fresh += ",raw"
	}
	key := r.versions(d) + "|" + p.Key() + "|" + fresh
	if r.cache.ttl >= 0 {
		*cache = CacheMiss
	}
	if res, ok := r.cache.get(key); ok {
		*cache = CacheHit
		c := *res
		c.Cached = true
		return &c, nil
	}
	if r.opts.Finish <= 0 || r.cache.ttl < 0 || traced(ctx) {
		return r.answer(ctx, d, p, key, sources, freshAt)
	}
	ch := r.flight.DoChan(key, func() (any, error) {
		// Detached from the caller that happened to start it, bounded by Finish.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.Finish)
		defer cancel()
		if r.opts.Lifetime != nil {
			defer context.AfterFunc(r.opts.Lifetime, cancel)()
		}
		return r.answer(bctx, d, p, key, sources, freshAt)
	})
	select {
	case a := <-ch:
		if a.Err != nil {
			return nil, a.Err
		}
		c := *a.Val.(*Result) // shared by the callers that joined: each gets its own copy, as from the cache
		return &c, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// answer computes d with p and caches it under key.
func (r *Registry) answer(ctx context.Context, d *Definition, p Params, key string, sources []string, freshAt time.Time) (*Result, error) {
	r.computed.Add(1)
	// The period and its comparison are computed concurrently.
	var (
		err        error
		cur, cmp   *raw
		cmpErr     error
		wg         sync.WaitGroup
		cmpBuckets []time.Time
	)
	if d.Kind == Custom && p.Compare != "" {
		// A table (not a series) has nothing to compare with.
		if sh, err := r.checkStore(ctx, d, nil); err != nil {
			return nil, err
		} else if !sh.series {
			p.Compare = ""
		}
	}
	if p.Compare != "" {
		q := comparison(p)
		cmpBuckets = buckets(q)
		wg.Go(func() { cmp, cmpErr = r.compute(ctx, d, q) })
	}
	cur, err = r.compute(ctx, d, p)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	res := &Result{Metric: d.Name, Title: d.Title, Unit: d.Unit, Format: d.Format, Polarity: d.Polarity, Owner: d.Owner,
		Version: d.Version, From: p.From, To: p.To, Grain: p.Grain, TZ: p.TZ.String(), Compare: p.Compare, By: p.By,
		Filters: p.Filters, Args: p.Args, Target: d.Target.Constant, Sources: sources, Freshness: freshAt}
	if cur.table != nil {
		res.Table = cur.table
		r.cache.put(key, res)
		return res, nil
	}
	if cmpErr != nil {
		return nil, fmt.Errorf("comparison period: %w", cmpErr)
	}
	if d.Unit == "currency" {
		res.Currency = answerCurrency(p)
	}
	res.Warnings = warnings(cur.left, PeriodCurrent, p.currency())
	if cmp != nil {
		res.Warnings = append(res.Warnings, warnings(cmp.left, PeriodComparison, p.currency())...)
	}
	bs := buckets(p)
	for _, dim := range cur.dims() {
		s := Series{Dim: dim, Total: cur.total(dim)}
		for i, b := range bs {
			day := b.Format(time.DateOnly)
			pt := Point{Bucket: day, Value: cur.get(dim, day), Target: d.Target.At(b)}
			if cmp != nil && i < len(cmpBuckets) {
				cd := cmpBuckets[i].Format(time.DateOnly)
				pt.CompareBucket, pt.Compare = cd, cmp.get(dim, cd)
			}
			s.Points = append(s.Points, pt)
		}
		if cmp != nil {
			s.CompareTotal = cmp.total(dim)
		}
		res.Series = append(res.Series, s)
	}
	r.cache.put(key, res)
	return res, nil
}

// versions is the versions of d and of every metric it reads.
func (r *Registry) versions(d *Definition) string {
	v := d.Version
	for _, in := range d.Inputs() {
		if dep, ok := r.Get(in); ok {
			v += "," + r.versions(dep)
		}
	}
	return v
}

// Sources are the tables metric name reads, its inputs' for a derived one.
func (r *Registry) Sources(name string) []string {
	d, ok := r.Get(name)
	if !ok {
		return nil
	}
	if d.Kind != Derived && d.Kind != Score {
		return d.Tables()
	}
	set := map[string]bool{}
	for _, in := range d.Inputs() {
		for _, t := range r.Sources(in) {
			set[t] = true
		}
	}
	return sortedKeys(set)
}

// freshness identifies the data of tables: it changes whenever rows are
// inserted, replaced, dropped or mutated in any of them, not when the engine
// merges parts (warehouse.Store.DataMark). It also returns the time of the
// last change of their parts.
func (r *Registry) freshness(ctx context.Context, tables []string) (string, time.Time, error) {
	mark, at, err := r.opts.Store.DataMark(ctx, tables)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("metrics: data freshness: %w", err)
	}
	return mark, at.UTC(), nil
}

type cacheEntry struct {
	res *Result
	at  time.Time
}

// cache keeps answers for at most ttl (freshness is part of the key, so
// the ttl only bounds memory and clock-driven drift such as now()).
type cache struct {
	mu  sync.Mutex
	ttl time.Duration
	m   map[string]cacheEntry
}

func newCache(ttl time.Duration) *cache { return &cache{ttl: ttl, m: map[string]cacheEntry{}} }

func (c *cache) get(k string) (*Result, bool) {
	if c.ttl < 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || time.Since(e.at) > c.ttl {
		return nil, false
	}
	return e.res, true
}

func (c *cache) put(k string, res *Result) {
	if c.ttl < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) > 2000 {
		for k, e := range c.m {
			if time.Since(e.at) > c.ttl || len(c.m) > 1500 {
				delete(c.m, k)
			}
		}
	}
	c.m[k] = cacheEntry{res: res, at: time.Now()}
}

func newScan(t reflect.Type) any { return reflect.New(t).Interface() }

// plain turns a scanned value into float64, int64, string, bool or nil.
func plain(x any) any {
	v := reflect.ValueOf(x)
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	switch y := v.Interface().(type) {
	case time.Time:
		if y.Hour() == 0 && y.Minute() == 0 && y.Second() == 0 && y.Nanosecond() == 0 {
			return y.Format(time.DateOnly)
		}
		return y.UTC().Format(time.RFC3339Nano)
	case decimal.Decimal:
		f, _ := y.Float64()
		return f
	case float64:
		if math.IsNaN(y) || math.IsInf(y, 0) {
			return nil
		}
		return y
	case float32:
		return plain(float64(y))
	case string:
		return y
	case bool:
		return y
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return int64(v.Uint())
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = plain(v.Index(i).Interface())
		}
		return out
	}
	return strings.TrimSpace(fmt.Sprint(v.Interface()))
}
