package ingest

import (
	"context"
	"fmt"
	"slices"
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
// (ingest_stage_<table>_<run id>), and commits by attaching the staging
// tables' partitions to the tables (warehouse.AttachPartitions: atomic per
// partition, hard links, no row copied), facts first and ingest_keys last,
// between ingest_runs rows 'committing' (with the final counts) and
// 'succeeded', then drops them. A run that fails drops its staging tables.
// A process that ends while a run is running leaves staging tables that the
// next start drops (Recover); one that ends while it is committing leaves a
// committing run that the next start finishes: it attaches the staged
// partitions that hold no row of the run in the table yet.
//
// Deduplication is the same as without staging: an attached part joins its
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

// stageTables creates the staging tables of the tables a batch writes to
// that have none yet (and of ingest_keys), and points their writes at them.
// Created on first use: a table the run never writes costs nothing.
func (l *Loader) stageTables(ctx context.Context, rows map[*tableState][]pendingRow) error {
	for ts := range rows {
		if ts.target != ts.ent.Table {
			continue
		}
		stage := stageName(ts.ent.Table, l.sum.RunID)
		if err := l.st.CreateStagingTable(ctx, stage, ts.ent.Table); err != nil {
			return err
		}
		ts.target = stage
		l.staged = append(l.staged, staged{stage: stage, table: ts.ent.Table})
	}
	if l.keysTarget == keysTable {
		stage := stageName(keysTable, l.sum.RunID)
		if err := l.st.CreateStagingTable(ctx, stage, keysTable); err != nil {
			return err
		}
		l.keysTarget = stage
		l.staged = append(l.staged, staged{stage: stage, table: keysTable})
	}
	return nil
}

// staged is a staging table and the table it is for.
type staged struct {
	stage, table string
}

// commitStaged attaches every staged partition to its table: facts first,
// ingest_keys last (a crash between them leaves keys unrecorded, which only
// makes the next run write identical rows again). resume finishes a commit
// that was interrupted: a partition that holds rows of the run already was
// attached (whole: each partition is attached in one transaction) and is
// not attached again. It returns how many partitions it attached.
func commitStaged(ctx context.Context, st stageStore, runID string, tables []staged, resume bool, afterAttach func(table string)) (attached int, err error) {
	sort.SliceStable(tables, func(i, j int) bool { return tables[i].table != keysTable && tables[j].table == keysTable })
	for _, t := range tables {
		ids, err := st.StagedPartitions(ctx, t.stage)
		if err != nil {
			return attached, err
		}
		if resume && len(ids) > 0 {
			done, err := st.PartitionsWith(ctx, t.table, "ingest_run_id", runID)
			if err != nil {
				return attached, err
			}
			ids = slices.DeleteFunc(ids, func(id string) bool { return slices.Contains(done, id) })
		}
		if err := st.AttachPartitions(ctx, t.stage, t.table, ids); err != nil {
			return attached, err
		}
		attached += len(ids)
		if afterAttach != nil {
			afterAttach(t.table)
		}
	}
	return attached, nil
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
	AttachPartitions(ctx context.Context, stage, table string, ids []string) error
	PartitionsWith(ctx context.Context, table, column, value string) ([]string, error)
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
