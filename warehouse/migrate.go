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
// while another Migrate holds the lock on the same database.
func (s *Store) Migrate(ctx context.Context) (applied []Migration, err error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	return s.migrate(ctx, ms)
}

func (s *Store) migrate(ctx context.Context, ms []Migration) (applied []Migration, err error) {
	if err := s.Conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations`+` (
		version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC'), applied_by String
	) ENGINE = MergeTree ORDER BY version`); err != nil {
		return nil, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	unlock, err := s.lockMigrations(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()

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
	for _, m := range ms {
		if sum, ok := done[m.Version]; ok {
			if sum != m.Checksum {
				return applied, fmt.Errorf("migrate: sql/schema/%04d_%s.sql changed after it was applied (checksum %s… in the store, %s… now); add a new migration instead of editing an applied one", m.Version, m.Name, sum[:12], m.Checksum[:12])
			}
			continue
		}
		if err := s.Conn.Exec(ctx, m.SQL); err != nil {
			return applied, fmt.Errorf("migrate: sql/schema/%04d_%s.sql: %w", m.Version, m.Name, err)
		}
		if err := s.Conn.Exec(ctx, "INSERT INTO schema_migrations (version, name, checksum, applied_at, applied_by) VALUES ({v:UInt32}, {n:String}, {c:String}, now64(3), {by:String})",
			clickhouse.Named("v", m.Version), clickhouse.Named("n", m.Name), clickhouse.Named("c", m.Checksum), clickhouse.Named("by", fmt.Sprintf("%s pid %d", host, os.Getpid()))); err != nil {
			return applied, fmt.Errorf("migrate: record %04d_%s: %w", m.Version, m.Name, err)
		}
		s.log.Info("migration applied", "version", m.Version, "name", m.Name)
		applied = append(applied, m)
	}
	return applied, nil
}

// lockMigrations takes the migration lock: CREATE TABLE without IF NOT EXISTS
// succeeds for exactly one caller. The table is a Memory table, so a lock left
// by a crashed process goes away with a server restart (and with the process,
// for the embedded store); `converge migrate --force-unlock` drops it by hand.
func (s *Store) lockMigrations(ctx context.Context) (func(), error) {
	host, _ := os.Hostname()
	holder := fmt.Sprintf("%s pid %d", host, os.Getpid())
	err := s.Conn.Exec(ctx, "CREATE TABLE schema_migrations_lock (holder String, since DateTime64(3, 'UTC')) ENGINE = Memory")
	if err != nil {
		var ex *clickhouse.Exception
		if errors.As(err, &ex) && ex.Code == 57 { // TABLE_ALREADY_EXISTS
			var who string
			var since time.Time
			_ = s.Conn.QueryRow(ctx, "SELECT holder, since FROM schema_migrations_lock LIMIT 1").Scan(&who, &since)
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

// ForceUnlock drops the migration lock.
func (s *Store) ForceUnlock(ctx context.Context) error {
	return s.Conn.Exec(ctx, "DROP TABLE IF EXISTS schema_migrations_lock")
}
