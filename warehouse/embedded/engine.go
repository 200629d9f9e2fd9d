// Package embedded runs ClickHouse in-process (chDB's libchdb.so, loaded with
// purego) and serves it through the ClickHouse HTTP interface, so that
// clickhouse-go/v2 and analysts' HTTP tools talk to it as to a server.
//
// One Engine owns one data directory; chDB refuses a second process on it.
// Queries run on a pool of chDB connections (queries on one connection are
// serialised); a separate control connection cancels queries with KILL QUERY.
package embedded

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures an embedded engine. Sizes are bytes; zero means the default.
type Config struct {
	Path string // data directory (created if missing)
	Lib  string // path to libchdb.so

	PoolSize int // query connections; default 4

	// MaxServerMemory caps the whole engine (default half of RAM, at most 16 GiB);
	// MaxQueryMemory caps one query (default half of MaxServerMemory).
	MaxServerMemory int64
	MaxQueryMemory  int64
	MarkCacheSize   int64 // default 256 MiB
	MaxThreads      int   // per query; default the number of CPUs
	// MaxResultBlock is the largest block of a result (a chunk of a streamed one, or a whole
	// materialised one) the bridge passes on, in bytes; a request may ask for less
	// (BlockLimitHeader). Default DefaultMaxResultBlock.
	MaxResultBlock int64

	// SpoolDir holds INSERT bodies while chDB reads them (defect 3); default
	// /dev/shm when writable, else the OS temp dir.
	SpoolDir string

	Logger *slog.Logger

	// workarounds can be switched off one by one in tests to show that this
	// build still needs them.
	disable workaroundSet
}

type workaroundSet struct {
	drain   bool // defect 1: drain a connection after an error
	signals bool // defect 2: restore Go's signal handlers (read from the env in tests)
	infile  bool // defect 3: INSERT data through a spool file, not inline
}

// DefaultPriority is the engine's priority of a query that sets none (ClickHouse's priority
// setting: 1 is the highest; a query with a larger number waits while one with a smaller
// number runs).
const DefaultPriority = 1

// Engine is an open embedded ClickHouse.
type Engine struct {
	cfg     Config
	lib     *lib
	log     *slog.Logger
	pool    chan *conn
	args    []string
	base    map[string]string // session settings every pooled connection starts from
	ctlMu   sync.Mutex
	ctl     *conn
	version string
	tz      string
	closeMu sync.RWMutex
	closed  bool
	// writes counts the statements that may change data, once as each
	// starts and once as it ends (Writes).
	writes atomic.Uint64
}

// Writes counts the statements run through this engine that may change
// data (anything but a lone SELECT, WITH, SHOW, DESCRIBE, EXPLAIN or
// EXISTS), once as each starts and once as it ends, whether it came from
// this process or through the HTTP endpoint (Serve). While it stays the
// same, no statement changed any table's rows; only the engine's own
// background work (merges, which keep the rows, and TTL drops) did.
func (e *Engine) Writes() uint64 { return e.writes.Load() }

// writing counts a statement that may change data as it starts; the
// returned func counts it again as it ends.
func (e *Engine) writing(st statement) func() {
	if st.readsOnly() {
		return func() {}
	}
	e.writes.Add(1)
	return func() { e.writes.Add(1) }
}

func (c *Config) defaults() {
	if c.PoolSize <= 0 {
		c.PoolSize = 4
	}
	if c.MaxServerMemory <= 0 {
		c.MaxServerMemory = min(totalMemory()/2, 16<<30)
	}
	if c.MaxQueryMemory <= 0 {
		c.MaxQueryMemory = c.MaxServerMemory / 2
	}
	if c.MaxResultBlock <= 0 {
		c.MaxResultBlock = DefaultMaxResultBlock
	}
	if c.MarkCacheSize <= 0 {
		c.MarkCacheSize = 256 << 20
	}
	if c.MaxThreads <= 0 {
		c.MaxThreads = runtime.NumCPU()
	}
	if c.SpoolDir == "" {
		c.SpoolDir = os.TempDir()
		if f, err := os.CreateTemp("/dev/shm", "converge-probe-*"); err == nil {
			f.Close()
			os.Remove(f.Name())
			c.SpoolDir = "/dev/shm"
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Open loads chDB (once per process) and opens the data directory.
func Open(cfg Config) (*Engine, error) {
	cfg.defaults()
	if cfg.Path == "" {
		return nil, errors.New("embedded: no data directory given")
	}
	abs, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("embedded: data directory %q: %w", cfg.Path, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("embedded: create data directory: %w", err)
	}
	if err := checkLock(abs); err != nil {
		return nil, err
	}
	l, err := loadLib(cfg.Lib, !cfg.disable.signals)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:  cfg,
		lib:  l,
		log:  cfg.Logger,
		pool: make(chan *conn, cfg.PoolSize),
		args: []string{
			"clickhouse",
			"--path=" + abs,
			"--max_server_memory_usage=" + strconv.FormatInt(cfg.MaxServerMemory, 10),
			// Tables load while chdb_connect runs, not in background jobs: a background load
			// failed now and then with "recursive_mutex lock failed" (ASYNC_LOAD_WAIT_FAILED),
			// and the open with it (seen once in a CI run, opening a freshly migrated store).
			"--async_load_databases=0",
			"--mark_cache_size=" + strconv.FormatInt(cfg.MarkCacheSize, 10),
			"--uncompressed_cache_size=" + strconv.FormatInt(min(cfg.MarkCacheSize, 256<<20), 10),
		},
		// Session settings are not taken from the command line by chDB; every
		// connection gets them with SET, and requests that change settings are
		// reset to these values afterwards.
		base: map[string]string{
			"async_insert":     "0",
			"max_memory_usage": strconv.FormatInt(cfg.MaxQueryMemory, 10),
			"max_threads":      strconv.Itoa(cfg.MaxThreads),
			// Every query takes part in the engine's priorities (0 would not) at the highest
			// one, DefaultPriority: a query that asks for a lower one (a larger number: the
			// SQL console's) is paused while one of these runs.
			"priority": strconv.Itoa(DefaultPriority),
		},
	}
	// Loading the tables at connect still fails now and then with "recursive_mutex lock
	// failed" (ASYNC_LOAD_WAIT_FAILED) although they load in the foreground: a defect of this
	// chDB build that a second connect does not repeat, so it is tried again, twice at most.
	for try := 1; ; try++ {
		e.ctl, err = e.newConn()
		if err == nil || try == 3 || !strings.Contains(err.Error(), "ASYNC_LOAD_WAIT_FAILED") {
			break
		}
		e.log.Warn("embedded: loading the tables failed; connecting again", "try", try, "err", err)
		time.Sleep(time.Duration(try) * 200 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	out, err := e.ctl.exec("SELECT version(), timezone()", "TabSeparated", nil)
	if err != nil {
		e.ctl.close()
		return nil, fmt.Errorf("embedded: first query: %w", err)
	}
	f := strings.Split(strings.TrimSpace(string(out)), "\t")
	if len(f) == 2 {
		e.version, e.tz = f[0], f[1]
	}
	for range cfg.PoolSize {
		c, err := e.newConn()
		if err != nil {
			e.Close()
			return nil, err
		}
		e.pool <- c
	}
	e.log.Debug("embedded ClickHouse open", "path", abs, "version", e.version, "pool", cfg.PoolSize,
		"max_server_memory", cfg.MaxServerMemory, "max_query_memory", cfg.MaxQueryMemory)
	return e, nil
}

func (e *Engine) newConn() (*conn, error) {
	c, err := e.lib.open(e.args, !e.cfg.disable.signals)
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", e.cfg.Path, err)
	}
	if _, err := c.exec("SET "+settingsList(e.base), "TabSeparated", nil); err != nil {
		c.close()
		return nil, fmt.Errorf("embedded: apply base settings: %w", err)
	}
	c.db = "default"
	return c, nil
}

// Version is the engine's ClickHouse version, e.g. 26.5.1.1.
func (e *Engine) Version() string { return e.version }

// Timezone is the engine's server time zone.
func (e *Engine) Timezone() string { return e.tz }

// Close closes every connection. Queries still running finish first.
func (e *Engine) Close() error {
	e.closeMu.Lock()
	if e.closed {
		e.closeMu.Unlock()
		return nil
	}
	e.closed = true
	e.closeMu.Unlock()
	// Queries still running get closeTimeout to finish; a connection stuck
	// in chDB after that is left behind rather than hanging shutdown.
	deadline := time.After(closeTimeout)
	for range cap(e.pool) {
		select {
		case c := <-e.pool:
			if c != nil {
				c.close()
			}
		case <-deadline:
			e.log.Error("embedded: connections still busy at close; leaving them", "after", closeTimeout)
			return nil
		}
	}
	e.ctlMu.Lock()
	if e.ctl != nil {
		e.ctl.close()
		e.ctl = nil
	}
	e.ctlMu.Unlock()
	return nil
}

var errClosed = newException(codeNetworkError, "NETWORK_ERROR", "embedded engine is closed")

// acquire takes a connection from the pool, waiting until one is free or ctx ends.
func (e *Engine) acquire(ctx context.Context) (*conn, error) {
	e.closeMu.RLock()
	closed := e.closed
	e.closeMu.RUnlock()
	if closed {
		return nil, errClosed
	}
	select {
	case c := <-e.pool:
		if c == nil { // replaced after a failure to reopen
			nc, err := e.newConn()
			if err != nil {
				e.pool <- nil
				return nil, err
			}
			c = nc
		}
		return c, nil
	case <-ctx.Done():
		return nil, newException(codeQueryWasCancelled, "QUERY_WAS_CANCELLED", "waiting for a free connection: "+ctx.Err().Error())
	}
}

// release returns a connection to the pool; a connection whose session state
// could not be restored is replaced by a fresh one.
func (e *Engine) release(c *conn) {
	if c.dirty {
		c.close()
		nc, err := e.newConn()
		if err != nil {
			e.log.Error("embedded: reopen connection", "err", err)
			nc = nil
		}
		c = nc
	}
	e.pool <- c
}

// drain clears output that chDB left on a connection after a failed query
// (engine-notes.md defect 1: it would be prepended to the next result).
func (e *Engine) drain(c *conn) {
	if e.cfg.disable.drain {
		return
	}
	marker := "converge_drain_" + randomTag()
	for range 5 {
		out, err := c.exec("SELECT '"+marker+"'", "TabSeparated", nil)
		if err == nil && string(out) == marker+"\n" {
			return
		}
	}
	c.dirty = true
}

// kill cancels the query tagged tag, from the control connection. chDB's own
// stream cancel blocks until the current fetch ends and KILL QUERY SYNC never
// returns (defect 5); an asynchronous KILL matched on the tag comment does.
func (e *Engine) kill(tag string) {
	e.ctlMu.Lock()
	defer e.ctlMu.Unlock()
	if e.ctl == nil {
		return
	}
	// The tag is assembled with concat so that this KILL does not match itself.
	q := "KILL QUERY WHERE position(query, concat('/*cvg:', {tag:String}, '*/')) > 0 ASYNC"
	if _, err := e.ctl.exec(q, "TabSeparated", []param{{"tag", tag}}); err != nil {
		e.log.Warn("embedded: kill query", "tag", tag, "err", err)
		e.drain(e.ctl)
	}
}

// settingsList renders name='value' pairs for SET, sorted by name. Names are
// validated by the caller; values are quoted string literals, which
// ClickHouse converts to each setting's type.
func settingsList(s map[string]string) string {
	names := make([]string, 0, len(s))
	for k := range s {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, k := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteString(" = ")
		b.WriteString(quoteString(s[k]))
	}
	return b.String()
}

// quoteString renders s as a ClickHouse string literal.
func quoteString(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		case 0:
			b.WriteString(`\0`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

func randomTag() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// totalMemory reads MemTotal from /proc/meminfo (bytes); 8 GiB if unknown.
func totalMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					return kb << 10
				}
			}
		}
	}
	return 8 << 30
}

// closeTimeout is how long Close waits for running queries.
const closeTimeout = 30 * time.Second

// Query runs one statement straight on a chDB connection, without the HTTP
// bridge, and returns its whole output in format. It is the baseline the
// benchmarks compare the bridge with; the application uses the bridge.
func (e *Engine) Query(ctx context.Context, sql, format string) ([]byte, error) {
	c, err := e.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer e.writing(scanSQL(sql))()
	out, err := c.exec(sql, format, nil)
	if err != nil {
		e.drain(c)
	}
	e.release(c)
	if err != nil {
		return nil, asException(err)
	}
	return out, nil
}
