package reports

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/export"
	convsql "github.com/converge-dev/converge/sql"
	"github.com/converge-dev/converge/warehouse"
)

// Run statuses.
const (
	StatusOK      = "ok"
	StatusFailed  = "failed"
	StatusSkipped = "skipped" // the schedule's previous run was still going
)

// Run triggers.
const (
	TriggerSchedule = "schedule" // its cron expression
	TriggerManual   = "manual"   // converge reports run
)

// Run is one run of a schedule, as recorded in report_runs.
type Run struct {
	ID, Schedule, Report, Trigger string
	Period                        string    // what it reported on: 2026-05, 2026-05-04..2026-05-10
	ScheduledAt                   time.Time // UTC: the instant its cron named (manual: when it was asked)
	StartedAt, FinishedAt         time.Time // UTC
	Status                        string
	Attempts                      int
	File                          string // path of the file written ("" when none)
	Bytes                         int64
	SHA256                        string
	EmailedTo                     []string
	Error                         string // the last attempt's error ("" when ok)
}

// output is the file a run made.
type output struct {
	period  string
	path    string
	bytes   int64
	sha256  string
	summary string // what the file is, for the e-mail
}

// make writes sc's file for the run at into the output folder (with its
// manifest, FILE.manifest.json).
func (s *Service) make(ctx context.Context, sc *Schedule, at time.Time) (*output, error) {
	if err := os.MkdirAll(s.cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("reports.dir: %w", err)
	}
	if sc.Report == KindFinance {
		from, _, label := s.period(sc, at)
		out := &output{period: label, path: filepath.Join(s.cfg.Dir, sc.Name+"_"+label+"."+sc.Format)}
		_, err := export.WriteFile(out.path, func(w io.Writer) (any, error) {
			m, err := export.FinancePack(ctx, s.reg, s.st, export.PackParams{Month: export.MonthOf(from, sc.TZ), TZ: sc.TZ,
				ROASModel: sc.ROASModel, Margin: s.cfg.Margin}, w, sc.Options)
			if err != nil {
				return nil, err
			}
			m.File = filepath.Base(out.path)
			out.bytes, out.sha256 = m.Bytes, m.SHA256
			out.summary = fmt.Sprintf("The finance pack of %s (time zone %s, %s): %s, %d bytes, SHA-256 %s.\nReconciled: %v.",
				label, m.TimeZone, m.Currency, m.File, m.Bytes, m.SHA256, m.Reconciled)
			if !m.Reconciled {
				out.summary += fmt.Sprintf(" These metrics do not reconcile: %v; see reconciliation.", m.Unreconciled)
			}
			return m, nil
		})
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	p, label, err := s.metricParams(sc, at)
	if err != nil {
		return nil, err
	}
	out := &output{period: label, path: filepath.Join(s.cfg.Dir, sc.Name+"_"+label+"."+sc.Format)}
	_, err = export.WriteFile(out.path, func(w io.Writer) (any, error) {
		m, err := export.Metric(ctx, s.reg, s.st, sc.Metric, p, w, sc.Options)
		if m == nil || m.SHA256 == "" {
			return nil, err
		}
		m.File = filepath.Base(out.path)
		out.bytes, out.sha256 = m.Bytes, m.SHA256
		out.summary = fmt.Sprintf("%s (%s) over %s by %s (time zone %s): %s, %d rows, %d bytes, SHA-256 %s.",
			sc.Metric, m.Metrics[0].Title, label, p.Grain, m.TimeZone, m.File, m.Rows, m.Bytes, m.SHA256)
		return m, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RunNow runs the schedule called name once, now, as its scheduler would
// (retries, e-mail, record), by actor (for the audit log). The run's
// error is in Run.Error; err is for a schedule that does not exist.
func (s *Service) RunNow(ctx context.Context, name, actor string) (Run, error) {
	sc, ok := s.Schedule(name)
	if !ok {
		var names []string
		for _, x := range s.cfg.Schedules {
			names = append(names, x.Name)
		}
		return Run{}, fmt.Errorf("no schedule %q (reports.schedules has %v)", name, names)
	}
	return s.execute(ctx, sc, s.clock.Now(), TriggerManual, actor), nil
}

// execute makes sc's file for at and sends it, retrying with backoff, and
// records the run.
func (s *Service) execute(ctx context.Context, sc *Schedule, at time.Time, trigger, actor string) Run {
	_, _, period := s.period(sc, at)
	run := Run{ID: newID(), Schedule: sc.Name, Report: sc.Report, Trigger: trigger, Period: period, ScheduledAt: at.UTC(), StartedAt: s.clock.Now().UTC()}
	if !s.begin(sc.Name) {
		run.Status, run.FinishedAt = StatusSkipped, run.StartedAt
		run.Error = "the previous run of this schedule was still going"
		s.log.Warn("report run skipped", "schedule", sc.Name, "scheduled_at", at, "reason", run.Error)
		s.record(ctx, run, actor)
		return run
	}
	defer s.end(sc.Name)
	to := sc.recipients(s.cfg.SMTP)
	var (
		out  *output
		sent bool
		err  error
	)
	for attempt := 1; ; attempt++ {
		run.Attempts = attempt
		err = func() error {
			if out == nil {
				o, err := s.produce(ctx, sc, at)
				if err != nil {
					return fmt.Errorf("make the file: %w", err)
				}
				out = o
			}
			if len(to) > 0 && !sent {
				if err := s.send(ctx, sc, out, to); err != nil {
					return fmt.Errorf("e-mail %s to %v: %w", filepath.Base(out.path), to, err)
				}
				sent = true
			}
			return nil
		}()
		if err == nil || attempt >= s.cfg.Tries || ctx.Err() != nil {
			break
		}
		wait := s.cfg.Backoff << (attempt - 1)
		s.log.Warn("report run failed; trying again", "schedule", sc.Name, "attempt", attempt, "of", s.cfg.Tries, "in", wait.String(), "error", err)
		c, stop := s.clock.Timer(wait)
		select {
		case <-c:
		case <-ctx.Done():
			stop()
		}
	}
	run.FinishedAt = s.clock.Now().UTC()
	if out != nil {
		run.File, run.Bytes, run.SHA256 = out.path, out.bytes, out.sha256
	}
	if sent {
		run.EmailedTo = to
	}
	run.Status = StatusOK
	if err != nil {
		run.Status, run.Error = StatusFailed, err.Error()
		if ctx.Err() != nil {
			run.Error += " (converge was stopping)"
		}
		s.log.Error("report run failed", "schedule", sc.Name, "attempts", run.Attempts, "error", err)
	} else {
		s.log.Info("report run", "schedule", sc.Name, "period", run.Period, "file", run.File, "bytes", run.Bytes, "emailed_to", run.EmailedTo)
	}
	s.record(ctx, run, actor)
	return run
}

// begin marks name's run under way; false when one already is.
func (s *Service) begin(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[name] {
		return false
	}
	s.running[name] = true
	return true
}

func (s *Service) end(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.running, name)
}

// send e-mails out's file to the recipients.
func (s *Service) send(ctx context.Context, sc *Schedule, out *output, to []string) error {
	data, err := os.ReadFile(out.path)
	if err != nil {
		return err
	}
	subject := fmt.Sprintf("converge report %s: %s", sc.Name, out.period)
	body := out.summary + "\n\nThe manifest (" + filepath.Base(out.path) + ".manifest.json, next to the file in " + s.cfg.Dir +
		") says which metric versions, parameters and data produced it.\n\nSent by converge " + s.cfg.Version + ", schedule " + sc.Name +
		" (" + sc.Cron + ", " + sc.TZ.String() + ").\n"
	return sendMail(ctx, s.cfg.SMTP, to, message{subject: subject, body: body, filename: filepath.Base(out.path), data: data, date: s.clock.Now()})
}

// record writes run to report_runs and the audit log. A failure to record
// is logged: the run itself happened.
func (s *Service) record(ctx context.Context, run Run, actor string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	emailed := run.EmailedTo
	if emailed == nil {
		emailed = []string{}
	}
	err := s.st.App.Exec(ctx, convsql.ReportQuery("run_insert"),
		clickhouse.Named("run_id", run.ID), clickhouse.Named("schedule", run.Schedule), clickhouse.Named("report", run.Report),
		clickhouse.Named("trigger", run.Trigger), clickhouse.Named("period", run.Period),
		clickhouse.Named("scheduled_at", chTime(run.ScheduledAt)), clickhouse.Named("started_at", chTime(run.StartedAt)),
		clickhouse.Named("finished_at", chTime(run.FinishedAt)), clickhouse.Named("status", run.Status),
		clickhouse.Named("attempts", fmt.Sprint(run.Attempts)), clickhouse.Named("file", run.File), clickhouse.Named("bytes", fmt.Sprint(run.Bytes)),
		clickhouse.Named("sha256", run.SHA256), clickhouse.Named("emailed_to", warehouse.StringArray(emailed)), clickhouse.Named("error", run.Error))
	if err != nil {
		s.log.Error("reports: record the run in report_runs", "schedule", run.Schedule, "status", run.Status, "error", err)
	}
	if s.audit == nil {
		return
	}
	if actor == "" {
		actor = "scheduler"
	}
	detail := map[string]any{"run_id": run.ID, "status": run.Status, "trigger": run.Trigger, "period": run.Period, "attempts": run.Attempts,
		"file": run.File, "sha256": run.SHA256, "emailed_to": emailed, "error": run.Error}
	if err := s.audit(ctx, actor, "report.run", run.Schedule, detail); err != nil {
		s.log.Error("reports: audit log", "schedule", run.Schedule, "error", err)
	}
}

// Runs are the latest limit runs (of schedule, "" for all), newest first.
func (s *Service) Runs(ctx context.Context, schedule string, limit int) ([]Run, error) {
	if limit <= 0 {
		limit = 20
	}
	rows, err := s.st.App.Query(ctx, convsql.ReportQuery("runs"), clickhouse.Named("schedule", schedule), clickhouse.Named("limit", fmt.Sprint(limit)))
	if err != nil {
		return nil, fmt.Errorf("read report runs: %w", err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var r Run
		var attempts uint8
		var bytes uint64
		if err := rows.Scan(&r.ID, &r.Schedule, &r.Report, &r.Trigger, &r.Period, &r.ScheduledAt, &r.StartedAt, &r.FinishedAt, &r.Status,
			&attempts, &r.File, &bytes, &r.SHA256, &r.EmailedTo, &r.Error); err != nil {
			return nil, fmt.Errorf("read report runs: %w", err)
		}
		r.Attempts, r.Bytes = int(attempts), int64(bytes)
		r.ScheduledAt, r.StartedAt, r.FinishedAt = r.ScheduledAt.UTC(), r.StartedAt.UTC(), r.FinishedAt.UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// chTime is t as a DateTime64(3) parameter.
func chTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") }

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
