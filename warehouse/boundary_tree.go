package warehouse

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// The engine's side of the boundary (boundary.go): what EXPLAIN QUERY TREE
// says a statement, or a view's definition, reads, and what those tables
// and views are.

// Lines of EXPLAIN QUERY TREE: a table, a table function, and (in the
// parse tree, run_passes=0) an identifier. Each line is read on its own: a
// line made up by a name with a line break in it (a CTE called
// "x\nTABLE id: 1, …") can only name one more thing to check, never hide one;
// an alias is matched past, up to the field that follows it.
var (
	treeTable      = regexp.MustCompile(`^\s*TABLE id: \d+, (?:alias: .*, )?table_name: (.*?)(?:, [a-z_]+: .*)?$`)
	treeFunction   = regexp.MustCompile(`^\s*TABLE_FUNCTION id: \d+, (?:alias: .*, )?table_function_name: ([^,\s]*)`)
	treeIdentifier = regexp.MustCompile(`^\s*IDENTIFIER id: \d+, (?:alias: .*, )?identifier: (.*?)(?:, [a-z_]+: .*)?$`)
)

// ref is a table: its database and name.
type ref struct{ db, name string }

// tree runs EXPLAIN QUERY TREE on query and returns the tables, table
// functions and (parse only) identifiers its lines name. parseOnly asks for
// the parse tree (run_passes=0): names are not resolved and nothing runs, so
// it may apply the query's own SETTINGS (readonly=2, which allows no write).
func (b *boundary) tree(ctx context.Context, query string, params clickhouse.Parameters, parseOnly bool) (tables []ref, funcs, idents []string, err error) {
	settings, explain := b.settings, "EXPLAIN QUERY TREE "
	if parseOnly {
		settings, explain = clickhouse.Settings{}, "EXPLAIN QUERY TREE run_passes = 0 "
		for k, v := range b.settings {
			settings[k] = v
		}
		settings["readonly"] = 2
	}
	opts := []clickhouse.QueryOption{clickhouse.WithSettings(settings)}
	if params != nil {
		opts = append(opts, clickhouse.WithParameters(params))
	}
	rows, err := b.conn.Query(clickhouse.Context(ctx, opts...), explain+query)
	if err != nil {
		return nil, nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return nil, nil, nil, err
		}
		if m := treeTable.FindStringSubmatch(line); m != nil {
			db, name, _ := strings.Cut(m[1], ".")
			if r := (ref{db, name}); !slices.Contains(tables, r) {
				tables = append(tables, r)
			}
		} else if m := treeFunction.FindStringSubmatch(line); m != nil {
			if !slices.Contains(funcs, m[1]) {
				funcs = append(funcs, m[1])
			}
		} else if m := treeIdentifier.FindStringSubmatch(line); m != nil && !slices.Contains(idents, m[1]) {
			idents = append(idents, m[1])
		}
	}
	return tables, funcs, idents, rows.Err()
}

// analyze is step 2 for query, a part of the statement whose tokens are toks
// (the statement itself, or metric SQL): first the table functions of its
// parse tree (refused before the analysis could run them), then every table
// and table function of its analysis.
func (b *boundary) analyze(ctx context.Context, query string, toks []sqlToken, params clickhouse.Parameters, depth int) error {
	if err := b.parsed(ctx, query, b.st.Database, toks, params, depth); err != nil {
		return b.unknownTable(err, toks)
	}
	tables, funcs, _, err := b.tree(ctx, query, params, false)
	if err != nil {
		return b.unknownTable(err, toks)
	}
	for _, f := range funcs {
		if !allowedTableFunctions[f] {
			return b.refuse(f+"()", b.nameOffset(toks, "", f), "table function %s() is not allowed: %s", f, tableFunctionWhy(f))
		}
	}
	return b.checkRefs(ctx, tables, toks, depth, true)
}

// parsed checks what the parse tree of query (a statement, or a view's
// definition, in database db; toks its tokens) names, before anything of it
// runs: its table functions, and each identifier that names a table or view
// (qualified with a database, or unqualified in db; an identifier that names
// nothing, a column or a CTE, is skipped). A column or CTE that happens to
// have a view's name gets that view checked, which can only refuse more.
func (b *boundary) parsed(ctx context.Context, query, db string, toks []sqlToken, params clickhouse.Parameters, depth int) error {
	_, funcs, idents, err := b.tree(ctx, query, params, true)
	if err != nil {
		return err
	}
	refs, err := b.tableFunctions(ctx, funcs, db, toks)
	if err != nil {
		return err
	}
	if err := b.checkRefs(ctx, refs, toks, depth, true); err != nil {
		return err
	}
	dbs, err := b.databases(ctx)
	if err != nil {
		return err
	}
	refs = refs[:0]
	for _, id := range idents {
		d, rest, qualified := strings.Cut(id, ".")
		switch {
		case !qualified:
			refs = append(refs, ref{db, id})
		case slices.Contains(dbs, d):
			name, _, _ := strings.Cut(rest, ".") // db.table.column
			refs = append(refs, ref{d, name})
		}
		// else a column qualified with a table or alias
	}
	return b.checkRefs(ctx, refs, toks, depth, false)
}

// tableFunctions checks the table functions of a parse tree (funcs; toks
// the text's tokens): each is one of allowedTableFunctions, or a
// parameterized view (unqualified: of database db), whose refs it returns
// for checkRefs.
func (b *boundary) tableFunctions(ctx context.Context, funcs []string, db string, toks []sqlToken) ([]ref, error) {
	var views []ref
	for _, f := range funcs {
		if allowedTableFunctions[f] {
			continue
		}
		r := ref{db, f}
		if d, n, ok := strings.Cut(f, "."); ok {
			r = ref{d, n}
		}
		refused := b.refuse(f+"()", b.nameOffset(toks, "", r.name), "table function %s() is not allowed: %s", f, tableFunctionWhy(r.name))
		if blockedFunction(r.name) != "" {
			return nil, refused
		}
		var n uint64
		if err := b.conn.QueryRow(clickhouse.Context(ctx, clickhouse.WithSettings(b.settings)),
			"SELECT count() FROM system.tables WHERE database = {db:String} AND name = {n:String} AND engine = 'View'",
			clickhouse.Named("db", r.db), clickhouse.Named("n", r.name)).Scan(&n); err != nil {
			return nil, err
		}
		if n == 0 && r.db != b.st.AppDatabase {
			return nil, refused
		}
		views = append(views, r)
	}
	return views, nil
}

// checkRefs checks tables by their databases: the app database and other
// databases are refused, system tables against allowedSystemTables, and
// those of the main database and information_schema by what they are.
// Unless exist, refs that name nothing are skipped (identifiers of a parse
// tree, which may be columns).
func (b *boundary) checkRefs(ctx context.Context, refs []ref, toks []sqlToken, depth int, exist bool) error {
	lookup := map[string][]string{} // database → names, of the main database and information_schema
	var dbs []string
	for _, t := range refs {
		full := t.db + "." + t.name
		switch {
		case t.db == b.st.AppDatabase:
			return b.appTable(full, b.nameOffset(toks, t.db, t.name))
		case t.db == "system":
			if !allowedSystemTables[t.name] {
				return b.systemTable(full, b.nameOffset(toks, t.db, t.name))
			}
			continue
		case t.db == b.st.Database, strings.EqualFold(t.db, "information_schema"):
		default:
			return b.refuse(full, b.nameOffset(toks, t.db, t.name), "table %s is in database %s: %s reads database %s (and the system tables that describe it)", full, t.db, b.who, b.st.Database)
		}
		if _, ok := lookup[t.db]; !ok {
			dbs = append(dbs, t.db)
		}
		if !slices.Contains(lookup[t.db], t.name) {
			lookup[t.db] = append(lookup[t.db], t.name)
		}
	}
	for _, db := range dbs {
		if err := b.objects(ctx, db, lookup[db], toks, depth, exist); err != nil {
			return err
		}
	}
	return nil
}

// unknownIdentifier is the name in the engine's UNKNOWN_TABLE message.
var unknownIdentifier = regexp.MustCompile(`Unknown table expression identifier '([^']*)'`)

// unknownTable turns the analyzer's "unknown table users" (an app table named
// as if it were in the main database, as before the app database existed)
// into the refusal that says where it went and why it is out of reach.
func (b *boundary) unknownTable(err error, toks []sqlToken) error {
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) || ex.Code != 60 {
		return err
	}
	m := unknownIdentifier.FindStringSubmatch(ex.Message)
	if m == nil {
		return err
	}
	db, name := "", m[1]
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		db, name = name[:i], name[i+1:]
	}
	if !IsAppTable(name) || db != "" && db != b.st.Database {
		return err
	}
	return b.appTable(b.st.AppDatabase+"."+name, b.nameOffset(toks, b.st.Database, name))
}

// objects checks the tables and views names of database db that a query
// reads, by their engines.
func (b *boundary) objects(ctx context.Context, db string, names []string, toks []sqlToken, depth int, exist bool) error {
	names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return b.seen[db+"."+n] })
	if len(names) == 0 {
		return nil // each checked already (the analysis names what the parse tree did)
	}
	if b.seen == nil {
		b.seen = map[string]bool{}
	}
	rows, err := b.conn.Query(clickhouse.Context(ctx, clickhouse.WithSettings(b.settings)),
		"SELECT name, engine, engine_full, as_select, arrayMap(p -> tupleElement(p, 1), parameterized_view_parameters), arrayMap(p -> tupleElement(p, 2), parameterized_view_parameters) FROM system.tables WHERE database = {db:String} AND has({names:Array(String)}, name)",
		clickhouse.Named("db", db), clickhouse.Named("names", names))
	if err != nil {
		return err
	}
	type object struct {
		name, engine, full, def string
		pnames, ptypes          []string
	}
	var objs []object
	for rows.Next() {
		var o object
		if err := rows.Scan(&o.name, &o.engine, &o.full, &o.def, &o.pnames, &o.ptypes); err != nil {
			rows.Close()
			return err
		}
		objs = append(objs, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, n := range names {
		at := slices.IndexFunc(objs, func(o object) bool { return o.name == n })
		offset := b.nameOffset(toks, db, n)
		full := db + "." + n
		if at < 0 {
			if !exist {
				continue
			}
			return b.refuse(full, offset, "%s is not a table of system.tables: %s cannot check what it reads", full, b.who)
		}
		o := objs[at]
		if b.seen[full] {
			continue // being checked: a column of its definition named like the view
		}
		b.seen[full] = true
		switch {
		case o.engine == "View":
			if depth >= maxViewDepth {
				return b.refuse(full, offset, "view %s is more than %d views deep: %s cannot check what it reads", full, maxViewDepth, b.who)
			}
			if err := b.definition(ctx, db, o.def, o.pnames, o.ptypes, depth+1); err != nil {
				var re *RefusedError
				if errors.As(err, &re) {
					return &RefusedError{Reason: re.Reason + " (read through the view " + full + ")", Table: re.Table, Offset: offset}
				}
				return fmt.Errorf("view %s: %w", full, err)
			}
		case o.engine == "Distributed":
			if target := distributedDatabase(o.full); target != b.st.Database {
				return b.refuse(full, offset, "table %s is a Distributed table over database %q: %s reads database %s", full, target, b.who, b.st.Database)
			}
		case !ownDataEngine(o.engine):
			return b.refuse(full, offset, "table %s is a %s table, which reads other tables or data outside the store: %s cannot check what it reads", full, o.engine, b.who)
		}
	}
	return nil
}

// definition checks the definition of a view of database db (params: its
// parameters' names and types, for a parameterized view). The engine stores
// a view's query with every table qualified with its database, so the parse
// tree names them all: each identifier whose first part is a database is a
// table (an alias that happens to be a database's name is checked as one,
// which can only refuse more). Nothing of it runs: a view's own SETTINGS and
// parameters need no values that make sense.
func (b *boundary) definition(ctx context.Context, db, def string, pnames, ptypes []string, depth int) error {
	toks, err := tokenize(def)
	if err != nil {
		return &RefusedError{Reason: fmt.Sprintf("cannot read the view's definition: %v", err), Offset: -1}
	}
	if err := b.names(toks); err != nil {
		return err
	}
	params, err := b.viewParams(ctx, pnames, ptypes)
	if err != nil {
		return err
	}
	return b.parsed(ctx, def, db, toks, params, depth)
}

// databases are the names of the store's databases.
func (b *boundary) databases(ctx context.Context) ([]string, error) {
	if b.dbs != nil {
		return b.dbs, nil
	}
	rows, err := b.conn.Query(clickhouse.Context(ctx, clickhouse.WithSettings(b.settings)), "SELECT name FROM system.databases")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	dbs := []string{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		dbs = append(dbs, n)
	}
	b.dbs = dbs
	return dbs, rows.Err()
}

// viewParams are placeholder values of a parameterized view's parameters,
// their types' defaults: the parse tree needs values, not particular ones.
func (b *boundary) viewParams(ctx context.Context, names, types []string) (clickhouse.Parameters, error) {
	if len(names) == 0 {
		return nil, nil
	}
	p := clickhouse.Parameters{}
	for i, n := range names {
		var v string
		if err := b.conn.QueryRow(clickhouse.Context(ctx, clickhouse.WithSettings(b.settings)),
			"SELECT toString(defaultValueOfTypeName({t:String}))", clickhouse.Named("t", types[i])).Scan(&v); err != nil {
			return nil, fmt.Errorf("default of view parameter %s %s: %w", n, types[i], err)
		}
		p[n] = v
	}
	return p, nil
}

// distributedDatabase is the database a Distributed table reads, from its
// engine_full: Distributed('cluster', 'database', 'table'[, key]).
func distributedDatabase(engineFull string) string {
	toks, err := tokenize(engineFull)
	if err != nil || len(toks) < 5 || !toks[1].is("(") || !toks[3].is(",") {
		return ""
	}
	t := toks[4]
	switch t.kind {
	case tokString:
		if _, v, err := quotedEnd(t.text, 0); err == nil {
			return v
		}
	case tokWord, tokIdent:
		return t.name()
	}
	return ""
}

// tableFunctionWhy says why a table function is refused.
func tableFunctionWhy(name string) string {
	if why := blockedFunction(name); why != "" {
		return why
	}
	switch strings.ToLower(name) {
	case "view", "viewifpermitted", "viewexplain":
		return "write the query as a subquery, which the check can see into"
	}
	allowed := make([]string, 0, len(allowedTableFunctions))
	for f := range allowedTableFunctions {
		allowed = append(allowed, f)
	}
	slices.Sort(allowed)
	return "it reads tables or data that the check cannot name (allowed: " + strings.Join(allowed, ", ") + ")"
}

// nameOffset is where toks name the table db.name: qualified or, in the
// main database (where unqualified names resolve), unqualified; for db ""
// the first word name (a function). -1 when they do not: a table read
// through a view, which the caller names.
func (b *boundary) nameOffset(toks []sqlToken, db, name string) int {
	bare := -1
	for k, t := range toks {
		if (t.kind != tokWord && t.kind != tokIdent) || t.name() != name {
			continue
		}
		qualified := k >= 2 && toks[k-1].is(".")
		switch {
		case qualified && toks[k-2].name() == db:
			return toks[k-2].pos
		case !qualified && bare < 0 && (db == "" || db == b.st.Database):
			bare = t.pos
		}
	}
	return bare
}

// closing is the index of the ")" that closes the "(" at toks[i], or -1.
func closing(toks []sqlToken, i int) int {
	depth := 0
	for k := i; k < len(toks); k++ {
		switch {
		case toks[k].is("("):
			depth++
		case toks[k].is(")"):
			depth--
			if depth == 0 {
				return k
			}
		}
	}
	return -1
}
