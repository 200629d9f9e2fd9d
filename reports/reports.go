// Package reports makes report files on demand and on schedules: the monthly
// finance pack (export.FinancePack) and exports of a metric (export.Metric).
// A schedule names a cron expression in a time zone and what to run; each
// run writes its file and manifest into an output folder, optionally e-mails
// the file (SMTP, the file attached), is retried with backoff when it fails,
// and is recorded (table report_runs, and the audit log): a failure is never
// silent. The scheduler runs inside `converge serve`; `converge reports run
// NAME` runs a schedule once, now.
//
// It imports export, metrics, warehouse and sql; it is meant for
// cmd/converge and server, and imports neither.
package reports

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/converge-dev/converge/export"
	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse"
)

// Report kinds a schedule can run.
const (
	KindFinance = export.FinanceMonthly // the finance pack of the previous month
	KindMetric  = "metric"              // an export of a metric over the previous period
)

// Periods of a metric schedule, relative to the time it runs, in its zone.
var Periods = []string{"previous_day", "previous_week", "previous_month", "previous_quarter", "previous_year"}

// Config is the reports.* and smtp.* configuration.
type Config struct {
	// Dir is where scheduled runs write their files (reports.dir); created when missing.
	Dir string
	// Schedules are the scheduled reports (reports.schedules), by unique name.
	Schedules []Schedule
	// Tries is how many times a run is attempted before it is recorded as failed
	// (reports.tries, default 3).
	Tries int
	// Backoff is the wait before the second attempt, doubled before each next one
	// (reports.retry_backoff, default 1 minute).
	Backoff time.Duration
	// SMTP sends the files; no host: files are written, not e-mailed.
	SMTP SMTP

	// The report settings every report uses unless its schedule says otherwise.
	TZ              *time.Location // report.tz
	Currency        string         // report.currency
	Margin          float64        // report.default_margin
	WeekStart       time.Weekday   // report.week_start (previous_week)
	FiscalYearStart time.Month     // report.fiscal_year_start (previous_quarter, previous_year)
	Version         string         // converge's version, in manifests
}

// Schedule is one scheduled report.
type Schedule struct {
	// Key is where the schedule is configured ("reports.schedules[0]"): errors name it.
	Key  string
	Name string // unique; names the files: NAME_PERIOD.EXT
	Cron string // 5-field cron expression, read in TZ (see cronSpec)
	// TZ is the zone of the cron expression and of the period reported on (default report.tz).
	TZ *time.Location
	// Report is KindFinance (the previous month's pack) or KindMetric.
	Report string
	// Metric, Period and Params: for KindMetric, the metric exported over the previous
	// period, with the query parameters of `converge export metric` (grain, by, compare,
	// filter, arg, week_start, fiscal_year_start; from, to and tz come from the period).
	// Default period previous_month; default grain day, month for a quarter or a year.
	Metric string
	Period string
	Params url.Values
	// Format: zip (default) or xlsx for the pack, csv (default) or xlsx for a metric.
	Format string
	// Options shape CSV files (raw, preset, delimiter, decimal), as in `converge export`.
	Options export.Options
	// ROASModel is the pack's attribution model for ROAS (default last_touch).
	ROASModel string
	// Email: send the file when SMTP is configured (default true); To overrides smtp.to.
	Email bool
	To    []string

	cron *cronSpec
}

// SMTP is the mail server reports are sent through (smtp.*).
type SMTP struct {
	Host     string   // smtp.host; "" sends nothing
	Port     int      // smtp.port (default 587)
	User     string   // smtp.user; "" skips authentication
	Password string   // smtp.password, from the environment (CONVERGE_SMTP_PASSWORD)
	From     string   // smtp.from
	To       []string // smtp.to
	// StartTLS requires the STARTTLS upgrade before authenticating and sending (smtp.starttls,
	// default true); off only for a relay on a trusted network.
	StartTLS bool
	Timeout  time.Duration // smtp.timeout, per message (default 30 s)
}

// Validate checks the configuration (not what needs the metric definitions:
// see New) and fills defaults. Each error names its key.
func (c *Config) Validate() error {
	if c.TZ == nil {
		c.TZ = time.UTC
	}
	if c.Tries == 0 {
		c.Tries = 3
	}
	if c.Tries < 1 || c.Tries > 10 {
		return fmt.Errorf("reports.tries: %d is not 1..10", c.Tries)
	}
	if c.Backoff == 0 {
		c.Backoff = time.Minute
	}
	if c.Backoff < 0 {
		return fmt.Errorf("reports.retry_backoff: %s is negative", c.Backoff)
	}
	if c.FiscalYearStart == 0 {
		c.FiscalYearStart = time.January
	}
	var errs []error
	if err := c.SMTP.validate(); err != nil {
		errs = append(errs, err)
	}
	if len(c.Schedules) > 0 && c.Dir == "" {
		errs = append(errs, errors.New("reports.dir: empty; scheduled reports need a folder to write their files to"))
	}
	seen := map[string]string{}
	for i := range c.Schedules {
		s := &c.Schedules[i]
		if s.Key == "" {
			s.Key = fmt.Sprintf("reports.schedules[%d]", i)
		}
		if err := s.validate(c); err != nil {
			errs = append(errs, err)
			continue
		}
		if k, ok := seen[s.Name]; ok {
			errs = append(errs, fmt.Errorf("%s.name: %q is also the name of %s", s.Key, s.Name, k))
		}
		seen[s.Name] = s.Key
	}
	return errors.Join(errs...)
}

func (m *SMTP) validate() error {
	if m.Host == "" {
		return nil
	}
	if m.Port == 0 {
		m.Port = 587
	}
	if m.Port < 1 || m.Port > 65535 {
		return fmt.Errorf("smtp.port: %d is not a port", m.Port)
	}
	if m.Timeout == 0 {
		m.Timeout = 30 * time.Second
	}
	if !validAddress(m.From) {
		return fmt.Errorf("smtp.from: %q is not an e-mail address (required with smtp.host)", m.From)
	}
	for _, to := range m.To {
		if !validAddress(to) {
			return fmt.Errorf("smtp.to: %q is not an e-mail address", to)
		}
	}
	if m.User != "" && m.Password == "" {
		return errors.New("smtp.password: empty while smtp.user is set (set CONVERGE_SMTP_PASSWORD)")
	}
	return nil
}

// validate checks s and fills its defaults.
func (s *Schedule) validate(c *Config) error {
	if s.Name == "" || strings.ContainsAny(s.Name, `/\ `) || strings.HasPrefix(s.Name, ".") {
		return fmt.Errorf("%s.name: %q is not a name (letters, digits, - and _; it names the files)", s.Key, s.Name)
	}
	if s.TZ == nil {
		s.TZ = c.TZ
	}
	spec, err := parseCron(s.Cron, s.TZ)
	if err != nil {
		return fmt.Errorf("%s.cron: %v", s.Key, err)
	}
	s.cron = spec
	switch s.Report {
	case KindFinance:
		if s.Format == "" {
			s.Format = "zip"
		}
		if s.Format != "zip" && s.Format != "xlsx" {
			return fmt.Errorf("%s.format: %q is not zip or xlsx", s.Key, s.Format)
		}
		if s.Metric != "" || s.Period != "" || len(s.Params) > 0 {
			return fmt.Errorf("%s: metric, period and params are for report: metric, not %s", s.Key, s.Report)
		}
	case KindMetric:
		if s.Metric == "" {
			return fmt.Errorf("%s.metric: required with report: metric", s.Key)
		}
		if s.Period == "" {
			s.Period = "previous_month"
		}
		if !slices.Contains(Periods, s.Period) {
			return fmt.Errorf("%s.period: %q is not one of %s", s.Key, s.Period, strings.Join(Periods, ", "))
		}
		if s.Format == "" {
			s.Format = "csv"
		}
		if s.Format != "csv" && s.Format != "xlsx" {
			return fmt.Errorf("%s.format: %q is not csv or xlsx", s.Key, s.Format)
		}
		for k := range s.Params {
			if k == "from" || k == "to" || k == "tz" {
				return fmt.Errorf("%s.params.%s: set by the period and the schedule's tz", s.Key, k)
			}
		}
		if s.ROASModel != "" {
			return fmt.Errorf("%s.roas_model: for report: %s only (a metric's args go in params.arg)", s.Key, KindFinance)
		}
	case "":
		return fmt.Errorf("%s.report: required: %s or %s", s.Key, KindFinance, KindMetric)
	default:
		return fmt.Errorf("%s.report: unknown report %q (%s or %s)", s.Key, s.Report, KindFinance, KindMetric)
	}
	s.Options.Format = export.CSV
	if s.Format == "xlsx" {
		s.Options.Format = export.XLSX
	}
	if s.Options.Currency == "" {
		s.Options.Currency = c.Currency
	}
	s.Options.Version = c.Version
	if err := s.Options.Validate(); err != nil {
		return fmt.Errorf("%s.%v", s.Key, err)
	}
	for _, to := range s.To {
		if !validAddress(to) {
			return fmt.Errorf("%s.to: %q is not an e-mail address", s.Key, to)
		}
	}
	return nil
}

// Next is the schedule's first run after t.
func (s *Schedule) Next(t time.Time) time.Time { return s.cron.Next(t) }

// recipients are the addresses s's files go to: none without SMTP.
func (s *Schedule) recipients(m SMTP) []string {
	if m.Host == "" || !s.Email {
		return nil
	}
	if len(s.To) > 0 {
		return s.To
	}
	return m.To
}

// AuditFunc writes an entry to the audit log (access.Service.Audit).
type AuditFunc func(ctx context.Context, actor, action, target string, detail any) error

// Service makes the reports: packs on demand, and the scheduled runs.
type Service struct {
	reg   *metrics.Registry
	st    *warehouse.Store
	cfg   Config
	log   *slog.Logger
	audit AuditFunc
	clock Clock
	// produce makes a schedule's file for the run at; tests replace it.
	produce func(ctx context.Context, s *Schedule, at time.Time) (*output, error)

	mu      sync.Mutex
	running map[string]bool // schedules with a run under way
}

// Options are a Service's optional collaborators.
type Options struct {
	Log   *slog.Logger // nil: discard
	Audit AuditFunc    // nil: runs are recorded in report_runs only
	Clock Clock        // nil: the system clock
}

// New checks cfg (Config.Validate, then each metric schedule's metric and
// parameters against reg) and returns the service. Each error names its key.
func New(reg *metrics.Registry, st *warehouse.Store, cfg Config, o Options) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{reg: reg, st: st, cfg: cfg, log: o.Log, audit: o.Audit, clock: o.Clock, running: map[string]bool{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.clock == nil {
		s.clock = systemClock{}
	}
	s.produce = s.make
	var errs []error
	for i := range s.cfg.Schedules {
		sc := &s.cfg.Schedules[i]
		if sc.Report != KindMetric {
			continue
		}
		if _, ok := reg.Get(sc.Metric); !ok {
			errs = append(errs, fmt.Errorf("%s.metric: unknown metric %q (see `converge metrics list`)", sc.Key, sc.Metric))
			continue
		}
		if _, _, err := s.metricParams(sc, s.clock.Now()); err != nil {
			errs = append(errs, err)
		}
	}
	return s, errors.Join(errs...)
}

// Config is the service's configuration, defaults filled.
func (s *Service) Config() Config { return s.cfg }

// Schedule returns the schedule called name.
func (s *Service) Schedule(name string) (*Schedule, bool) {
	for i := range s.cfg.Schedules {
		if s.cfg.Schedules[i].Name == name {
			return &s.cfg.Schedules[i], true
		}
	}
	return nil, false
}

// FinancePack writes the finance pack of month in the report time zone
// and currency to w, as a zip (format "zip") or a workbook ("xlsx"), formatted.
func (s *Service) FinancePack(ctx context.Context, month export.Month, format string, w io.Writer) (*export.PackManifest, error) {
	o := export.Options{Currency: s.cfg.Currency, Version: s.cfg.Version}
	switch format {
	case "", "zip":
	case "xlsx":
		o.Format = export.XLSX
	default:
		return nil, &metrics.ParamError{Param: "format", Reason: fmt.Sprintf("%q is not zip or xlsx", format)}
	}
	return export.FinancePack(ctx, s.reg, s.st, export.PackParams{Month: month, TZ: s.cfg.TZ, Margin: s.cfg.Margin}, w, o)
}

// Months are the months with orders in the report time zone, newest first.
func (s *Service) Months(ctx context.Context) ([]export.Month, error) {
	return export.PackMonths(ctx, s.st, s.cfg.TZ)
}

// TZ is the report time zone.
func (s *Service) TZ() *time.Location { return s.cfg.TZ }

// period is the span a schedule run at reports on: [from, to) as calendar
// days in the schedule's zone, and its label (2026-05, 2026-05-04, or
// 2026-05-04..2026-05-10 for the days it holds).
func (s *Service) period(sc *Schedule, at time.Time) (from, to time.Time, label string) {
	t := at.In(sc.TZ)
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, sc.TZ)
	kind := sc.Period
	if sc.Report == KindFinance {
		kind = "previous_month"
	}
	switch kind {
	case "previous_day":
		from, to = day.AddDate(0, 0, -1), day
	case "previous_week":
		back := (int(day.Weekday()) - int(s.cfg.WeekStart) + 7) % 7
		to = day.AddDate(0, 0, -back)
		from = to.AddDate(0, 0, -7)
	case "previous_quarter", "previous_year":
		months := 3
		if kind == "previous_year" {
			months = 12
		}
		shift := (int(t.Month()) - int(s.cfg.FiscalYearStart) + 12) % months
		to = time.Date(t.Year(), t.Month()-time.Month(shift), 1, 0, 0, 0, 0, sc.TZ)
		from = to.AddDate(0, -months, 0)
	default: // previous_month
		to = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, sc.TZ)
		from = to.AddDate(0, -1, 0)
	}
	last := to.AddDate(0, 0, -1)
	switch {
	case kind == "previous_month":
		label = from.Format("2006-01")
	case from.Equal(last):
		label = from.Format(time.DateOnly)
	default:
		label = from.Format(time.DateOnly) + ".." + last.Format(time.DateOnly)
	}
	return from, to, label
}

// metricParams are the metric query of a metric schedule run at: its
// params, from and to of the period, the schedule's zone.
func (s *Service) metricParams(sc *Schedule, at time.Time) (metrics.Params, string, error) {
	from, to, label := s.period(sc, at)
	v := url.Values{}
	for k, vs := range sc.Params {
		v[k] = slices.Clone(vs)
	}
	v.Set("from", from.Format(time.DateOnly))
	v.Set("to", to.AddDate(0, 0, -1).Format(time.DateOnly)) // the period's last day: to is inclusive
	v.Set("tz", sc.TZ.String())
	if v.Get("grain") == "" {
		v.Set("grain", "day")
		if sc.Period == "previous_quarter" || sc.Period == "previous_year" {
			v.Set("grain", "month")
		}
	}
	p, err := s.reg.ParseParams(sc.Metric, v)
	if err != nil {
		var pe *metrics.ParamError
		if errors.As(err, &pe) {
			return p, "", fmt.Errorf("%s.params.%s: %s", sc.Key, pe.Param, pe.Reason)
		}
		return p, "", fmt.Errorf("%s.params: %w", sc.Key, err)
	}
	p.Margin = s.cfg.Margin
	return p, label, nil
}
