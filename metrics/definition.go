// Package metrics turns metric definitions (SQL files with a structured
// header) into governed KPIs: loading and validation with file and line
// precise errors, hot reload, planning a query over a date range at a grain
// in the report time zone, comparison, filters and breakdowns, derived
// (ratio) metrics over other metrics, custom SQL under a parameter contract,
// and a cache keyed by definition version, parameters and data freshness.
//
// # Definition format
//
// A definition is a .sql file. It starts with header lines of the form
// "-- key: value"; the first line that is not such a comment ends the header
// and the rest of the file is the body (SQL). Keys:
//
//	name         identifier, unique across all folders (required)
//	title        display name (required)
//	description  what it is, citing the kpi-definitions.md line it follows (required)
//	owner        CFO, CMO, COO, CCO, CEO, … (required)
//	unit         currency | percent | count | ratio | days | hours | months | score (required)
//	format       display format, e.g. "#,##0.00" or "0.0%" (optional)
//	polarity     higher_is_better | lower_is_better | neutral (required)
//	target       a constant ("12"), or a series "2026-01-01=100, 2026-02-01=120" keyed by bucket start (optional)
//	kind         simple | derived | ratio | score | custom (required)
//	time         simple: the model's time column (DateTime64 or Date) (required for simple)
//	measure      simple: the aggregate computed per bucket from the model's rows, e.g. sum(revenue) (required for simple)
//	dimensions   comma separated "name" or "name=column" of the model (simple) or names shared by all inputs (derived)
//	formula      derived/ratio: arithmetic over other metric names, numbers, + - * / and parentheses
//	component    score: "metric weight=W min=A max=B" (repeatable): the metric's value mapped from [A, B] to [0, 100]
//	param        custom: "name Type = default | allowed1, allowed2" or "name Type = default | min..max" (a number's or a date's bounds, inclusive; either may be left out) an extra bound parameter (repeatable)
//	rollup       simple: auto (the default: kept rolled up as facts land when its model allows, see rollup_spec.go), none (always from raw rows), or by COLUMN (the model has one row per COLUMN, e.g. customer_id, and a fact changes only the row of its own COLUMN value: its rows are kept, see rollup_keyed.go)
//	roles        comma separated roles that see it: executive, finance, analyst, admin (optional; absent = everyone; admin always sees it)
//
// Simple: the body is a SELECT (the model) whose rows carry the time
// column, the dimension columns and what the measure reads; the planner
// wraps it, so a bucket is always computed from raw rows: use sum, count,
// uniqExact and ratios of sums, never sums of distinct counts.
//
// Derived and ratio: no body; the formula is evaluated per bucket (and for
// the total) on the values of its inputs, each computed from raw rows for
// that bucket, so aov = revenue_gross / orders is a ratio of sums.
//
// Score: no body; per bucket (and for the total) the weighted mean of its
// components' values, each mapped linearly onto 0–100 between its min and
// max and clamped: deterministic, bounded and monotone in every component.
//
// Custom: the body is a whole query under the parameter contract
// {from:DateTime64(3,'UTC')} (the range's first instant, included),
// {to:DateTime64(3,'UTC')} (the first instant after it, not included: a
// user's to=2025-12-31 binds 2026-01-01 00:00 in tz, so `< {to}` keeps all
// of 31 December), {tz:String} (IANA report zone), {grain:String} (day, week,
// month, quarter, year), {week_mode:UInt8} (toStartOfWeek mode: 0 Sunday,
// 1 Monday), {fy_shift:Int32} (fiscal-year start month − 1) and each
// declared param. If it returns columns bucket (Date) and value (number),
// and optionally dim (String), the result is a series like any other metric;
// any other shape is returned as a table. A series query may also return
// whole-range rows, computed from raw rows like the buckets (so a ratio is
// a ratio of sums over the range, never a sum or mean of the buckets'):
// a row whose bucket is NULL is its dim's total (Series.Total), and a row
// whose dim is NULL belongs to the series over all dims (Dim "", the value
// of the metric without a breakdown). GROUP BY GROUPING SETS ((bucket, dim),
// (dim), (bucket), ()) with SETTINGS group_by_use_nulls = 1 returns all of
// them in one scan (see roas.sql). Without such rows Total is empty.
package metrics

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Kind of a metric.
type Kind string

// Kinds.
const (
	Simple  Kind = "simple"
	Derived Kind = "derived" // "ratio" in a file is a synonym
	Custom  Kind = "custom"
	Score   Kind = "score"
)

// Component is one input of a score metric: the metric, its weight, and the
// values mapped to 0 (Min) and 100 (Max) — Min > Max for a lower-is-better
// input. Values outside are clamped.
type Component struct {
	Metric   string
	Weight   float64
	Min, Max float64
	Line     int
}

// Units a definition may declare.
var Units = []string{"currency", "percent", "count", "ratio", "days", "hours", "months", "score"}

// Roles a definition's "roles" header may name (the user roles of package access, which the
// server enforces).
var Roles = []string{"executive", "finance", "analyst", "admin"}

// Polarities a definition may declare.
var Polarities = []string{"higher_is_better", "lower_is_better", "neutral"}

// Dimension is a name the metric may be filtered and broken down by, and the
// model column it reads.
type Dimension struct {
	Name   string
	Column string
	Line   int
}

// Param is an extra bound parameter of a custom metric.
type Param struct {
	Name    string
	Type    string // ClickHouse type of the bound parameter: String, Int64, Int32, UInt8, Float64, Date
	Default string
	Allowed []string // empty: any value of Type
	// Min and Max bound a number or a date, inclusive ("" for no bound): the header's
	// "| 1..365". Every caller's value is checked against them (Param.Check, params.go).
	Min, Max string
	Line     int
}

// Target is a metric's goal: a constant, or a value per bucket start.
type Target struct {
	Constant *float64
	Series   map[string]float64 // bucket start "2006-01-02" → value
}

// At returns the target for a bucket starting on day (nil when none).
func (t Target) At(day time.Time) *float64 {
	if v, ok := t.Series[day.Format(time.DateOnly)]; ok {
		return &v
	}
	return t.Constant
}

// Definition is one parsed metric file.
type Definition struct {
	Name        string
	Title       string
	Description string
	Owner       string
	Unit        string
	Format      string
	Polarity    string
	Target      Target
	Kind        Kind
	Time        string
	Measure     string
	NoRollup    bool   // rollup: none: always answered from raw rows
	RollupKey   string // rollup: by COLUMN: the model has one row per value of COLUMN (see rollup_keyed.go)
	Dimensions  []Dimension
	Formula     string
	Components  []Component
	Params      []Param
	Roles       []string
	SQL         string // the body
	Version     string // first 16 hex digits of the SHA-256 of the file
	File        string // where it came from ("builtin:revenue.sql" or a path)
	Builtin     bool

	lines    map[string]int // header key → line
	bodyLine int
	formula  expr
}

// Line returns the line of header key in the file (0 when absent).
func (d *Definition) Line(key string) int { return d.lines[key] }

// Dimension returns the dimension called name.
func (d *Definition) Dimension(name string) (Dimension, bool) {
	for _, x := range d.Dimensions {
		if x.Name == name {
			return x, true
		}
	}
	return Dimension{}, false
}

// Inputs are the metrics a derived metric's formula reads.
func (d *Definition) Inputs() []string {
	var names []string
	for _, c := range d.Components {
		names = append(names, c.Metric)
	}
	if d.formula != nil {
		d.formula.names(func(n string) {
			if n != PeriodMonths && !slices.Contains(names, n) {
				names = append(names, n)
			}
		})
	}
	sort.Strings(names)
	return names
}

// Error is a definition error: the file, the line (0 for the whole file)
// and the reason.
type Error struct {
	File   string
	Line   int
	Reason string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Reason)
}

var (
	identRe  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	headerRe = regexp.MustCompile(`^--\s*([A-Za-z_]+)\s*:(.*)$`)
	typeRe   = regexp.MustCompile(`^(String|Int64|Float64|Date|UInt8|Int32)$`)
)

var knownKeys = []string{"name", "title", "description", "owner", "unit", "format", "polarity", "target", "kind",
	"time", "measure", "dimensions", "formula", "component", "param", "roles", "rollup"}

// Parse parses the definition in src; file names it in errors.
func Parse(file string, src []byte) (*Definition, error) {
	sum := sha256.Sum256(src)
	d := &Definition{File: file, Version: hex.EncodeToString(sum[:8]), lines: map[string]int{}}
	fail := func(line int, format string, args ...any) error {
		return &Error{File: file, Line: line, Reason: fmt.Sprintf(format, args...)}
	}
	lines := strings.Split(strings.ReplaceAll(string(src), "\r\n", "\n"), "\n")
	i := 0
	for ; i < len(lines); i++ {
		raw := strings.TrimSpace(lines[i])
		ln := i + 1
		if raw == "" || raw == "--" {
			continue
		}
		m := headerRe.FindStringSubmatch(raw)
		if m == nil {
			if strings.HasPrefix(raw, "--") {
				continue // a free comment inside the header
			}
			break
		}
		key, val := strings.ToLower(m[1]), strings.TrimSpace(m[2])
		if !slices.Contains(knownKeys, key) {
			return nil, fail(ln, "unknown header key %q (known: %s)", key, strings.Join(knownKeys, ", "))
		}
		if _, dup := d.lines[key]; dup && key != "param" && key != "description" && key != "component" {
			return nil, fail(ln, "header key %q given twice (first on line %d)", key, d.lines[key])
		}
		if _, dup := d.lines[key]; !dup {
			d.lines[key] = ln
		}
		switch key {
		case "name":
			if !identRe.MatchString(val) {
				return nil, fail(ln, "name %q is not an identifier (letters, digits, _)", val)
			}
			d.Name = val
		case "title":
			d.Title = val
		case "description":
			d.Description = strings.TrimSpace(d.Description + " " + val)
		case "owner":
			d.Owner = val
		case "unit":
			if !slices.Contains(Units, val) {
				return nil, fail(ln, "unit %q is not one of %s", val, strings.Join(Units, ", "))
			}
			d.Unit = val
		case "format":
			d.Format = val
		case "polarity":
			if !slices.Contains(Polarities, val) {
				return nil, fail(ln, "polarity %q is not one of %s", val, strings.Join(Polarities, ", "))
			}
			d.Polarity = val
		case "target":
			t, err := parseTarget(val)
			if err != nil {
				return nil, fail(ln, "target: %v", err)
			}
			d.Target = t
		case "kind":
			switch val {
			case "simple":
				d.Kind = Simple
			case "derived", "ratio":
				d.Kind = Derived
			case "custom":
				d.Kind = Custom
			case "score":
				d.Kind = Score
			default:
				return nil, fail(ln, "kind %q is not one of simple, derived, ratio, score, custom", val)
			}
		case "time":
			if !identRe.MatchString(val) {
				return nil, fail(ln, "time column %q is not an identifier", val)
			}
			d.Time = val
		case "measure":
			d.Measure = val
		case "rollup":
			switch key, by := strings.CutPrefix(val, "by "); {
			case val == "auto":
			case val == "none":
				d.NoRollup = true
			case by && identRe.MatchString(strings.TrimSpace(key)):
				d.RollupKey = strings.TrimSpace(key)
			default:
				return nil, fail(ln, "rollup %q is not one of auto, none, by COLUMN", val)
			}
		case "dimensions":
			for _, part := range splitList(val) {
				name, col, hasCol := strings.Cut(part, "=")
				name, col = strings.TrimSpace(name), strings.TrimSpace(col)
				if !hasCol {
					col = name
				}
				if !identRe.MatchString(name) || !identRe.MatchString(col) {
					return nil, fail(ln, "dimension %q: name and column must be identifiers (name or name=column)", part)
				}
				if _, dup := d.Dimension(name); dup {
					return nil, fail(ln, "dimension %q declared twice", name)
				}
				d.Dimensions = append(d.Dimensions, Dimension{Name: name, Column: col, Line: ln})
			}
		case "formula":
			e, err := parseExpr(val)
			if err != nil {
				return nil, fail(ln, "formula: %v", err)
			}
			d.Formula, d.formula = val, e
		case "component":
			c, err := parseComponent(val)
			if err != nil {
				return nil, fail(ln, "component: %v", err)
			}
			if slices.ContainsFunc(d.Components, func(x Component) bool { return x.Metric == c.Metric }) {
				return nil, fail(ln, "component %q given twice", c.Metric)
			}
			c.Line = ln
			d.Components = append(d.Components, c)
		case "param":
			p, err := parseParam(val)
			if err != nil {
				return nil, fail(ln, "param: %v", err)
			}
			if slices.Contains(contractParams, p.Name) || slices.ContainsFunc(d.Params, func(q Param) bool { return q.Name == p.Name }) {
				return nil, fail(ln, "param %q is already defined", p.Name)
			}
			p.Line = ln
			d.Params = append(d.Params, p)
		case "roles":
			roles := splitList(strings.ToLower(val))
			if len(roles) == 0 {
				return nil, fail(ln, "roles: empty; list roles (%s) or drop the line to show the metric to everyone", strings.Join(Roles, ", "))
			}
			for _, r := range roles {
				if !slices.Contains(Roles, r) {
					return nil, fail(ln, "role %q is not one of %s", r, strings.Join(Roles, ", "))
				}
				if !slices.Contains(d.Roles, r) {
					d.Roles = append(d.Roles, r)
				}
			}
		}
	}
	d.bodyLine = min(i+1, len(lines)) // a file without a body: its last line
	// the body without surrounding space and the statement's closing semicolons
	d.SQL = strings.TrimSpace(strings.TrimRightFunc(strings.Join(lines[min(i, len(lines)):], "\n"),
		func(r rune) bool { return r == ';' || unicode.IsSpace(r) }))

	// Required fields.
	end := len(lines)
	for _, k := range []string{"name", "title", "description", "owner", "unit", "polarity", "kind"} {
		if _, ok := d.lines[k]; !ok {
			return nil, fail(d.bodyLine, "missing header field %q", k)
		}
	}
	_ = end
	switch d.Kind {
	case Simple:
		if d.Time == "" {
			return nil, fail(d.lines["kind"], "kind simple needs a \"time\" header (the model's time column)")
		}
		if d.Measure == "" {
			return nil, fail(d.lines["kind"], "kind simple needs a \"measure\" header (an aggregate such as sum(revenue))")
		}
		if d.SQL == "" {
			return nil, fail(d.bodyLine, "kind simple needs a body: the model SELECT")
		}
		// Settings (not the range: the planner adds that) may be bound.
		if strings.Contains(strings.ReplaceAll(d.SQL+d.Measure, "{default_margin:Float64}", ""), "{") {
			return nil, fail(d.bodyLine, "a simple metric takes no {parameters} but {default_margin:Float64}; the planner adds the range and filters (use kind custom)")
		}
		for _, k := range []string{"formula", "param", "component"} {
			if l, ok := d.lines[k]; ok {
				return nil, fail(l, "%q is not allowed for kind simple", k)
			}
		}
	case Derived:
		if d.formula == nil {
			return nil, fail(d.lines["kind"], "kind derived needs a \"formula\" header over other metrics")
		}
		if d.SQL != "" {
			return nil, fail(d.bodyLine, "kind derived has no SQL body (its formula combines other metrics)")
		}
		for _, k := range []string{"time", "measure", "param", "component", "rollup"} {
			if l, ok := d.lines[k]; ok {
				return nil, fail(l, "%q is not allowed for kind derived", k)
			}
		}
		for _, dim := range d.Dimensions {
			if dim.Column != dim.Name {
				return nil, fail(dim.Line, "dimension %q: a derived metric names its inputs' dimensions (no =column)", dim.Name)
			}
		}
		if slices.Contains(d.Inputs(), d.Name) {
			return nil, fail(d.lines["formula"], "formula refers to the metric itself")
		}
	case Score:
		if len(d.Components) == 0 {
			return nil, fail(d.lines["kind"], "kind score needs at least one \"component\" header")
		}
		if d.SQL != "" {
			return nil, fail(d.bodyLine, "kind score has no SQL body (it combines other metrics)")
		}
		for _, k := range []string{"time", "measure", "formula", "param", "rollup"} {
			if l, ok := d.lines[k]; ok {
				return nil, fail(l, "%q is not allowed for kind score", k)
			}
		}
		for _, dim := range d.Dimensions {
			if dim.Column != dim.Name {
				return nil, fail(dim.Line, "dimension %q: a score names its inputs' dimensions (no =column)", dim.Name)
			}
		}
		if slices.Contains(d.Inputs(), d.Name) {
			return nil, fail(d.lines["component"], "a component is the metric itself")
		}
	case Custom:
		if d.SQL == "" {
			return nil, fail(d.bodyLine, "kind custom needs a body: the query")
		}
		for _, k := range []string{"time", "measure", "formula", "dimensions", "component", "rollup"} {
			if l, ok := d.lines[k]; ok {
				return nil, fail(l, "%q is not allowed for kind custom (filters and breakdowns are the query's own params)", k)
			}
		}
		for _, m := range paramRefRe.FindAllStringSubmatch(d.SQL, -1) {
			if !slices.Contains(contractParams, m[1]) && !slices.ContainsFunc(d.Params, func(p Param) bool { return p.Name == m[1] }) {
				return nil, fail(d.lineOf(m[0]), "parameter {%s} is neither in the contract (%s) nor declared with a param header", m[1], strings.Join(contractParams, ", "))
			}
		}
	}
	return d, nil
}

var paramRefRe = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*):`)

// contractParams are bound for every custom metric.
var contractParams = []string{"from", "to", "tz", "grain", "week_mode", "fy_shift", "default_margin"}

// lineOf returns the line of the body where s first occurs.
func (d *Definition) lineOf(s string) int {
	for i, l := range strings.Split(d.SQL, "\n") {
		if strings.Contains(l, s) {
			return d.bodyLine + i
		}
	}
	return d.bodyLine
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseTarget(s string) (Target, error) {
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		return Target{Constant: &v}, nil
	}
	t := Target{Series: map[string]float64{}}
	for _, part := range splitList(s) {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return t, fmt.Errorf("%q: want a number or DATE=VALUE, …", part)
		}
		day, err := time.Parse(time.DateOnly, strings.TrimSpace(k))
		if err != nil {
			return t, fmt.Errorf("%q: bucket start is not a date YYYY-MM-DD", k)
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return t, fmt.Errorf("%q: value is not a number", v)
		}
		t.Series[day.Format(time.DateOnly)] = f
	}
	return t, nil
}

// parseComponent parses "metric weight=W min=A max=B".
func parseComponent(s string) (Component, error) {
	f := strings.Fields(s)
	c := Component{Weight: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	if len(f) != 4 || !identRe.MatchString(f[0]) {
		return c, fmt.Errorf("%q: want \"metric weight=W min=A max=B\"", s)
	}
	c.Metric = f[0]
	for _, kv := range f[1:] {
		k, v, _ := strings.Cut(kv, "=")
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return c, fmt.Errorf("%s: %q is not a number", k, v)
		}
		switch k {
		case "weight":
			c.Weight = x
		case "min":
			c.Min = x
		case "max":
			c.Max = x
		default:
			return c, fmt.Errorf("unknown setting %q (weight, min, max)", k)
		}
	}
	if math.IsNaN(c.Weight) || math.IsNaN(c.Min) || math.IsNaN(c.Max) {
		return c, fmt.Errorf("%q: weight, min and max are all required", s)
	}
	if c.Weight <= 0 {
		return c, fmt.Errorf("weight %v must be positive", c.Weight)
	}
	if c.Min == c.Max {
		return c, fmt.Errorf("min and max are equal (%v)", c.Min)
	}
	return c, nil
}

// scoreOf is a score metric's value from its components' values: the
// weighted mean of each value mapped linearly from [min, max] to [0, 100]
// (clamped). Components without a value are left out and the weights of the
// others renormalised; no component with a value gives no value.
func (d *Definition) scoreOf(get func(string) *float64) *float64 {
	var sum, w float64
	for _, c := range d.Components {
		v := get(c.Metric)
		if v == nil {
			continue
		}
		x := (*v - c.Min) / (c.Max - c.Min)
		x = math.Max(0, math.Min(1, x))
		sum += c.Weight * 100 * x
		w += c.Weight
	}
	if w == 0 {
		return nil
	}
	v := sum / w
	return &v
}
