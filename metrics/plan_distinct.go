package metrics

import (
	"fmt"
	"strings"
)

// A measure made only of distinct counts of one key (uniqExact(k) and
// uniqExactIf(k, c), in arithmetic) is planned in two steps: the rows are
// grouped by the key once, each key collecting the buckets it appears in and
// those where each condition holds, and the buckets are then counted, and
// the keys for the whole range. The key's values are hashed once instead of
// once per grouping set; the counts are the same.

// distinctSplit is a measure split for the two-step plan.
type distinctSplit struct {
	key   []string // the key's arguments
	conds []string // the condition of each uniqExactIf, in order
	outer string   // the measure over the pairs: count() and countIf(_fN)
}

// splitDistinct splits measure m, or says false when it is not only
// arithmetic over distinct counts of one key.
func splitDistinct(m string) (*distinctSplit, bool) {
	var b strings.Builder
	s := &distinctSplit{}
	key := ""
	for i := 0; i < len(m); {
		c := m[i]
		switch {
		case isIdentStart(c):
			name, _, k := identAt(m, i)
			if k < 0 || name != "uniqExact" && name != "uniqExactIf" {
				return nil, false
			}
			end := closeParen(m, k)
			if end < 0 {
				return nil, false
			}
			args := topLevelArgs(m[k+1 : end])
			if name == "uniqExactIf" {
				if len(args) < 2 {
					return nil, false
				}
				s.conds = append(s.conds, args[len(args)-1])
				args = args[:len(args)-1]
				fmt.Fprintf(&b, "countIf(_f%d)", len(s.conds)-1)
			} else {
				b.WriteString("count()")
			}
			k2 := strings.Join(args, ", ")
			if k2 == "" || key != "" && k2 != key {
				return nil, false
			}
			key, s.key = k2, args
			i = end + 1
		case c >= '0' && c <= '9' || strings.IndexByte(" .+-*/()", c) >= 0:
			b.WriteByte(c)
			i++
		default:
			return nil, false
		}
	}
	if key == "" {
		return nil, false
	}
	s.outer = b.String()
	return s, true
}

// topLevelArgs splits a call's argument text at its top-level commas, each
// argument trimmed.
func topLevelArgs(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\'':
			for i++; i < len(s) && s[i] != '\''; i++ {
				if s[i] == '\\' {
					i++
				}
			}
		case '(', '[':
			depth++
		case ')', ']':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

// planDistinct writes planOver's statement for a measure split by
// splitDistinct, without a breakdown (dim empty): the same columns and rows
// (bucket, dim, value, whole). Each key collects its buckets in an array
// (groupArray, then arrayDistinct: cheaper than a set per key when most keys
// have one row); a breakdown's dims would make them arrays of tuples with a
// string, slower than the one-pass plan, so a breakdown keeps that.
func planDistinct(s *distinctSplit, src planSource, bucket string, where []string) string {
	var collect, flags []string
	wholeFlags := []string{}
	for i, c := range s.conds {
		collect = append(collect, fmt.Sprintf("groupArrayIf(%s, %s) AS _c%d", bucket, c, i))
		flags = append(flags, fmt.Sprintf("has(_c%d, _b)", i))
		wholeFlags = append(wholeFlags, fmt.Sprintf("notEmpty(_c%d)", i))
	}
	for _, k := range s.key {
		where = append(where, "isNotNull("+k+")")
	}
	cols := []string{"_t.1 AS _bucket", "_t.2 AS _whole"}
	for i := range s.conds {
		cols = append(cols, fmt.Sprintf("_t.%d AS _f%d", i+3, i))
	}
	tail := func(xs []string) string {
		if len(xs) == 0 {
			return ""
		}
		return ", " + strings.Join(xs, ", ")
	}
	return "SELECT _bucket AS bucket, '' AS dim, CAST(" + s.outer + " AS Nullable(Float64)) AS value, toBool(_whole) AS whole\n" +
		"FROM (\n  SELECT " + strings.Join(cols, ", ") + "\n  FROM (\n" +
		"    SELECT arrayJoin(arrayConcat(\n" +
		"        arrayMap(_b -> (_b, 0" + tail(flags) + "), arrayDistinct(_all)),\n" +
		"        [(defaultValueOfArgumentType(_all[1]), 1" + tail(wholeFlags) + ")])) AS _t\n" +
		"    FROM (\n      SELECT groupArray(" + bucket + ") AS _all" + tail(collect) + "\n" +
		"      FROM " + src.from + "\n      WHERE " + strings.Join(where, "\n        AND ") + "\n" +
		"      GROUP BY " + strings.Join(s.key, ", ") + ")))\n" +
		"GROUP BY _bucket, _whole\nORDER BY whole, bucket, dim"
}
