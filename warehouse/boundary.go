package warehouse

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/converge-dev/converge/warehouse/embedded"
)

// The boundary is what analysts' SQL may read: the console (page, downloads,
// `converge sql --read-only`, `converge export sql`), the endpoint's analyst
// user and metric definitions. Inside it: the tables and views of the main
// database (Store.Database), the system tables of allowedSystemTables and
// information_schema (views over them), and the table functions of
// allowedTableFunctions. Outside: the app database (converge's own tables,
// AppTables), every other database and system table, and anything that reads
// tables the check cannot name (Merge, Buffer and Dictionary tables,
// materialized views, dictionaries, view() and merge()-like table functions).
//
// CheckBoundary enforces it in three steps, all before the statement runs:
//
//  1. On tokens (no engine involved): a name qualified with the app database,
//     or with system for a table outside allowedSystemTables, anywhere in
//     the statement; the functions that read a dictionary or Join table by
//     name (dictGet…, joinGet…) or reach files, URLs and other servers
//     (blockedFunction). Unqualified names resolve in the main database,
//     which holds no app table, so a table of the app database can only be
//     named this way, or through a view or table function.
//  2. By the engine's parse tree (EXPLAIN QUERY TREE run_passes = 0: nothing
//     is resolved, nothing runs): its table functions (a parameterized view
//     is checked as a view), and each identifier that names a table or view.
//     A view is checked through its definition (system.tables.as_select,
//     in which the engine qualified every table at CREATE), recursively, by
//     steps 1 and 2; a Distributed table by the database it reads (a
//     cluster's tables read the main database's shards); a table whose engine
//     reads other tables (Merge, Buffer, Dictionary, …) is refused.
//  3. By the engine's analyzer (EXPLAIN QUERY TREE): every table and table
//     function the query reads, through CTEs, subqueries, JOIN, IN, UNION and
//     scalar subqueries, checked as in step 2.
//
// Steps 1 and 2 come before 3 because the analysis runs constant scalar
// subqueries (to fold them): an error while folding
// toUInt8((SELECT password_hash FROM …)) would carry the value in its
// message. Once they have passed, what the analysis can run is inside the
// boundary.
//
// On a ClickHouse server the boundary is also the console's own user's grants
// (Config.ConsoleUser, docs/cluster.md); the embedded engine has no users or
// grants, so there this check is the boundary, and everywhere it is defence
// in depth.

// allowedSystemTables are the system tables analysts' SQL may read: those
// that describe the store (databases, tables, columns, parts, merges, disks)
// and the engine (functions, formats, settings, …), whose rows are names,
// types, sizes and counts. Every other system table is refused: an allow-list,
// because each ClickHouse release adds system tables, and a deny-list would
// open every new one that carries other sessions' query text
// (query_log, processes, query_cache, asynchronous_inserts, text_log,
// session_log, …), error messages with values in them (errors,
// dictionaries), credentials (named_collections, users, grants) or data
// (zookeeper, distribution_queue) until someone noticed.
var allowedSystemTables = map[string]bool{
	// generators
	"one": true, "numbers": true, "numbers_mt": true, "zeros": true, "zeros_mt": true, "primes": true,
	// the store
	"databases": true, "tables": true, "columns": true, "parts": true, "parts_columns": true,
	"projection_parts": true, "projection_parts_columns": true, "projections": true,
	"data_skipping_indices": true, "merges": true, "disks": true, "storage_policies": true,
	"clusters": true, "macros": true, "completions": true,
	// the engine
	"functions": true, "table_functions": true, "table_engines": true, "database_engines": true,
	"formats": true, "data_type_families": true, "aggregate_function_combinators": true,
	"collations": true, "time_zones": true, "keywords": true, "codecs": true, "settings": true,
	"merge_tree_settings": true, "settings_changes": true, "build_options": true, "licenses": true,
	"contributors": true, "metrics": true, "events": true, "asynchronous_metrics": true,
}

// allowedTableFunctions generate rows or parse literals; every other table
// function reads something the analysis does not name (merge, loop,
// mergeTreeIndex, dictionary, view, timeSeries*, …) or outside the store
// (file, url, s3, remote, …, also refused by blockedFunction).
var allowedTableFunctions = map[string]bool{
	"numbers": true, "numbers_mt": true, "zeros": true, "zeros_mt": true, "primes": true,
	"generateRandom": true, "generateSeries": true, "generate_series": true,
	"values": true, "SQLStandardValues": true, "null": true, "format": true,
}

// ownDataEngines are table engines whose rows are their own; a table of
// another engine reads other tables or outside data (Merge, Buffer,
// Dictionary, MaterializedView, Alias, URL, File, Kafka, …) and is refused,
// except View (checked through its definition) and Distributed (checked by
// the database it reads).
func ownDataEngine(engine string) bool {
	switch engine {
	case "Memory", "Log", "TinyLog", "StripeLog", "Null", "Set", "Join", "KeeperMap", "EmbeddedRocksDB", "GenerateRandom":
		return true
	}
	return strings.HasSuffix(engine, "MergeTree")
}

// maxViewDepth bounds views over views.
const maxViewDepth = 8

// CheckBoundary refuses, with a *RefusedError naming the table (Table,
// Offset), a statement that reads outside the boundary (see the top of this
// file); it returns the engine's error for a statement the analyzer rejects
// (an unknown column, say). stmt is one statement such as CheckReadOnly
// accepts, or a metric's query, which may carry SETTINGS: its analysis runs
// with readonly=2, which lets them apply and writes nothing (the functions
// that reach files, URLs or other servers are refused by name first).
// params are its query parameters. who names the reader in refusals ("the
// console", "a metric").
func (s *Store) CheckBoundary(ctx context.Context, stmt string, params clickhouse.Parameters, who string) error {
	b := &boundary{st: s, conn: s.Conn, who: who, settings: clickhouse.Settings{"readonly": 2, "max_execution_time": int(DefaultConsoleTimeout.Seconds())}}
	return b.check(ctx, stmt, params, 0)
}

// AnalystCheck is the check of the embedded endpoint's analyst user
// (embedded.Analyst.Check; cmd/converge serve), with the request's query
// parameters: sql must be a statement the console accepts, but for a FORMAT
// clause at its end (analysts' tools ask for their format), and inside the
// boundary. A refusal is an error that
// says why; an error of the engine's analysis (an unknown column, say) is
// returned as the engine's *embedded.Exception, for the endpoint to answer
// as a ClickHouse server would.
func (s *Store) AnalystCheck(ctx context.Context, sql string, params map[string]string) error {
	stmt, err := checkReadOnly(sql, true)
	var re *RefusedError
	if err == nil {
		b := &boundary{st: s, conn: s.Conn, who: "the endpoint's analyst user", settings: clickhouse.Settings{
			"readonly": 1, "max_execution_time": int(DefaultConsoleTimeout.Seconds()), "max_memory_usage": DefaultConsoleMemory}}
		var p clickhouse.Parameters
		if len(params) > 0 {
			p = clickhouse.Parameters(params)
		}
		err = b.check(ctx, withoutFormat(stmt), p, 0)
	}
	var ex *clickhouse.Exception
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		return errors.New(re.Reason)
	case errors.As(err, &ex):
		name := ex.CodeName
		if name == "" {
			name = "UNKNOWN_EXCEPTION"
		}
		return embedded.NewException(int(ex.Code), name, ex.Message)
	}
	return err
}

// withoutFormat is stmt without a FORMAT clause at its end.
func withoutFormat(stmt string) string {
	toks, err := tokenize(stmt)
	if err != nil || len(toks) < 2 {
		return stmt
	}
	if f := toks[len(toks)-2]; f.is("FORMAT") && (toks[len(toks)-1].kind == tokWord || toks[len(toks)-1].kind == tokIdent) {
		return strings.TrimSpace(stmt[:f.pos])
	}
	return stmt
}

// checkBoundary is the console's CheckBoundary: as its user, with its limits.
func (c Console) checkBoundary(ctx context.Context, st *Store, stmt string) error {
	c = c.WithDefaults()
	b := &boundary{st: st, conn: st.console, who: "the console", settings: clickhouse.Settings{
		"readonly":           1,
		"max_execution_time": max(1, int(c.Timeout.Seconds())),
		"max_memory_usage":   c.MaxMemory,
	}}
	err := b.check(ctx, stmt, nil, 0)
	var re *RefusedError
	if err != nil && !errors.As(err, &re) {
		return c.queryError(err)
	}
	return err
}

// boundary is one check: the connection and settings its analysis runs with.
type boundary struct {
	st       *Store
	conn     driver.Conn
	who      string
	settings clickhouse.Settings
	dbs      []string        // the store's databases, once read
	seen     map[string]bool // tables and views checked (database.name)
}

func (b *boundary) refuse(table string, offset int, format string, args ...any) error {
	return &RefusedError{Reason: fmt.Sprintf(format, args...), Table: table, Offset: offset}
}

func (b *boundary) appTable(table string, offset int) error {
	return b.refuse(table, offset, "table %s is converge's own (%s): %s cannot read it", table, strings.Join(AppTables, ", "), b.who)
}

func (b *boundary) systemTable(table string, offset int) error {
	return b.refuse(table, offset, "table %s is not open to %s: it may hold other sessions' queries, credentials or converge's own data (system tables that describe the store and the engine are: system.tables, system.columns, system.parts, system.settings, system.functions, …)", table, b.who)
}

// check checks the statement sql (its parameters params), which is the
// definition of a view depth views deep.
func (b *boundary) check(ctx context.Context, sql string, params clickhouse.Parameters, depth int) error {
	toks, err := tokenize(sql)
	if err != nil {
		return &RefusedError{Reason: fmt.Sprintf("cannot read the statement: %v", err), Offset: -1}
	}
	if err := b.names(toks); err != nil {
		return err
	}
	i := 0
	for i < len(toks) && toks[i].is("(") {
		i++
	}
	if i == len(toks) {
		return nil
	}
	switch {
	case toks[i].is("SHOW"):
		return b.show(toks, i)
	case toks[i].is("DESCRIBE"), toks[i].is("DESC"):
		j := i + 1
		if j < len(toks) && toks[j].is("TABLE") {
			j++
		}
		switch {
		case j < len(toks) && toks[j].is("("):
			end := closing(toks, j)
			if end < 0 {
				return nil // the engine reports the syntax error
			}
			return b.analyze(ctx, sql[toks[j+1].pos:toks[end].pos], toks, params, depth)
		case j+1 < len(toks) && (toks[j].kind == tokWord || toks[j].kind == tokIdent) && toks[j+1].is("("):
			// The columns of a table function: its arguments are analysed.
			if _, err := b.tableFunctions(ctx, []string{toks[j].name()}, b.st.Database, toks); err != nil {
				return err
			}
		}
		return nil // the columns of a table: no rows are read
	case toks[i].is("EXPLAIN"):
		j := explainedQuery(toks, i)
		for j > i+1 && toks[j-1].is("(") {
			j--
		}
		if j >= len(toks) {
			return nil
		}
		return b.analyze(ctx, sql[toks[j].pos:], toks, params, depth)
	}
	return b.analyze(ctx, sql, toks, params, depth)
}

// names is step 1: names refused before the engine analyses anything.
func (b *boundary) names(toks []sqlToken) error {
	ident := func(k int) bool { return k < len(toks) && (toks[k].kind == tokWord || toks[k].kind == tokIdent) }
	for k := range toks {
		switch {
		case ident(k) && k+2 < len(toks) && toks[k+1].is(".") && ident(k+2):
			db, name := toks[k].name(), toks[k+2].name()
			switch {
			case strings.EqualFold(db, b.st.AppDatabase):
				return b.appTable(db+"."+name, toks[k].pos)
			case strings.EqualFold(db, "system") && !allowedSystemTables[strings.ToLower(name)]:
				return b.systemTable("system."+name, toks[k].pos)
			}
		case ident(k) && k+1 < len(toks) && toks[k+1].is("("):
			if why := blockedFunction(toks[k].name()); why != "" {
				return b.refuse(toks[k].name()+"()", toks[k].pos, "function %s() is not allowed: %s", toks[k].name(), why)
			}
			n := strings.ToLower(toks[k].name())
			if strings.HasPrefix(n, "dict") || strings.HasPrefix(n, "joinget") {
				if strings.HasPrefix(n, "dict") {
					return b.refuse(toks[k].name()+"()", toks[k].pos, "function %s() is not allowed: it reads a dictionary, whose source %s cannot check", toks[k].name(), b.who)
				}
				return b.refuse(toks[k].name()+"()", toks[k].pos, "function %s() is not allowed: it reads a Join table by name, which %s cannot check", toks[k].name(), b.who)
			}
		}
	}
	return nil
}

// readOnlyShows are the SHOW statements that list names and definitions of
// what the boundary holds; the others show other sessions' queries
// (PROCESSLIST), users, grants, quotas and policies.
var readOnlyShows = []string{"TABLES", "DATABASES", "COLUMNS", "FIELDS", "CREATE", "DICTIONARIES", "INDEX", "INDEXES",
	"INDICES", "KEYS", "FUNCTIONS", "ENGINES", "SETTINGS", "SETTING", "CLUSTERS", "CLUSTER", "MERGES"}

// show checks SHOW … at toks[i].
func (b *boundary) show(toks []sqlToken, i int) error {
	j := i + 1
	for j < len(toks) && (toks[j].is("FULL") || toks[j].is("EXTENDED") || toks[j].is("TEMPORARY") || toks[j].is("CHANGED")) {
		j++
	}
	what := "nothing"
	if j < len(toks) {
		what = strings.ToUpper(toks[j].text)
	}
	if j < len(toks) && toks[j].is("CREATE") && j+1 < len(toks) {
		for _, w := range []string{"USER", "ROLE", "ROLES", "QUOTA", "QUOTAS", "POLICY", "POLICIES", "ROW", "PROFILE", "PROFILES", "SETTINGS", "USERS"} {
			if toks[j+1].is(w) {
				return b.refuse("", toks[j].pos, "SHOW CREATE %s is not allowed: %s reads tables and views only", w, b.who)
			}
		}
	}
	if !slices.ContainsFunc(readOnlyShows, func(w string) bool { return j < len(toks) && toks[j].is(w) }) {
		return b.refuse("", toks[i].pos, "SHOW %s is not allowed: it shows other sessions' queries, users or grants (%s may SHOW %s)", what, b.who, strings.Join(readOnlyShows, ", "))
	}
	return nil
}
