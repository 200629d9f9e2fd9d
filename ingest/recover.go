package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/warehouse"
)

// Runs whose process ended. A run renews a lease in ingest_leases while it
// is open (its host name, pid and the server's time, every leaseEvery).
// Recover, at the start of a process, looks at the runs still recorded as
// running or committing and decides which of them are dead:
//
//   - a run open in this process is alive;
//   - a run whose lease names this host is dead when its pid is no longer
//     a process (or is this process, which does not have it open: the pid
//     was reused);
//   - any run is dead when its lease is older than leaseExpiry (the only
//     test for a run of another host, e.g. another converge loading into a
//     shared ClickHouse server, or a pid reused by an unrelated process);
//   - a run without a lease (recorded before leases, or killed before its
//     first one) is dead once its row is older than leaseExpiry.
//
// A dead running run is marked failed and its staging tables are dropped
// (nothing of it was stored); a dead committing run is finished (its staged
// partitions not attached yet are, then it is marked succeeded), so its file
// ends up whole, each row once. A
// run of the events API (commit mode batch) stored its flushes as it went:
// it is marked failed with the rows it stored counted from the tables.
// Recovering is idempotent. Two processes finishing one commit at the very
// same time could both attach a partition: its rows would be there twice,
// identical (FINAL reads them once, merges collapse them).
const (
	leaseEvery  = 10 * time.Second
	leaseExpiry = time.Minute
)

// openRuns are the runs open in this process (by run id).
var openRuns sync.Map

// host is this machine's name as leases record it.
var host = func() string { h, _ := os.Hostname(); return h }()

// startLease writes the run's first lease and renews it until stopLease.
func (l *Loader) startLease(ctx context.Context) error {
	openRuns.Store(l.sum.RunID, struct{}{})
	write := func(ctx context.Context) error {
		return l.st.Conn.Exec(ctx, "INSERT INTO ingest_leases (run_id, owner_host, owner_pid) VALUES ({id:String}, {h:String}, {p:UInt32})",
			clickhouse.Named("id", l.sum.RunID), clickhouse.Named("h", host), clickhouse.Named("p", uint32(os.Getpid())))
	}
	if err := write(ctx); err != nil {
		openRuns.Delete(l.sum.RunID)
		return fmt.Errorf("ingest_leases: %w", err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	l.leaseStop, l.leaseDone = stop, done
	go func() {
		defer close(done)
		t := time.NewTicker(leaseEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			wctx, cancel := context.WithTimeout(context.Background(), leaseEvery)
			if err := write(wctx); err != nil {
				l.log.Warn("ingest: lease not renewed; another process may take this run for dead after "+leaseExpiry.String(), "run", l.sum.RunID, "err", err)
			}
			cancel()
		}
	}()
	return nil
}

// stopLease ends the renewals; the run is no longer open in this process.
func (l *Loader) stopLease() {
	if l.leaseStop != nil {
		close(l.leaseStop)
		<-l.leaseDone
		l.leaseStop = nil
	}
	openRuns.Delete(l.sum.RunID)
}

// Recovered is what Recover did.
type Recovered struct {
	Failed    []string // runs marked failed: their process ended while they ran
	Committed []string // runs whose interrupted commit was finished
	Dropped   []string // staging tables dropped
}

func (r Recovered) empty() bool { return len(r.Failed)+len(r.Committed)+len(r.Dropped) == 0 }

// recovered remembers the stores Recover ran on in this process (NewLoader
// runs it once per store).
var recovered sync.Map

// recoverOnce runs Recover the first time st starts a run in this process.
func recoverOnce(ctx context.Context, st *warehouse.Store, log *slog.Logger) {
	if _, done := recovered.LoadOrStore(st, true); done {
		return
	}
	if _, err := Recover(ctx, st, log); err != nil {
		log.Warn("ingest: recovering the runs of ended processes failed; the next start tries again", "err", err)
	}
}

type runState struct {
	id, entity, status, mode string
	age                      time.Duration // since the run's row was written (server time)
}

type lease struct {
	host string
	pid  uint32
	age  time.Duration // since its last heartbeat (server time)
}

// Recover finishes or fails the runs of processes that ended in the middle
// of them, and drops staging tables nothing needs (see leaseEvery). It is
// safe while other processes load into the same store.
func Recover(ctx context.Context, st *warehouse.Store, log *slog.Logger) (Recovered, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	recovered.Store(st, true) // this process's later runs need not recover st again
	var rep Recovered
	runs, err := openRunStates(ctx, st)
	if err != nil {
		return rep, err
	}
	leases, err := runLeases(ctx, st, runs)
	if err != nil {
		return rep, err
	}
	stages, err := st.StagingTables(ctx, stagePrefix)
	if err != nil {
		return rep, err
	}
	byRun := map[string][]staged{}
	for _, t := range stages {
		if table, id, ok := parseStageName(t.Name); ok {
			byRun[id] = append(byRun[id], staged{stage: t.Name, table: table})
		}
	}
	live := map[string]bool{}
	for _, r := range runs {
		ls, has := leases[r.id]
		if alive(r, ls, has) {
			live[r.id] = true
			continue
		}
		switch {
		case r.status == StatusCommitting:
			if _, err := commitStaged(ctx, st, r.id, byRun[r.id], true, nil); err != nil {
				return rep, fmt.Errorf("run %s: finishing its commit: %w", r.id, err)
			}
			if err := rewriteRun(ctx, st, r.id, StatusSucceeded, "", "the commit was interrupted ("+owner(ls, has)+" ended) and finished by "+owner(lease{host: host, pid: uint32(os.Getpid())}, true)); err != nil {
				return rep, err
			}
			rep.Committed = append(rep.Committed, r.id)
		case r.mode == CommitRun:
			if err := rewriteRun(ctx, st, r.id, StatusFailed, "interrupted: "+owner(ls, has)+" ended before the run finished; nothing of it was stored (load the file again)", "", zeroLoaded); err != nil {
				return rep, err
			}
			rep.Failed = append(rep.Failed, r.id)
		case r.mode == CommitBatch:
			n, q, err := storedRows(ctx, st, r)
			if err != nil {
				return rep, err
			}
			msg := fmt.Sprintf("interrupted: %s ended before the run finished; the %d rows of the batches it stored are kept (rows_loaded), its %d %s in quarantine",
				owner(ls, has), n, q, plural(int64(q), "reject is", "rejects are"))
			if err := rewriteRun(ctx, st, r.id, StatusFailed, msg, "", storedLoaded(n, q)); err != nil {
				return rep, err
			}
			rep.Failed = append(rep.Failed, r.id)
		default: // recorded before converge staged its loads: it wrote as it went
			if err := rewriteRun(ctx, st, r.id, StatusFailed, "interrupted: the process ended before the run finished; recorded before converge staged its loads, so the rows it wrote are stored and its counts are those of its start (load the file again: ids make that idempotent)", ""); err != nil {
				return rep, err
			}
			rep.Failed = append(rep.Failed, r.id)
		}
	}
	// Staging tables of runs that are not open anywhere: failed, or finished
	// (succeeded) by a process that ended before dropping them. A run writes
	// its row before its first staging table, so one whose run was not among
	// the open runs read above is either of those, or of a run started since:
	// a young one is left for the next start.
	ids := make([]string, 0, len(byRun))
	for id := range byRun {
		if !live[id] {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		if _, open := openRuns.Load(id); open {
			continue
		}
		orphan := true
		for _, t := range stages {
			if _, rid, _ := parseStageName(t.Name); rid == id && t.Age < leaseExpiry && !recordedRun(runs, id) {
				orphan = false // perhaps a run started after its row was read
			}
		}
		if !orphan {
			continue
		}
		if err := dropStaged(ctx, st, byRun[id]); err != nil {
			return rep, err
		}
		for _, t := range byRun[id] {
			rep.Dropped = append(rep.Dropped, t.stage)
		}
	}
	if !rep.empty() {
		log.Info("ingest: recovered the runs of ended processes", "failed", len(rep.Failed), "committed", len(rep.Committed), "staging_tables_dropped", len(rep.Dropped))
	}
	return rep, nil
}

// recordedRun tells whether id is among runs (the runs recorded as open).
func recordedRun(runs []runState, id string) bool {
	for _, r := range runs {
		if r.id == id {
			return true
		}
	}
	return false
}

// alive decides whether the process of run r may still be running it.
func alive(r runState, ls lease, has bool) bool {
	if _, open := openRuns.Load(r.id); open {
		return true
	}
	if !has {
		return r.age < leaseExpiry
	}
	if ls.age >= leaseExpiry {
		return false
	}
	if ls.host == host {
		return int(ls.pid) != os.Getpid() && processExists(int(ls.pid))
	}
	return true
}

func owner(ls lease, has bool) string {
	if !has {
		return "its process"
	}
	return fmt.Sprintf("its process (host %s, pid %d)", ls.host, ls.pid)
}

// openRunStates are the runs recorded as running or committing.
func openRunStates(ctx context.Context, st *warehouse.Store) ([]runState, error) {
	rows, err := st.Conn.Query(ctx, `SELECT run_id, toString(entity), toString(status), toString(commit_mode), toInt64(dateDiff('millisecond', updated_at, now64(3)))
		FROM ingest_runs FINAL WHERE status IN ('running', 'committing') ORDER BY run_id`)
	if err != nil {
		return nil, fmt.Errorf("open runs: %w", err)
	}
	defer rows.Close()
	var out []runState
	for rows.Next() {
		var r runState
		var ms int64
		if err := rows.Scan(&r.id, &r.entity, &r.status, &r.mode, &ms); err != nil {
			return nil, fmt.Errorf("open runs: %w", err)
		}
		r.age = time.Duration(ms) * time.Millisecond
		out = append(out, r)
	}
	return out, rows.Err()
}

// runLeases are the latest leases of runs.
func runLeases(ctx context.Context, st *warehouse.Store, runs []runState) (map[string]lease, error) {
	out := map[string]lease{}
	if len(runs) == 0 {
		return out, nil
	}
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.id
	}
	rows, err := st.Conn.Query(ctx, `SELECT run_id, argMax(owner_host, heartbeat_at), argMax(owner_pid, heartbeat_at), toInt64(dateDiff('millisecond', max(heartbeat_at), now64(3)))
		FROM ingest_leases WHERE run_id IN {ids:Array(String)} GROUP BY run_id`, clickhouse.Named("ids", ids))
	if err != nil {
		return nil, fmt.Errorf("ingest_leases: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var ls lease
		var ms int64
		if err := rows.Scan(&id, &ls.host, &ls.pid, &ms); err != nil {
			return nil, fmt.Errorf("ingest_leases: %w", err)
		}
		ls.age = time.Duration(ms) * time.Millisecond
		out[id] = ls
	}
	return out, rows.Err()
}

// storedRows counts the rows a batch-mode run wrote to its entity's table
// that are stored (a later version of a record may have replaced some) and
// the records it quarantined.
func storedRows(ctx context.Context, st *warehouse.Store, r runState) (rows, quarantined uint64, err error) {
	e, err := LookupEntity(r.entity)
	if err != nil {
		return 0, 0, fmt.Errorf("run %s: %w", r.id, err)
	}
	if err := st.Conn.QueryRow(ctx, "SELECT count() FROM `"+e.Table+"` WHERE ingest_run_id = {id:String}", clickhouse.Named("id", r.id)).Scan(&rows); err != nil {
		return 0, 0, fmt.Errorf("run %s: rows stored: %w", r.id, err)
	}
	if err := st.Conn.QueryRow(ctx, "SELECT count() FROM quarantine WHERE run_id = {id:String}", clickhouse.Named("id", r.id)).Scan(&quarantined); err != nil {
		return 0, 0, fmt.Errorf("run %s: records quarantined: %w", r.id, err)
	}
	return rows, quarantined, nil
}

// rewrite options of rewriteRun: SQL expressions replacing columns of the row.
type rewrite func(set map[string]string, params clickhouse.Parameters)

// zeroLoaded records that nothing of the run is stored.
func zeroLoaded(set map[string]string, _ clickhouse.Parameters) {
	set["rows_loaded"] = "toUInt64(0)"
}

// storedLoaded records n rows loaded and q rejected, and the records read
// as what was loaded, rejected and found duplicate (as of the run's last row:
// the duplicates of a killed batch run are not known).
func storedLoaded(n, q uint64) rewrite {
	return func(set map[string]string, p clickhouse.Parameters) {
		p["loaded"], p["rejected"] = fmt.Sprint(n), fmt.Sprint(q)
		set["rows_loaded"] = "{loaded:UInt64}"
		set["rows_rejected"] = "{rejected:UInt64}"
		set["rows_read"] = "{loaded:UInt64} + {rejected:UInt64} + rows_duplicate"
	}
}

// rewriteRun writes a new version of a run's row: its status, error, a
// warning added, and what the rewrites change; the rest as it is.
func rewriteRun(ctx context.Context, st *warehouse.Store, id, status, errMsg, warning string, rws ...rewrite) error {
	set := map[string]string{
		"status":      "{status:String}",
		"finished_at": "coalesce(finished_at, now64(3))",
		"version":     "greatest(version + 1, {version:UInt64})",
		"updated_at":  "now64(3)",
	}
	params := clickhouse.Parameters{"id": id, "status": status, "version": fmt.Sprint(time.Now().UnixNano())}
	if errMsg != "" {
		set["error"] = "{error:String}"
		params["error"] = errMsg
	}
	if warning != "" {
		set["warnings"] = "arrayPushBack(warnings, {warning:String})"
		params["warning"] = warning
	}
	for _, rw := range rws {
		rw(set, params)
	}
	cols := make([]string, 0, len(set))
	for c := range set {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	repl := make([]string, len(cols))
	for i, c := range cols {
		repl[i] = set[c] + " AS " + c
	}
	q := "INSERT INTO ingest_runs SELECT * REPLACE (" + strings.Join(repl, ", ") + ") FROM ingest_runs FINAL WHERE run_id = {id:String}"
	if err := st.Conn.Exec(clickhouse.Context(ctx, clickhouse.WithParameters(params)), q); err != nil {
		return fmt.Errorf("run %s: record it %s: %w", id, status, err)
	}
	return nil
}
