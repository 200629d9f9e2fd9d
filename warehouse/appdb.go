package warehouse

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// AppTables are converge's own tables: who may sign in and how (password
// hashes, sessions, API token hashes), what people did (audit log, console
// history) and what converge ran (report runs). They live in the app
// database (Store.AppDatabase, clickhouse.app_database), apart from the data
// analysts read, and only Store.App reads or writes them. The console, the
// endpoint's analyst user and metric SQL never read them (CheckBoundary).
//
// The list decides where a table lives: a migration statement that creates,
// alters or fills one of these runs in the app database, and Migrate moves
// one it still finds in the main database. Adding a table here is the whole
// change (a store that already has it in the main database gets it moved).
var AppTables = []string{
	"users",
	"sessions",
	"api_tokens",
	"audit_log",
	"console_history",
	"report_runs",
	"login_attempts",
}

// IsAppTable reports whether name is one of AppTables.
func IsAppTable(name string) bool { return slices.Contains(AppTables, name) }

// statementTarget is the object a migration statement creates, changes or
// writes ("" for a statement that names none, such as a SELECT).
func statementTarget(d ddl) string {
	i := 0
	skip := func(words ...string) {
		if d.is(i, words...) {
			i += len(words)
		}
	}
	switch {
	case d.is(0, "CREATE"):
		i = 1
		skip("OR", "REPLACE")
		skip("TEMPORARY")
		skip("MATERIALIZED")
		if !d.is(i, "TABLE") && !d.is(i, "VIEW") && !d.is(i, "DICTIONARY") {
			return ""
		}
		i++
		skip("IF", "NOT", "EXISTS")
	case d.is(0, "ALTER"), d.is(0, "OPTIMIZE"), d.is(0, "DROP"), d.is(0, "TRUNCATE"), d.is(0, "RENAME"), d.is(0, "EXCHANGE"):
		i = 1
		if d.is(i, "TABLE") || d.is(i, "VIEW") || d.is(i, "DICTIONARY") || d.is(i, "TABLES") {
			i++
		}
		skip("IF", "EXISTS")
	case d.is(0, "INSERT"):
		i = 1
		skip("INTO")
		skip("TABLE")
	default:
		return ""
	}
	if i >= len(d.toks) || (d.toks[i].kind != tokWord && d.toks[i].kind != tokIdent) {
		return ""
	}
	return d.toks[i].name()
}

// statementReads are the unqualified names a statement reads after FROM and
// JOIN (tables, views, or names of its own CTEs).
func statementReads(d ddl) []string {
	var out []string
	for i := 0; i+1 < len(d.toks); i++ {
		if !d.toks[i].is("FROM") && !d.toks[i].is("JOIN") {
			continue
		}
		t := d.toks[i+1]
		if (t.kind == tokWord || t.kind == tokIdent) && !d.is(i+2, ".") && !d.is(i+2, "(") && !slices.Contains(out, t.name()) {
			out = append(out, t.name())
		}
	}
	return out
}

// inApp reports whether a migration statement runs in the app database: it
// concerns one of AppTables. A statement of the main database may not read an
// app table, nor an app table's statement a table of the main database: each
// database must be complete by itself, and a view over users in the main
// database would put the hashes back in the console's reach.
func inApp(d ddl) (bool, error) {
	target := statementTarget(d)
	app := IsAppTable(target)
	if d.is(0, "RENAME") || d.is(0, "EXCHANGE") {
		if app {
			return false, fmt.Errorf("%s: renaming an application table (%s) is Migrate's move to the app database, not a migration's", d.head(3), strings.Join(AppTables, ", "))
		}
		return false, nil
	}
	for _, r := range statementReads(d) {
		if r == target {
			continue
		}
		switch {
		case !app && IsAppTable(r):
			return false, fmt.Errorf("%s: reads %s, one of converge's own tables (%s), which live in the app database: a statement of the main database may not read them", d.head(4), r, strings.Join(AppTables, ", "))
		case app && !IsAppTable(r):
			return false, fmt.Errorf("%s: reads %s from the app database, which holds only converge's own tables (%s)", d.head(4), r, strings.Join(AppTables, ", "))
		}
	}
	return app, nil
}

// fileInApp splits a migration file into statements and reports whether they
// run in the app database; a file's statements all run in one of the two.
func fileInApp(sql string) (bool, error) {
	toks, err := tokenize(sql)
	if err != nil {
		return false, err
	}
	var app, seen bool
	first := ""
	for len(toks) > 0 {
		end := slices.IndexFunc(toks, func(t sqlToken) bool { return t.is(";") })
		if end < 0 {
			end = len(toks)
		}
		if end > 0 {
			d := ddl{src: sql, toks: toks[:end]}
			a, err := inApp(d)
			if err != nil {
				return false, err
			}
			if seen && a != app {
				return false, fmt.Errorf("%s: a migration's statements run in one database, but %s runs in the other: split the file", d.head(4), first)
			}
			app, seen, first = a, true, d.head(4)
		}
		toks = toks[min(end+1, len(toks)):]
	}
	return app, nil
}

// moveAppTables moves the AppTables a store still holds in its main database
// (stores migrated before the app database existed) into the app database,
// rows and all: RENAME TABLE across databases, which in ClickHouse's Atomic
// databases (the default, and chDB's) moves no data and keeps the table's UUID,
// parts and, for a replicated table, its Keeper path ({database} is expanded
// when the table is created, so the path does not follow the rename). It runs
// under the migration lock, before pending migrations (which may alter the
// moved tables), and is idempotent: a table already moved is left alone, and a
// cluster move interrupted between its steps resumes at the step it stopped.
func (s *Store) moveAppTables(ctx context.Context) ([]string, error) {
	have := func(db, name string) (engine string, err error) {
		err = s.Conn.QueryRow(ctx, "SELECT any(engine) FROM system.tables WHERE database = {db:String} AND name = {n:String}",
			clickhouse.Named("db", db), clickhouse.Named("n", name)).Scan(&engine)
		return engine, err
	}
	var moved []string
	for _, t := range AppTables {
		var stmts []string
		if s.cfg.Cluster == "" {
			inMain, err := have(s.Database, t)
			if err != nil {
				return moved, fmt.Errorf("migrate: look for %s.%s: %w", s.Database, t, err)
			}
			if inMain == "" {
				continue
			}
			inApp, err := have(s.AppDatabase, t)
			if err != nil {
				return moved, fmt.Errorf("migrate: look for %s.%s: %w", s.AppDatabase, t, err)
			}
			if inApp != "" {
				return moved, fmt.Errorf("migrate: table %s is in both %s and %s; converge's own tables belong to %s (clickhouse.app_database): compare the two and drop the one that is not in use", t, s.Database, s.AppDatabase, s.AppDatabase)
			}
			stmts = []string{"RENAME TABLE " + quoteIdent(s.Database) + "." + quoteIdent(t) + " TO " + quoteIdent(s.AppDatabase) + "." + quoteIdent(t)}
		} else {
			var err error
			if stmts, err = s.clusterMoveStatements(ctx, t, have); err != nil {
				return moved, err
			}
		}
		for _, q := range stmts {
			if err := s.Conn.Exec(ctx, q); err != nil {
				return moved, fmt.Errorf("migrate: move %s to %s: %s: %w", t, s.AppDatabase, q, err)
			}
		}
		if len(stmts) > 0 {
			s.log.Info("migration: table moved to the app database", "table", t, "from", s.Database, "to", s.AppDatabase)
			moved = append(moved, t)
		}
	}
	return moved, nil
}

// clusterMoveStatements are the steps that move table t of a cluster (its
// shards' t_local and the Distributed t over them) that are still to be done.
func (s *Store) clusterMoveStatements(ctx context.Context, t string, have func(db, name string) (string, error)) ([]string, error) {
	local := t + localSuffix
	var st ClusterMove
	var err error
	look := func(db, name string) string {
		if err != nil {
			return ""
		}
		var e string
		if e, err = have(db, name); err != nil {
			err = fmt.Errorf("migrate: look for %s.%s: %w", db, name, err)
		}
		return e
	}
	st.LocalInMain = look(s.Database, local) != ""
	st.LocalInApp = look(s.AppDatabase, local) != ""
	st.DistInMain = look(s.Database, t) != ""
	st.DistInApp = look(s.AppDatabase, t) != ""
	if err != nil {
		return nil, err
	}
	if st.LocalInMain && st.LocalInApp {
		return nil, fmt.Errorf("migrate: table %s is in both %s and %s; converge's own tables belong to %s (clickhouse.app_database): compare the two and drop the one that is not in use", local, s.Database, s.AppDatabase, s.AppDatabase)
	}
	if !st.LocalInMain && !st.DistInMain && (st.DistInApp || !st.LocalInApp) {
		return nil, nil // moved (or never in the main database)
	}
	from := s.AppDatabase
	if st.LocalInMain {
		from = s.Database
	}
	if err := s.Conn.QueryRow(ctx, "SELECT sorting_key, comment FROM system.tables WHERE database = {db:String} AND name = {n:String}",
		clickhouse.Named("db", from), clickhouse.Named("n", local)).Scan(&st.SortingKey, &st.Comment); err != nil {
		return nil, fmt.Errorf("migrate: read the sorting key of %s.%s: %w", from, local, err)
	}
	return ClusterMoveStatements(s.cfg.Cluster, s.Database, s.AppDatabase, t, st), nil
}

// ClusterMove is what a cluster holds of a table being moved to the app
// database: where its shards' table and its Distributed table are, and the
// shards' table's sorting key (the Distributed table's sharding key) and
// comment.
type ClusterMove struct {
	LocalInMain, LocalInApp bool
	DistInMain, DistInApp   bool
	SortingKey, Comment     string
}

// ClusterMoveStatements are the statements that move table t (validated
// names) from database main to app on cluster, given what is where:
//  1. RENAME TABLE main.t_local TO app.t_local ON CLUSTER: every node's
//     replica moves, with its rows and its Keeper path;
//  2. DROP TABLE main.t ON CLUSTER: the Distributed table names its
//     database, so it cannot follow; it holds no rows
//     (distributed_foreground_insert leaves no queue behind);
//  3. CREATE TABLE app.t ON CLUSTER AS app.t_local ENGINE = Distributed(…):
//     the same sharding (cityHash64 of the sorting key) and comment as the
//     migrations give it.
func ClusterMoveStatements(cluster, main, app, t string, st ClusterMove) []string {
	on := " ON CLUSTER " + quoteIdent(cluster)
	local := t + localSuffix
	var out []string
	if st.LocalInMain {
		out = append(out, "RENAME TABLE "+quoteIdent(main)+"."+quoteIdent(local)+" TO "+quoteIdent(app)+"."+quoteIdent(local)+on)
	}
	if st.DistInMain {
		out = append(out, "DROP TABLE "+quoteIdent(main)+"."+quoteIdent(t)+on)
	}
	if !st.DistInApp {
		key := "rand()"
		if k := strings.TrimSpace(st.SortingKey); k != "" {
			key = "cityHash64(" + k + ")"
		}
		q := "CREATE TABLE " + quoteIdent(app) + "." + quoteIdent(t) + on + " AS " + quoteIdent(app) + "." + quoteIdent(local) +
			"\nENGINE = Distributed(" + quoteString(cluster) + ", " + quoteString(app) + ", " + quoteString(local) + ", " + key + ")"
		if st.Comment != "" {
			q += "\nCOMMENT " + quoteString(st.Comment)
		}
		out = append(out, q)
	}
	return out
}
