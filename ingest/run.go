package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Close finishes the run: flushes (unless runErr), writes the final
// ingest_runs row and returns the summary. runErr is a failure of the
// caller's source (recorded as the run's error).
func (l *Loader) Close(ctx context.Context, runErr error) (Summary, error) {
	if l.closed {
		return l.sum, errors.New("ingest: loader already closed")
	}
	l.closed = true
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
	l.sum.FinishedAt = time.Now().UTC()
	l.sum.Seconds = l.sum.FinishedAt.Sub(l.sum.StartedAt).Seconds()
	l.sum.Bytes = l.Stats.Bytes.Load()
	l.sum.Status = "succeeded"
	if err != nil {
		l.sum.Status = "failed"
		l.sum.Error = err.Error()
	} else if got := l.sum.Loaded + l.sum.Rejected + l.sum.Duplicates; got != l.sum.Read {
		l.sum.Status = "failed"
		l.sum.Error = fmt.Sprintf("internal: read %d != loaded %d + rejected %d + duplicates %d", l.sum.Read, l.sum.Loaded, l.sum.Rejected, l.sum.Duplicates)
		err = errors.New(l.sum.Error)
	}
	l.version = max(l.version+1, uint64(time.Now().UnixNano()))
	if werr := l.writeRun(context.WithoutCancel(ctx)); werr != nil && err == nil {
		err = werr
	}
	return l.sum, err
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
	err := l.st.Conn.Exec(ctx, `INSERT INTO ingest_runs (run_id, entity, source, record_source, preset, started_at, finished_at, status,
		rows_read, rows_loaded, rows_rejected, rows_duplicate, bytes, checksum, error, host, version)
		VALUES ({id:String}, {entity:String}, {source:String}, {record_source:String}, {preset:String}, {started:DateTime64(3)}, {finished:Nullable(DateTime64(3))}, {status:String},
		{read:UInt64}, {loaded:UInt64}, {rejected:UInt64}, {dup:UInt64}, {bytes:UInt64}, {checksum:String}, {error:String}, {host:String}, {version:UInt64})`,
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
