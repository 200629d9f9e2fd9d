package warehouse

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Cluster mode (clickhouse.cluster; docs/cluster.md) runs the same migration
// files as a single server, rewritten statement by statement:
//
//   - a MergeTree-family table <t> becomes <t>_local, created ON CLUSTER as
//     Replicated<Engine>('/clickhouse/tables/{shard}/{database}/<t>',
//     '{replica}', <engine args>), plus <t> itself, a Distributed table over
//     the <t>_local of every shard, sharded by cityHash64(<sorting key>): the
//     rows a Replacing/Summing/Aggregating/Collapsing merge combines (equal
//     sorting keys: a record's versions) land on one shard, so FINAL, which
//     each shard applies to its own part of the table, stays exact;
//   - views, parameterized views, dictionaries, SQL functions and tables of
//     node-local engines (Memory, Join, Set, Log, …) are created ON CLUSTER,
//     unchanged, so every node has them; views read the Distributed names;
//   - ALTER, DROP, TRUNCATE and OPTIMIZE of a sharded table act ON CLUSTER on
//     <t>_local (and, for column changes and DROP, on the Distributed <t>);
//   - INSERT and SELECT run once, unchanged, through the Distributed tables;
//   - a statement that concerns one of AppTables runs in the app database,
//     so its Distributed table reads the app database's <t>_local.
//
// Anything else (a materialized view, CREATE … AS, RENAME, an engine with no
// rule, a name qualified with a database, …) is refused with the statement
// that needs a cluster form, so a new migration that cluster mode cannot
// express fails its golden test rather than a deployment.

// localSuffix names the per-shard table of a sharded one.
const localSuffix = "_local"

// ClusterMigration is a migration as cluster mode runs it: Statements in
// order, each one statement (the HTTP interface takes one at a time).
type ClusterMigration struct {
	Migration
	Statements []string
	// InApp[i] reports whether Statements[i] runs in the app database (it
	// concerns one of AppTables); the others run in the main database.
	InApp []bool
}

// clusterNameRe is what clickhouse.cluster accepts: the names remote_servers
// gives clusters, which are XML element names.
var clusterNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// ClusterMigrations rewrites ms, in order, for cluster, database and
// appDatabase (validated names; the app database holds AppTables). A
// migration is rewritten knowing what the ones before it created, so all of
// them are rewritten even when only the last is pending.
func ClusterMigrations(ms []Migration, cluster, database, appDatabase string) ([]ClusterMigration, error) {
	if !clusterNameRe.MatchString(cluster) {
		return nil, fmt.Errorf("clickhouse.cluster: %q is not a cluster name (letters, digits, _, - and .)", cluster)
	}
	if !identRe.MatchString(database) {
		return nil, fmt.Errorf("clickhouse.database: %q is not a valid database name (letters, digits, _)", database)
	}
	if !identRe.MatchString(appDatabase) {
		return nil, fmt.Errorf("clickhouse.app_database: %q is not a valid database name (letters, digits, _)", appDatabase)
	}
	r := newClusterRewriter(cluster, database, appDatabase)
	out := make([]ClusterMigration, 0, len(ms))
	for _, m := range ms {
		stmts, app, err := r.rewrite(m.SQL)
		if err != nil {
			return nil, fmt.Errorf("sql/schema/%04d_%s.sql: cluster mode: %w", m.Version, m.Name, err)
		}
		out = append(out, ClusterMigration{Migration: m, Statements: stmts, InApp: app})
	}
	return out, nil
}

// objKind is what a migration created under a name.
type objKind int

const (
	objSharded   objKind = iota + 1 // MergeTree family: <name>_local per shard + Distributed <name>
	objNodeTable                    // a table of a node-local engine, one per node
	objView                         // view or parameterized view
	objDictionary
	objFunction
)

type clusterRewriter struct {
	cluster  string // as written in clickhouse.cluster
	database string // the database of the statement being rewritten (main or app)
	main     string
	app      string
	objects  map[string]objKind // what the migrations so far created
}

func newClusterRewriter(cluster, database, app string) *clusterRewriter {
	return &clusterRewriter{cluster: cluster, database: database, main: database, app: app, objects: map[string]objKind{}}
}

// onCluster is the clause added after an object's name.
func (r *clusterRewriter) onCluster() string { return " ON CLUSTER " + quoteIdent(r.cluster) }

// mergeTreeEngines are sharded and replicated; the key is the engine's name
// as ClickHouse spells it (engine names are case-sensitive).
var mergeTreeEngines = map[string]bool{
	"MergeTree": true, "ReplacingMergeTree": true, "SummingMergeTree": true, "AggregatingMergeTree": true,
	"CollapsingMergeTree": true, "VersionedCollapsingMergeTree": true, "GraphiteMergeTree": true, "CoalescingMergeTree": true,
}

// nodeLocalEngines keep their data on the node that holds them (or, for
// KeeperMap, in Keeper): they are created on every node as they are.
var nodeLocalEngines = map[string]bool{
	"Memory": true, "Join": true, "Set": true, "Log": true, "TinyLog": true, "StripeLog": true, "Null": true,
	"Buffer": true, "Dictionary": true, "Merge": true, "KeeperMap": true, "GenerateRandom": true,
}

// rewrite returns the cluster statements of one migration file and, for
// each, whether it runs in the app database.
func (r *clusterRewriter) rewrite(sql string) ([]string, []bool, error) {
	toks, err := tokenize(sql)
	if err != nil {
		return nil, nil, err
	}
	var out []string
	var inAppDB []bool
	for len(toks) > 0 {
		end := slices.IndexFunc(toks, func(t sqlToken) bool { return t.is(";") })
		if end < 0 {
			end = len(toks)
		}
		if end > 0 {
			d := ddl{src: sql, toks: toks[:end]}
			app, err := inApp(d)
			if err != nil {
				return nil, nil, err
			}
			r.database = r.main
			if app {
				r.database = r.app
			}
			stmts, err := r.statement(d)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, stmts...)
			for range stmts {
				inAppDB = append(inAppDB, app)
			}
		}
		toks = toks[min(end+1, len(toks)):]
	}
	if len(out) == 0 {
		return nil, nil, fmt.Errorf("no statement")
	}
	return out, inAppDB, nil
}

// ddl is one statement: its tokens and the text they come from.
type ddl struct {
	src  string
	toks []sqlToken
}

// is reports whether token i exists and is each of words in turn.
func (d ddl) is(i int, words ...string) bool {
	for k, w := range words {
		if i+k < 0 || i+k >= len(d.toks) || !d.toks[i+k].is(w) {
			return false
		}
	}
	return true
}

// end is the byte offset just after token i.
func (d ddl) end(i int) int { return d.toks[i].pos + len(d.toks[i].text) }

// text is the source from token i through token j-1.
func (d ddl) text(i, j int) string {
	if i >= j {
		return ""
	}
	return d.src[d.toks[i].pos:d.end(j-1)]
}

// head names the statement for messages: its first words, up to the name.
func (d ddl) head(n int) string {
	words := make([]string, 0, n)
	for _, t := range d.toks[:min(n, len(d.toks))] {
		words = append(words, t.text)
	}
	return strings.Join(words, " ")
}

// walk calls f for each token from i on with its depth: the parentheses
// open around it (a "(" and its ")" at the depth outside them), until f
// returns false.
func (d ddl) walk(i int, f func(k, depth int) bool) {
	depth := 0
	for k := i; k < len(d.toks); k++ {
		if d.toks[k].is(")") {
			depth--
		}
		if !f(k, depth) {
			return
		}
		if d.toks[k].is("(") {
			depth++
		}
	}
}

// close returns the index of the ")" matching the "(" at i, or -1.
func (d ddl) close(i int) int {
	at := -1
	d.walk(i+1, func(k, depth int) bool {
		if depth < 0 {
			at = k
		}
		return at < 0
	})
	return at
}

// topLevel calls f for each token outside parentheses from i on (the
// parentheses themselves excepted), until f returns false.
func (d ddl) topLevel(i int, f func(k int) bool) {
	d.walk(i, func(k, depth int) bool {
		return depth != 0 || d.toks[k].is("(") || d.toks[k].is(")") || f(k)
	})
}

// find is the first top-level index from i on where words start, or -1.
func (d ddl) find(i int, words ...string) int {
	at := -1
	d.topLevel(i, func(k int) bool {
		if d.is(k, words...) {
			at = k
			return false
		}
		return true
	})
	return at
}

// edit replaces src[from:to] with repl.
type edit struct {
	from, to int
	repl     string
}

// apply returns the statement's text with edits (sorted, not overlapping).
func (d ddl) apply(edits ...edit) string {
	start, stop := d.toks[0].pos, d.end(len(d.toks)-1)
	var b strings.Builder
	at := start
	for _, e := range edits {
		b.WriteString(d.src[at:e.from])
		b.WriteString(e.repl)
		at = e.to
	}
	b.WriteString(d.src[at:stop])
	return b.String()
}

// objectName reads the object name at token i: a bare or quoted identifier
// not qualified with a database, and not followed by a cluster already.
func (d ddl) objectName(i int) (string, error) {
	if i >= len(d.toks) || (d.toks[i].kind != tokWord && d.toks[i].kind != tokIdent) {
		return "", fmt.Errorf("%s: expected a name", d.head(i+1))
	}
	name := d.toks[i].name()
	if d.is(i+1, ".") {
		return "", fmt.Errorf("%s: a name qualified with a database (%s.%s): migrations create their objects in the configured database (clickhouse.database)", d.head(i+1), name, d.text(i+2, i+3))
	}
	if d.is(i+1, "ON", "CLUSTER") {
		return "", fmt.Errorf("%s: already says ON CLUSTER: migrations are written for one server and cluster mode adds the cluster", d.head(i+1))
	}
	if d.is(i+1, "UUID") {
		return "", fmt.Errorf("%s: a UUID clause: cluster mode lets every node choose its own", d.head(i+1))
	}
	return name, nil
}

// existingName reads [IF EXISTS] name from token i: the name's index and
// the name.
func (d ddl) existingName(i int) (int, string, error) {
	if d.is(i, "IF", "EXISTS") {
		i += 2
	}
	name, err := d.objectName(i)
	return i, name, err
}

// rename writes name+localSuffix in the style of token i (bare or quoted).
func (d ddl) rename(i int) string {
	local := d.toks[i].name() + localSuffix
	if d.toks[i].kind == tokIdent || !identRe.MatchString(local) {
		return quoteIdent(local)
	}
	return local
}

func (r *clusterRewriter) statement(d ddl) ([]string, error) {
	switch {
	case d.is(0, "CREATE"):
		return r.create(d)
	case d.is(0, "ALTER"):
		return r.alter(d)
	case d.is(0, "DROP"):
		return r.drop(d)
	case d.is(0, "TRUNCATE"), d.is(0, "OPTIMIZE"):
		return r.onLocal(d)
	case d.is(0, "INSERT"), d.is(0, "SELECT"), d.is(0, "WITH"):
		// Data, not schema: run once, through the Distributed tables.
		return []string{d.apply()}, nil
	}
	return nil, fmt.Errorf("%s statements have no cluster form (cluster mode rewrites CREATE, ALTER, DROP, TRUNCATE and OPTIMIZE, and runs INSERT and SELECT through the Distributed tables)", strings.ToUpper(d.toks[0].text))
}

func (r *clusterRewriter) create(d ddl) ([]string, error) {
	i := 1
	orReplace := d.is(i, "OR", "REPLACE")
	if orReplace {
		i += 2
	}
	var kind objKind
	switch {
	case d.is(i, "TABLE"):
		if orReplace {
			return nil, fmt.Errorf("%s: replacing a replicated table would need a new Keeper path: add a migration that creates a new table instead", d.head(i+1))
		}
		i++
	case d.is(i, "VIEW"):
		kind = objView
		i++
	case d.is(i, "DICTIONARY"):
		kind = objDictionary
		i++
	case d.is(i, "FUNCTION"):
		kind = objFunction
		i++
	case d.is(i, "MATERIALIZED", "VIEW"), d.is(i, "LIVE", "VIEW"), d.is(i, "WINDOW", "VIEW"):
		return nil, fmt.Errorf("%s: cluster mode has no rule for it: a materialized view fires on the node an insert lands on, so it must read and write the %s tables of a shard; write that migration for the cluster by hand (docs/cluster.md)", d.head(i+3), localSuffix)
	default:
		return nil, fmt.Errorf("%s: cluster mode creates tables, views, dictionaries and functions only", d.head(i+1))
	}
	if d.is(i, "IF", "NOT", "EXISTS") {
		i += 3
	}
	name, err := d.objectName(i)
	if err != nil {
		return nil, err
	}
	if kind != 0 {
		r.objects[name] = kind
		return []string{d.apply(edit{d.end(i), d.end(i), r.onCluster()})}, nil
	}
	return r.createTable(d, i, name)
}

// createTable rewrites CREATE TABLE; nameAt is the index of the name token.
func (r *clusterRewriter) createTable(d ddl, nameAt int, name string) ([]string, error) {
	head := d.head(nameAt + 1)
	if as := d.find(nameAt+1, "AS"); as >= 0 {
		return nil, fmt.Errorf("%s: CREATE TABLE … AS has no cluster form: spell out the columns and the engine", head)
	}
	eng := d.find(nameAt+1, "ENGINE")
	if eng < 0 {
		return nil, fmt.Errorf("%s: no ENGINE clause: cluster mode chooses the replicated engine from it", head)
	}
	nameTok := eng + 1
	if d.is(nameTok, "=") {
		nameTok++
	}
	if nameTok >= len(d.toks) || d.toks[nameTok].kind != tokWord {
		return nil, fmt.Errorf("%s: no engine name after ENGINE", head)
	}
	engine := d.toks[nameTok].text
	engEnd := nameTok + 1 // one past the engine's last token
	var args string
	if d.is(engEnd, "(") {
		c := d.close(engEnd)
		if c < 0 {
			return nil, fmt.Errorf("%s: ENGINE = %s( is not closed", head, engine)
		}
		args, engEnd = d.text(engEnd+1, c), c+1
	}
	onCluster := edit{d.end(nameAt), d.end(nameAt), r.onCluster()}
	switch {
	case nodeLocalEngines[engine]:
		r.objects[name] = objNodeTable
		return []string{d.apply(onCluster)}, nil
	case mergeTreeEngines[engine]:
	case strings.HasPrefix(engine, "Replicated"), strings.HasPrefix(engine, "Shared"), engine == "Distributed":
		return nil, fmt.Errorf("%s: ENGINE = %s: migrations are written for one server (MergeTree family); cluster mode makes them replicated and distributed", head, engine)
	default:
		return nil, fmt.Errorf("%s: ENGINE = %s has no cluster rule (the MergeTree family is sharded and replicated; %s are created on every node)", head, engine, strings.Join(sortedNames(nodeLocalEngines), ", "))
	}
	if !identRe.MatchString(name) {
		return nil, fmt.Errorf("%s: a sharded table's name must be letters, digits and _ (it is part of its Keeper path)", head)
	}
	key, err := r.shardingKey(d, engEnd, head, engine)
	if err != nil {
		return nil, err
	}
	replArgs := fmt.Sprintf("'/clickhouse/tables/{shard}/{database}/%s', '{replica}'", name)
	if strings.TrimSpace(args) != "" {
		replArgs += ", " + args
	}
	local := d.apply(
		edit{d.toks[nameAt].pos, d.end(nameAt), d.rename(nameAt) + r.onCluster()},
		edit{d.toks[nameTok].pos, d.end(engEnd - 1), "Replicated" + engine + "(" + replArgs + ")"},
	)
	var dist strings.Builder
	dist.WriteString("CREATE TABLE ")
	if d.is(nameAt-3, "IF", "NOT", "EXISTS") {
		dist.WriteString("IF NOT EXISTS ")
	}
	dist.WriteString(d.toks[nameAt].text + r.onCluster() + " AS " + d.rename(nameAt) + "\n")
	fmt.Fprintf(&dist, "ENGINE = Distributed(%s, %s, %s, %s)", quoteString(r.cluster), quoteString(r.database), quoteString(name+localSuffix), key)
	if c := d.find(engEnd, "COMMENT"); c >= 0 && c+1 < len(d.toks) && d.toks[c+1].kind == tokString {
		dist.WriteString("\nCOMMENT " + d.toks[c+1].text)
	}
	r.objects[name] = objSharded
	return []string{local, dist.String()}, nil
}

// storageClauses end a table's ORDER BY expression.
var storageClauses = [][]string{{"PARTITION", "BY"}, {"PRIMARY", "KEY"}, {"SAMPLE", "BY"}, {"TTL"}, {"SETTINGS"}, {"COMMENT"}}

// shardingKey is the Distributed sharding expression of a MergeTree-family
// table: cityHash64 of its sorting key (ORDER BY), whose equal values are
// what Replacing/Summing/Aggregating/Collapsing merges combine. A plain
// MergeTree without a sorting key spreads rows at random.
func (r *clusterRewriter) shardingKey(d ddl, from int, head, engine string) (string, error) {
	ob := d.find(from, "ORDER", "BY")
	if ob < 0 {
		return "", fmt.Errorf("%s: no ORDER BY: cluster mode shards by the sorting key", head)
	}
	start, stop := ob+2, len(d.toks)
	d.topLevel(start, func(k int) bool {
		for _, c := range storageClauses {
			if d.is(k, c...) {
				stop = k
				return false
			}
		}
		return true
	})
	// (a, b) → a, b; tuple() and () → no key.
	if stop > start && d.is(start, "(") && d.close(start) == stop-1 {
		start, stop = start+1, stop-1
	} else if stop == start+3 && d.is(start, "tuple", "(", ")") {
		stop = start
	}
	if stop <= start {
		if engine != "MergeTree" {
			return "", fmt.Errorf("%s: %s without a sorting key: there is nothing to shard by that keeps the rows it merges on one shard", head, engine)
		}
		return "rand()", nil
	}
	return "cityHash64(" + d.text(start, stop) + ")", nil
}

func (r *clusterRewriter) alter(d ddl) ([]string, error) {
	if !d.is(1, "TABLE") {
		return nil, fmt.Errorf("%s: cluster mode rewrites ALTER TABLE only", d.head(2))
	}
	name, err := d.objectName(2)
	if err != nil {
		return nil, err
	}
	kind, ok := r.objects[name]
	switch {
	case !ok:
		return nil, fmt.Errorf("%s: no earlier migration creates %s", d.head(3), name)
	case kind == objDictionary || kind == objFunction:
		return nil, fmt.Errorf("%s: %s is not a table", d.head(3), name)
	case kind != objSharded:
		return []string{d.apply(edit{d.end(2), d.end(2), r.onCluster()})}, nil
	}
	local := d.apply(edit{d.toks[2].pos, d.end(2), d.rename(2) + r.onCluster()})
	// The Distributed table has columns but no data: it takes the column
	// changes (and its comment), the shards' tables take everything.
	var cols []string
	drops := false
	for _, c := range d.commands(3) {
		switch {
		case d.is(c[0], "ADD", "COLUMN"), d.is(c[0], "MODIFY", "COLUMN"), d.is(c[0], "RENAME", "COLUMN"),
			d.is(c[0], "COMMENT", "COLUMN"), d.is(c[0], "MODIFY", "COMMENT"):
		case d.is(c[0], "DROP", "COLUMN"):
			drops = true
		default:
			continue
		}
		cols = append(cols, d.text(c[0], c[1]))
	}
	if len(cols) == 0 {
		return []string{local}, nil
	}
	dist := "ALTER TABLE " + d.toks[2].text + r.onCluster() + " " + strings.Join(cols, ", ")
	if drops { // no query through the Distributed table may ask the shards for a dropped column
		return []string{dist, local}, nil
	}
	return []string{local, dist}, nil // an added column exists on the shards before it is asked for
}

// commands splits an ALTER's command list (from token i) at top-level
// commas: [start, end) token ranges.
func (d ddl) commands(i int) [][2]int {
	var out [][2]int
	start := i
	d.topLevel(i, func(k int) bool {
		if d.is(k, ",") {
			out = append(out, [2]int{start, k})
			start = k + 1
		}
		return true
	})
	if start < len(d.toks) {
		out = append(out, [2]int{start, len(d.toks)})
	}
	return out
}

func (r *clusterRewriter) drop(d ddl) ([]string, error) {
	i := 1
	var want []objKind
	switch {
	case d.is(i, "TABLE"):
		want = []objKind{objSharded, objNodeTable}
	case d.is(i, "VIEW"):
		want = []objKind{objView}
	case d.is(i, "DICTIONARY"):
		want = []objKind{objDictionary}
	case d.is(i, "FUNCTION"):
		want = []objKind{objFunction}
	default:
		return nil, fmt.Errorf("%s: cluster mode drops tables, views, dictionaries and functions only", d.head(2))
	}
	i, name, err := d.existingName(i + 1)
	if err != nil {
		return nil, err
	}
	kind, ok := r.objects[name]
	if !ok || !slices.Contains(want, kind) {
		return nil, fmt.Errorf("%s: no earlier migration creates %s as a %s", d.head(i+1), name, strings.ToLower(d.toks[1].text))
	}
	delete(r.objects, name)
	dist := d.apply(edit{d.end(i), d.end(i), r.onCluster()})
	if kind != objSharded {
		return []string{dist}, nil
	}
	local := d.apply(edit{d.toks[i].pos, d.end(i), d.rename(i) + r.onCluster()})
	return []string{dist, local}, nil
}

// onLocal rewrites TRUNCATE and OPTIMIZE: they act on stored data, so on the
// shards' tables of a sharded one.
func (r *clusterRewriter) onLocal(d ddl) ([]string, error) {
	i := 1
	if d.is(i, "TABLE") {
		i++
	}
	i, name, err := d.existingName(i)
	if err != nil {
		return nil, err
	}
	switch r.objects[name] {
	case objSharded:
		return []string{d.apply(edit{d.toks[i].pos, d.end(i), d.rename(i) + r.onCluster()})}, nil
	case objNodeTable:
		return []string{d.apply(edit{d.end(i), d.end(i), r.onCluster()})}, nil
	}
	return nil, fmt.Errorf("%s: no earlier migration creates a table %s", d.head(i+1), name)
}

// quoteString writes s as a ClickHouse string literal.
func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func sortedNames(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
