package metrics

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Grain is the size of a bucket.
type Grain string

// Grains.
const (
	Day     Grain = "day"
	Week    Grain = "week"
	Month   Grain = "month"
	Quarter Grain = "quarter"
	Year    Grain = "year"
)

// Grains lists the valid grains.
var Grains = []Grain{Day, Week, Month, Quarter, Year}

// MaxBuckets bounds the number of buckets a query may ask for (about three
// years of days).
const MaxBuckets = 1200

// Filter restricts a query to rows whose dimension equals a value.
type Filter struct {
	Dim   string `json:"dim"`
	Value string `json:"value"`
}

// Params are what a metric is asked for: the instants [From, To), From
// included, To the first instant not included (UTC). Buckets are calendar
// periods in TZ. ParseParams reads the user's from and to, both inclusive
// (to=2025-12-31 is To = 2026-01-01 00:00 in TZ); Values writes them back.
type Params struct {
	From, To        time.Time
	Grain           Grain
	TZ              *time.Location
	WeekStart       time.Weekday // time.Monday or time.Sunday (ParseParams defaults to Monday; the zero value is Sunday)
	FiscalYearStart time.Month   // first month of the fiscal year (default January): quarters and years start there
	Compare         string       // "", "previous" (the same number of buckets just before) or "year" (a year earlier)
	By              string       // a dimension to break down by; "" for none
	Filters         []Filter     // dimension = value, all must hold
	Args            map[string]string
	// Margin is the gross margin (a fraction) assumed for orders whose cost
	// is unknown (kpi-definitions.md pitfall 5); 0 means DefaultMargin.
	// Bound to every query as {default_margin:Float64}.
	Margin float64
	// Currency is the report currency (ISO 4217) amounts are answered in; rows in any other
	// currency are left out and named in Result.Warnings (see currency.go). "" means the
	// registry's Defaults.Currency, else DefaultCurrency.
	Currency string

	// sameCurrency: the metric is an input of a derived one that combines amounts, so its rows
	// are restricted to the report currency whatever its unit (set by the planner).
	sameCurrency bool
}

// DefaultMargin is the gross margin assumed when none is configured.
const DefaultMargin = 0.30

func (p Params) margin() float64 {
	if p.Margin > 0 {
		return p.Margin
	}
	return DefaultMargin
}

// Key is a canonical text of p, for cache keys.
func (p Params) Key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d|%d|%s|%s|%d|%d|%s|%s|%g|%s|%t", p.From.UnixMilli(), p.To.UnixMilli(), p.Grain, p.TZ, p.WeekStart, p.FiscalYearStart, p.Compare, p.By, p.margin(),
		p.currency(), p.sameCurrency)
	fs := slices.Clone(p.Filters)
	sort.Slice(fs, func(i, j int) bool { return fs[i].Dim+"\x00"+fs[i].Value < fs[j].Dim+"\x00"+fs[j].Value })
	for _, f := range fs {
		fmt.Fprintf(&b, "|f:%q=%q", f.Dim, f.Value)
	}
	keys := make([]string, 0, len(p.Args))
	for k := range p.Args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "|a:%q=%q", k, p.Args[k])
	}
	return b.String()
}

// Defaults are the settings used when a request does not say.
type Defaults struct {
	TZ              *time.Location // default UTC
	SundayWeeks     bool           // weeks start on Sunday; default Monday
	FiscalYearStart time.Month     // default January
	Grain           Grain          // default month
	Margin          float64        // gross margin assumed where cost is unknown; default DefaultMargin
	Currency        string         // report currency amounts are answered in (ISO 4217); default DefaultCurrency
}

// ParamError is a malformed or out-of-range query parameter.
type ParamError struct {
	Param  string
	Reason string
}

func (e *ParamError) Error() string { return e.Param + ": " + e.Reason }

func perr(param, format string, args ...any) error {
	return &ParamError{Param: param, Reason: fmt.Sprintf(format, args...)}
}

// ParseParams reads the parameters of a request for metric d from URL
// values (the CLI flags use the same names): from and to, both inclusive,
// as the dashboard's from and to (a date YYYY-MM-DD is the whole day in tz:
// from=2025-01-01&to=2025-12-31 is the year 2025; an RFC 3339 instant is
// itself, so to=2026-01-01T00:00:00Z includes that millisecond), grain, tz,
// week_start (monday|sunday), fiscal_year_start (1-12), compare
// (previous|year), by, filter (repeatable DIM=VALUE) and arg (repeatable
// NAME=VALUE, a custom metric's param; also accepted as the bare param
// name). A snapshot metric (one whose SQL does not read {from}, see
// Definition.Snapshot: rfm_segments, consented_audience) needs no from: it
// is as of the end of to. Each error names the parameter.
func ParseParams(d *Definition, v url.Values, def Defaults) (Params, error) {
	p := Params{Grain: def.Grain, TZ: def.TZ, WeekStart: time.Monday, FiscalYearStart: def.FiscalYearStart, Args: map[string]string{}}
	if def.SundayWeeks {
		p.WeekStart = time.Sunday
	}
	if p.TZ == nil {
		p.TZ = time.UTC
	}
	if p.Grain == "" {
		p.Grain = Month
	}
	if p.FiscalYearStart == 0 {
		p.FiscalYearStart = time.January
	}
	known := []string{"from", "to", "grain", "tz", "week_start", "fiscal_year_start", "compare", "by", "filter", "arg", "format"}
	for k := range v {
		if !slices.Contains(known, k) && !slices.ContainsFunc(d.Params, func(q Param) bool { return q.Name == k }) {
			return p, perr(k, "unknown parameter")
		}
	}
	if s := v.Get("tz"); s != "" {
		loc, err := time.LoadLocation(s)
		if err != nil {
			return p, perr("tz", "%q is not an IANA time zone", s)
		}
		p.TZ = loc
	}
	if s := v.Get("grain"); s != "" {
		if !slices.Contains(Grains, Grain(s)) {
			return p, perr("grain", "%q is not one of day, week, month, quarter, year", s)
		}
		p.Grain = Grain(s)
	}
	switch s := strings.ToLower(v.Get("week_start")); s {
	case "":
	case "monday":
		p.WeekStart = time.Monday
	case "sunday":
		p.WeekStart = time.Sunday
	default:
		return p, perr("week_start", "%q is not monday or sunday", s)
	}
	if s := v.Get("fiscal_year_start"); s != "" {
		m, err := strconv.Atoi(s)
		if err != nil || m < 1 || m > 12 {
			return p, perr("fiscal_year_start", "%q is not a month number 1-12", s)
		}
		p.FiscalYearStart = time.Month(m)
	}
	var err error
	if p.To, err = parseEnd(v.Get("to"), p.TZ); err != nil {
		return p, perr("to", "%v", err)
	}
	if v.Get("from") == "" && d.Snapshot() {
		// As of the end of to; a day before it keeps the range valid and its buckets few.
		p.From = p.To.In(p.TZ).AddDate(0, 0, -1).UTC()
	} else if p.From, err = parseInstant(v.Get("from"), p.TZ); err != nil {
		if v.Get("from") == "" {
			err = fmt.Errorf("%w: %s is computed over from … to, both included (only a snapshot metric, whose SQL does not read {from}, goes without)", err, d.Name)
		}
		return p, perr("from", "%v", err)
	}
	if !p.From.Before(p.To) {
		return p, perr("from", "%s is after to %s (both are included: from=to is one day)", v.Get("from"), v.Get("to"))
	}
	if n := len(buckets(p)); n > MaxBuckets {
		return p, perr("to", "range too large: more than %d %s buckets (use a coarser grain or a shorter range)", MaxBuckets, p.Grain)
	}
	switch s := v.Get("compare"); s {
	case "", "none":
	case "previous", "year":
		p.Compare = s
	default:
		return p, perr("compare", "%q is not previous or year", s)
	}
	if s := v.Get("by"); s != "" {
		if _, ok := d.Dimension(s); !ok {
			return p, perr("by", "%s has no dimension %q (%s)", d.Name, s, dimNames(d))
		}
		p.By = s
	}
	for _, f := range v["filter"] {
		k, val, ok := strings.Cut(f, "=")
		if !ok {
			return p, perr("filter", "%q is not DIM=VALUE", f)
		}
		if _, ok := d.Dimension(k); !ok {
			return p, perr("filter", "%s has no dimension %q (%s)", d.Name, k, dimNames(d))
		}
		p.Filters = append(p.Filters, Filter{Dim: k, Value: val})
	}
	args := map[string]string{}
	for _, a := range v["arg"] {
		k, val, ok := strings.Cut(a, "=")
		if !ok {
			return p, perr("arg", "%q is not NAME=VALUE", a)
		}
		args[k] = val
	}
	for _, q := range d.Params {
		if s, ok := v[q.Name]; ok && len(s) > 0 {
			args[q.Name] = s[0]
		}
	}
	for k, val := range args {
		i := slices.IndexFunc(d.Params, func(q Param) bool { return q.Name == k })
		if i < 0 {
			return p, perr("arg", "%s has no parameter %q", d.Name, k)
		}
		if err := d.Params[i].Check(val); err != nil {
			return p, perr(k, "%v", err)
		}
		p.Args[k] = val
	}
	return p, nil
}

func dimNames(d *Definition) string {
	if len(d.Dimensions) == 0 {
		return "it has none"
	}
	var n []string
	for _, x := range d.Dimensions {
		n = append(n, x.Name)
	}
	return "one of " + strings.Join(n, ", ")
}

// parseInstant reads from: a date's first instant (midnight in loc) or an RFC 3339 instant.
func parseInstant(s string, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("required (YYYY-MM-DD or RFC 3339)")
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date YYYY-MM-DD or an RFC 3339 time", s)
}

// endStep is the store's time precision (DateTime64(3)): an inclusive instant ends one step
// after it.
const endStep = time.Millisecond

// parseEnd reads to, inclusive, as the end of the range (its first instant not included): a
// date is the next day's midnight in loc (the whole day counts, 23 or 25 hours on a change of
// the clocks), an RFC 3339 instant one millisecond after it.
func parseEnd(s string, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("required (YYYY-MM-DD, the last day included, or RFC 3339)")
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.Truncate(endStep).Add(endStep).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date YYYY-MM-DD or an RFC 3339 time", s)
}

// RangeValues are from and to as ParseParams reads them back to the instants [from, end):
// the first and the last day (YYYY-MM-DD, both included) when both are midnights in loc,
// else RFC 3339 instants in UTC, the last one included (end less a millisecond).
func RangeValues(from, end time.Time, loc *time.Location) (string, string) {
	if loc == nil {
		loc = time.UTC
	}
	if midnight(from, loc) && midnight(end, loc) {
		e := end.In(loc)
		return from.In(loc).Format(time.DateOnly), time.Date(e.Year(), e.Month(), e.Day()-1, 0, 0, 0, 0, loc).Format(time.DateOnly)
	}
	return from.UTC().Format(time.RFC3339Nano), end.Add(-endStep).UTC().Format(time.RFC3339Nano)
}

func midnight(t time.Time, loc *time.Location) bool {
	l := t.In(loc)
	return l.Hour() == 0 && l.Minute() == 0 && l.Second() == 0 && l.Nanosecond() == 0
}

// Values writes p as the URL values ParseParams reads back to the same Params: from and to
// by RangeValues, and every other parameter. Margin is not a query parameter (it is the
// registry's setting).
func (p Params) Values() url.Values {
	v := url.Values{}
	tz := p.TZ
	if tz == nil {
		tz = time.UTC
	}
	from, to := RangeValues(p.From, p.To, tz)
	v.Set("from", from)
	v.Set("to", to)
	v.Set("grain", string(p.Grain))
	v.Set("tz", tz.String())
	v.Set("week_start", "monday")
	if p.WeekStart == time.Sunday {
		v.Set("week_start", "sunday")
	}
	fy := p.FiscalYearStart
	if fy == 0 {
		fy = time.January
	}
	v.Set("fiscal_year_start", strconv.Itoa(int(fy)))
	if p.Compare != "" {
		v.Set("compare", p.Compare)
	}
	if p.By != "" {
		v.Set("by", p.By)
	}
	for _, f := range p.Filters {
		v.Add("filter", f.Dim+"="+f.Value)
	}
	for _, k := range slices.Sorted(maps.Keys(p.Args)) {
		v.Add("arg", k+"="+p.Args[k])
	}
	return v
}

// Snapshot tells whether d is a snapshot: a custom metric whose SQL never reads {from}, so its
// answer is as of the end of the range (rfm_segments, rfm_best_customers,
// consented_audience). ParseParams needs no from for it.
func (d *Definition) Snapshot() bool {
	if d.Kind != Custom {
		return false
	}
	for _, m := range paramRefRe.FindAllStringSubmatch(d.SQL, -1) {
		if m[1] == "from" {
			return false
		}
	}
	return true
}

// bucketStart is the start (a calendar day in p.TZ, as a UTC midnight
// date) of the bucket holding the instant t.
func bucketStart(p Params, t time.Time) time.Time {
	lt := t.In(p.TZ)
	d := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, time.UTC)
	shift := int(p.FiscalYearStart) - 1
	switch p.Grain {
	case Week:
		back := (int(d.Weekday()) - int(p.WeekStart) + 7) % 7
		return d.AddDate(0, 0, -back)
	case Month:
		return time.Date(d.Year(), d.Month(), 1, 0, 0, 0, 0, time.UTC)
	case Quarter:
		s := time.Date(d.Year(), d.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -shift, 0)
		s = time.Date(s.Year(), s.Month()-(s.Month()-1)%3, 1, 0, 0, 0, 0, time.UTC)
		return s.AddDate(0, shift, 0)
	case Year:
		s := time.Date(d.Year(), d.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -shift, 0)
		return time.Date(s.Year(), 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, shift, 0)
	}
	return d
}

func nextBucket(g Grain, d time.Time, n int) time.Time {
	switch g {
	case Week:
		return d.AddDate(0, 0, 7*n)
	case Month:
		return d.AddDate(0, n, 0)
	case Quarter:
		return d.AddDate(0, 3*n, 0)
	case Year:
		return d.AddDate(n, 0, 0)
	}
	return d.AddDate(0, 0, n)
}

// buckets lists the bucket starts overlapping [From, To).
func buckets(p Params) []time.Time {
	var out []time.Time
	lt := p.To.In(p.TZ)
	endDay := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, time.UTC)
	if lt.Hour() != 0 || lt.Minute() != 0 || lt.Second() != 0 || lt.Nanosecond() != 0 {
		endDay = endDay.AddDate(0, 0, 1)
	}
	for b := bucketStart(p, p.From); b.Before(endDay); b = nextBucket(p.Grain, b, 1) {
		out = append(out, b)
		if len(out) > MaxBuckets+1 {
			break
		}
	}
	return out
}

// comparison returns the parameters of the comparison period: the same
// number of buckets just before (previous) or the same range a year
// earlier (year).
func comparison(p Params) Params {
	q := p
	q.Compare = ""
	switch p.Compare {
	case "previous":
		n := len(buckets(p))
		lf, lt := p.From.In(p.TZ), p.To.In(p.TZ)
		q.From = shiftLocal(lf, p.Grain, -n)
		q.To = shiftLocal(lt, p.Grain, -n)
	case "year":
		q.From = p.From.In(p.TZ).AddDate(-1, 0, 0).UTC()
		q.To = p.To.In(p.TZ).AddDate(-1, 0, 0).UTC()
	}
	return q
}

func shiftLocal(t time.Time, g Grain, n int) time.Time {
	switch g {
	case Week:
		return t.AddDate(0, 0, 7*n).UTC()
	case Month:
		return t.AddDate(0, n, 0).UTC()
	case Quarter:
		return t.AddDate(0, 3*n, 0).UTC()
	case Year:
		return t.AddDate(n, 0, 0).UTC()
	}
	return t.AddDate(0, 0, n).UTC()
}

// parseParam parses a param header: "name Type = default", then optionally "| allowed, …"
// (the values it may take) or, for a number or a date, "| min..max" (its inclusive bounds;
// "1.." or "..365" bound one side).
func parseParam(s string) (Param, error) {
	var p Param
	decl, allowed, hasAllowed := strings.Cut(s, "|")
	decl, def, hasDef := strings.Cut(decl, "=")
	f := strings.Fields(decl)
	if len(f) != 2 || !identRe.MatchString(f[0]) || !typeRe.MatchString(f[1]) {
		return p, fmt.Errorf("%q: want \"name Type = default | allowed, …\" or \"name Type = default | min..max\" with Type one of String, Int64, Int32, UInt8, Float64, Date", s)
	}
	p.Name, p.Type = f[0], f[1]
	if !hasDef {
		return p, fmt.Errorf("%s: a default value is required", p.Name)
	}
	p.Default = strings.TrimSpace(def)
	// A String's "a..b" is a value of its list; a number's or a date's, its bounds.
	if lo, hi, isRange := strings.Cut(strings.TrimSpace(allowed), ".."); hasAllowed && isRange && p.Type != "String" {
		p.Min, p.Max = strings.TrimSpace(lo), strings.TrimSpace(hi)
		for _, b := range []string{p.Min, p.Max} {
			if _, err := p.parse(b); b != "" && err != nil {
				return p, fmt.Errorf("%s: bound %q is not a %s", p.Name, b, p.Type)
			}
		}
		if p.Min == "" && p.Max == "" {
			return p, fmt.Errorf("%s: the range %q has no bound", p.Name, strings.TrimSpace(allowed))
		}
		if p.Min != "" && p.Max != "" && p.compare(p.Min, p.Max) > 0 {
			return p, fmt.Errorf("%s: the range %s..%s is empty (min above max)", p.Name, p.Min, p.Max)
		}
	} else {
		p.Allowed = splitList(allowed)
	}
	if err := p.Check(p.Default); err != nil {
		return p, fmt.Errorf("default: %w", err)
	}
	return p, nil
}

// Check validates v as a value of the param: its type, one of its allowed values, within its
// bounds. It is the one check every caller's value goes through (ParseParams for the CLI, the
// API and report schedules; Registry.Query for the pages and exports, which build Params
// themselves); the error says what the param takes.
func (p Param) Check(v string) error {
	if len(p.Allowed) > 0 && !slices.Contains(p.Allowed, v) {
		return fmt.Errorf("%q is not one of %s", v, strings.Join(p.Allowed, ", "))
	}
	if _, err := p.parse(v); err != nil {
		return fmt.Errorf("%q is not a %s", v, p.Type)
	}
	below := p.Min != "" && p.compare(v, p.Min) < 0
	above := p.Max != "" && p.compare(v, p.Max) > 0
	if below || above {
		return fmt.Errorf("%s is out of range: %s takes %s", v, p.Name, p.Range())
	}
	return nil
}

// Range says what the param's bounds allow: "1 to 365", "at least 1", "at most 365"; "" when
// it has none.
func (p Param) Range() string {
	switch {
	case p.Min != "" && p.Max != "":
		return p.Min + " to " + p.Max
	case p.Min != "":
		return "at least " + p.Min
	case p.Max != "":
		return "at most " + p.Max
	}
	return ""
}

// parse reads v as a value of the param's type: a number as float64 or int64/uint64, a date
// as a time; a String as itself.
func (p Param) parse(v string) (any, error) {
	switch p.Type {
	case "Int64":
		return strconv.ParseInt(v, 10, 64)
	case "Int32":
		return strconv.ParseInt(v, 10, 32)
	case "UInt8":
		return strconv.ParseUint(v, 10, 8)
	case "Float64":
		f, err := strconv.ParseFloat(v, 64)
		if err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
			err = fmt.Errorf("not finite")
		}
		return f, err
	case "Date":
		return time.Parse(time.DateOnly, v)
	}
	return v, nil
}

// compare orders two valid values of the param's type (-1, 0, 1).
func (p Param) compare(a, b string) int {
	x, _ := p.parse(a)
	y, _ := p.parse(b)
	switch x := x.(type) {
	case int64:
		return cmp.Compare(x, y.(int64))
	case uint64:
		return cmp.Compare(x, y.(uint64))
	case float64:
		return cmp.Compare(x, y.(float64))
	case time.Time:
		return x.Compare(y.(time.Time))
	}
	return strings.Compare(a, b)
}
