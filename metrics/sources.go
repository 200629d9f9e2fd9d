package metrics

import (
	"io/fs"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	convsql "github.com/converge-dev/converge/sql"
)

var (
	// A name after FROM or JOIN; a "(" after it makes it a table function or a
	// parameterized view.
	tableRefRe = regexp.MustCompile("(?i)\\b(?:FROM|JOIN)\\s+`?([A-Za-z_][A-Za-z0-9_]*)`?(\\s*\\(|\\s|$|\\))")
	cteRe      = regexp.MustCompile(`(?i)\b([A-Za-z_][A-Za-z0-9_]*)\s+AS\s*\(`)
	viewRe     = regexp.MustCompile("(?is)^\\s*CREATE\\s+(?:OR\\s+REPLACE\\s+)?VIEW\\s+(?:IF\\s+NOT\\s+EXISTS\\s+)?`?([A-Za-z_][A-Za-z0-9_]*)`?\\s+AS\\s+(.*)$")
	commentRe  = regexp.MustCompile(`(?m)--.*$`)
)

// Tables are the tables a simple or custom metric's SQL reads (names after
// FROM and JOIN that are not its own WITH subqueries), sorted. A view created
// by converge's migrations (sql/schema: the *_resolved views, the
// parameterized view attribution) stands for the tables it reads, since its
// data changes when theirs does. Derived metrics read their inputs' tables
// (see Registry.Sources).
func (d *Definition) Tables() []string {
	set := map[string]bool{}
	// A comment may say "from" or "join" before any word: it reads nothing.
	resolveTables(commentRe.ReplaceAllString(d.SQL, ""), schemaViews(), set, map[string]bool{})
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// tablesOf are the tables sql reads, sorted (views replaced by what they read).
func tablesOf(sql string) []string {
	return (&Definition{SQL: sql}).Tables()
}

// isViewRollup reports whether table is a view rollup's.
func isViewRollup(table string) bool {
	return slices.ContainsFunc(viewRollups, func(v *viewRollup) bool { return v.table == table })
}

// resolveTables adds to set the tables sql reads, replacing each view in
// views by what its body reads (seen guards against a view reading itself).
func resolveTables(sql string, views map[string]string, set, seen map[string]bool) {
	ctes := map[string]bool{}
	for _, m := range cteRe.FindAllStringSubmatch(sql, -1) {
		ctes[strings.ToLower(m[1])] = true
	}
	for _, m := range tableRefRe.FindAllStringSubmatch(sql, -1) {
		n, call := m[1], strings.Contains(m[2], "(")
		if ctes[strings.ToLower(n)] {
			continue
		}
		if body, ok := views[n]; ok {
			if !seen[n] {
				seen[n] = true
				resolveTables(body, views, set, seen)
			}
			continue
		}
		if call { // a table function such as numbers(10)
			continue
		}
		set[n] = true
	}
}

// schemaViews maps each view the embedded migrations create to its body
// (comments removed).
var schemaViews = sync.OnceValue(func() map[string]string {
	views := map[string]string{}
	fsys := convsql.Schema()
	names, _ := fs.Glob(fsys, "*.sql")
	slices.Sort(names)
	for _, name := range names {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			continue
		}
		if m := viewRe.FindStringSubmatch(commentRe.ReplaceAllString(string(b), "")); m != nil {
			views[m[1]] = m[2]
		}
	}
	return views
})
