package server

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // report time zones must resolve on machines without a zoneinfo database
)

// URL parameters of the dashboard pages, the tile partials and the JSON API. They are the whole
// state of a view, so a copied link opens the same view:
//
//	range    this_month | last_30_days | quarter_to_date | year_to_date | last_year |
//	         fiscal_year_to_date | last_fiscal_year | custom; default last_30_days.
//	         Presets ending "to date" and this_month/last_30_days include today; they are relative
//	         to the day the link is opened.
//	from,to  YYYY-MM-DD, both inclusive days in the report time zone. Only read for
//	         range=custom, or when range is absent (which then means custom).
//	grain    day | week | month | quarter | year; default by the range's length (≤ 62 days: day,
//	         ≤ 366 days: week, otherwise month).
//	compare  previous | year | none; default previous (the period of the same length before).
//	tz       IANA time zone of the report; default Config.TZ.
//	f.<dim>  keep only rows whose dimension <dim> equals the value (repeatable across dims; at
//	         most maxFilters with a value).
//	drop     a dimension whose f.<dim> to remove: the filter form's remove buttons send it,
//	         and the page answers with a redirect to its URL without both (Server.filters).
//	by       one dimension to break down by (KPI detail and API).
//	view     owner | 4r: how the overview groups its tiles; default owner.
const (
	rangeThisMonth    = "this_month"
	rangeLast30       = "last_30_days"
	rangeQTD          = "quarter_to_date"
	rangeYTD          = "year_to_date"
	rangeLastYear     = "last_year"
	rangeFYTD         = "fiscal_year_to_date"
	rangeLastFY       = "last_fiscal_year"
	rangeCustom       = "custom"
	defaultRange      = rangeLast30
	dateLayout        = "2006-01-02"
	maxRangeYears     = 20
	maxFilterValue    = 200
	filterParamPrefix = "f."
	// maxFilters bounds the dimension filters of a view: a metric has a handful of dimensions,
	// and every filter is repeated in each link of a page (tiles, downloads), so a page grows
	// with their number.
	maxFilters = 20
	dropParam  = "drop"
)

var (
	rangeNames   = []string{rangeThisMonth, rangeLast30, rangeQTD, rangeYTD, rangeLastYear, rangeFYTD, rangeLastFY, rangeCustom}
	rangeLabels  = map[string]string{rangeThisMonth: "This month", rangeLast30: "Last 30 days", rangeQTD: "Quarter to date", rangeYTD: "Year to date", rangeLastYear: "Last year", rangeFYTD: "Fiscal year to date", rangeLastFY: "Last fiscal year", rangeCustom: "Custom"}
	grainNames   = []string{"day", "week", "month", "quarter", "year"}
	compareNames = []string{"previous", "year", "none"}
	viewNames    = []string{"owner", "4r"}
	identRe      = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,63}$`)
)

// paramError is a bad URL parameter: a 400 that names the parameter and what it allows.
type paramError struct {
	Param string
	Msg   string
}

func (e *paramError) Error() string { return e.Msg }

func badParam(param, value, allowed string) *paramError {
	return &paramError{Param: param, Msg: fmt.Sprintf("Invalid value %q for parameter %q: %s.", value, param, allowed)}
}

func oneOf(names []string) string { return "allowed are " + strings.Join(names, ", ") }

// Filters is the parsed view state of a request.
type Filters struct {
	Range    string    // one of rangeNames
	From     time.Time // inclusive, midnight in Loc
	To       time.Time // exclusive, midnight in Loc
	Grain    string
	grainSet bool   // grain was given in the URL (not derived from the range)
	Compare  string // previous | year | none
	TZ       string
	Loc      *time.Location
	Dims     map[string]string // f.<dim> → value
	By       string
	View     string
}

// filterDefaults are the server settings filters depend on.
type filterDefaults struct {
	TZ      string
	FYStart time.Month
}

// parseFilters reads the view state from q, with now as today's reference. Every bad value is
// a *paramError.
func parseFilters(q url.Values, now time.Time, d filterDefaults) (Filters, error) {
	f := Filters{Dims: map[string]string{}}

	f.TZ = d.TZ
	if f.TZ == "" {
		f.TZ = "UTC"
	}
	if q.Has("tz") {
		f.TZ = q.Get("tz")
	}
	loc, err := loadZone(f.TZ)
	if err != nil {
		return f, badParam("tz", f.TZ, "use an IANA time zone name such as UTC or Europe/Berlin")
	}
	f.Loc = loc

	f.Range = q.Get("range")
	if f.Range == "" {
		f.Range = defaultRange
		if q.Get("from") != "" || q.Get("to") != "" {
			f.Range = rangeCustom
		}
	}
	if !slices.Contains(rangeNames, f.Range) {
		return f, badParam("range", f.Range, oneOf(rangeNames))
	}
	if f.Range == rangeCustom {
		from, err := parseDay(q, "from", loc)
		if err != nil {
			return f, err
		}
		to, err := parseDay(q, "to", loc)
		if err != nil {
			return f, err
		}
		if to.Before(from) {
			return f, &paramError{Param: "to", Msg: fmt.Sprintf("Parameter \"to\" (%s) is before \"from\" (%s): the end date must be on or after the start date.", q.Get("to"), q.Get("from"))}
		}
		if to.After(from.AddDate(maxRangeYears, 0, 0)) {
			return f, &paramError{Param: "to", Msg: fmt.Sprintf("Parameter \"to\" (%s): the range from %s is too long: at most %d years.", q.Get("to"), q.Get("from"), maxRangeYears)}
		}
		f.From, f.To = from, to.AddDate(0, 0, 1)
	} else {
		f.From, f.To = presetRange(f.Range, now.In(loc), d.FYStart)
	}

	if g := q.Get("grain"); g != "" {
		if !slices.Contains(grainNames, g) {
			return f, badParam("grain", g, oneOf(grainNames))
		}
		f.Grain, f.grainSet = g, true
	} else {
		f.Grain = autoGrain(f.From, f.To)
	}

	f.Compare = "previous"
	if c := q.Get("compare"); c != "" {
		if !slices.Contains(compareNames, c) {
			return f, badParam("compare", c, oneOf(compareNames))
		}
		f.Compare = c
	}

	f.View = "owner"
	if v := q.Get("view"); v != "" {
		if !slices.Contains(viewNames, v) {
			return f, badParam("view", v, oneOf(viewNames))
		}
		f.View = v
	}

	if b := q.Get("by"); b != "" {
		if !identRe.MatchString(b) {
			return f, badParam("by", b, "a dimension name (lower case letters, digits and _)")
		}
		f.By = b
	}

	var dims []string
	for k, vs := range q {
		if strings.HasPrefix(k, filterParamPrefix) && vs[len(vs)-1] != "" {
			dims = append(dims, k)
		}
	}
	if len(dims) > maxFilters {
		sort.Strings(dims)
		return f, &paramError{Param: dims[maxFilters], Msg: fmt.Sprintf(
			"Too many filters: the link has %d dimension filters (f.<dimension>=value), at most %d are allowed; %q and those after it (by name) are too many. Remove some.",
			len(dims), maxFilters, dims[maxFilters])}
	}
	for k, vs := range q {
		dim, ok := strings.CutPrefix(k, filterParamPrefix)
		if !ok {
			continue
		}
		if !identRe.MatchString(dim) {
			return f, &paramError{Param: k, Msg: fmt.Sprintf("Invalid filter parameter %q: the dimension after \"f.\" must be lower case letters, digits and _.", k)}
		}
		v := vs[len(vs)-1]
		if v == "" {
			continue // an empty filter field in a form means "all"
		}
		if len(v) > maxFilterValue || !validText(v) {
			return f, badParam(k, v, fmt.Sprintf("a value of at most %d printable characters", maxFilterValue))
		}
		f.Dims[dim] = v
	}
	return f, nil
}

func validText(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return false
		}
	}
	return true
}

func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("time zone %q is not allowed", name)
	}
	return time.LoadLocation(name)
}

func parseDay(q url.Values, param string, loc *time.Location) (time.Time, error) {
	s := q.Get(param)
	if s == "" {
		return time.Time{}, &paramError{Param: param, Msg: fmt.Sprintf("Parameter %q is required for a custom range: a date as YYYY-MM-DD.", param)}
	}
	t, err := time.ParseInLocation(dateLayout, s, loc)
	if err != nil {
		return time.Time{}, badParam(param, s, "a date as YYYY-MM-DD")
	}
	return t, nil
}

// presetRange is the [from, to) of a preset for today = now's day (now is in the report zone).
func presetRange(name string, now time.Time, fyStart time.Month) (time.Time, time.Time) {
	loc := now.Location()
	y, m, d := now.Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, loc)
	tomorrow := today.AddDate(0, 0, 1)
	if fyStart < time.January || fyStart > time.December {
		fyStart = time.January
	}
	fy := time.Date(y, fyStart, 1, 0, 0, 0, 0, loc)
	if fy.After(today) {
		fy = fy.AddDate(-1, 0, 0)
	}
	switch name {
	case rangeThisMonth:
		return time.Date(y, m, 1, 0, 0, 0, 0, loc), tomorrow
	case rangeQTD:
		return time.Date(y, m-(m-1)%3, 1, 0, 0, 0, 0, loc), tomorrow
	case rangeYTD:
		return time.Date(y, time.January, 1, 0, 0, 0, 0, loc), tomorrow
	case rangeLastYear:
		return time.Date(y-1, time.January, 1, 0, 0, 0, 0, loc), time.Date(y, time.January, 1, 0, 0, 0, 0, loc)
	case rangeFYTD:
		return fy, tomorrow
	case rangeLastFY:
		return fy.AddDate(-1, 0, 0), fy
	default: // last_30_days
		return today.AddDate(0, 0, -29), tomorrow
	}
}

func autoGrain(from, to time.Time) string {
	days := to.Sub(from).Hours() / 24
	switch {
	case days <= 62:
		return "day"
	case days <= 367:
		return "week"
	default:
		return "month"
	}
}

// Query is the MetricQuery for these filters, keeping only the dimension filters on a
// dimension in allowed (a metric's dimensions), with the given breakdown.
func (f Filters) Query(allowed []string, by string) MetricQuery {
	q := MetricQuery{From: f.From, To: f.To, Grain: f.Grain, TZ: f.TZ, By: by, Filters: map[string]string{}}
	if f.Compare != "none" {
		q.Compare = f.Compare
	}
	for k, v := range f.Dims {
		if slices.Contains(allowed, k) {
			q.Filters[k] = v
		}
	}
	return q
}

// NotApplied lists the dimension filters a metric with dims cannot apply, sorted.
func (f Filters) NotApplied(dims []string) []string {
	var out []string
	for k := range f.Dims {
		if !slices.Contains(dims, k) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Values encodes the filters as URL parameters, in a canonical form: a preset range is kept
// as its name (so the link stays relative), a custom range as its inclusive dates; defaults
// that were not given are left out.
func (f Filters) Values() url.Values {
	v := url.Values{}
	v.Set("range", f.Range)
	if f.Range == rangeCustom {
		v.Set("from", f.From.Format(dateLayout))
		v.Set("to", f.To.AddDate(0, 0, -1).Format(dateLayout))
	}
	if f.grainSet {
		v.Set("grain", f.Grain)
	}
	if f.Compare != "previous" {
		v.Set("compare", f.Compare)
	}
	v.Set("tz", f.TZ)
	for k, val := range f.Dims {
		v.Set(filterParamPrefix+k, val)
	}
	if f.By != "" {
		v.Set("by", f.By)
	}
	if f.View != "owner" {
		v.Set("view", f.View)
	}
	return v
}

// URL is path with the filters, after edit (if not nil) changed the parameters.
func (f Filters) URL(path string, edit func(url.Values)) string {
	v := f.Values()
	if edit != nil {
		edit(v)
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// InclusiveTo is the last day of the range.
func (f Filters) InclusiveTo() time.Time { return f.To.AddDate(0, 0, -1) }
