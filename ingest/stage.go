package ingest

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Commit modes: when the rows of a run become visible.
const (
	// CommitRun stages the rows of the run and moves them into the tables
	// when the run succeeds: a file is visible whole or not at all. The
	// default.
	CommitRun = "run"
	// CommitBatch stores each flush as it is written (the events API, which
	// acknowledges a request once its flush is stored). A run that fails
	// keeps what it stored before.
	CommitBatch = "batch"
)

// Staging: a run in CommitRun mode writes each of its tables (facts and
// ingest_keys) to a staging table of its own, made like the table
// (ingest_stage_<table>_<run id>), and commits by moving the staging
// tables' partitions into the tables (warehouse.MovePartitions: atomic per
// partition, metadata only), facts first and ingest_keys last, between
// ingest_runs rows 'committing' (with the final counts) and 'succeeded'. A
// run that fails drops its staging tables. A process that ends while a run
// is running leaves staging tables that the next start drops (Recover); one
// that ends while it is committing leaves a committing run that the next
// start finishes: the partitions still staged are moved, those moved already
// are not there to move twice.
//
// Deduplication is the same as without staging: a moved part joins its
// table's partition and ReplacingMergeTree keeps the latest version of each
// id (the loaded_at of the staged row, set when it was written), so a record
// sent again still replaces the one stored.

// stagePrefix begins the name of every staging table.
const stagePrefix = "ingest_stage_"

// stageName is the staging table of table for run.
func stageName(table, runID string) string {
	return stagePrefix + table + "_" + strings.ReplaceAll(runID, "-", "")
}

// parseStageName returns the table and run id (a UUID) of a staging table's name.
func parseStageName(name string) (table, runID string, ok bool) {
	rest, ok := strings.CutPrefix(name, stagePrefix)
	i := strings.LastIndexByte(rest, '_')
	if !ok || i <= 0 || len(rest)-i-1 != 32 {
		return "", "", false
	}
	h := rest[i+1:]
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", "", false
		}
	}
	return rest[:i], h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], true
}

// keysTable is where a run records its keys (staged like the facts).
const keysTable = "ingest_keys"

// stageTables creates the run's staging tables and points its writes at them.
func (l *Loader) stageTables(ctx context.Context) error {
	for _, ts := range l.sortedTables() {
		stage := stageName(ts.ent.Table, l.sum.RunID)
		if err := l.st.CreateStagingTable(ctx, stage, ts.ent.Table); err != nil {
			return err
		}
		ts.target = stage
		l.staged = append(l.staged, staged{stage: stage, table: ts.ent.Table})
	}
	stage := stageName(keysTable, l.sum.RunID)
	if err := l.st.CreateStagingTable(ctx, stage, keysTable); err != nil {
		return err
	}
	l.keysTarget = stage
	l.staged = append(l.staged, staged{stage: stage, table: keysTable})
	return nil
}

// sortedTables are the run's tables by entity name.
func (l *Loader) sortedTables() []*tableState {
	out := make([]*tableState, 0, len(l.tables))
	for _, ts := range l.tables {
		out = append(out, ts)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ent.Name < out[j].ent.Name })
	return out
}

// staged is a staging table and the table it is for.
type staged struct {
	stage, table string
}

// commitStaged moves every staged partition into its table: facts first,
// ingest_keys last (a crash between them leaves keys unrecorded, which only
// makes the next run write identical rows again).
func commitStaged(ctx context.Context, l stageStore, tables []staged, afterMove func(table string)) error {
	sort.SliceStable(tables, func(i, j int) bool { return tables[i].table != keysTable && tables[j].table == keysTable })
	for _, t := range tables {
		ids, err := l.StagedPartitions(ctx, t.stage)
		if err != nil {
			return err
		}
		if err := l.MovePartitions(ctx, t.stage, t.table, ids); err != nil {
			return err
		}
		if afterMove != nil {
			afterMove(t.table)
		}
	}
	return nil
}

// dropStaged drops staging tables, all of them even when one fails.
func dropStaged(ctx context.Context, l stageStore, tables []staged) error {
	var first error
	for _, t := range tables {
		if err := l.DropStagingTable(ctx, t.stage); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// stageStore is what staging needs of the store (warehouse.Store).
type stageStore interface {
	StagedPartitions(ctx context.Context, stage string) ([]string, error)
	MovePartitions(ctx context.Context, stage, table string, ids []string) error
	DropStagingTable(ctx context.Context, stage string) error
}

// RejectsError is the failure of a run that rejected records while it was
// to store all or nothing (Options.AllOrNothing): nothing of it was stored.
type RejectsError struct {
	Rejected int64 // records rejected, in quarantine
	Good     int64 // records that were valid (new or already stored)
}

func (e *RejectsError) Error() string {
	return fmt.Sprintf("nothing was stored: %d %s rejected (in quarantine), so the %d good %s were not stored either",
		e.Rejected, plural(e.Rejected, "record", "records"), e.Good, plural(e.Good, "one", "ones"))
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
