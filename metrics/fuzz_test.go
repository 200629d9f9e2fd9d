package metrics

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	convsql "github.com/converge-dev/converge/sql"
)

// Fuzz targets of the metric definition parser, formulas and query parameters. `go test
// ./metrics` runs their seeds (the built-in definitions and the committed corpus under
// testdata/fuzz) as ordinary tests; `make fuzz` explores each for a few seconds. None needs the
// store.

// builtinSources are the built-in definition files, by file name.
func builtinSources(t testing.TB) map[string][]byte {
	fsys := convsql.Metrics()
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = b
	}
	return out
}

// FuzzParseDefinition: a definition file is rejected with an *Error naming the file and a line
// of it, or accepted; an accepted definition parses again identically, survives being written
// back in the header format (parse(format(d)) = d), and checked together with the built-ins
// it passes or fails with an error naming a file and a line.
func FuzzParseDefinition(f *testing.F) {
	srcs := builtinSources(f)
	for _, b := range srcs {
		f.Add(b)
	}
	head := "-- name: x\n-- title: X\n-- description: d\n-- owner: CFO\n-- unit: count\n-- polarity: neutral\n"
	for _, s := range []string{
		head + "-- kind: simple\n-- time: ordered_at\n-- measure: count()\n-- dimensions: channel, cc=country\n-- target: 2026-01-01=1, 2026-02-01=2.5\nSELECT * FROM orders_resolved;\n",
		head + "-- kind: ratio\n-- formula: (revenue_gross - -orders) / 2.5e0 * orders\n-- dimensions: channel\n",
		head + "-- kind: score\n-- component: nps weight=2 min=-100 max=100\n-- component: csat weight=0.5 min=5 max=1\n",
		head + "-- kind: custom\n-- param: n Int64 = 3 | 1, 2, 3\n-- param: d Date = 2026-01-01\n-- roles: cfo, ceo\nSELECT {n:Int64} AS value, {d:Date} AS bucket WHERE {from:DateTime64(3, 'UTC')} < now()",
		head + "-- kind: custom\n-- param: w Int64 = 30 | 1..365\n-- param: h Float64 = 7 | 0.1..\n-- param: d Date = 2026-01-01 | ..2199-12-31\nSELECT {w:Int64} + {h:Float64} AS value, {d:Date} AS bucket",
		"-- name: x\r\n-- colour: red\r\n", "-- name: x-y\n", head + "-- kind: simple\nSELECT 1", head + "-- kind: ratio\n-- formula: a / (b\n",
		"", "--\n-- just a comment\nSELECT 1;;\n", head + "-- kind: custom\n-- param: s String = a=b | a=b, c\nSELECT {s:String} ;\n;",
		head + "-- description: more\n-- format:\n-- kind: custom\n-- target: -0\n\n   \n--\nSELECT 1 -- x;",
	} {
		f.Add([]byte(s))
	}
	var builtins []*Definition
	for n, b := range srcs {
		d, err := Parse("builtin:"+n, b)
		if err != nil {
			f.Fatal(err)
		}
		builtins = append(builtins, d)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		const file = "fuzz.sql"
		nlines := len(strings.Split(strings.ReplaceAll(string(src), "\r\n", "\n"), "\n"))
		d, err := Parse(file, src)
		if err != nil {
			e, ok := err.(*Error)
			if !ok || e.File != file || e.Line < 1 || e.Line > nlines || e.Reason == "" {
				t.Fatalf("error %#v does not name the file and one of its %d lines", err, nlines)
			}
			return
		}
		d2, err := Parse(file, src)
		if err != nil || !reflect.DeepEqual(d, d2) {
			t.Fatalf("parsing the same file twice differs: %v", err)
		}
		out := formatDefinition(d)
		d3, err := Parse(file, []byte(out))
		if err != nil {
			t.Fatalf("the accepted definition, written back, is rejected: %v\n%s", err, out)
		}
		if a, b := layoutFree(d), layoutFree(d3); !reflect.DeepEqual(a, b) {
			t.Fatalf("written back and parsed again it differs:\n%#v\n%#v\n%s", a, b, out)
		}
		defs := map[string]*Definition{}
		for _, b := range builtins {
			defs[b.Name] = b
		}
		defs[d.Name] = d
		if err := validateGraph(defs); err != nil {
			e, ok := err.(*Error)
			if !ok || e.Line < 1 || e.Reason == "" || (e.File == file && e.Line > nlines) {
				t.Fatalf("graph error %#v does not name a file and line", err)
			}
		}
	})
}

// formatDefinition writes d in the header format.
func formatDefinition(d *Definition) string {
	var b strings.Builder
	h := func(k, v string) { fmt.Fprintf(&b, "-- %s: %s\n", k, v) }
	h("name", d.Name)
	h("title", d.Title)
	h("description", d.Description)
	h("owner", d.Owner)
	h("unit", d.Unit)
	if d.Line("format") > 0 {
		h("format", d.Format)
	}
	h("polarity", d.Polarity)
	if d.Target.Constant != nil {
		h("target", strconv.FormatFloat(*d.Target.Constant, 'g', -1, 64))
	} else if d.Line("target") > 0 {
		var parts []string
		for _, k := range sortedKeys(d.Target.Series) {
			parts = append(parts, k+"="+strconv.FormatFloat(d.Target.Series[k], 'g', -1, 64))
		}
		h("target", strings.Join(parts, ", "))
	}
	h("kind", string(d.Kind))
	if d.Time != "" {
		h("time", d.Time)
	}
	if d.Line("measure") > 0 {
		h("measure", d.Measure)
	}
	if d.Line("dimensions") > 0 {
		var parts []string
		for _, x := range d.Dimensions {
			parts = append(parts, x.Name+"="+x.Column)
		}
		h("dimensions", strings.Join(parts, ", "))
	}
	if d.Line("formula") > 0 {
		h("formula", d.Formula)
	}
	switch {
	case d.NoRollup:
		h("rollup", "none")
	case d.RollupKey != "":
		h("rollup", "by "+d.RollupKey)
	case d.Line("rollup") > 0:
		h("rollup", "auto")
	}
	for _, c := range d.Components {
		g := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
		h("component", fmt.Sprintf("%s weight=%s min=%s max=%s", c.Metric, g(c.Weight), g(c.Min), g(c.Max)))
	}
	for _, p := range d.Params {
		v := p.Name + " " + p.Type + " = " + p.Default
		if len(p.Allowed) > 0 {
			v += " | " + strings.Join(p.Allowed, ", ")
		}
		if p.Min != "" || p.Max != "" {
			v += " | " + p.Min + ".." + p.Max
		}
		h("param", v)
	}
	if d.Line("roles") > 0 {
		h("roles", strings.Join(d.Roles, ", "))
	}
	b.WriteString(d.SQL)
	return b.String()
}

// layoutFree is d without what depends on the file's layout (lines, version).
func layoutFree(d *Definition) Definition {
	c := *d
	c.lines, c.bodyLine, c.Version, c.formula = nil, 0, "", nil
	c.Dimensions = append([]Dimension(nil), d.Dimensions...)
	for i := range c.Dimensions {
		c.Dimensions[i].Line = 0
	}
	c.Components = append([]Component(nil), d.Components...)
	for i := range c.Components {
		c.Components[i].Line = 0
	}
	c.Params = append([]Param(nil), d.Params...)
	for i := range c.Params {
		c.Params[i].Line = 0
	}
	if len(c.Target.Series) == 0 {
		c.Target.Series = nil
	}
	return c
}

var formulaErrRe = regexp.MustCompile(`at column (\d+)|end of formula|bad number`)

// FuzzFormula: a formula is rejected with an error that says where, or accepted, and then
// every name it reads is an identifier, and its canonical form (fully parenthesised) parses to
// a formula with the same inputs and the same value for the same inputs.
func FuzzFormula(f *testing.F) {
	for _, b := range builtinSources(f) {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "-- formula:"); ok {
				f.Add(strings.TrimSpace(v))
			}
		}
	}
	for _, s := range []string{"a / (b", "1 + 2 * 3 - -x", "((a))/0", "1.2.3", "é + a", "a +", "-(-(-a))", "x\t*\t.5", "a b", "1e5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseExpr(s)
		if err != nil {
			m := formulaErrRe.FindStringSubmatch(err.Error())
			if m == nil {
				t.Fatalf("%q: error %q does not say where", s, err)
			}
			if m[1] != "" {
				if col, _ := strconv.Atoi(m[1]); col < 1 || col > len(s)+1 {
					t.Fatalf("%q: error %q names column %d of %d", s, err, col, len(s))
				}
			}
			return
		}
		var names []string
		e.names(func(n string) {
			if !identRe.MatchString(n) {
				t.Fatalf("%q: reads %q, not an identifier", s, n)
			}
			names = append(names, n)
		})
		canon := formatExpr(e)
		e2, err := parseExpr(canon)
		if err != nil {
			t.Fatalf("%q: canonical form %q does not parse: %v", s, canon, err)
		}
		var names2 []string
		e2.names(func(n string) { names2 = append(names2, n) })
		if !reflect.DeepEqual(names, names2) {
			t.Fatalf("%q: inputs %v, canonical %q reads %v", s, names, canon, names2)
		}
		get := func(n string) *float64 {
			if len(n)%5 == 0 {
				return nil // some inputs have no value
			}
			v := float64(len(n)*7%11) - 3
			return &v
		}
		a, b := e.eval(get), e2.eval(get)
		if (a == nil) != (b == nil) || a != nil && !(*a == *b || math.IsNaN(*a) && math.IsNaN(*b)) {
			t.Fatalf("%q = %v, canonical %q = %v", s, deref(a), canon, deref(b))
		}
	})
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// formatExpr writes e fully parenthesised.
func formatExpr(e expr) string {
	switch x := e.(type) {
	case num:
		return strconv.FormatFloat(float64(x), 'f', -1, 64)
	case ref:
		return string(x)
	case neg:
		return "-(" + formatExpr(x.x) + ")"
	case bin:
		return "(" + formatExpr(x.l) + " " + string(x.op) + " " + formatExpr(x.r) + ")"
	}
	panic(fmt.Sprintf("unknown expr %T", e))
}

// FuzzParseParams reads arbitrary query strings as the parameters of a built-in metric.
// Invariants: an error is a *ParamError naming a parameter of the request or a known one; an
// accepted request is a valid range of at most MaxBuckets buckets with only the metric's
// dimensions and params, and written back as URL parameters it parses to the same Params.
func FuzzParseParams(f *testing.F) {
	r, err := New(context.Background(), Options{})
	if err != nil {
		f.Fatal(err)
	}
	defs := r.List()
	idx := func(name string) uint8 {
		for i, d := range defs {
			if d.Name == name {
				return uint8(i)
			}
		}
		f.Fatalf("no metric %s", name)
		return 0
	}
	for _, s := range []struct{ metric, q string }{
		{"orders", "from=2026-01-01&to=2026-01-31&grain=fortnight"},
		{"orders", "from=2026-02-01&to=2025-12-31"},
		{"orders", "from=2020-01-01&to=2025-12-31&grain=day"},
		{"revenue_gross", "from=2026-01-01&to=2026-03-31&grain=week&tz=Europe/Berlin&week_start=sunday&compare=previous&by=channel&filter=country=DE&filter=currency=EUR"},
		{"revenue_gross", "from=2025-03-01T00:00:00%2B01:00&to=2026-03-01T00:00:00Z&grain=quarter&fiscal_year_start=4&compare=year&filter=channel=%27%3B+DROP+TABLE+orders%3B+--"},
		{"roas", "from=2026-01-01&to=2026-01-31&model=linear&arg=level=campaign&lookback_days=14&half_life_days=3.5"},
		{"churn_rate", "from=2026-01-01&to=2026-01-31&window_days=soon"},
		{"orders", "from=2026-01-01&to=2026-01-31&colour=red&format=csv"},
	} {
		f.Add(idx(s.metric), s.q)
	}
	f.Fuzz(func(t *testing.T, metric uint8, q string) {
		d := defs[int(metric)%len(defs)]
		v, err := url.ParseQuery(q)
		if err != nil {
			return
		}
		p, err := ParseParams(d, v, Defaults{})
		if err != nil {
			pe, ok := err.(*ParamError)
			known := []string{"from", "to", "grain", "tz", "week_start", "fiscal_year_start", "compare", "by", "filter", "arg"}
			if !ok || pe.Reason == "" || (!v.Has(pe.Param) && !contains(known, pe.Param) && !hasParam(d, pe.Param)) {
				t.Fatalf("%s?%s: error %#v names no parameter", d.Name, q, err)
			}
			return
		}
		if !p.From.Before(p.To) || len(buckets(p)) > MaxBuckets || !contains(Grains, p.Grain) || p.TZ == nil {
			t.Fatalf("%s?%s: accepted %+v", d.Name, q, p)
		}
		if _, ok := d.Dimension(p.By); p.By != "" && !ok {
			t.Fatalf("%s?%s: by %q is not a dimension", d.Name, q, p.By)
		}
		for _, fl := range p.Filters {
			if _, ok := d.Dimension(fl.Dim); !ok {
				t.Fatalf("%s?%s: filter on %q, not a dimension", d.Name, q, fl.Dim)
			}
		}
		for k, a := range p.Args {
			i := -1
			for j, x := range d.Params {
				if x.Name == k {
					i = j
				}
			}
			if i < 0 || d.Params[i].Check(a) != nil {
				t.Fatalf("%s?%s: arg %s=%q", d.Name, q, k, a)
			}
		}
		back := p.Values()
		p2, err := ParseParams(d, back, Defaults{})
		if err != nil {
			t.Fatalf("%s?%s: written back as %s it is rejected: %v", d.Name, q, back.Encode(), err)
		}
		if p.Key() != p2.Key() {
			t.Fatalf("%s?%s: written back as %s it differs:\n%s\n%s", d.Name, q, back.Encode(), p.Key(), p2.Key())
		}
	})
}

func contains[T comparable](s []T, x T) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

func hasParam(d *Definition, name string) bool {
	for _, p := range d.Params {
		if p.Name == name {
			return true
		}
	}
	return false
}
