package metrics

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// A rollup keeps a simple metric pre-aggregated as its facts land: one row per
// 30-minute UTC slot (or calendar day, for a Date time column) and
// combination of the metric's dimensions, holding each aggregate of the
// measure as a mergeable state (sumState, uniqExactState, …). Any report
// time zone whose offset is a whole or half hour puts a slot wholly in one
// local day, so every bucket of every grain is a union of slots, and merging
// the states of its slots gives exactly what the raw rows give (a distinct
// count merges its sets, it never adds counts). The rollup is partitioned
// like the metric's fact table (by month of the time column), so what lands
// in one fact partition is folded in by recomputing one rollup partition.

// rollupFormat versions the layout of rollup tables: a change rebuilds them.
const rollupFormat = "2"

// slotMinutes is the width of a rollup slot.
const slotMinutes = 30

// rollupSpec is how one simple metric is rolled up.
type rollupSpec struct {
	metric   string
	table    string   // rollup_<metric>
	hash     string   // of what defines its rows
	fact     string   // the table partitioned by month of the time column
	tables   []string // every table the model reads (a change to any dirties it)
	identity bool     // the answer depends on identities (customer_id), which a merge rewrites
	slotDate bool     // the time column is a Date: slots are days
	dims     []string // dimension names, columns d_<name>
	states   []rollupState
	measure  string  // the measure over the rollup's merged states
	margin   float64 // the default margin the model was built with (marginBaked)
	baked    bool    // the model or measure reads {default_margin}
	// A keyed rollup (rollup: by COLUMN, rollup_keyed.go) keeps the model's rows by key;
	// keyed tells which tables it reads carry the key (a change elsewhere rebuilds it).
	key   string
	keyed map[string]bool
}

// rollupState is one aggregate of the measure: its column, the state it keeps
// (over the model's rows) and how a query merges it.
type rollupState struct {
	col, state, merge string
}

// notRollable is why a metric is answered from raw rows.
type notRollable struct{ reason string }

func (e *notRollable) Error() string { return e.reason }

func rawOnly(format string, args ...any) error { return &notRollable{fmt.Sprintf(format, args...)} }

// rollupAggregates are the aggregates whose states merge to exactly what one
// pass over the rows gives (each also with the If combinator).
var rollupAggregates = map[string]bool{"count": true, "sum": true, "avg": true, "min": true, "max": true, "uniqExact": true}

// rowWiseWords are what makes a model more than a filter over its rows: its
// rows would then not map one to one onto the fact rows of their time, and
// a change to one fact could move others' results.
var rowWiseWords = []string{"JOIN", "GROUP", "UNION", "OVER", "DISTINCT", "LIMIT", "HAVING", "WINDOW", "INTERSECT", "EXCEPT", "QUALIFY"}

var paramRe = regexp.MustCompile(`\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:`)

// deriveRollup writes the rollup spec of simple metric d (store facts: the
// fact table's partition key and sorting key, from the caller), or says why
// it is answered from raw rows.
func deriveRollup(d *Definition, sh *shape, margin float64, factKeys func(table string) (partition, sorting string, err error)) (*rollupSpec, error) {
	if d.Kind != Simple {
		return nil, rawOnly("a %s metric is computed from its inputs, each on its own path", d.Kind)
	}
	if d.NoRollup {
		return nil, rawOnly("its definition says rollup: none")
	}
	toks := sqlWords(d.SQL)
	for _, w := range rowWiseWords {
		if slices.Contains(toks, w) {
			return nil, rawOnly("its model uses %s: its rows are not one per fact, so a rollup could not be kept exact as facts land", w)
		}
	}
	if n := strings.Count(strings.Join(toks, " "), "SELECT"); n > 1 {
		return nil, rawOnly("its model has a subquery: its rows are not one per fact")
	}
	sp := &rollupSpec{metric: d.Name, table: "rollup_" + d.Name, slotDate: sh.timeIsDate}
	for _, m := range paramRe.FindAllStringSubmatch(d.SQL+" "+d.Measure, -1) {
		if m[1] != "default_margin" {
			return nil, rawOnly("its model reads the parameter {%s}, which each query sets", m[1])
		}
		sp.baked, sp.margin = true, margin
	}
	tables := d.Tables()
	sp.tables = tables
	var facts []string
	for _, t := range tables {
		if t != "identities" {
			facts = append(facts, t)
		}
	}
	if len(facts) != 1 {
		return nil, rawOnly("its model reads %d fact tables (%s); a rollup follows one", len(facts), strings.Join(facts, ", "))
	}
	sp.fact = facts[0]
	part, sorting, err := factKeys(sp.fact)
	if err != nil {
		return nil, err
	}
	if want := "toYYYYMM(" + d.Time + ")"; strings.ReplaceAll(part, " ", "") != want {
		return nil, rawOnly("%s is partitioned by %q, not by %s: a rollup partition would not follow one fact partition", sp.fact, part, want)
	}
	final := modelFinal(d.SQL)
	for _, x := range d.Dimensions {
		sp.dims = append(sp.dims, x.Name)
	}
	if slices.Contains(tables, "identities") {
		uses := strings.Contains(d.Measure, "customer_id")
		for _, x := range d.Dimensions {
			uses = uses || x.Column == "customer_id"
		}
		sp.identity = uses
	}
	measure, states, err := splitMeasure(d.Measure, func(args string) bool {
		return final && sameKey(args, sorting)
	})
	if err != nil {
		return nil, err
	}
	sp.measure, sp.states = measure, states
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%v\x00", rollupFormat, d.SQL, d.Measure, d.Time, sp.baked)
	if sp.baked {
		h.Write([]byte(strconv.FormatFloat(margin, 'g', -1, 64)))
	}
	for _, x := range d.Dimensions {
		fmt.Fprintf(h, "\x00%s=%s", x.Name, x.Column)
	}
	sp.hash = hex.EncodeToString(h.Sum(nil))[:16]
	return sp, nil
}

// modelFinal tells whether the model reads its table deduplicated (FINAL, in
// its SQL or the view it reads): a row per record id.
func modelFinal(sql string) bool {
	if slices.Contains(sqlWords(sql), "FINAL") {
		return true
	}
	views := schemaViews()
	for _, m := range tableRefRe.FindAllStringSubmatch(sql, -1) {
		if body, ok := views[m[1]]; ok && slices.Contains(sqlWords(body), "FINAL") {
			return true
		}
	}
	return false
}

// sameKey tells whether the arguments of a distinct count are the sorting key
// (the record id) of a deduplicated table: then each row is distinct, and the
// count of rows is the distinct count.
func sameKey(args, sorting string) bool {
	norm := func(s string) string {
		s = strings.ReplaceAll(s, " ", "")
		return strings.ReplaceAll(s, "m.", "")
	}
	return sorting != "" && norm(args) == norm(sorting)
}

// sqlWords are the upper-cased words of sql outside strings, quoted names and
// comments.
func sqlWords(sql string) []string {
	var out []string
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '\'' || c == '`' || c == '"':
			j := i + 1
			for j < len(sql) && sql[j] != c {
				if sql[j] == '\\' {
					j++
				}
				j++
			}
			i = j + 1
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(sql) && isIdentPart(sql[j]) {
				j++
			}
			out = append(out, strings.ToUpper(sql[i:j]))
			i = j
		default:
			i++
		}
	}
	return out
}

// identAt reads the identifier starting at m[i]: its name, its end, and the
// index of the parenthesis that makes it a call (-1: not a call).
func identAt(m string, i int) (string, int, int) {
	j := i
	for j < len(m) && isIdentPart(m[j]) {
		j++
	}
	k := j
	for k < len(m) && m[k] == ' ' {
		k++
	}
	if k >= len(m) || m[k] != '(' {
		k = -1
	}
	return m[i:j], j, k
}

func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdentPart(c byte) bool  { return isIdentStart(c) || c >= '0' && c <= '9' }

// splitMeasure rewrites measure m over the rollup: each aggregate call
// f(args) becomes a state column a<i> kept as fState(args), and the measure
// merges it as fMerge(m.a<i>). A distinct count of the record id (countKey)
// is kept as a count. An aggregate without a rule, or one inside another, is
// not rollable.
func splitMeasure(m string, countKey func(args string) bool) (string, []rollupState, error) {
	var b strings.Builder
	var states []rollupState
	for i := 0; i < len(m); {
		c := m[i]
		switch {
		case c == '\'':
			j := i + 1
			for j < len(m) && m[j] != '\'' {
				if m[j] == '\\' {
					j++
				}
				j++
			}
			b.WriteString(m[i:min(j+1, len(m))])
			i = j + 1
		case isIdentStart(c):
			name, j, k := identAt(m, i)
			if k < 0 {
				b.WriteString(name)
				i = j
				continue
			}
			base := strings.TrimSuffix(name, "If")
			if !rollupAggregates[base] && !rollupAggregates[name] {
				b.WriteString(m[i:k])
				i = k
				continue
			}
			end := closeParen(m, k)
			if end < 0 {
				return "", nil, rawOnly("its measure has an unclosed parenthesis")
			}
			args := m[k+1 : end]
			if inner := firstAggregate(args); inner != "" {
				return "", nil, rawOnly("its measure nests %s inside %s", inner, name)
			}
			col := fmt.Sprintf("a%d", len(states))
			st := rollupState{col: col, state: name + "State(" + args + ")", merge: name + "Merge(m." + col + ")"}
			if name == "uniqExact" && countKey(args) {
				st.state, st.merge = "countState()", "countMerge(m."+col+")"
			}
			states = append(states, st)
			b.WriteString(st.merge)
			i = end + 1
		default:
			b.WriteByte(c)
			i++
		}
	}
	if len(states) == 0 {
		return "", nil, rawOnly("its measure has no aggregate with a rollup rule (count, sum, avg, min, max, uniqExact, and their -If)")
	}
	return b.String(), states, nil
}

// firstAggregate is the name of the first aggregate called in s, or "".
func firstAggregate(s string) string {
	for i := 0; i < len(s); {
		if !isIdentStart(s[i]) || i > 0 && isIdentPart(s[i-1]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isIdentPart(s[j]) {
			j++
		}
		name := s[i:j]
		k := j
		for k < len(s) && s[k] == ' ' {
			k++
		}
		if k < len(s) && s[k] == '(' && (rollupAggregates[name] || rollupAggregates[strings.TrimSuffix(name, "If")]) {
			return name
		}
		i = j
	}
	return ""
}

// closeParen is the index of the parenthesis closing the one at open, or -1.
func closeParen(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '\'':
			for i++; i < len(s) && s[i] != '\''; i++ {
				if s[i] == '\\' {
					i++
				}
			}
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}
