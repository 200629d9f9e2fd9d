package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/export"
	"github.com/converge-dev/converge/reports"
	"github.com/converge-dev/converge/views"
)

// Reports makes the report packs and tells about the scheduled reports (reports.Service).
type Reports interface {
	// Months are the months with orders in TZ, newest first.
	Months(ctx context.Context) ([]export.Month, error)
	// FinancePack writes the finance pack of month as format zip or xlsx.
	FinancePack(ctx context.Context, month export.Month, format string, w io.Writer) (*export.PackManifest, error)
	// TZ is the report time zone the packs are computed in.
	TZ() *time.Location
	// Config is the reports configuration: the schedules, the folder, the mail server.
	Config() reports.Config
	// Runs are the latest recorded runs of the schedules, newest first.
	Runs(ctx context.Context, schedule string, limit int) ([]reports.Run, error)
}

var _ Reports = (*reports.Service)(nil)

// URLs of the reports pages.
const (
	reportsPath     = "/reports"
	financePackPath = "/reports/" + export.FinanceMonthly
)

// packTypes are the content types of the pack formats.
var packTypes = map[string]string{
	"zip":  "application/zip",
	"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

// reportsRuns is how many recorded runs the reports page shows admins.
const reportsRuns = 20

// reportsPage shows the finance pack's months to download (GET /reports, finance and up) and,
// to admins, the scheduled reports and their latest runs.
func (s *Server) reportsPage(c *gin.Context) error {
	if s.reports == nil {
		return errUnavailable("Reports are not configured.")
	}
	ctx := c.Request.Context()
	loc := s.reports.TZ()
	cfg := s.reports.Config()
	v := views.ReportsView{Page: s.page(c, "Reports", "reports"), Action: financePackPath, Currency: cfg.Currency, TZ: loc.String(),
		Tables: packTables}
	c.Header("Cache-Control", "no-store")
	months, err := s.reports.Months(ctx)
	if err != nil {
		s.reqLog(c).Warn("reports: months", "error", err)
		v.MonthsError = shownText(c.Request.Context(), err)
	}
	previous := export.MonthOf(s.now(), loc).Add(-1).String()
	for i, m := range months {
		v.Months = append(v.Months, views.Option{Value: m.String(), Label: monthLabel(m)})
		if m.String() == previous || v.Selected == "" && i == 0 {
			v.Selected = m.String()
		}
		if i < 12 {
			link := func(format string) string {
				return financePackPath + "?" + url.Values{"month": {m.String()}, "format": {format}}.Encode()
			}
			v.Recent = append(v.Recent, views.ReportMonth{Label: monthLabel(m), ZipURL: link("zip"), XLSXURL: link("xlsx"),
				ManifestURL: link("xlsx") + "&manifest=1"})
		}
	}
	if roleOf(c).Includes(admin) {
		v.Admin = true
		s.scheduleRows(c, cfg, &v)
	}
	return s.renderHTML(c, http.StatusOK, views.Reports(v))
}

// packTables describe the finance pack's tables on the page.
var packTables = []views.ReportTable{
	{Name: "By month", Contents: "every metric for the month chosen and the 12 months before it (a year of trend and the same month a year earlier)."},
	{Name: "By channel", Contents: "every metric by channel for the month, then its total. Amounts and new customers add up to the total; ratios (CAC, margin %, LTV:CAC, payback, ROAS) and active customers do not."},
	{Name: "Reconciliation", Contents: "for each metric, the total against the sum of its channels or the ratio of the totals, and why the others do not add up."},
	{Name: "Metrics", Contents: "the definitions used: formula, unit, owner and version."},
}

// monthLabel is "May 2026".
func monthLabel(m export.Month) string { return m.Month.String() + " " + fmt.Sprint(m.Year) }

// scheduleRows fills the admin section: the schedules and the latest runs.
func (s *Server) scheduleRows(c *gin.Context, cfg reports.Config, v *views.ReportsView) {
	v.Dir = cfg.Dir
	v.Mail = "e-mail is off (smtp.host is not set)"
	if cfg.SMTP.Host != "" {
		v.Mail = fmt.Sprintf("e-mail goes through %s:%d from %s", cfg.SMTP.Host, cfg.SMTP.Port, cfg.SMTP.From)
	}
	now := s.now()
	for _, sc := range cfg.Schedules {
		what := "finance pack of the previous month"
		if sc.Report == reports.KindMetric {
			what = sc.Metric + ", " + strings.ReplaceAll(sc.Period, "_", " ")
		}
		to := "—"
		if cfg.SMTP.Host != "" && sc.Email {
			to = strings.Join(sc.To, ", ")
			if to == "" {
				to = strings.Join(cfg.SMTP.To, ", ")
			}
		}
		v.Schedules = append(v.Schedules, views.ScheduleRow{Name: sc.Name, Cron: sc.Cron, TZ: sc.TZ.String(), What: what, Format: sc.Format,
			Next: sc.Next(now).In(sc.TZ).Format("2006-01-02 15:04 MST"), To: to})
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.TileTimeout)
	defer cancel()
	runs, err := s.reports.Runs(ctx, "", reportsRuns)
	if err != nil {
		s.reqLog(c).Warn("reports: runs", "error", err)
		v.RunsError = shownText(c.Request.Context(), err)
		return
	}
	loc, err := loadZone(s.reportTZ(c))
	if err != nil {
		loc = time.UTC
	}
	for _, r := range runs {
		row := views.ReportRunRow{Started: r.StartedAt.In(loc).Format("2006-01-02 15:04:05"), Schedule: r.Schedule, Trigger: r.Trigger,
			Period: r.Period, Status: r.Status, Attempts: fmt.Sprint(r.Attempts), File: filepath.Base(r.File), Path: r.File, EmailedTo: strings.Join(r.EmailedTo, ", "),
			Error: r.Error}
		if r.File == "" {
			row.File = ""
		} else {
			row.Size = fmt.Sprintf("%d bytes, sha256 %.12s…", r.Bytes, r.SHA256)
		}
		v.Runs = append(v.Runs, row)
	}
}

// financePack answers GET /reports/finance-monthly?month=YYYY-MM&format=zip|xlsx (finance and
// up) with the pack as a download, written to the audit log; with manifest=1, its manifest
// (JSON) instead, the sidecar of an XLSX download. A month that is not YYYY-MM or has not begun
// is a 400.
func (s *Server) financePack(c *gin.Context) error {
	if s.reports == nil {
		return errUnavailable("Reports are not configured.")
	}
	for k := range c.Request.URL.Query() {
		if k != "month" && k != "format" && k != "manifest" {
			return &paramError{Param: k, Msg: fmt.Sprintf("Unknown parameter %q: the finance pack takes month, format and manifest.", k)}
		}
	}
	loc := s.reports.TZ()
	raw := c.Query("month")
	month, err := export.ParseMonth(raw)
	if err != nil {
		return badParam("month", raw, "a month YYYY-MM is required")
	}
	if current := export.MonthOf(s.now(), loc); month.Start(loc).After(current.Start(loc)) {
		return badParam("month", raw, fmt.Sprintf("it has not begun (this is %s in %s)", current, loc))
	}
	format := c.DefaultQuery("format", "zip")
	if _, ok := packTypes[format]; !ok {
		return badParam("format", format, "allowed are zip, xlsx")
	}
	sidecar := false
	switch m := c.Query("manifest"); m {
	case "", "0", "false":
	case "1", "true":
		sidecar = true
	default:
		return badParam("manifest", m, "allowed are 1, 0")
	}
	var buf bytes.Buffer
	m, err := s.reports.FinancePack(c.Request.Context(), month, format, &buf)
	if err != nil {
		return err
	}
	file := fmt.Sprintf("%s_%s.%s", export.FinanceMonthly, month, format)
	m.File = file
	c.Header("Cache-Control", "no-store")
	if sidecar {
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return err
		}
		c.Header("Content-Disposition", `attachment; filename="`+file+`.manifest.json"`)
		c.Data(http.StatusOK, "application/json; charset=utf-8", append(b, '\n'))
		return nil
	}
	detail := map[string]any{"month": m.Month, "format": m.Format, "bytes": m.Bytes, "sha256": m.SHA256, "reconciled": m.Reconciled}
	if err := access.Audit(c.Request.Context(), "", "export", export.FinanceMonthly+"/"+m.Month, detail); err != nil {
		if !errors.Is(err, access.ErrNoAuditLog) {
			return fmt.Errorf("finance pack %s: the download is not written to the audit log, so it is refused: %w", m.Month, err)
		}
		s.reqLog(c).Warn("finance pack downloaded without an audit log (no access service)", "month", m.Month)
	}
	c.Header("Content-Disposition", `attachment; filename="`+file+`"`)
	c.Data(http.StatusOK, packTypes[format], buf.Bytes())
	return nil
}
