package warehouse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	convsql "github.com/converge-dev/converge/sql"
)

// Migration is one numbered schema file.
type Migration struct {
	Version  uint32
	Name     string // file name without the number and .sql
	SQL      string
	Checksum string // SHA-256 of the file
}

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// Migrations lists the embedded migrations in order. A file whose name does
// not follow NNNN_name.sql, or two files with one number, is an error.
func Migrations() ([]Migration, error) { return loadMigrations(convsql.Schema()) }

func loadMigrations(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var out []Migration
	seen := map[uint32]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("sql/schema/%s: name must be NNNN_name.sql (lower case)", e.Name())
		}
		v, _ := strconv.ParseUint(m[1], 10, 32)
		if prev, dup := seen[uint32(v)]; dup {
			return nil, fmt.Errorf("sql/schema/%s: number %s is also used by %s", e.Name(), m[1], prev)
		}
		seen[uint32(v)] = e.Name()
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		out = append(out, Migration{Version: uint32(v), Name: m[2], SQL: string(b), Checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// ErrMigrationLocked is returned when another process is migrating the same database.
var ErrMigrationLocked = errors.New("another converge is migrating this database")

// Migrate applies every migration not applied yet, in order, and records each
// in schema_migrations. It is safe to run again (applied ones are skipped;
// one whose file changed since it was applied is an error) and refuses to run
// while another Migrate holds the lock on the same database. A statement that
// concerns one of AppTables runs in the app database; before the pending
// migrations, the lock holder moves the AppTables it finds in the main
// database there (stores migrated before the app database existed).
//
// It logs one line at INFO when it applied any, "created store in DIR: 54
// migrations applied" for a new store, "migrated store in DIR: 3 migrations
// applied" for an upgrade, and each migration at DEBUG: a first start says
// what happened in one line, not one per file.
func (s *Store) Migrate(ctx context.Context) (applied []Migration, err error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	return s.migrate(ctx, ms)
}

func (s *Store) migrate(ctx context.Context, ms []Migration) (applied []Migration, err error) {
	plan, err := s.migrationPlan(ms)
	if err != nil {
		return nil, err
	}
	b := bookkeeping(s.cfg.Cluster)
	if s.cfg.Cluster != "" {
		if err := s.checkCluster(ctx, s.Conn); err != nil {
			return nil, err
		}
	}
	if err := s.Conn.Exec(ctx, b.create); err != nil {
		return nil, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	if err := s.checkBookkeeping(ctx); err != nil {
		return nil, err
	}
	unlock, err := s.lockMigrations(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if b.sync != "" {
		// The lock holder reads the records every node has written.
		if err := s.Conn.Exec(ctx, b.sync); err != nil {
			return nil, fmt.Errorf("migrate: sync schema_migrations: %w", err)
		}
	}
	if _, err := s.moveAppTables(ctx); err != nil {
		return nil, err
	}

	done := map[uint32]string{}
	rows, err := s.Conn.Query(ctx, "SELECT version, checksum FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v uint32
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			rows.Close()
			return nil, err
		}
		done[v] = sum
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	defer func() { s.logMigrated(applied, len(done) == 0, err) }()
	for i, m := range ms {
		if sum, ok := done[m.Version]; ok {
			if sum != m.Checksum {
				return applied, fmt.Errorf("migrate: sql/schema/%04d_%s.sql changed after it was applied (checksum %s… in the store, %s… now); add a new migration instead of editing an applied one", m.Version, m.Name, sum[:12], m.Checksum[:12])
			}
			continue
		}
		began := time.Now()
		for k, q := range plan[i] {
			conn := s.Conn
			if q.app {
				conn = s.App
			}
			if err := conn.Exec(ctx, q.sql); err != nil {
				where := ""
				if len(plan[i]) > 1 {
					where = fmt.Sprintf(" (cluster statement %d of %d)", k+1, len(plan[i]))
				}
				return applied, fmt.Errorf("migrate: sql/schema/%04d_%s.sql%s: %w", m.Version, m.Name, where, err)
			}
		}
		if err := s.Conn.Exec(ctx, "INSERT INTO schema_migrations (version, name, checksum, applied_at, applied_by) VALUES ({v:UInt32}, {n:String}, {c:String}, now64(3), {by:String})",
			clickhouse.Named("v", m.Version), clickhouse.Named("n", m.Name), clickhouse.Named("c", m.Checksum), clickhouse.Named("by", fmt.Sprintf("%s pid %d", host, os.Getpid()))); err != nil {
			return applied, fmt.Errorf("migrate: record %04d_%s: %w", m.Version, m.Name, err)
		}
		s.log.Debug("migration applied", "version", m.Version, "name", m.Name, "took", time.Since(began).Round(time.Millisecond).String())
		applied = append(applied, m)
	}
	return applied, nil
}

// planned is one statement of a migration and the database it runs in.
type planned struct {
	sql string
	app bool // in the app database (it concerns one of AppTables)
}

// logMigrated says in one INFO line what a Migrate did, when it applied any migration (a run
// that failed part way says how far it got, its error is the caller's to report).
func (s *Store) logMigrated(applied []Migration, fresh bool, err error) {
	if len(applied) == 0 {
		return
	}
	n := fmt.Sprintf("%d migrations", len(applied))
	if len(applied) == 1 {
		n = "1 migration"
	}
	last := applied[len(applied)-1]
	attrs := []any{"schema_version", last.Version}
	switch {
	case err != nil:
		s.log.Info(fmt.Sprintf("store in %s: %s applied before the error", s.where(), n), attrs...)
	case fresh:
		s.log.Info(fmt.Sprintf("created store in %s: %s applied", s.where(), n), attrs...)
	default:
		attrs = append(attrs, "first", fmt.Sprintf("%04d_%s", applied[0].Version, applied[0].Name), "last", fmt.Sprintf("%04d_%s", last.Version, last.Name))
		s.log.Info(fmt.Sprintf("migrated store in %s: %s applied", s.where(), n), attrs...)
	}
}

// where names the store for a person: the data directory of the embedded store, the database
// and server of a remote one.
func (s *Store) where() string {
	if s.Engine != nil {
		return s.cfg.DataDir
	}
	return fmt.Sprintf("database %s on %s", s.Database, s.Describe())
}

// migrationPlan is the statements of each migration: its file on one
// server, the file rewritten for the cluster in cluster mode; each runs in
// the main database or, if it concerns one of AppTables, the app database.
func (s *Store) migrationPlan(ms []Migration) ([][]planned, error) {
	plan := make([][]planned, len(ms))
	if s.cfg.Cluster == "" {
		for i, m := range ms {
			app, err := fileInApp(m.SQL)
			if err != nil {
				return nil, fmt.Errorf("sql/schema/%04d_%s.sql: %w", m.Version, m.Name, err)
			}
			plan[i] = []planned{{sql: m.SQL, app: app}}
		}
		return plan, nil
	}
	if s.Engine != nil {
		return nil, errors.New("clickhouse.cluster: the embedded store is a single node and never runs cluster mode")
	}
	cms, err := ClusterMigrations(ms, s.cfg.Cluster, s.Database, s.AppDatabase)
	if err != nil {
		return nil, err
	}
	for i, cm := range cms {
		for k, q := range cm.Statements {
			plan[i] = append(plan[i], planned{sql: q, app: cm.InApp[k]})
		}
	}
	return plan, nil
}

// bookkeepingDDL are the statements of the migrations' own tables.
type bookkeepingDDL struct {
	create string // schema_migrations: one row per applied migration
	lock   string // takes the migration lock: succeeds for one caller only
	unlock string
	sync   string // makes this node's schema_migrations complete; "" on one server
}

// bookkeeping is the DDL of the migrations' own tables for cluster ("" = one
// server). On a cluster:
//   - schema_migrations is a ReplicatedMergeTree created ON CLUSTER with one
//     Keeper path for every node of every shard (a migration runs ON CLUSTER,
//     so its record belongs to all of them): a record written through any
//     node reaches every node and outlives the loss of one, and the lock
//     holder syncs its replica before reading. It is not sharded: every node
//     answers "what is applied" alone.
//   - the lock is a Memory table created ON CLUSTER without IF NOT EXISTS:
//     Keeper's distributed DDL queue orders two concurrent CREATEs the same
//     way on every node, so the first succeeds everywhere and the second
//     fails everywhere (TABLE_ALREADY_EXISTS). Memory, as on one server, so a
//     lock left by a crash goes with a restart of the servers; `converge
//     migrate --force-unlock` drops it ON CLUSTER.
func bookkeeping(cluster string) bookkeepingDDL {
	const cols = ` (version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC'), applied_by String)`
	const lockCols = ` (holder String, since DateTime64(3, 'UTC')) ENGINE = Memory`
	if cluster == "" {
		return bookkeepingDDL{
			create: "CREATE TABLE IF NOT EXISTS schema_migrations" + cols + " ENGINE = MergeTree ORDER BY version",
			lock:   "CREATE TABLE schema_migrations_lock" + lockCols,
			unlock: "DROP TABLE IF EXISTS schema_migrations_lock",
		}
	}
	on := " ON CLUSTER " + quoteIdent(cluster)
	return bookkeepingDDL{
		create: "CREATE TABLE IF NOT EXISTS schema_migrations" + on + cols +
			" ENGINE = ReplicatedMergeTree('/clickhouse/converge/{database}/schema_migrations', '{shard}-{replica}') ORDER BY version",
		lock:   "CREATE TABLE schema_migrations_lock" + on + lockCols,
		unlock: "DROP TABLE IF EXISTS schema_migrations_lock" + on,
		sync:   "SYSTEM SYNC REPLICA schema_migrations",
	}
}

// checkBookkeeping refuses a database migrated in the other mode: cluster
// mode does not convert a single server's tables (nor the reverse), and
// carrying on would mix replicated and unreplicated tables.
func (s *Store) checkBookkeeping(ctx context.Context) error {
	var engine string
	if err := s.Conn.QueryRow(ctx, "SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = 'schema_migrations'").Scan(&engine); err != nil {
		return fmt.Errorf("migrate: read the engine of schema_migrations: %w", err)
	}
	replicated := strings.HasPrefix(engine, "Replicated")
	switch {
	case s.cfg.Cluster != "" && !replicated:
		return fmt.Errorf("clickhouse.cluster: database %s on %s was migrated without a cluster (schema_migrations is %s); cluster mode does not convert a single server's tables: migrate into a new database (clickhouse.database) and copy the data (docs/cluster.md)", s.Database, s.Describe(), engine)
	case s.cfg.Cluster == "" && replicated:
		return fmt.Errorf("clickhouse.cluster: database %s on %s was migrated in cluster mode (schema_migrations is %s); set clickhouse.cluster to the cluster it was created on", s.Database, s.Describe(), engine)
	}
	return nil
}

// lockMigrations takes the migration lock (see bookkeeping): CREATE TABLE
// without IF NOT EXISTS succeeds for exactly one caller. The table is a
// Memory table, so a lock left by a crashed process goes away with a server
// restart (and with the process, for the embedded store); `converge migrate
// --force-unlock` drops it by hand.
func (s *Store) lockMigrations(ctx context.Context) (func(), error) {
	host, _ := os.Hostname()
	holder := fmt.Sprintf("%s pid %d", host, os.Getpid())
	b := bookkeeping(s.cfg.Cluster)
	if err := s.Conn.Exec(ctx, b.lock); err != nil {
		var ex *clickhouse.Exception
		if (errors.As(err, &ex) && ex.Code == 57) || s.lockExists(ctx) { // 57: TABLE_ALREADY_EXISTS
			var who string
			var since time.Time
			_ = s.Conn.QueryRow(ctx, "SELECT holder, since FROM schema_migrations_lock LIMIT 1").Scan(&who, &since)
			if who == "" && s.cfg.Cluster != "" { // the holder is recorded on the node it went through
				return nil, fmt.Errorf("%w (no holder recorded on this node: taken through another node of cluster %s); if that process is gone, run `converge migrate --force-unlock`", ErrMigrationLocked, s.cfg.Cluster)
			}
			return nil, fmt.Errorf("%w (%s, since %s); if that process is gone, run `converge migrate --force-unlock`", ErrMigrationLocked, who, since.Format(time.RFC3339))
		}
		return nil, fmt.Errorf("migrate: take lock: %w", err)
	}
	if err := s.Conn.Exec(ctx, "INSERT INTO schema_migrations_lock VALUES ({h:String}, now64(3))", clickhouse.Named("h", holder)); err != nil {
		s.log.Warn("migrate: record lock holder", "err", err)
	}
	return func() {
		if err := s.ForceUnlock(context.WithoutCancel(ctx)); err != nil {
			s.log.Error("migrate: release lock", "err", err)
		}
	}, nil
}

// lockExists reports whether the lock table exists (on a cluster an ON
// CLUSTER CREATE that failed on the nodes reports their error, whose code
// need not reach the client).
func (s *Store) lockExists(ctx context.Context) bool {
	var n uint64
	err := s.Conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'schema_migrations_lock'").Scan(&n)
	return err == nil && n > 0
}

// ForceUnlock drops the migration lock (on every node of a cluster).
func (s *Store) ForceUnlock(ctx context.Context) error {
	return s.Conn.Exec(ctx, bookkeeping(s.cfg.Cluster).unlock)
}
