package server

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/a-h/templ"
	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/views"
)

// The retention page (/retention): the cohort matrix of the custom metric cohort_retention.
//
//	range, from, to, tz  select the cohorts: customers whose first non-cancelled order falls in
//	                     the range; their orders are followed up to the end of the range.
//	grain                the cohort (and period) length; default month, not the dashboard's
//	                     automatic grain. At most maxCohorts cohorts fit the range (400 otherwise).
//
// compare, view, by and f.* do not apply; they stay in the URL for the other pages.
const (
	retentionMetric    = "cohort_retention"
	defaultCohortGrain = "month"
	maxCohorts         = 120
)

// retention renders the cohort retention page. A failed or late query shows its error in the
// page, which still renders with 200; bad parameters are a 400.
func (s *Server) retention(c *gin.Context) error {
	f, err := s.filters(c)
	if err != nil {
		return err
	}
	grain := defaultCohortGrain
	if f.grainSet {
		grain = f.Grain
	}
	if countBuckets(f.From, f.To, grain, s.cfg.WeekStart, s.cfg.FiscalYearStartMonth) > maxCohorts {
		param, fix := "range", "a shorter range or a coarser grain (e.g. grain=quarter)"
		if f.grainSet {
			param = "grain"
		}
		return &paramError{Param: param, Msg: fmt.Sprintf("The range %s – %s holds more than %d %s cohorts, the most the retention matrix shows: choose %s.",
			f.From.Format("2 Jan 2006"), f.InclusiveTo().Format("2 Jan 2006"), maxCohorts, grain, fix)}
	}
	c.Header("Cache-Control", "no-store")
	v := views.RetentionView{
		Page:         s.dashPage(c, "Retention", "retention", f),
		Filters:      s.retentionFilterBar(f, grain),
		Grain:        grain,
		GrainDefault: !f.grainSet,
		NotFiltered:  f.NotApplied(nil),
	}
	if s.metrics == nil {
		v.NotConfigured = true
		return s.renderHTML(c, http.StatusServiceUnavailable, views.Retention(v))
	}
	ctx := c.Request.Context()
	tab, err := s.queryTable(ctx, retentionMetric, MetricQuery{From: f.From, To: f.To, Grain: grain, TZ: f.TZ}, s.cfg.TileTimeout)
	if err := ctx.Err(); err != nil {
		return err
	}
	var m *cohortMatrix
	if err == nil {
		m, err = buildCohortMatrix(tab, grain, f.Loc, f.To)
	}
	if err != nil {
		s.reqLog(c).Warn("retention: cohort matrix", "error", err)
		v.Error = "The cohort matrix could not be loaded: " + s.tileError(c.Request.Context(), err)
		return s.renderTables(c, http.StatusOK, &v, func() templ.Component { return views.Retention(v) })
	}
	v.Description = tab.Info.Description
	if !tab.Freshness.IsZero() {
		v.Freshness = tab.Freshness.In(f.Loc).Format("2 Jan 2006 15:04 MST")
	}
	if start := bucketStart(f.From, grain, s.cfg.WeekStart, s.cfg.FiscalYearStartMonth); !start.Equal(f.From) {
		v.Notes = append(v.Notes, fmt.Sprintf("The range starts inside a %s: the cohort %s holds only the first orders from %s on.",
			grain, views.BucketLabel(start, grain, f.Loc), f.From.Format("2 Jan 2006")))
	}
	if start := bucketStart(f.To, grain, s.cfg.WeekStart, s.cfg.FiscalYearStartMonth); !start.Equal(f.To) {
		v.Notes = append(v.Notes, fmt.Sprintf("The range ends inside a %s (%s): the latest period of each cohort counts orders up to %s only.",
			grain, views.BucketLabel(start, grain, f.Loc), f.InclusiveTo().Format("2 Jan 2006")))
	}
	m.fill(&v, f.Loc)
	return s.renderTables(c, http.StatusOK, &v, func() templ.Component { return views.Retention(v) })
}

// retentionFilterBar is the filter bar with the cohort grain (default month) and no comparison.
func (s *Server) retentionFilterBar(f Filters, grain string) views.FilterBar {
	b := s.filterBar(f, "/retention")
	b.Grains[0].Label = "Default (" + defaultCohortGrain + ")"
	b.Compares = notUsedHere(f.Compare)
	b.Period = fmt.Sprintf("Cohorts of first orders from %s to %s, by %s; orders followed up to %s",
		f.From.Format("2 Jan 2006"), f.InclusiveTo().Format("2 Jan 2006"), grain, f.InclusiveTo().Format("2 Jan 2006"))
	b.WeekNote = ""
	if grain == "week" {
		b.WeekNote = "weeks start on " + s.cfg.WeekStart.String()
	}
	return b
}

// notUsedHere is the only option of a filter a page does not use: it keeps the URL's value (so
// the links to other pages keep it) and says that it does not apply.
func notUsedHere(value string) []views.Option {
	return []views.Option{{Value: value, Label: "Not used on this page"}}
}

// cohortMatrix is cohort_retention's answer as a matrix.
type cohortMatrix struct {
	grain   string
	cohorts []*cohort
	periods int // columns: the most periods any cohort has reached
}

// cohort is one row: customers whose first order is in the bucket starting at start.
type cohort struct {
	start   time.Time
	size    int64
	reached int             // periods 0 … reached-1 have begun before the end of the range
	active  map[int]int64   // period → customers with an order in it
	pct     map[int]float64 // period → retention in % as the metric computed it
}

// buildCohortMatrix reads cohort_retention's rows (cohort, period, cohort_size,
// active_customers, retention_pct). A cohort has reached period k when its bucket k has begun
// before to; a reached period without a row is 0 %.
func buildCohortMatrix(t *MetricTable, grain string, loc *time.Location, to time.Time) (*cohortMatrix, error) {
	idx, err := tableColumns(t, "cohort", "period", "cohort_size", "active_customers", "retention_pct")
	if err != nil {
		return nil, err
	}
	m := &cohortMatrix{grain: grain}
	byStart := map[string]*cohort{}
	for i, row := range t.Rows {
		day, _ := row[idx[0]].(string)
		start, err := time.ParseInLocation(time.DateOnly, day, loc)
		if err != nil {
			return nil, errShown("%s row %d: cohort %v is not a date", t.Info.Name, i+1, row[idx[0]])
		}
		period, ok1 := cellInt(row[idx[1]])
		size, ok2 := cellInt(row[idx[2]])
		active, ok3 := cellInt(row[idx[3]])
		pct, ok4 := cellFloat(row[idx[4]])
		if !ok1 || !ok2 || !ok3 || !ok4 || period < 0 || size <= 0 {
			return nil, errShown("%s row %d: unexpected values %v", t.Info.Name, i+1, row)
		}
		c := byStart[day]
		if c == nil {
			c = &cohort{start: start, size: size, active: map[int]int64{}, pct: map[int]float64{}}
			for addPeriods(start, grain, c.reached).Before(to) && c.reached <= maxCohorts {
				c.reached++
			}
			byStart[day] = c
			m.cohorts = append(m.cohorts, c)
		}
		c.active[int(period)] = active
		c.pct[int(period)] = pct
	}
	for _, c := range m.cohorts {
		m.periods = max(m.periods, c.reached)
	}
	sort.Slice(m.cohorts, func(i, j int) bool { return m.cohorts[i].start.Before(m.cohorts[j].start) })
	return m, nil
}

// averagePoint is the size-weighted average retention of the cohorts that have reached a period.
type averagePoint struct {
	cohorts         int
	customers, kept int64
}

func (p averagePoint) pct() *float64 {
	if p.customers == 0 {
		return nil
	}
	x := 100 * float64(p.kept) / float64(p.customers)
	return &x
}

// average is, per period, Σ active / Σ size over the cohorts that have reached it: the mean of
// their retention weighted by cohort size.
func (m *cohortMatrix) average() []averagePoint {
	out := make([]averagePoint, m.periods)
	for _, c := range m.cohorts {
		for k := 0; k < c.reached; k++ {
			out[k].cohorts++
			out[k].customers += c.size
			out[k].kept += c.active[k]
		}
	}
	return out
}

func (m *cohortMatrix) customers() int64 {
	var n int64
	for _, c := range m.cohorts {
		n += c.size
	}
	return n
}

// fill puts the matrix, the heatmap and the average curve into v.
func (m *cohortMatrix) fill(v *views.RetentionView, loc *time.Location) {
	unit := capitalize(m.grain)
	periodHead := make([]string, m.periods)
	for k := range periodHead {
		periodHead[k] = unit + " " + strconv.Itoa(k)
	}
	count := func(n int64) string { x := float64(n); return views.FormatValue(&x, "count", "") }
	percent := func(p *float64) string {
		if p == nil {
			return views.NoData
		}
		x := *p / 100
		return views.FormatValue(&x, "percent", "")
	}
	mat := views.CohortMatrix{Head: append([]string{"Cohort", "Customers"}, periodHead...)}
	heat := views.Heatmap{XLabels: periodHead}
	for _, c := range m.cohorts {
		label := views.BucketLabel(c.start, m.grain, loc)
		row := views.CohortRow{Label: label, Size: count(c.size)}
		heat.YLabels = append(heat.YLabels, label)
		for k := 0; k < m.periods; k++ {
			if k >= c.reached {
				row.Cells = append(row.Cells, views.HeatCell{Level: -1, Title: "not reached by the end of the range"})
				continue
			}
			p := c.pct[k]
			row.Cells = append(row.Cells, views.HeatCell{Text: percent(&p), Level: views.HeatLevel(p),
				Title: fmt.Sprintf("%s of %s customers ordered in %s %d", count(c.active[k]), count(c.size), m.grain, k)})
			heat.Cells = append(heat.Cells, views.HeatPoint{X: k, Y: len(heat.YLabels) - 1, Value: p})
		}
		mat.Rows = append(mat.Rows, row)
	}
	avg := m.average()
	avgRow := views.CohortRow{Label: "All cohorts (weighted)", Size: count(m.customers())}
	curve := make([]*float64, len(avg))
	rows := make([][]string, len(avg))
	for k, a := range avg {
		curve[k] = a.pct()
		level := -1
		if p := a.pct(); p != nil {
			level = views.HeatLevel(*p)
		}
		avgRow.Cells = append(avgRow.Cells, views.HeatCell{Text: percent(a.pct()), Level: level,
			Title: fmt.Sprintf("%s of %s customers in %d cohorts", count(a.kept), count(a.customers), a.cohorts)})
		rows[k] = []string{periodHead[k], strconv.Itoa(a.cohorts), count(a.customers), count(a.kept), percent(a.pct())}
	}
	mat.Average = &avgRow
	if m.periods == 0 {
		mat.Average = nil
	}
	v.Matrix = &mat
	v.Cohorts = len(m.cohorts)
	v.Customers = count(m.customers())
	if len(avg) > 1 {
		v.SecondPeriod = percent(avg[1].pct())
	}
	if len(m.cohorts) == 0 {
		return
	}
	v.Heatmap = &views.Chart{
		ID:     "cohort-heatmap",
		Label:  fmt.Sprintf("Retention in %% by cohort (rows) and %ss since the first order (columns)", m.grain),
		Option: views.HeatmapOption(heat),
		Class:  "heatmap",
	}
	v.Curve = &views.Chart{
		ID:     "retention-curve",
		Label:  fmt.Sprintf("Average retention in %% by %ss since the first order, weighted by cohort size", m.grain),
		Option: views.LineOption(periodHead, []views.Series{{Name: "Average retention (%, weighted by cohort size)", Values: curve}}),
		Class:  "trend",
		Table: views.Table{
			Head: []string{unit + "s since first order", "Cohorts reached", "Their customers", "Ordered in the period", "Average retention"},
			Rows: rows,
		},
	}
}

// bucketStart is the start of the bucket of grain holding t (t's day in its location), as the
// metrics layer buckets: weeks start on weekStart, quarters and years on fyStart.
func bucketStart(t time.Time, grain string, weekStart time.Weekday, fyStart time.Month) time.Time {
	y, mo, d := t.Date()
	day := time.Date(y, mo, d, 0, 0, 0, 0, t.Location())
	if fyStart < time.January || fyStart > time.December {
		fyStart = time.January
	}
	intoFY := (int(mo) - int(fyStart) + 12) % 12 // months since the fiscal year started
	switch grain {
	case "week":
		return day.AddDate(0, 0, -((int(day.Weekday()) - int(weekStart) + 7) % 7))
	case "month":
		return time.Date(y, mo, 1, 0, 0, 0, 0, t.Location())
	case "quarter":
		return time.Date(y, mo-time.Month(intoFY%3), 1, 0, 0, 0, 0, t.Location())
	case "year":
		return time.Date(y, mo-time.Month(intoFY), 1, 0, 0, 0, 0, t.Location())
	}
	return day
}

// addPeriods is the start of the bucket k buckets of grain after the bucket starting at start.
func addPeriods(start time.Time, grain string, k int) time.Time {
	switch grain {
	case "week":
		return start.AddDate(0, 0, 7*k)
	case "month":
		return start.AddDate(0, k, 0)
	case "quarter":
		return start.AddDate(0, 3*k, 0)
	case "year":
		return start.AddDate(0, 12*k, 0)
	}
	return start.AddDate(0, 0, k)
}

// countBuckets counts the buckets of grain that overlap [from, to), stopping past maxCohorts.
func countBuckets(from, to time.Time, grain string, weekStart time.Weekday, fyStart time.Month) int {
	n := 0
	for b := bucketStart(from, grain, weekStart, fyStart); b.Before(to) && n <= maxCohorts; b = addPeriods(b, grain, 1) {
		n++
	}
	return n
}
