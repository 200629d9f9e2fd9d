package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Close finishes the run: flushes (unless runErr), commits it (CommitRun:
// its staged rows are attached to the tables, or dropped when it failed),
// writes the final ingest_runs row and returns the summary. runErr is a
// failure of the caller's source (recorded as the run's error).
func (l *Loader) Close(ctx context.Context, runErr error) (Summary, error) {
	if l.closed {
		return l.sum, errors.New("ingest: loader already closed")
	}
	l.closed = true
	defer l.stopLease()
	err := runErr
	if err == nil && l.lines {
		err = l.finishOrders(ctx)
	}
	if err == nil {
		err = l.Flush(ctx)
	} else if werr := l.wait(); werr != nil && werr != err {
		err = fmt.Errorf("%w (and writing: %v)", err, werr)
	}
	if l.identical > 0 {
		l.warn(fmt.Sprintf("%d rows repeat an earlier line of the same order exactly; kept as separate order lines (line_no = position within the order)", l.identical))
	}
	if err == nil && l.sum.Read == 0 && l.cols != nil && l.cols.fixed {
		l.warn("no records: the file has a header only")
	}
	l.warnUnknown()
	l.sum.FinishedAt = time.Now().UTC()
	l.sum.Seconds = l.sum.FinishedAt.Sub(l.sum.StartedAt).Seconds()
	l.sum.Bytes = l.Stats.Bytes.Load()
	if err == nil {
		if got := l.sum.Loaded + l.sum.Rejected + l.sum.Duplicates; got != l.sum.Read {
			err = fmt.Errorf("internal: read %d != loaded %d + rejected %d + duplicates %d", l.sum.Read, l.sum.Loaded, l.sum.Rejected, l.sum.Duplicates)
		}
	}
	if err == nil && l.opts.AllOrNothing && l.sum.Rejected > 0 {
		err = &RejectsError{Rejected: l.sum.Rejected, Good: l.sum.Read - l.sum.Rejected}
	}
	wctx := context.WithoutCancel(ctx)
	if err == nil && l.st != nil && l.sum.Commit == CommitRun {
		return l.sum, l.commitRun(wctx)
	}
	if err != nil {
		l.sum.Status, l.sum.Error = StatusFailed, err.Error()
		if l.st != nil && l.sum.Commit == CommitRun {
			l.discard(wctx)
		}
	} else {
		l.sum.Status = StatusSucceeded
	}
	l.bumpVersion()
	if werr := l.writeRun(wctx); werr != nil && err == nil {
		err = werr
	}
	return l.sum, err
}

// commitRun makes a CommitRun run visible: the row 'committing' with the
// final counts, the staged partitions attached to the tables, the row
// 'succeeded', the staging tables dropped. A failure before the attaches
// leaves nothing stored (failed); one during them leaves the run committing,
// and the next start (Recover) attaches what is not attached yet.
func (l *Loader) commitRun(ctx context.Context) error {
	l.sum.Status = StatusCommitting
	l.bumpVersion()
	if err := l.writeRun(ctx); err != nil {
		l.sum.Status, l.sum.Error = StatusFailed, err.Error()
		l.discard(ctx)
		l.bumpVersion()
		_ = l.writeRun(ctx)
		return err
	}
	start := time.Now()
	attached, err := commitStaged(ctx, l.st, l.sum.RunID, l.staged, false, l.opts.AfterAttach)
	l.log.Debug("ingest: commit", "run", l.sum.RunID, "entity", l.ent.Name, "partitions", attached, "seconds", time.Since(start).Seconds())
	if err != nil {
		l.sum.Error = "the commit was interrupted (the next start of converge finishes it): " + err.Error()
		l.bumpVersion()
		_ = l.writeRun(ctx)
		return fmt.Errorf("commit: %w", err)
	}
	l.sum.Status = StatusSucceeded
	l.sum.FinishedAt = time.Now().UTC() // the run ends when its rows are visible
	l.sum.Seconds = l.sum.FinishedAt.Sub(l.sum.StartedAt).Seconds()
	l.bumpVersion()
	if err := l.writeRun(ctx); err != nil {
		return err // attached: the next start finds the run committing with nothing left to attach
	}
	if err := dropStaged(ctx, l.st, l.staged); err != nil {
		l.log.Warn("ingest: staging tables not dropped (the next start drops them)", "run", l.sum.RunID, "err", err)
	}
	return nil
}

// discard drops the staged rows of a run that failed: nothing of it is
// stored (its rejects stay in quarantine).
func (l *Loader) discard(ctx context.Context) {
	if err := dropStaged(ctx, l.st, l.staged); err != nil {
		l.log.Warn("ingest: staging tables not dropped (the next start drops them)", "run", l.sum.RunID, "err", err)
	}
	l.sum.NotStored, l.sum.Loaded = l.sum.Loaded, 0
	for _, tc := range l.sum.Tables {
		tc.Written = 0
	}
}

// bumpVersion makes the next ingest_runs row of the run replace the last.
func (l *Loader) bumpVersion() {
	l.version = max(l.version+1, uint64(time.Now().UnixNano()))
}

func (l *Loader) warn(msg string) {
	l.sum.Warnings = append(l.sum.Warnings, msg)
	l.log.Warn("ingest: "+msg, "file", l.file, "entity", l.ent.Name, "run", l.sum.RunID)
}

func (l *Loader) writeRun(ctx context.Context) error {
	if l.st == nil {
		return nil // a dry run records nothing
	}
	var fin *time.Time
	if !l.sum.FinishedAt.IsZero() {
		t := l.sum.FinishedAt
		fin = &t
	}
	src := l.file
	if src == "" {
		src = l.source
	}
	warnings := l.sum.Warnings
	if warnings == nil {
		warnings = []string{}
	}
	err := l.st.Conn.Exec(ctx, `INSERT INTO ingest_runs (run_id, entity, source, record_source, preset, started_at, finished_at, status, commit_mode,
		rows_read, rows_loaded, rows_rejected, rows_duplicate, bytes, checksum, error, warnings, host, version)
		VALUES ({id:String}, {entity:String}, {source:String}, {record_source:String}, {preset:String}, {started:DateTime64(3)}, {finished:Nullable(DateTime64(3))}, {status:String}, {commit:String},
		{read:UInt64}, {loaded:UInt64}, {rejected:UInt64}, {dup:UInt64}, {bytes:UInt64}, {checksum:String}, {error:String}, {warnings:Array(String)}, {host:String}, {version:UInt64})`,
		clickhouse.Named("commit", l.sum.Commit), clickhouse.Named("warnings", warnings),
		clickhouse.Named("id", l.sum.RunID), clickhouse.Named("entity", l.ent.Name), clickhouse.Named("source", src),
		clickhouse.Named("record_source", l.source), clickhouse.Named("preset", l.opts.Preset), clickhouse.Named("started", l.sum.StartedAt), clickhouse.Named("finished", fin),
		clickhouse.Named("status", l.sum.Status), clickhouse.Named("read", uint64(l.sum.Read)), clickhouse.Named("loaded", uint64(l.sum.Loaded)),
		clickhouse.Named("rejected", uint64(l.sum.Rejected)), clickhouse.Named("dup", uint64(l.sum.Duplicates)),
		clickhouse.Named("bytes", uint64(l.Stats.Bytes.Load())), clickhouse.Named("checksum", l.sum.Checksum),
		clickhouse.Named("error", l.sum.Error), clickhouse.Named("host", l.opts.Host), clickhouse.Named("version", l.version))
	if err != nil {
		return fmt.Errorf("ingest_runs: %w", err)
	}
	return nil
}
