// Package warehouse is the only code that talks to ClickHouse. Open gives one
// clickhouse-go/v2 connection to either the embedded engine (a data
// directory, served in-process through the ClickHouse HTTP bridge) or a
// ClickHouse server (HTTP(S) by default, native protocol as an option).
package warehouse

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/converge-dev/converge/warehouse/embedded"
)

// Config selects and configures the store. With Addr empty the embedded
// engine is used on DataDir.
type Config struct {
	// Embedded store.
	DataDir         string // data directory of the embedded engine
	EngineLib       string // path to libchdb.so
	EnginePool      int    // chDB connections; default 4
	MaxServerMemory int64  // bytes; default half of RAM, at most 16 GiB
	MaxQueryMemory  int64  // bytes per query; default half of MaxServerMemory

	// Remote store.
	Addr          string // host:port of a ClickHouse server; empty means embedded
	Protocol      string // "http" (default) or "native"
	Secure        bool   // HTTPS / TLS
	TLSSkipVerify bool
	User          string
	Password      string
	Cluster       string // a cluster of the server's remote_servers: replicated, sharded tables (docs/cluster.md); empty = the server alone

	Database     string        // default "converge"
	AppDatabase  string        // converge's own tables (AppTables); default Database + "_app"
	DialTimeout  time.Duration // default 10s
	MaxOpenConns int           // default 8

	// The console's credentials on a server (docs/cluster.md, "The console's own user"): a
	// ClickHouse user without grants on AppDatabase that the read-only console runs as. Empty:
	// the console runs as User, and only converge's own check (CheckBoundary) keeps it out.
	ConsoleUser     string
	ConsolePassword string
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate reports the first invalid field, naming its config key.
func (c *Config) Validate() error {
	if c.Database == "" {
		c.Database = "converge"
	}
	if !identRe.MatchString(c.Database) {
		return fmt.Errorf("clickhouse.database: %q is not a valid database name (letters, digits, _)", c.Database)
	}
	if c.AppDatabase == "" {
		c.AppDatabase = c.Database + "_app"
	}
	if !identRe.MatchString(c.AppDatabase) {
		return fmt.Errorf("clickhouse.app_database: %q is not a valid database name (letters, digits, _)", c.AppDatabase)
	}
	if strings.EqualFold(c.AppDatabase, c.Database) || strings.EqualFold(c.AppDatabase, "system") ||
		strings.EqualFold(c.AppDatabase, "information_schema") || c.AppDatabase == "default" {
		return fmt.Errorf("clickhouse.app_database: %q must be a database of its own, not %s, system, information_schema or default: the console's boundary is that database", c.AppDatabase, c.Database)
	}
	if c.ConsoleUser != "" && c.Addr == "" {
		return fmt.Errorf("clickhouse.console_user: %q is set but clickhouse.addr is not: the embedded store has no users; its console is kept out of %s by converge's own check", c.ConsoleUser, c.AppDatabase)
	}
	if c.Addr == "" && c.DataDir == "" {
		return errors.New("data_dir: set a data directory for the embedded store, or clickhouse.addr for a server")
	}
	switch c.Protocol {
	case "", "http", "native":
	default:
		return fmt.Errorf("clickhouse.protocol: %q is not one of http, native", c.Protocol)
	}
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			return fmt.Errorf("clickhouse.addr: %q is not host:port: %v", c.Addr, err)
		}
	}
	if c.Cluster != "" {
		if !clusterNameRe.MatchString(c.Cluster) {
			return fmt.Errorf("clickhouse.cluster: %q is not a cluster name (letters, digits, _, - and ., as named in the server's remote_servers)", c.Cluster)
		}
		if c.Addr == "" {
			return fmt.Errorf("clickhouse.cluster: %q is set but clickhouse.addr is not: the embedded store is a single node; cluster mode needs clickhouse.addr, a server of that cluster", c.Cluster)
		}
	}
	if c.EnginePool < 0 || c.EnginePool > 64 {
		return fmt.Errorf("engine.pool: %d is out of range 1..64", c.EnginePool)
	}
	if c.MaxServerMemory < 0 || c.MaxQueryMemory < 0 {
		return errors.New("engine.max_server_memory / engine.max_query_memory: must not be negative")
	}
	return nil
}

// Store is an open warehouse: two databases on one store. Database holds the
// data analysts may read (facts, derived tables, ingest bookkeeping);
// AppDatabase holds converge's own tables (AppTables: users, sessions, …),
// which the console, the endpoint's analyst user and metric SQL never read.
type Store struct {
	Conn        driver.Conn      // default database Database
	App         driver.Conn      // default database AppDatabase: the only connection that reads or writes AppTables
	Engine      *embedded.Engine // nil for a remote store
	Database    string
	AppDatabase string
	cfg         Config
	log         *slog.Logger
	console     driver.Conn   // the console's reads: Conn, or a connection as Config.ConsoleUser
	ownsEng     bool          // Close closes Engine too
	dv          *dataVersions // embedded store: DataVersion answers to reuse
}

// Open connects to the configured store and makes sure its database exists.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{Database: cfg.Database, AppDatabase: cfg.AppDatabase, cfg: cfg, log: log}
	if cfg.Addr == "" {
		e, err := embedded.Open(embedded.Config{
			Path:            cfg.DataDir,
			Lib:             cfg.EngineLib,
			PoolSize:        cfg.EnginePool,
			MaxServerMemory: cfg.MaxServerMemory,
			MaxQueryMemory:  cfg.MaxQueryMemory,
			Logger:          log,
		})
		if err != nil {
			return nil, err
		}
		s.Engine, s.ownsEng, s.dv = e, true, &dataVersions{}
	}
	return s.finishOpen(ctx)
}

// OpenOnEngine opens a Store on an engine that is already open (tests share
// one engine per process and give each test its own database). Close leaves
// the engine open.
func OpenOnEngine(ctx context.Context, e *embedded.Engine, database string, log *slog.Logger) (*Store, error) {
	cfg := Config{DataDir: "(shared engine)", Database: database}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{Database: cfg.Database, AppDatabase: cfg.AppDatabase, cfg: cfg, log: log, Engine: e, dv: &dataVersions{}}
	return s.finishOpen(ctx)
}

func (s *Store) finishOpen(ctx context.Context) (*Store, error) {
	cfg := s.cfg
	if err := s.ensureDatabase(ctx); err != nil {
		s.Close()
		return nil, err
	}
	conn, err := s.connect(cfg.Database)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.Conn, s.console = conn, conn
	if err := conn.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("warehouse: ping %s: %w", s.Describe(), err)
	}
	if err := s.connectMore(); err != nil {
		s.Close()
		return nil, err
	}
	if s.console != s.Conn {
		if err := s.console.Ping(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("warehouse: ping %s as the console's user %s (clickhouse.console_user): %w", s.Describe(), cfg.ConsoleUser, err)
		}
	}
	return s, nil
}

// connectMore makes the connections besides Conn (which it needs): App, and
// the console's when it has a user of its own. Nothing is sent to the store.
func (s *Store) connectMore() error {
	var err error
	if s.App, err = s.connect(s.cfg.AppDatabase); err != nil {
		return err
	}
	if s.cfg.ConsoleUser == "" {
		return nil
	}
	o := s.options(s.cfg.Database)
	o.Auth.Username, o.Auth.Password = s.cfg.ConsoleUser, s.cfg.ConsolePassword
	c, err := clickhouse.Open(o)
	if err != nil {
		return fmt.Errorf("warehouse: connect to %s as the console's user %s (clickhouse.console_user): %w", s.Describe(), s.cfg.ConsoleUser, err)
	}
	s.console = c
	return nil
}

// Describe names the store for messages ("embedded /path" or "http://host:port").
func (s *Store) Describe() string {
	if s.Engine != nil {
		return "embedded " + s.cfg.DataDir
	}
	scheme := s.cfg.Protocol
	if scheme == "" {
		scheme = "http"
	}
	if s.cfg.Secure {
		scheme += "s"
	}
	return scheme + "://" + s.cfg.Addr
}

// Options returns the clickhouse-go options for database db.
func (s *Store) options(db string) *clickhouse.Options {
	cfg := s.cfg
	o := &clickhouse.Options{
		Auth:         clickhouse.Auth{Database: db, Username: cfg.User, Password: cfg.Password},
		DialTimeout:  cfg.DialTimeout,
		MaxOpenConns: cfg.MaxOpenConns,
		MaxIdleConns: cfg.MaxOpenConns,
		Protocol:     clickhouse.HTTP,
		ClientInfo:   clickhouse.ClientInfo{Products: []struct{ Name, Version string }{{"converge", "1"}}},
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = 10 * time.Second
	}
	if o.MaxOpenConns == 0 {
		o.MaxOpenConns, o.MaxIdleConns = 8, 8
	}
	if s.Engine != nil {
		// In-process: the bridge is the transport; the address is never dialled.
		// Connections cost nothing here and the engine's own pool (which
		// honours each query's context) is what limits concurrency, so the
		// client pool must not be the bottleneck: derived metrics fan out.
		o.Addr = []string{"embedded:8123"}
		o.MaxOpenConns, o.MaxIdleConns = max(o.MaxOpenConns, 64), max(o.MaxIdleConns, 16)
		o.DialTimeout = max(o.DialTimeout, time.Minute)
		rt := limitTransport{s.Engine.RoundTripper()} // result.go
		o.TransportFunc = func(*http.Transport) (http.RoundTripper, error) { return rt, nil }
		o.Auth.Username = "default"
		return o
	}
	o.Addr = []string{cfg.Addr}
	if cfg.Protocol == "native" {
		o.Protocol = clickhouse.Native
	}
	if cfg.Secure {
		o.TLS = &tls.Config{InsecureSkipVerify: cfg.TLSSkipVerify} //nolint:gosec // opt-in by config
	}
	o.TransportFunc = func(t *http.Transport) (http.RoundTripper, error) { return limitTransport{t}, nil }
	// Queries take part in the server's priorities at the highest one, as on the embedded
	// engine (embedded.DefaultPriority), so that the console's (lower) yield to them.
	o.Settings = clickhouse.Settings{"priority": embedded.DefaultPriority}
	if cfg.Cluster != "" {
		maps.Copy(o.Settings, clusterSettings)
	}
	return o
}

func (s *Store) connect(db string) (driver.Conn, error) {
	conn, err := clickhouse.Open(s.options(db))
	if err != nil {
		return nil, fmt.Errorf("warehouse: connect to %s: %w", s.Describe(), err)
	}
	return conn, nil
}

func (s *Store) ensureDatabase(ctx context.Context) error {
	conn, err := s.connect("default")
	if err != nil {
		return err
	}
	defer conn.Close()
	if s.cfg.Cluster != "" {
		if err := s.checkCluster(ctx, conn); err != nil {
			return err
		}
	}
	for _, db := range []string{s.Database, s.AppDatabase} {
		q := "CREATE DATABASE IF NOT EXISTS " + quoteIdent(db)
		if s.cfg.Cluster != "" {
			q += " ON CLUSTER " + quoteIdent(s.cfg.Cluster)
		}
		if err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("warehouse: create database %s on %s: %w", db, s.Describe(), err)
		}
	}
	return nil
}

// Ping checks that the store answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.Conn.Ping(ctx); err != nil {
		return fmt.Errorf("warehouse: %s: %w", s.Describe(), err)
	}
	return nil
}

// ServerVersion is the ClickHouse version of the store.
func (s *Store) ServerVersion(ctx context.Context) (string, error) {
	var v string
	if err := s.Conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return "", err
	}
	return v, nil
}

// Close closes the connection and, for the embedded store, the engine.
func (s *Store) Close() error {
	var err error
	if s.console != nil && s.console != s.Conn {
		err = s.console.Close()
	}
	if s.App != nil {
		err = errors.Join(err, s.App.Close())
	}
	if s.Conn != nil {
		err = errors.Join(err, s.Conn.Close())
	}
	if s.Engine != nil && s.ownsEng {
		err = errors.Join(err, s.Engine.Close())
	}
	return err
}

// RemoteConfig is the Config that reaches a running converge's loopback
// ClickHouse endpoint (see cmd/converge) with its full-access password; the
// console then runs as the endpoint's analyst user (analystUser,
// analystPassword; none when analystUser is empty), which the endpoint keeps
// read-only and inside the boundary too.
func RemoteConfig(base Config, endpoint, password, analystUser, analystPassword string) (Config, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return base, fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	c := base
	c.Addr, c.Protocol, c.Secure = u.Host, "http", false
	c.User, c.Password = "default", password
	c.ConsoleUser, c.ConsolePassword = analystUser, analystPassword
	c.DataDir = ""
	return c, nil
}

// StringArray writes strs as the value of an Array(String) query parameter
// (['a','b'], quoted and escaped).
func StringArray(strs []string) string {
	q := make([]string, len(strs))
	for i, n := range strs {
		q[i] = "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(n) + "'"
	}
	return "[" + strings.Join(q, ",") + "]"
}

// quoteIdent quotes a validated identifier with backticks.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// Materialized marks queries run with ctx to be computed to the end before
// the result is sent (ClickHouse's wait_end_of_query). For small results,
// such as metric aggregates, it is faster on the embedded engine than the
// default streaming; large results should stream.
func Materialized(ctx context.Context) context.Context {
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"wait_end_of_query": 1}))
}
