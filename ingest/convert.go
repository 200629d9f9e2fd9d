package ingest

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// FieldError is why one field of a record was rejected.
type FieldError struct {
	Field  string // canonical field (or source column for encoding errors)
	Code   string // machine-readable: missing_field, bad_time, bad_number, ...
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func ferr(field, code, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Code: code, Reason: fmt.Sprintf(format, args...)}
}

// fieldSpec is a compiled FieldMap for one canonical field.
type fieldSpec struct {
	f        Field
	col      int // source column index, -1 when not from a column
	colName  string
	tmpl     []tmplPart
	constant *string
	layouts  []string
	loc      *time.Location
	trs      []transform
	vmap     map[string]string
	other    *string
	fallback int // column read when col is empty, -1 for none
	def      string
	mapped   bool       // the source provides it (column, template or value)
	textOf   *fieldSpec // Field.TextOf: the field whose source text this one keeps

	canon      bool // the canonical string is needed (key fields); else the raw value is hashed
	lastRaw    string
	lastTime   time.Time
	lastLayout int // index of the layout that parsed last, tried first
}

type tmplPart struct {
	lit string
	col int // -1 for a literal
}

// columns assigns indexes to source column names. For a delimited file it is
// the header; for NDJSON and Go records it grows as new keys appear.
type columns struct {
	names []string
	index map[string]int
	fixed bool
}

func newColumns(names []string, fixed bool) *columns {
	c := &columns{index: map[string]int{}, fixed: fixed}
	for _, n := range names {
		c.add(n)
	}
	return c
}

func (c *columns) add(name string) int {
	if i, ok := c.index[name]; ok {
		return i
	}
	c.names = append(c.names, name)
	c.index[name] = len(c.names) - 1
	return len(c.names) - 1
}

// lookup returns the column's index; on a fixed header a missing column is an error.
func (c *columns) lookup(name string) (int, bool) {
	if i, ok := c.index[name]; ok {
		return i, true
	}
	if c.fixed {
		return -1, false
	}
	return c.add(name), true
}

// converter turns source records into typed canonical values of one entity.
type converter struct {
	ent       *Entity
	specs     []*fieldSpec // in ent.Fields order
	null      []string     // values read as empty, besides ""
	decComma  bool
	thousands string
}

var defaultLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999 -0700",
	"2006-01-02 15:04:05.999999999 -07:00",
	"2006-01-02 15:04:05.999999999 MST",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
	"unix",
}

// compile resolves the mapping's fields of ent against the source columns.
// tz, when set, overrides the mapping's time zone. canonical adds every
// entity field whose name is a column and that the mapping does not map.
func compile(m *Mapping, ent *Entity, cols *columns, tz *time.Location) (*converter, error) {
	c := &converter{ent: ent, decComma: m.Decimal == ",", thousands: m.Thousands}
	for _, n := range m.Null {
		if n != "" {
			c.null = append(c.null, n)
		}
	}
	loc := time.UTC
	if m.Timezone != "" {
		loc, _ = time.LoadLocation(m.Timezone)
	}
	if tz != nil {
		loc = tz
	}
	for _, f := range ent.Fields {
		sp := &fieldSpec{f: f, col: -1, fallback: -1, loc: loc, def: f.Default}
		fm, ok := m.Fields[f.Name]
		if !ok && len(m.Fields) == 0 {
			// canonical: a column named like the field
			if i, found := cols.index[f.Name]; found || !cols.fixed {
				if !found {
					i = cols.add(f.Name)
				}
				fm, ok = FieldMap{Column: f.Name}, true
				_ = i
			}
		}
		if ok {
			switch {
			case fm.Column != "":
				i, found := cols.lookup(fm.Column)
				if !found {
					return nil, &FieldError{Field: f.Name, Code: "missing_column",
						Reason: fmt.Sprintf("column %q (mapped to %s) is not in the header (columns: %s)", fm.Column, f.Name, strings.Join(cols.names, ", "))}
				}
				sp.col, sp.colName, sp.mapped = i, fm.Column, true
				if fm.Fallback != "" {
					j, found := cols.lookup(fm.Fallback)
					if !found {
						return nil, &FieldError{Field: f.Name, Code: "missing_column",
							Reason: fmt.Sprintf("column %q (fallback for %s) is not in the header (columns: %s)", fm.Fallback, f.Name, strings.Join(cols.names, ", "))}
					}
					sp.fallback = j
				}
			case fm.Template != "":
				parts, err := parseTemplate(fm.Template, cols)
				if err != nil {
					return nil, &FieldError{Field: f.Name, Code: "missing_column", Reason: err.Error()}
				}
				sp.tmpl, sp.mapped = parts, true
			case fm.Value != nil:
				sp.constant, sp.mapped = fm.Value, true
			}
			sp.layouts = fm.Layout
			if fm.Zone != "" {
				sp.loc, _ = time.LoadLocation(fm.Zone)
			}
			for _, tr := range fm.Transform {
				x, _ := parseTransform(tr)
				sp.trs = append(sp.trs, x)
			}
			sp.vmap, sp.other = fm.Map, fm.Other
			if fm.Default != "" {
				sp.def = fm.Default
			}
		}
		if len(sp.layouts) == 0 {
			sp.layouts = defaultLayouts
		}
		key := m.Key
		if len(key) == 0 {
			key = ent.Key
		}
		sp.canon = f.Name == ent.ID || f.Kind == KString || f.Kind == KBool
		for _, k := range key {
			if k == f.Name {
				sp.canon = true
			}
		}
		c.specs = append(c.specs, sp)
	}
	for _, sp := range c.specs {
		if sp.f.TextOf != "" {
			_, i, _ := ent.field(sp.f.TextOf)
			sp.textOf = c.specs[i]
		}
	}
	return c, nil
}

// templateRef is a piece of a template: literal text, or a column reference {name}.
type templateRef struct {
	text  string
	isCol bool
}

// splitTemplate splits a template into literal text and {column} references.
func splitTemplate(s string) ([]templateRef, error) {
	var refs []templateRef
	for s != "" {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			refs = append(refs, templateRef{text: s})
			break
		}
		if i > 0 {
			refs = append(refs, templateRef{text: s[:i]})
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("template %q: unclosed {", s)
		}
		if j == 1 {
			return nil, fmt.Errorf("template %q: {} names no column", s)
		}
		refs = append(refs, templateRef{text: s[i+1 : i+j], isCol: true})
		s = s[i+j+1:]
	}
	return refs, nil
}

func parseTemplate(s string, cols *columns) ([]tmplPart, error) {
	refs, err := splitTemplate(s)
	if err != nil {
		return nil, err
	}
	parts := make([]tmplPart, 0, len(refs))
	for _, r := range refs {
		if !r.isCol {
			parts = append(parts, tmplPart{lit: r.text, col: -1})
			continue
		}
		ci, ok := cols.lookup(r.text)
		if !ok {
			return nil, fmt.Errorf("template column %q is not in the header (columns: %s)", r.text, strings.Join(cols.names, ", "))
		}
		parts = append(parts, tmplPart{col: ci})
	}
	return parts, nil
}

// raw returns the field's source value after null handling, transforms, map
// and default, as a string; a TextOf field left empty takes its field's source text.
func (c *converter) raw(sp *fieldSpec, rec []string) (string, *FieldError) {
	v, fe := c.transform(sp, c.pick(sp, rec))
	if v == "" && sp.textOf != nil && fe == nil {
		v = c.pick(sp.textOf, rec)
	}
	return v, fe
}

// pick returns the field's source text: its column (or fallback column), template or
// constant, trimmed, empty for a null value.
func (c *converter) pick(sp *fieldSpec, rec []string) string {
	var v string
	switch {
	case sp.col >= 0:
		if sp.col < len(rec) {
			v = rec[sp.col]
		}
		if sp.fallback >= 0 && sp.fallback < len(rec) && (c.isNull(strings.TrimSpace(v))) {
			v = rec[sp.fallback]
		}
	case sp.tmpl != nil:
		var b strings.Builder
		for _, p := range sp.tmpl {
			if p.col < 0 {
				b.WriteString(p.lit)
			} else if p.col < len(rec) {
				x := strings.TrimSpace(rec[p.col])
				if !c.isNull(x) {
					b.WriteString(x)
				}
			}
		}
		v = b.String()
	case sp.constant != nil:
		v = *sp.constant
	}
	v = strings.TrimSpace(v)
	if c.isNull(v) {
		v = ""
	}
	return v
}

// transform applies the field's transforms, map and default to its source text.
func (c *converter) transform(sp *fieldSpec, v string) (string, *FieldError) {
	for _, tr := range sp.trs {
		if v == "" {
			break
		}
		switch tr.op {
		case "trim":
			v = strings.TrimSpace(v)
		case "lower":
			v = strings.ToLower(v)
		case "upper":
			v = strings.ToUpper(v)
		case "digits":
			v = strings.Map(func(r rune) rune {
				if r >= '0' && r <= '9' || r == '+' {
					return r
				}
				return -1
			}, v)
		case "negate", "abs", "multiply", "divide":
			d, err := decimal.NewFromString(c.normNumber(v))
			if err != nil {
				return "", ferr(sp.f.Name, "bad_number", "%q is not a number (for %s)", v, tr.op)
			}
			switch tr.op {
			case "negate":
				d = d.Neg()
			case "abs":
				d = d.Abs()
			case "multiply":
				d = d.Mul(decimal.RequireFromString(tr.factor))
			case "divide":
				d = d.DivRound(decimal.RequireFromString(tr.factor), 8)
			}
			v = d.String()
		}
	}
	if sp.vmap != nil {
		if x, ok := sp.vmap[v]; ok {
			v = x
		} else if sp.other != nil && v != "" {
			v = *sp.other
		}
	}
	if v == "" {
		v = sp.def
	}
	return v, nil
}

func (c *converter) isNull(v string) bool {
	if v == "" {
		return true
	}
	for _, n := range c.null {
		if v == n {
			return true
		}
	}
	return false
}

// normNumber removes the thousands separator and turns a decimal comma into a point.
func (c *converter) normNumber(v string) string {
	if c.thousands != "" {
		v = strings.ReplaceAll(v, c.thousands, "")
	}
	if c.decComma {
		v = strings.ReplaceAll(v, ".", "")
		v = strings.Replace(v, ",", ".", 1)
	}
	return v
}

var maxDecimal = decimal.New(1, 14) // Decimal(18, 4): |v| < 10^14

// The ranges of the stored time types: DateTime64(3, 'UTC') and Date. A value outside is
// rejected (out_of_range) rather than clamped or wrapped by the store.
var (
	minTime = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2299, 12, 31, 23, 59, 59, 999_000_000, time.UTC)
	minDate = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxDate = time.Date(2149, 6, 6, 0, 0, 0, 0, time.UTC)
)

// value parses a field to the Go value its column takes, and a canonical
// string of it for hashing and keys.
func (c *converter) value(sp *fieldSpec, v string) (any, string, *FieldError) {
	f := sp.f
	if v == "" {
		if f.Required {
			if sp.mapped || sp.col >= 0 {
				return nil, "", ferr(f.Name, "missing_field", "required field is empty")
			}
			return nil, "", ferr(f.Name, "missing_field", "required field is not in the record")
		}
		if f.Nullable {
			return nil, "", nil
		}
	}
	if v != "" && f.Shape != ShapeText {
		if fe := checkShape(f, v); fe != nil {
			return nil, "", fe
		}
	}
	switch f.Kind {
	case KString:
		switch f.Norm {
		case "lower":
			v = strings.ToLower(v)
		case "upper":
			v = strings.ToUpper(v)
		}
		if v != "" {
			switch {
			case f.Currency:
				if fe := checkCurrency(f.Name, v); fe != nil {
					return nil, "", fe
				}
			case f.Ref != nil:
				var fe *FieldError
				if v, fe = f.Ref.check(f.Name, v); fe != nil {
					return nil, "", fe
				}
			}
		}
		return nil, v, nil // string values live in strs only (no boxing)
	case KTime:
		if v == "" {
			return nil, "", nil // the caller fills version fields
		}
		if v != sp.lastRaw {
			tm, err := sp.parseTime(v)
			if err != nil {
				return nil, "", ferr(f.Name, "bad_time", "%q is not a time (%s)", v, sp.layoutHint())
			}
			if tm.Before(minTime) || tm.After(maxTime) {
				return nil, "", ferr(f.Name, "out_of_range", "%q is outside the times the store holds (1900-01-01 to 2299-12-31 UTC)", v)
			}
			sp.lastRaw, sp.lastTime = v, tm
		}
		if !sp.canon {
			return sp.lastTime, v, nil
		}
		return sp.lastTime, formatTime(sp.lastTime), nil
	case KDate:
		tm, err := sp.parseTime(v)
		if err != nil {
			return nil, "", ferr(f.Name, "bad_date", "%q is not a date (%s)", v, sp.layoutHint())
		}
		y, mo, d := tm.Date()
		day := time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
		if day.Before(minDate) || day.After(maxDate) {
			return nil, "", ferr(f.Name, "out_of_range", "%q is outside the dates the store holds (1970-01-01 to 2149-06-06)", v)
		}
		return day, day.Format("2006-01-02"), nil
	case KDecimal:
		if v == "" {
			v = "0"
		}
		nv := c.normNumber(v)
		d, ok := fastDecimal(nv)
		if !ok {
			var err error
			if d, err = decimal.NewFromString(nv); err != nil {
				return nil, "", ferr(f.Name, "bad_number", "%q is not a decimal number", v)
			}
		}
		if d.Exponent() < -4 {
			d = d.Round(4) // before the range check: 99999999999999.99997 rounds up past it
		}
		if d.Abs().GreaterThanOrEqual(maxDecimal) {
			return nil, "", ferr(f.Name, "out_of_range", "%s does not fit Decimal(18, 4)", v)
		}
		if f.NonNeg != "" && d.Sign() < 0 {
			return nil, "", ferr(f.Name, "negative_amount", "%s is negative: %s", v, f.NonNeg)
		}
		if !sp.canon {
			return d, v, nil
		}
		return d, d.StringFixed(4), nil
	case KInt, KUInt:
		if v == "" {
			v = "0"
		}
		n, err := strconv.ParseInt(c.normNumber(v), 10, 64)
		if err != nil {
			fl, ferr2 := strconv.ParseFloat(c.normNumber(v), 64)
			if ferr2 != nil || fl != float64(int64(fl)) {
				return nil, "", ferr(f.Name, "bad_number", "%q is not a whole number", v)
			}
			n = int64(fl)
		}
		bits := f.Bits
		if bits == 0 {
			bits = 64
		}
		if f.Kind == KUInt {
			if n < 0 || (bits < 64 && n >= 1<<bits) || (f.Max > 0 && n > f.Max) {
				return nil, "", ferr(f.Name, "out_of_range", "%d is out of range", n)
			}
			s := strconv.FormatInt(n, 10)
			switch bits {
			case 8:
				u := uint8(n)
				return &u, s, nil
			case 32:
				return uint32(n), s, nil
			}
			return uint64(n), s, nil
		}
		if bits < 64 && (n >= 1<<(bits-1) || n < -(1<<(bits-1))) {
			return nil, "", ferr(f.Name, "out_of_range", "%d is out of range", n)
		}
		s := strconv.FormatInt(n, 10)
		if bits == 16 {
			return int16(n), s, nil
		}
		return n, s, nil
	case KFloat:
		if v == "" {
			v = "0"
		}
		fl, err := strconv.ParseFloat(c.normNumber(v), 64)
		if err != nil || math.IsNaN(fl) || math.IsInf(fl, 0) {
			return nil, "", ferr(f.Name, "bad_number", "%q is not a finite number", v)
		}
		if f.NonNeg != "" && fl < 0 {
			return nil, "", ferr(f.Name, "negative_amount", "%s is negative: %s", v, f.NonNeg)
		}
		return fl, strconv.FormatFloat(fl, 'g', -1, 64), nil
	case KBool:
		switch strings.ToLower(v) {
		case "true", "t", "1", "yes", "y", "granted", "opt-in", "opted_in", "subscribed":
			return true, "1", nil
		case "false", "f", "0", "no", "n", "refused", "withdrawn", "denied", "opt-out", "opted_out", "unsubscribed", "":
			return false, "0", nil
		}
		return nil, "", ferr(f.Name, "bad_bool", "%q is not a yes/no value", v)
	}
	return nil, "", ferr(f.Name, "internal", "unknown kind")
}

// fastDecimal parses the common case, [-]digits[.digits] with at most 14
// integer and 4 fraction digits (so it fits Decimal(18, 4)), without the
// general parser; ok is false for anything else.
func fastDecimal(s string) (decimal.Decimal, bool) {
	i, neg := 0, false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	var n int64
	intDigits, fracDigits, seenPoint := 0, 0, false
	for ; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch >= '0' && ch <= '9':
			n = n*10 + int64(ch-'0')
			if seenPoint {
				fracDigits++
			} else {
				intDigits++
			}
		case ch == '.' && !seenPoint:
			seenPoint = true
		default:
			return decimal.Decimal{}, false
		}
	}
	if intDigits+fracDigits == 0 || intDigits > 14 || fracDigits > 4 {
		return decimal.Decimal{}, false
	}
	if neg {
		n = -n
	}
	return decimal.New(n, int32(-fracDigits)), true
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (sp *fieldSpec) layoutHint() string {
	if len(sp.layouts) > 0 && &sp.layouts[0] == &defaultLayouts[0] {
		return "expected RFC 3339, 2006-01-02 15:04:05, 2006-01-02 or Unix seconds; set layout in the mapping for other forms"
	}
	return "layouts " + strings.Join(sp.layouts, " | ")
}

// parseTime tries the layout that worked last first.
func (sp *fieldSpec) parseTime(v string) (time.Time, error) {
	if sp.lastLayout < len(sp.layouts) {
		if tm, err := parseTime(v, sp.layouts[sp.lastLayout:sp.lastLayout+1], sp.loc); err == nil {
			return tm, nil
		}
	}
	for i, l := range sp.layouts {
		if tm, err := parseTime(v, []string{l}, sp.loc); err == nil {
			sp.lastLayout = i
			return tm, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad time %q", v)
}

func parseTime(v string, layouts []string, loc *time.Location) (time.Time, error) {
	for _, l := range layouts {
		switch l {
		case "unix", "unix_ms":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				if fl, ferr := strconv.ParseFloat(v, 64); ferr == nil && l == "unix" && strings.Contains(v, ".") {
					return time.UnixMilli(int64(fl * 1000)).UTC(), nil
				}
				continue
			}
			if l == "unix_ms" || (len(v) >= 13 && l == "unix") {
				return time.UnixMilli(n).UTC(), nil
			}
			if len(v) < 9 { // not a plausible epoch second
				continue
			}
			return time.Unix(n, 0).UTC(), nil
		case "rfc3339":
			l = time.RFC3339Nano
		}
		tm, err := time.ParseInLocation(l, v, loc)
		if err == nil {
			return tm.UTC().Truncate(time.Millisecond), nil
		}
	}
	return time.Time{}, fmt.Errorf("bad time %q", v)
}

// checkUTF8 returns the index of the first field that is not valid UTF-8, or -1.
func checkUTF8(rec []string) int {
	for i, v := range rec {
		if !utf8.ValidString(v) {
			return i
		}
	}
	return -1
}
