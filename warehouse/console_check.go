package warehouse

import (
	"fmt"
	"slices"
	"strings"
)

// The console's checks of a statement before it runs (see Console).

// RefusedError is a statement the console does not run. Reason names the
// offending statement, function, setting, clause or table.
type RefusedError struct {
	Reason string
	// Table is set when the statement reads outside the boundary (see
	// CheckBoundary): the table (database.name) or table function. Offset
	// is where the statement names it (or the view it is read through), in
	// bytes, or -1 when only the engine's analysis found it.
	Table  string
	Offset int
}

func (e *RefusedError) Error() string { return "read-only console: " + e.Reason }

func refuse(format string, args ...any) error {
	return &RefusedError{Reason: fmt.Sprintf(format, args...)}
}

var allowedStatements = []string{"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN"}

// CheckReadOnly checks sql as the console does before running it and returns
// the statement to run (without a trailing semicolon), or a *RefusedError.
func CheckReadOnly(sql string) (string, error) { return checkReadOnly(sql, false) }

// checkReadOnly is CheckReadOnly; allowFormat lets the statement end with a
// FORMAT clause (the endpoint's analyst user: tools choose their format).
func checkReadOnly(sql string, allowFormat bool) (string, error) {
	toks, err := tokenize(sql)
	if err != nil {
		return "", refuse("cannot read the statement: %v", err)
	}
	end := slices.IndexFunc(toks, func(t sqlToken) bool { return t.is(";") })
	stmt := strings.TrimSpace(sql)
	if end >= 0 {
		if i := slices.IndexFunc(toks[end:], func(t sqlToken) bool { return !t.is(";") }); i >= 0 {
			second := toks[end+i]
			return "", refuse("one statement at a time: a second statement starts at offset %d (%s…)", second.pos, snippet(sql[second.pos:]))
		}
		stmt = strings.TrimSpace(sql[:toks[end].pos])
		toks = toks[:end]
	}
	if len(toks) == 0 {
		return "", refuse("empty statement")
	}
	if err := checkKind(toks); err != nil {
		return "", err
	}
	for i, t := range toks {
		next := func(k int) (sqlToken, bool) {
			if i+k < len(toks) {
				return toks[i+k], true
			}
			return sqlToken{}, false
		}
		n1, ok1 := next(1)
		n2, ok2 := next(2)
		switch {
		case (t.kind == tokWord || t.kind == tokIdent) && ok1 && n1.is("("):
			if why := blockedFunction(t.name()); why != "" {
				return "", refuse("function %s() is not allowed: %s", t.name(), why)
			}
		case t.is("SETTINGS") && ok1 && (n1.kind == tokWord || n1.kind == tokIdent) && ok2 && n2.is("="):
			return "", refuse("SETTINGS clause (%s = …) is not allowed: the console's settings and limits cannot be overridden", n1.name())
		case t.is("INTO") && ok1 && n1.is("OUTFILE"):
			return "", refuse("INTO OUTFILE is not allowed: the console writes no files")
		case !allowFormat && t.is("FORMAT") && ok1 && n1.kind == tokWord && !slices.ContainsFunc([]string{"ASC", "DESC", "ASCENDING", "DESCENDING"}, n1.is) &&
			(!ok2 || n2.is(")")):
			return "", refuse("FORMAT %s is not allowed: the console chooses the output format", n1.text)
		}
	}
	return stmt, nil
}

// checkKind allows SELECT, WITH, SHOW, DESCRIBE/DESC and EXPLAIN of a query.
func checkKind(toks []sqlToken) error {
	i := 0
	for i < len(toks) && toks[i].is("(") {
		i++
	}
	if i == len(toks) || toks[i].kind != tokWord {
		return refuse("the statement must start with one of %s", strings.Join(allowedStatements, ", "))
	}
	kind := strings.ToUpper(toks[i].text)
	if !slices.Contains(allowedStatements, kind) || i > 0 && kind != "SELECT" && kind != "WITH" {
		return refuse("%s statements are not allowed: the console runs %s only", kind, strings.Join(allowedStatements, ", "))
	}
	if kind != "EXPLAIN" {
		return nil
	}
	j := explainedQuery(toks, i)
	if j >= len(toks) || !toks[j].is("SELECT") && !toks[j].is("WITH") {
		what := "nothing"
		if j < len(toks) {
			what = strings.ToUpper(toks[j].text)
		}
		return refuse("EXPLAIN %s is not allowed: only queries (SELECT, WITH) can be explained", what)
	}
	return nil
}

// explainedQuery is the index of the token that starts what the EXPLAIN at
// toks[i] explains: EXPLAIN [AST|SYNTAX|QUERY TREE|PLAN|PIPELINE|ESTIMATE|TABLE
// OVERRIDE] [name = value, …] query.
func explainedQuery(toks []sqlToken, i int) int {
	explainWords := []string{"AST", "SYNTAX", "QUERY", "TREE", "PLAN", "PIPELINE", "ESTIMATE", "TABLE", "OVERRIDE"}
	j := i + 1
	for skip := true; skip && j < len(toks); {
		switch {
		case slices.ContainsFunc(explainWords, toks[j].is), toks[j].is(","), toks[j].is("("):
			j++
		case toks[j].kind == tokWord && j+1 < len(toks) && toks[j+1].is("="):
			j += 3 // name = value
		default:
			skip = false
		}
	}
	return j
}

// blockedFunction says why a function (or table function) may not be called
// from the console, or "" when it may: those that read or write files, URLs,
// object stores, other databases or servers, or run programs. Names are
// compared case-insensitively (the engine's own lookups are case-sensitive,
// so this only refuses more): file, fileCluster, url, urlCluster, input,
// catboostEvaluate, and everything starting with remote (remoteSecure),
// cluster (clusterAllReplicas), s3, gcs, oss, cosn, hdfs, azureBlobStorage,
// iceberg, deltaLake, hudi, paimon, mysql, postgres, mongo, redis, sqlite,
// jdbc, odbc, executable, arrowFlight, ytsaurus.
func blockedFunction(name string) string {
	n := strings.ToLower(name)
	switch n {
	case "file", "filecluster":
		return "it reads files of the server"
	case "url", "urlcluster":
		return "it reads URLs"
	case "input":
		return "it reads inserted data"
	case "catboostevaluate":
		return "it loads a model file"
	}
	for _, p := range []string{"remote", "cluster"} {
		if strings.HasPrefix(n, p) {
			return "it queries other servers"
		}
	}
	for _, p := range []string{"s3", "gcs", "oss", "cosn", "hdfs", "azureblobstorage", "iceberg", "deltalake", "hudi", "paimon"} {
		if strings.HasPrefix(n, p) {
			return "it reads object storage or a data lake"
		}
	}
	for _, p := range []string{"mysql", "postgres", "mongo", "redis", "sqlite", "jdbc", "odbc", "arrowflight", "ytsaurus"} {
		if strings.HasPrefix(n, p) {
			return "it queries another database"
		}
	}
	if strings.HasPrefix(n, "executable") {
		return "it runs programs"
	}
	return ""
}

func snippet(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 30 {
		return string(r[:30])
	}
	return s
}

// TableRefs lists the tables sql names after FROM and JOIN, in database db
// (unqualified names, or qualified with db), sorted and without repeats.
// Table functions and subqueries are not tables; a name that is a CTE is
// listed too (the caller keeps the names that exist).
func TableRefs(sql, db string) []string {
	toks, err := tokenize(sql)
	if err != nil {
		return nil
	}
	var out []string
	for i := 0; i+1 < len(toks); i++ {
		if !toks[i].is("FROM") && !toks[i].is("JOIN") {
			continue
		}
		t := toks[i+1]
		if t.kind != tokWord && t.kind != tokIdent {
			continue
		}
		name, j := t.name(), i+2
		if j+1 < len(toks) && toks[j].is(".") && (toks[j+1].kind == tokWord || toks[j+1].kind == tokIdent) {
			if t.name() != db {
				continue
			}
			name, j = toks[j+1].name(), j+2
		}
		if j < len(toks) && toks[j].is("(") {
			continue
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
