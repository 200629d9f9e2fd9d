package main

import (
	"errors"
	"fmt"
	"net/url"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/converge-dev/converge/reports"
)

func init() {
	subcommands = append(subcommands, func(a *app) *cobra.Command { return a.reportsCmd() })
}

// scheduleKeys are the keys of an entry of reports.schedules.
var scheduleKeys = []string{"name", "cron", "tz", "report", "metric", "period", "params", "format", "raw", "csv_raw", "preset", "delimiter", "decimal",
	"email", "to", "roas_model"}

// decodeSchedules reads reports.schedules: a list of mappings, in the
// config file. Each error names its key (reports.schedules[1].tz).
func decodeSchedules(raw any, tz *time.Location) ([]reports.Schedule, error) {
	var list []any
	switch x := raw.(type) {
	case nil:
		return nil, nil
	case []any:
		list = x
	case string:
		if strings.TrimSpace(x) == "" {
			return nil, nil
		}
		return nil, errors.New("reports.schedules: a list of schedules in the config file (it cannot be set in the environment)")
	default:
		return nil, fmt.Errorf("reports.schedules: a list of schedules (name, cron, report, …), not %T", raw)
	}
	var out []reports.Schedule
	var errs []error
	for i, item := range list {
		key := fmt.Sprintf("reports.schedules[%d]", i)
		m, ok := item.(map[string]any)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: a mapping of %s, not %T", key, strings.Join(scheduleKeys, ", "), item))
			continue
		}
		e := entry{key: key, m: map[string]any{}}
		for k, v := range m {
			k = strings.ToLower(k)
			if !slices.Contains(scheduleKeys, k) {
				e.fail(k, "unknown key (known: %s)", strings.Join(scheduleKeys, ", "))
			}
			e.m[k] = v
		}
		s := reports.Schedule{Key: key, Name: e.str("name"), Cron: e.str("cron"), Report: e.str("report"), Metric: e.str("metric"),
			Period: e.str("period"), Format: e.str("format"), ROASModel: e.str("roas_model"), TZ: tz, Email: e.boolean("email", true), To: e.list("to")}
		if z := e.str("tz"); z != "" {
			if loc, err := time.LoadLocation(z); err != nil {
				e.fail("tz", "%q is not an IANA time zone (e.g. Europe/Berlin)", z)
			} else {
				s.TZ = loc
			}
		}
		s.Params = e.params()
		s.Options.Raw = e.boolean("raw", false)
		s.Options.CSVRaw = e.boolean("csv_raw", false)
		s.Options.Preset = e.str("preset")
		if d := e.str("delimiter"); d != "" {
			r, err := parseDelimiter(d)
			if err != nil {
				e.fail("delimiter", "%v", err)
			}
			s.Options.Delimiter = r
		}
		if d := e.str("decimal"); d != "" {
			if len(d) != 1 {
				e.fail("decimal", "%q is not . or ,", d)
			} else {
				s.Options.Decimal = rune(d[0])
			}
		}
		errs = append(errs, e.errs...)
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}

// entry reads one schedule's values, collecting errors by key.
type entry struct {
	key  string
	m    map[string]any
	errs []error
}

func (e *entry) fail(k, format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf("%s.%s: %s", e.key, k, fmt.Sprintf(format, args...)))
}

// str is a text value (a number is taken as its text).
func (e *entry) str(k string) string {
	switch x := e.m[k].(type) {
	case nil:
		return ""
	case string:
		return strings.TrimSpace(x)
	case int, int64, float64, bool:
		return fmt.Sprint(x)
	default:
		e.fail(k, "a single value, not %T", x)
		return ""
	}
}

func (e *entry) boolean(k string, def bool) bool {
	switch x := e.m[k].(type) {
	case nil:
		return def
	case bool:
		return x
	case string:
		b, err := strconv.ParseBool(x)
		if err != nil {
			e.fail(k, "%q is not true or false", x)
		}
		return b
	default:
		e.fail(k, "%v is not true or false", x)
		return def
	}
}

// list is a list of texts, or one comma-separated text.
func (e *entry) list(k string) []string {
	out, ok := toList(e.m[k])
	if !ok {
		e.fail(k, "a list, not %T", e.m[k])
	}
	return out
}

// toList reads a YAML list, or a comma-separated text (as the environment gives it).
func toList(x any) ([]string, bool) {
	switch y := x.(type) {
	case nil:
		return nil, true
	case string:
		return splitList(y), true
	case []any:
		var out []string
		for _, v := range y {
			out = append(out, strings.TrimSpace(fmt.Sprint(v)))
		}
		return out, true
	}
	return nil, false
}

// params are a metric schedule's query parameters: a mapping of names to a
// value or a list of values (filter, arg).
func (e *entry) params() url.Values {
	raw, ok := e.m["params"]
	if !ok || raw == nil {
		return nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		e.fail("params", "a mapping of metric query parameters (grain, by, filter, arg, …), not %T", raw)
		return nil
	}
	v := url.Values{}
	for k, x := range m {
		switch y := x.(type) {
		case []any:
			for _, z := range y {
				v.Add(k, fmt.Sprint(z))
			}
		default:
			v.Set(k, fmt.Sprint(y))
		}
	}
	return v
}

// listKey reads a list key: a YAML list, or a comma-separated text (the environment).
func listKey(v *viper.Viper, key string) []string {
	if out, ok := toList(v.Get(key)); ok {
		return out
	}
	return splitList(v.GetString(key))
}

// parseDelimiter reads a CSV field separator: , ; | or tab.
func parseDelimiter(s string) (rune, error) {
	switch s {
	case "tab", `\t`, "\t":
		return '\t', nil
	}
	if len(s) != 1 {
		return 0, fmt.Errorf("%q is not one of , ; tab |", s)
	}
	return rune(s[0]), nil
}

func (a *app) reportsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reports",
		Short: "Scheduled reports (reports.schedules): list them, run one now, show the recorded runs",
	}
	var dir string
	cmd.PersistentFlags().StringVar(&dir, "metrics-dir", "", "folder of the user's metric definitions (*.sql; key metrics.dir)")

	list := &cobra.Command{
		Use:   "list",
		Short: "The schedules and their next runs (in their time zones)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tCRON\tTZ\tREPORT\tFORMAT\tNEXT RUN\tE-MAIL TO")
			now := time.Now()
			for _, s := range a.cfg.Reports.Schedules {
				what := s.Report
				if s.Report == reports.KindMetric {
					what = s.Metric + " " + s.Period
				}
				to := "-"
				if a.cfg.Reports.SMTP.Host != "" && s.Email {
					to = strings.Join(s.To, ", ")
					if to == "" {
						to = strings.Join(a.cfg.Reports.SMTP.To, ", ")
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Cron, s.TZ, what, s.Format, s.Next(now).In(s.TZ).Format("2006-01-02 15:04 MST"), to)
			}
			if len(a.cfg.Reports.Schedules) == 0 {
				fmt.Fprintln(tw, "(no schedules: see reports.schedules in README.md)")
			}
			return tw.Flush()
		},
	}

	run := &cobra.Command{
		Use:   "run NAME",
		Short: "Run a schedule once, now: its file into reports.dir, its e-mail, retries, and a record of the run",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.ContainsFunc(a.cfg.Reports.Schedules, func(s reports.Schedule) bool { return s.Name == args[0] }) {
				var names []string
				for _, s := range a.cfg.Reports.Schedules {
					names = append(names, s.Name)
				}
				return usageError{fmt.Errorf("no schedule %q (reports.schedules has %v)", args[0], names)}
			}
			svc, closeStore, err := a.openReports(cmd, dir)
			if err != nil {
				return err
			}
			defer closeStore()
			actor := "cli"
			if u, err := user.Current(); err == nil {
				actor = "cli:" + u.Username
			}
			start := time.Now()
			r, err := svc.RunNow(cmd.Context(), args[0], actor)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s: %s after %d attempt(s) in %s; period %s\n", r.Schedule, r.Status, r.Attempts, time.Since(start).Round(time.Millisecond), r.Period)
			if r.File != "" {
				fmt.Fprintf(w, "%s: %d bytes, sha256 %s\n%s.manifest.json\n", r.File, r.Bytes, r.SHA256, r.File)
			}
			if len(r.EmailedTo) > 0 {
				fmt.Fprintf(w, "e-mailed to %s\n", strings.Join(r.EmailedTo, ", "))
			}
			if r.Status != reports.StatusOK {
				return fmt.Errorf("report %s %s: %s", r.Schedule, r.Status, r.Error)
			}
			return nil
		},
	}

	var (
		schedule string
		limit    int
	)
	runs := &cobra.Command{
		Use:   "runs [--schedule NAME] [--limit N]",
		Short: "The recorded runs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, closeStore, err := a.openReports(cmd, dir)
			if err != nil {
				return err
			}
			defer closeStore()
			rs, err := svc.Runs(cmd.Context(), schedule, limit)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "STARTED (UTC)\tSCHEDULE\tTRIGGER\tPERIOD\tSTATUS\tATTEMPTS\tFILE\tE-MAILED TO\tERROR")
			for _, r := range rs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.StartedAt.Format("2006-01-02 15:04:05"), r.Schedule, r.Trigger, r.Period,
					r.Status, r.Attempts, r.File, strings.Join(r.EmailedTo, ", "), r.Error)
			}
			return tw.Flush()
		},
	}
	runs.Flags().StringVar(&schedule, "schedule", "", "only this schedule's runs")
	runs.Flags().IntVar(&limit, "limit", 20, "at most this many runs")

	cmd.AddCommand(list, run, runs)
	return cmd
}

// openReports opens the store, the metric definitions and the access
// service (for the audit log), and the reports service over them.
func (a *app) openReports(cmd *cobra.Command, dir string) (*reports.Service, func(), error) {
	r, st, err := a.metricsRegistry(cmd.Context(), dir, true)
	if err != nil {
		return nil, nil, err
	}
	o := reports.Options{Log: a.log}
	if acc, err := a.openAccess(st); err == nil {
		o.Audit = acc.Audit
	} else {
		a.log.Warn("report runs are recorded in report_runs only (no audit log)", "error", err)
	}
	svc, err := reports.New(r, st, a.cfg.Reports, o)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return svc, func() { st.Close() }, nil
}
