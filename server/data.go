package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/a-h/templ"
	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/views"
)

// Data is what the data pages need of the ingest bookkeeping: what each source delivered, the
// runs and the quarantined records. *ingest.Catalog implements it over a store.
type Data interface {
	Sources(ctx context.Context) (ingest.SourceReport, error)
	Runs(ctx context.Context, f ingest.RunFilter, offset, limit int) (ingest.RunList, error)
	Quarantine(ctx context.Context, f ingest.QuarantineFilter, offset, limit int) (ingest.QuarantineList, error)
	QuarantineReasons(ctx context.Context, f ingest.QuarantineFilter) ([]ingest.ReasonCount, error)
}

// URL parameters of the data pages (besides tz, the report time zone of the times shown):
//
//	/data             source, entity, status: filter the ingest runs; page: their page (from 1)
//	/data/quarantine  run, source, entity, code: filter the rejected records; page: their page
//
// An empty value means any. A bad value is a 400 naming the parameter.
const (
	dataPageSize  = 50
	maxDataPage   = 1_000_000
	msgNoData     = "The data pages are not configured on this server (no ingest catalog)."
	dataTimeFmt   = "2 Jan 2006 15:04"
	noSourceLabel = "(not recorded)"
)

// runIDPattern is a run id (a lower-case UUID), as an HTML pattern (anchored) and runIDRe.
const runIDPattern = `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`

var runIDRe = regexp.MustCompile(`^` + runIDPattern + `$`)

// dataParams are the parsed parameters of a data page.
type dataParams struct {
	q                                 url.Values // the parameters given, to build links from
	loc                               *time.Location
	tz                                string
	page                              int
	run, source, entity, status, code string
}

// parseDataParams reads tz and page, and each of names (run, source, entity, status, code).
func (s *Server) parseDataParams(c *gin.Context, names ...string) (dataParams, error) {
	q := c.Request.URL.Query()
	p := dataParams{q: url.Values{}, tz: s.cfg.TZ, page: 1}
	if q.Has("tz") && q.Get("tz") != "" {
		p.tz = q.Get("tz")
		p.q.Set("tz", p.tz)
	}
	loc, err := loadZone(p.tz)
	if err != nil {
		return p, badParam("tz", p.tz, "use an IANA time zone name such as UTC or Europe/Berlin")
	}
	p.loc = loc
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxDataPage {
			return p, badParam("page", v, fmt.Sprintf("a page number from 1 to %d", maxDataPage))
		}
		p.page = n
	}
	for _, name := range names {
		v := q.Get(name)
		if v == "" {
			continue
		}
		var ok bool
		var allowed string
		switch name {
		case "run":
			ok, allowed = runIDRe.MatchString(v), "a run id (a UUID such as 0b5f…-…, lower case)"
		case "source":
			ok, allowed = len(v) <= maxFilterValue && validText(v), fmt.Sprintf("a source name of at most %d printable characters", maxFilterValue)
		case "entity":
			ok, allowed = slices.Contains(ingest.EntityNames(), v), oneOf(ingest.EntityNames())
		case "status":
			ok, allowed = slices.Contains(ingest.RunStatuses(), v), oneOf(ingest.RunStatuses())
		case "code":
			ok, allowed = identRe.MatchString(v), "a reason code (lower case letters, digits and _), e.g. bad_date"
		}
		if !ok {
			return p, badParam(name, v, allowed)
		}
		p.q.Set(name, v)
		switch name {
		case "run":
			p.run = v
		case "source":
			p.source = v
		case "entity":
			p.entity = v
		case "status":
			p.status = v
		case "code":
			p.code = v
		}
	}
	return p, nil
}

// link is path with the page's parameters changed by edit (the page number is dropped unless
// edit sets it); frag is an optional fragment.
func (p dataParams) link(path, frag string, edit func(url.Values)) string {
	q := url.Values{}
	for k, v := range p.q {
		q[k] = slices.Clone(v)
	}
	if edit != nil {
		edit(q)
	}
	u := path
	if e := q.Encode(); e != "" {
		u += "?" + e
	}
	if frag != "" {
		u += "#" + frag
	}
	return u
}

// time formats t in the page's zone; zero is NoData.
func (p dataParams) time(t time.Time) string {
	if t.IsZero() {
		return views.NoData
	}
	return t.In(p.loc).Format(dataTimeFmt)
}

// form is a filter form over fields (select options, or a text input without them).
func (p dataParams) form(action, frag string, fields []views.FormField) views.DataFilter {
	f := views.DataFilter{Action: action, Fields: fields, ResetURL: p.link(action, frag, func(q url.Values) {
		for _, fd := range fields {
			q.Del(fd.Name)
		}
	})}
	if frag != "" {
		f.Action += "#" + frag
	}
	if p.q.Has("tz") {
		f.Hidden = append(f.Hidden, views.Option{Value: "tz", Label: p.q.Get("tz")})
	}
	for _, fd := range fields {
		if fd.Value != "" {
			f.Active = append(f.Active, views.DimFilter{Name: fd.Label, Value: fd.Value,
				RemoveURL: p.link(action, frag, func(q url.Values) { q.Del(fd.Name) })})
		}
	}
	return f
}

// pager describes page p.page of total items named noun ("runs").
func (p dataParams) pager(path, frag string, total int64, shown int, noun string) views.Pager {
	pages := int((total + dataPageSize - 1) / dataPageSize)
	pg := views.Pager{Page: p.page, Pages: pages}
	at := func(n int) string {
		return p.link(path, frag, func(q url.Values) {
			if n > 1 {
				q.Set("page", strconv.Itoa(n))
			}
		})
	}
	switch {
	case total == 0:
		pg.Summary = "No " + noun + " match these filters."
	case shown == 0:
		pg.Past = true
		pg.LastURL = at(pages)
		pg.Summary = fmt.Sprintf("Page %d is past the end: there are %s %s on %d pages.", p.page, views.FormatCount(total), noun, pages)
	default:
		first := int64(p.page-1)*dataPageSize + 1
		pg.Summary = fmt.Sprintf("Showing %s–%s of %s %s", views.FormatCount(first), views.FormatCount(first+int64(shown)-1), views.FormatCount(total), noun)
	}
	if p.page > 1 && !pg.Past {
		pg.PrevURL = at(p.page - 1)
	}
	if p.page < pages {
		pg.NextURL = at(p.page + 1)
	}
	return pg
}

func (p dataParams) offset() int { return (p.page - 1) * dataPageSize }

// within runs f with budget: an answer that does not come in time is abandoned and reported
// as errBudget.
func within[T any](ctx context.Context, budget time.Duration, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	type answer struct {
		v   T
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		v, err := f(ctx)
		ch <- answer{v, err}
	}()
	var zero T
	select {
	case a := <-ch:
		if a.err != nil && errors.Is(a.err, context.DeadlineExceeded) && ctx.Err() != nil {
			return zero, fmt.Errorf("no answer within %s: %w", budget, errBudget)
		}
		return a.v, a.err
	case <-ctx.Done():
		if parent := context.Cause(ctx); errors.Is(parent, context.Canceled) {
			return zero, parent
		}
		return zero, fmt.Errorf("no answer within %s: %w", budget, errBudget)
	}
}

// widgetError logs a failed widget and returns the text it shows.
func (s *Server) widgetError(c *gin.Context, what string, err error) string {
	s.reqLog(c).Warn("data: "+what, "error", err)
	return s.tileError(c.Request.Context(), err)
}

func entityOptions() []views.Option {
	opts := []views.Option{{Value: "", Label: "Any"}}
	for _, e := range ingest.EntityNames() {
		opts = append(opts, views.Option{Value: e, Label: e})
	}
	return opts
}

func sourceLabel(s string) string {
	if s == "" {
		return noSourceLabel
	}
	return s
}

// dataPage renders /data: sources with freshness, the quarantine, the ingest runs (filtered
// and paginated by the URL) and the metric catalog. The four widgets load concurrently, each
// within Config.TileTimeout; a failing one shows its error and the page still renders.
func (s *Server) dataPage(c *gin.Context) error {
	if s.data == nil {
		return errUnavailable(msgNoData)
	}
	p, err := s.parseDataParams(c, "source", "entity", "status")
	if err != nil {
		return err
	}
	page := s.page(c, "Data", "data")
	page.TZ = p.tz
	v := views.DataView{Page: page, StaleAfter: humanDuration(s.cfg.StaleAfter)}
	ctx := c.Request.Context()
	budget := s.cfg.TileTimeout
	runFilter := ingest.RunFilter{Source: p.source, Entity: p.entity, Status: p.status}
	quarURL := p.link("/data/quarantine", "", func(q url.Values) { q.Del("source"); q.Del("entity"); q.Del("status") })

	var wg sync.WaitGroup
	wg.Go(func() {
		rep, err := within(ctx, budget, s.data.Sources)
		if err != nil {
			v.SourcesError = s.widgetError(c, "sources", err)
			return
		}
		v.AsOf = p.time(rep.AsOf)
		for _, src := range rep.Sources {
			v.Sources = append(v.Sources, s.sourceRow(p, rep.AsOf, src))
		}
	})
	wg.Go(func() {
		v.Quarantine.URL = quarURL
		reasons, err := within(ctx, budget, func(ctx context.Context) ([]ingest.ReasonCount, error) {
			return s.data.QuarantineReasons(ctx, ingest.QuarantineFilter{})
		})
		if err != nil {
			v.Quarantine.Error = s.widgetError(c, "quarantine", err)
			return
		}
		var total int64
		for _, r := range reasons {
			total += r.Records
			v.Quarantine.Reasons = append(v.Quarantine.Reasons, views.ReasonRow{Code: r.Code, Records: views.FormatCount(r.Records),
				Href: p.link("/data/quarantine", "", func(q url.Values) { q.Del("source"); q.Del("entity"); q.Del("status"); q.Set("code", r.Code) })})
		}
		v.Quarantine.Total = views.FormatCount(total)
	})
	wg.Go(func() {
		v.Runs.Filter = p.form("/data", "runs", []views.FormField{
			{Name: "source", Label: "Source", Value: p.source, Placeholder: "any", Size: 14},
			{Name: "entity", Label: "Entity", Value: p.entity, Options: entityOptions()},
			{Name: "status", Label: "Status", Value: p.status, Options: []views.Option{{Value: "", Label: "Any"},
				{Value: ingest.StatusSucceeded, Label: ingest.StatusSucceeded}, {Value: ingest.StatusFailed, Label: ingest.StatusFailed},
				{Value: ingest.StatusRunning, Label: ingest.StatusRunning}, {Value: ingest.StatusCommitting, Label: ingest.StatusCommitting}}},
		})
		list, err := within(ctx, budget, func(ctx context.Context) (ingest.RunList, error) {
			return s.data.Runs(ctx, runFilter, p.offset(), dataPageSize)
		})
		if err != nil {
			v.Runs.Error = s.widgetError(c, "runs", err)
			return
		}
		for _, r := range list.Runs {
			v.Runs.Rows = append(v.Runs.Rows, runRow(p, r))
		}
		v.Runs.Pager = p.pager("/data", "runs", list.Total, len(list.Runs), "runs")
	})
	wg.Go(func() {
		if s.metrics == nil {
			v.MetricsNotConfigured = true
			return
		}
		defs, err := within(ctx, budget, s.metrics.Definitions)
		if err != nil {
			v.CatalogError = s.widgetError(c, "metric catalog", err)
			return
		}
		// Definitions that do not validate first: they need someone's attention.
		for _, valid := range []bool{false, true} {
			for _, d := range defs {
				if d.Valid == valid {
					v.Catalog = append(v.Catalog, catalogRow(p, d))
				}
			}
		}
	})
	wg.Go(func() {
		if s.metrics == nil {
			return
		}
		rep, err := within(ctx, budget, s.metrics.Rollups)
		if err != nil {
			v.Rollups.Error = s.widgetError(c, "rollups", err)
			return
		}
		v.Rollups = rollupsSection(p, rep)
	})
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Header("Cache-Control", "no-store")
	runs := tableStream{id: "runs", note: "(every run that matches the filters, not only this page)", grid: func() views.Grid {
		return views.Grid{Head: views.RunsHead, Rows: paged(streamPageSize, func(offset, limit int) ([]ingest.Run, error) {
			l, err := s.data.Runs(ctx, runFilter, offset, limit)
			return l.Runs, err
		}, func(r ingest.Run) []string { return runRow(p, r).Cells() })}
	}}
	return s.renderTables(c, http.StatusOK, &v, func() templ.Component { return views.Data(v) }, runs)
}

// rollupsSection is the data page's rollups section of rep, times in the page's zone.
func rollupsSection(p dataParams, rep RollupsReport) views.RollupsSection {
	var out views.RollupsSection
	for _, x := range rep.Rollups {
		row := views.RollupRow{Table: x.Table, Metric: x.Metric, Status: x.Status, Ready: x.Status == "ready",
			Rows: views.FormatCount(int64(x.Rows)), Size: views.FormatBytes(int64(x.Bytes)), AsOf: p.time(x.AsOf), Lag: views.NoData,
			Sources: x.Sources, Error: x.Error}
		if !x.AsOf.IsZero() {
			row.Lag = views.FormatDuration(time.Duration(x.Lag * float64(time.Second)))
			if x.Lag < 0.001 {
				row.Lag = "0 ms"
			}
		}
		out.Rows = append(out.Rows, row)
	}
	for _, m := range rep.Raw {
		out.Raw = append(out.Raw, views.RawMetricRow{Metric: m.Metric, Tables: strings.Join(m.Tables, ", "), Reason: m.Reason})
	}
	return out
}

func (s *Server) sourceRow(p dataParams, asOf time.Time, src ingest.SourceStat) views.SourceRow {
	r := views.SourceRow{
		Source: sourceLabel(src.Source), Entity: src.Entity, Rows: views.FormatCount(src.Rows),
		LastSuccess: "never", Stale: true, Runs: plural(src.Runs, "run"), LastStatus: src.LastStatus,
		Rejected: views.FormatCount(src.Rejected),
		RunsURL: p.link("/data", "runs", func(q url.Values) {
			q.Del("status")
			q.Set("source", src.Source)
			q.Set("entity", src.Entity)
		}),
	}
	for _, a := range src.Also {
		r.Also = append(r.Also, views.FormatCount(a.Rows)+" "+a.Table)
	}
	if !src.LastSuccess.IsZero() {
		age := max(asOf.Sub(src.LastSuccess), 0)
		r.LastSuccess, r.Age, r.Stale = p.time(src.LastSuccess), views.FormatAge(age), age > s.cfg.StaleAfter
	}
	if src.Rejected > 0 && src.Source != "" {
		r.QuarantineURL = p.link("/data/quarantine", "", func(q url.Values) {
			q.Del("status")
			q.Set("source", src.Source)
			q.Set("entity", src.Entity)
		})
	}
	return r
}

func runRow(p dataParams, r ingest.Run) views.RunRow {
	row := views.RunRow{
		ID: r.ID, Started: p.time(r.StartedAt), Source: sourceLabel(r.Source), Entity: r.Entity, Origin: r.Origin,
		Preset: r.Preset, Status: r.Status, Error: r.Error, Warnings: r.Warnings, Read: views.FormatCount(r.Read), Loaded: views.FormatCount(r.Loaded),
		Rejected: views.FormatCount(r.Rejected), Duplicates: views.FormatCount(r.Duplicates),
		Duration: views.FormatDuration(r.Duration()), Size: views.NoData,
	}
	if r.Bytes > 0 {
		row.Size = views.FormatBytes(r.Bytes)
	}
	if r.Rejected > 0 {
		row.QuarantineURL = p.link("/data/quarantine", "", func(q url.Values) {
			q.Del("source")
			q.Del("entity")
			q.Del("status")
			q.Set("run", r.ID)
		})
	}
	return row
}

func catalogRow(p dataParams, d MetricInfo) views.CatalogRow {
	row := views.CatalogRow{ID: "metric-" + d.Name, Name: d.Name, Title: orName(d), Owner: d.Owner, Kind: d.Kind, Version: d.Version,
		Valid: d.Valid, Error: d.Error}
	if strings.ContainsAny(d.Name, `/\`) { // a file that could not be read as a definition
		base := strings.TrimSuffix(filepath.Base(d.Name), ".sql")
		row.ID, row.Title = "metric-"+base, filepath.Base(d.Name)
	}
	if d.Unit != "" {
		row.Unit = views.UnitLabel(d.Unit, d.Currency)
	}
	switch {
	case d.Table:
		row.Shape = "table"
	case d.Valid:
		row.Shape = "series"
		row.Href = p.link("/kpi/"+url.PathEscape(d.Name), "", func(q url.Values) {
			for k := range q {
				if k != "tz" {
					q.Del(k)
				}
			}
		})
	}
	return row
}

// quarantinePage renders /data/quarantine: the rejected records matching the URL's filters,
// a page at a time, with the counts per reason code. Both load concurrently within
// Config.TileTimeout; a failing one shows its error.
func (s *Server) quarantinePage(c *gin.Context) error {
	if s.data == nil {
		return errUnavailable(msgNoData)
	}
	p, err := s.parseDataParams(c, "run", "source", "entity", "code")
	if err != nil {
		return err
	}
	page := s.page(c, "Quarantine", "data")
	page.TZ = p.tz
	v := views.QuarantineView{Page: page, DataURL: p.link("/data", "", func(q url.Values) {
		for k := range q {
			if k != "tz" {
				q.Del(k)
			}
		}
	})}
	ctx := c.Request.Context()
	budget := s.cfg.TileTimeout
	f := ingest.QuarantineFilter{Run: p.run, Source: p.source, Entity: p.entity, Code: p.code}
	var reasons []ingest.ReasonCount
	var reasonsErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		reasons, reasonsErr = within(ctx, budget, func(ctx context.Context) ([]ingest.ReasonCount, error) {
			return s.data.QuarantineReasons(ctx, f)
		})
	})
	wg.Go(func() {
		list, err := within(ctx, budget, func(ctx context.Context) (ingest.QuarantineList, error) {
			return s.data.Quarantine(ctx, f, p.offset(), dataPageSize)
		})
		if err != nil {
			v.Error = s.widgetError(c, "quarantine", err)
			return
		}
		for _, r := range list.Records {
			v.Records = append(v.Records, quarantineRow(p, r))
		}
		v.Pager = p.pager("/data/quarantine", "", list.Total, len(list.Records), "rejected records")
	})
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}

	codes := []views.Option{{Value: "", Label: "Any"}}
	if reasonsErr != nil {
		v.ReasonsError = s.widgetError(c, "quarantine reasons", reasonsErr)
	}
	for _, r := range reasons {
		codes = append(codes, views.Option{Value: r.Code, Label: fmt.Sprintf("%s (%s)", r.Code, views.FormatCount(r.Records))})
		v.Reasons = append(v.Reasons, views.ReasonRow{Code: r.Code, Records: views.FormatCount(r.Records), Example: r.Example,
			Current: r.Code == p.code, Href: p.link("/data/quarantine", "", func(q url.Values) { q.Set("code", r.Code) })})
	}
	if p.code != "" && !slices.ContainsFunc(codes, func(o views.Option) bool { return o.Value == p.code }) {
		codes = append(codes, views.Option{Value: p.code, Label: p.code + " (0)"})
	}
	v.Filter = p.form("/data/quarantine", "", []views.FormField{
		{Name: "run", Label: "Run", Value: p.run, Placeholder: "run id", Pattern: runIDPattern, Size: 36},
		{Name: "source", Label: "Source", Value: p.source, Placeholder: "any", Size: 14},
		{Name: "entity", Label: "Entity", Value: p.entity, Options: entityOptions()},
		{Name: "code", Label: "Reason code", Value: p.code, Options: codes},
	})
	c.Header("Cache-Control", "no-store")
	records := tableStream{id: "records", note: "(every record that matches the filters, not only this page)", grid: func() views.Grid {
		return views.Grid{Head: views.QuarantineHead, Rows: paged(streamPageSize, func(offset, limit int) ([]ingest.Rejected, error) {
			l, err := s.data.Quarantine(ctx, f, offset, limit)
			return l.Records, err
		}, func(r ingest.Rejected) []string { return quarantineRow(p, r).Cells() })}
	}}
	return s.renderTables(c, http.StatusOK, &v, func() templ.Component { return views.Quarantine(v) }, records)
}

func quarantineRow(p dataParams, r ingest.Rejected) views.QuarantineRow {
	row := views.QuarantineRow{
		File: r.File, Entity: r.Entity, Source: sourceLabel(r.Source), Field: r.Field, Code: r.Code, Reason: r.Reason, Raw: r.Raw,
		RunID: r.RunID, RunShort: r.RunID, At: p.time(r.At),
		RunURL:  p.link("/data/quarantine", "", func(q url.Values) { q.Set("run", r.RunID) }),
		CodeURL: p.link("/data/quarantine", "", func(q url.Values) { q.Set("code", r.Code) }),
	}
	if i := strings.IndexByte(r.RunID, '-'); i > 0 {
		row.RunShort = r.RunID[:i]
	}
	if r.File != "" {
		row.Position = fmt.Sprintf("%s:%d", filepath.Base(r.File), r.Line)
	} else {
		row.Position = fmt.Sprintf("record %d", r.Line)
	}
	return row
}

// plural is "1 run", "2 runs".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return views.FormatCount(n) + " " + noun + "s"
}

// humanDuration states a threshold for people: "48 hours", "30 minutes", "7 days" (hours up
// to three days, which read better than days).
func humanDuration(d time.Duration) string {
	n, unit := int64(0), ""
	switch {
	case d > 72*time.Hour && d%(24*time.Hour) == 0:
		n, unit = int64(d/(24*time.Hour)), "day"
	case d >= time.Hour && d%time.Hour == 0:
		n, unit = int64(d/time.Hour), "hour"
	case d >= time.Minute && d%time.Minute == 0:
		n, unit = int64(d/time.Minute), "minute"
	default:
		return d.String()
	}
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
