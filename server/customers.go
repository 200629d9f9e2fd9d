package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/a-h/templ"
	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/views"
)

// Customers is what the customer pages need of the metrics layer. *metrics.Customers is one:
// the interface speaks the metrics layer's own result types, so no conversion sits between
// them. Implementations honour ctx cancellation.
type Customers interface {
	// Search finds customers by e-mail, phone, customer id or source id: limit matches from
	// offset, and how many match in all.
	Search(ctx context.Context, q string, offset, limit int) (*metrics.List[metrics.CustomerMatch], error)
	// BestCustomers are the customers with the highest predicted CLV in the latest snapshot.
	BestCustomers(ctx context.Context, limit int) (*metrics.BestCustomers, error)
	// AtRisk are the high-CLV customers whose P(alive) is falling (see metrics.Customers.AtRisk).
	AtRisk(ctx context.Context, today time.Time, limit int) (*metrics.AtRiskCustomers, error)
	// Profile360 is everything known about a customer, each section within o.Budget; a source
	// id is a *metrics.MovedError, an unknown id metrics.ErrCustomerNotFound.
	Profile360(ctx context.Context, id string, o metrics.Profile360Options) (*metrics.Customer360, error)
}

var _ Customers = (*metrics.Customers)(nil)

// Customer pages: sizes and limits.
const (
	searchPageSize  = 25
	maxSearchPage   = 10000
	customerListLen = 20 // best, RFM 555 and at-risk lists of /customers
	profileListLen  = 50 // each list of the customer 360
	maxCustomerID   = 200
	// msgCustomersNotConfigured is the answer of the customer pages without Deps.Customers.
	msgCustomersNotConfigured = "Customers are not configured on this server."
)

// searchParams reads the customer search: q (trimmed, at most metrics.MaxSearchQuery bytes of
// printable text) and page (1…maxSearchPage, default 1).
func searchParams(q url.Values) (string, int, error) {
	text := strings.TrimSpace(q.Get("q"))
	if len(text) > metrics.MaxSearchQuery || !validText(text) {
		return "", 0, badParam("q", text, fmt.Sprintf("a search of at most %d printable characters", metrics.MaxSearchQuery))
	}
	page := 1
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > maxSearchPage {
			return "", 0, badParam("page", p, fmt.Sprintf("a page number from 1 to %d", maxSearchPage))
		}
		page = n
	}
	return text, page, nil
}

// customerURL is the 360 page of id with the given query string (the view state).
func customerURL(id, rawQuery string) string {
	u := "/customers/" + url.PathEscape(id)
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	return u
}

// sectionError is the text a widget shows for err, logged by the page under its request ID
// (see errtext.go).
func sectionError(err error) string {
	switch {
	case errors.Is(err, metrics.ErrBudget), errors.Is(err, errBudget):
		return "no answer within its time budget; try again."
	case errors.Is(err, metrics.ErrNoSnapshot):
		return "there is no predictive CLV snapshot yet: run `converge clv fit --calibration-end DATE`."
	}
	if msg, ok := publicMessage(err); ok {
		return msg
	}
	return internalText("")
}

// customersPage renders /customers: the search (?q=, ?page=), the best customers by predicted CLV
// and by RFM, the best customers at risk and the RFM segments. The RFM widgets are as of the
// end of the selected period. Widgets load concurrently, each within Config.TileTimeout; a
// failed one shows its error. Bad parameters: 400; no Deps.Customers: 503.
func (s *Server) customersPage(c *gin.Context) error {
	f, err := s.filters(c)
	if err != nil {
		return err
	}
	q, page, err := searchParams(c.Request.URL.Query())
	if err != nil {
		return err
	}
	c.Header("Cache-Control", "no-store")
	v := views.CustomersView{
		Page:    s.dashPage(c, "Customers", "customers", f),
		Filters: s.filterBar(f, "/customers"),
		Search:  views.CustomerSearchView{Action: "/customers", Query: q, MaxLength: metrics.MaxSearchQuery},
	}
	v.Filters.WeekNote = "" // no widget here is bucketed by week
	v.Filters.Period = fmt.Sprintf("RFM scores as of the end of %s (every order before counts); predicted CLV from the latest model snapshot.",
		f.InclusiveTo().Format("2 Jan 2006"))
	if q != "" {
		v.Filters.Hidden = append(v.Filters.Hidden, views.Option{Value: "q", Label: q})
	}
	vals := f.Values()
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v.Search.Hidden = append(v.Search.Hidden, views.Option{Value: k, Label: vals.Get(k)})
	}
	if s.customers == nil {
		v.NotConfigured = true
		return s.renderHTML(c, http.StatusServiceUnavailable, views.Customers(v))
	}

	ctx := c.Request.Context()
	budget := s.cfg.TileTimeout
	var (
		wg                  sync.WaitGroup
		found               *metrics.List[metrics.CustomerMatch]
		best                *metrics.BestCustomers
		risk                *metrics.AtRiskCustomers
		champions, segments *MetricTable
		errs                [5]error
	)
	if q != "" {
		wg.Go(func() {
			found, errs[0] = metrics.Within(ctx, budget, func(ctx context.Context) (*metrics.List[metrics.CustomerMatch], error) {
				return s.customers.Search(ctx, q, (page-1)*searchPageSize, searchPageSize)
			})
		})
	}
	wg.Go(func() {
		best, errs[1] = metrics.Within(ctx, budget, func(ctx context.Context) (*metrics.BestCustomers, error) {
			return s.customers.BestCustomers(ctx, customerListLen)
		})
	})
	wg.Go(func() {
		risk, errs[2] = metrics.Within(ctx, budget, func(ctx context.Context) (*metrics.AtRiskCustomers, error) {
			return s.customers.AtRisk(ctx, s.now(), customerListLen)
		})
	})
	mq := f.Query(nil, "")
	mq.Compare = ""
	table := func(name string) (*MetricTable, error) {
		if s.metrics == nil {
			return nil, errShown("%s", strings.ToLower(msgNotConfigured[:1])+msgNotConfigured[1:])
		}
		return metrics.Within(ctx, budget, func(ctx context.Context) (*MetricTable, error) { return s.metrics.Table(ctx, name, mq) })
	}
	wg.Go(func() { champions, errs[3] = table("rfm_best_customers") })
	wg.Go(func() { segments, errs[4] = table("rfm_segments") })
	var currency string
	if s.metrics != nil {
		wg.Go(func() { currency = s.reportCurrency(ctx) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if currency == "" && best != nil {
		// The catalog did not answer: the orders' currency, as the CLV fit found it (it refuses
		// to mix currencies).
		currency = best.Snapshot.Currency
	}
	for i, err := range errs {
		if err != nil {
			s.reqLog(c).Warn("customers: widget", "widget", []string{"search", "best", "at_risk", "rfm_best_customers", "rfm_segments"}[i], "error", err)
		}
	}
	link := func(id string) string {
		return f.URL("/customers/"+url.PathEscape(id), func(v url.Values) {
			if q != "" {
				v.Set("q", q)
			}
		})
	}
	if q != "" {
		v.Search.Results = searchSection(q, page, found, errs[0], link)
		if found != nil {
			v.Search.Page = page
			v.Search.Pages = max(1, (found.Total+searchPageSize-1)/searchPageSize)
			pageURL := func(p int) string {
				return f.URL("/customers", func(v url.Values) {
					v.Set("q", q)
					if p > 1 {
						v.Set("page", strconv.Itoa(p))
					}
				})
			}
			if page > 1 {
				v.Search.PrevURL = pageURL(min(page-1, v.Search.Pages))
			}
			if page < v.Search.Pages {
				v.Search.NextURL = pageURL(page + 1)
			}
		}
	}
	v.Sections = []views.ListSection{
		bestSection(best, errs[1], link),
		championsSection(champions, errs[3], currency, f, link),
		atRiskSection(risk, errs[2], link),
	}
	v.Sections = append(v.Sections, segmentSections(segments, errs[4], currency, f)...)
	return s.renderTables(c, http.StatusOK, &v, func() templ.Component { return views.Customers(v) })
}

// reportCurrency is the currency the metrics report amounts in (that of a currency metric),
// "" when the catalog cannot tell.
func (s *Server) reportCurrency(ctx context.Context) string {
	cat, err := s.catalog(ctx)
	if err != nil {
		return ""
	}
	for _, m := range cat {
		if m.Unit == "currency" && m.Currency != "" {
			return m.Currency
		}
	}
	return ""
}

// firstSeenText is when a customer was first seen; the zero time and the Unix epoch (what a
// record without first_seen_at holds) are unknown.
func firstSeenText(t time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return views.NoData
	}
	return t.Format("2 Jan 2006")
}

func fmtMoney(v float64, currency string) string { return views.FormatValue(&v, "currency", currency) }
func fmtPct(v float64) string                    { return views.FormatValue(&v, "percent", "") }
func fmtCount(n int) string                      { return views.FormatNumber(float64(n), 0) }

func searchSection(q string, page int, found *metrics.List[metrics.CustomerMatch], err error, link func(string) string) *views.ListSection {
	sec := &views.ListSection{ID: "search-results", Title: fmt.Sprintf("Customers matching “%s”", q), Wide: true}
	if err != nil {
		sec.Error = sectionError(err)
		return sec
	}
	sec.Empty = fmt.Sprintf("No customer matches “%s”.", q)
	if found.Total > 0 && len(found.Rows) == 0 {
		sec.Empty = fmt.Sprintf("Page %d is past the last page of the %s matches.", page, fmtCount(found.Total))
	}
	t := &views.LinkTable{Head: []string{"Customer", "E-mail", "Phone", "Country", "Known in", "First seen"}}
	for _, m := range found.Rows {
		first := firstSeenText(m.FirstSeen)
		sub := ""
		if m.Exact {
			sub = "exact match"
		}
		t.Rows = append(t.Rows, []views.Cell{{Text: m.ID, Href: link(m.ID), Sub: sub}, {Text: m.Email}, {Text: m.Phone}, {Text: m.Country},
			{Text: strings.Join(m.Sources, ", ")}, {Text: first}})
	}
	sec.Table = t
	switch {
	case found.Total == 1 && len(found.Rows) == 1:
		sec.Showing = "Showing the only matching customer."
	case len(found.Rows) > 0:
		from := (page-1)*searchPageSize + 1
		sec.Showing = fmt.Sprintf("Showing %s–%s of %s matching customers, exact matches first, then by id.",
			fmtCount(from), fmtCount(from+len(found.Rows)-1), fmtCount(found.Total))
	}
	return sec
}

func snapshotNote(s metrics.CLVSnapshot) string {
	return fmt.Sprintf("Snapshot of %s (%s customers): BG/NBD and Gamma-Gamma fitted on the orders up to that day, %d-month horizon.",
		s.AsOf.Format("2 Jan 2006"), fmtCount(s.Customers), s.HorizonMonths)
}

func bestSection(best *metrics.BestCustomers, err error, link func(string) string) views.ListSection {
	sec := views.ListSection{ID: "best-clv", Title: "Best customers by predicted CLV",
		Definition: "Predicted customer lifetime value: the discounted value of the purchases BG/NBD and Gamma-Gamma expect over the horizon (model " + metrics.CLVModel +
			", written by `converge clv fit`), with the purchases expected over the horizon and those up to the snapshot (same-day orders counted once)."}
	if err != nil {
		sec.Error = sectionError(err)
		return sec
	}
	sec.Note = snapshotNote(best.Snapshot)
	sec.Empty = "The snapshot has no customers."
	t := &views.LinkTable{Head: []string{"Customer", "Predicted CLV", "P(alive)", "Expected purchases", "Purchases"},
		Num: []bool{false, true, true, true, true}}
	for _, r := range best.Rows {
		t.Rows = append(t.Rows, []views.Cell{{Text: r.ID, Href: link(r.ID), Sub: r.Email}, {Text: fmtMoney(r.CLV, best.Snapshot.Currency)},
			{Text: fmtPct(r.PAlive)}, {Text: views.FormatNumber(r.ExpectedPurchases, 1)}, {Text: fmtCount(r.Purchases)}})
	}
	sec.Table = t
	sec.Showing = views.Showing(len(best.Rows), best.Total, "customer of the snapshot", "customers of the snapshot", ", highest CLV first")
	return sec
}

func atRiskSection(risk *metrics.AtRiskCustomers, err error, link func(string) string) views.ListSection {
	sec := views.ListSection{ID: "at-risk", Title: "Best customers at risk: who to call today", Wide: true,
		Definition: fmt.Sprintf("High value and P(alive) falling. High value: predicted CLV in the top %s of the latest snapshot. Falling: a repeat buyer "+
			"with no order since the snapshot's calibration end whose P(alive) today — the snapshot's BG/NBD model carried forward to today, "+
			"with no purchase since — is at least %s points below P(alive) just after their last purchase. (A customer with a single "+
			"purchase has P(alive) 1 in BG/NBD and is never counted.) Highest CLV first.",
			views.FormatNumber(metrics.AtRiskTopShare*100, 0)+"%", views.FormatNumber(metrics.AtRiskMinDrop*100, 0))}
	if err != nil {
		sec.Error = sectionError(err)
		return sec
	}
	sec.Note = snapshotNote(risk.Snapshot) + fmt.Sprintf(" High value from %s; today is %s.",
		fmtMoney(risk.Threshold, risk.Snapshot.Currency), risk.Today.UTC().Format("2 Jan 2006"))
	sec.Empty = "No high-value customer's P(alive) has fallen that far."
	t := &views.LinkTable{Head: []string{"Customer", "Phone", "Predicted CLV", "P(alive) after last purchase", "P(alive) today",
		"Last purchase", "Usually buys every", "Purchases"}, Num: []bool{false, false, true, true, true, true, true, true}}
	today := risk.Today.UTC().Truncate(24 * time.Hour)
	for _, r := range risk.Rows {
		ago := int(math.Round(today.Sub(r.LastPurchase).Hours() / 24))
		t.Rows = append(t.Rows, []views.Cell{{Text: r.ID, Href: link(r.ID), Sub: r.Email}, {Text: r.Phone}, {Text: fmtMoney(r.CLV, risk.Snapshot.Currency)},
			{Text: fmtPct(r.PAliveAfterLast)}, {Text: fmtPct(r.PAliveToday), Sub: "▼ " + views.FormatNumber((r.PAliveAfterLast-r.PAliveToday)*100, 0) + " points"},
			{Text: r.LastPurchase.Format("2 Jan 2006"), Sub: fmtCount(ago) + " days ago"}, {Text: views.FormatNumber(r.UsualGapDays, 0) + " days"},
			{Text: fmtCount(r.Purchases)}})
	}
	sec.Table = t
	sec.Showing = views.Showing(len(risk.Rows), risk.Total, "customer at risk", "customers at risk", ", highest CLV first")
	return sec
}

// cellNum reads a numeric cell of a metric table; anything else is 0.
func cellNum(v any) float64 {
	f, _ := cellFloat(v)
	return f
}

// tableColumnIndex maps a metric table's column names to their index; missing ones are an error.
func tableColumnIndex(t *MetricTable, names ...string) (map[string]int, error) {
	idx := map[string]int{}
	for i, c := range t.Columns {
		idx[c] = i
	}
	for _, n := range names {
		if _, ok := idx[n]; !ok {
			return nil, errShown("%s has no column %q (columns: %s)", t.Info.Name, n, strings.Join(t.Columns, ", "))
		}
	}
	return idx, nil
}

func championsSection(t *MetricTable, err error, currency string, f Filters, link func(string) string) views.ListSection {
	sec := views.ListSection{ID: "rfm-555", Title: "Best customers by RFM (555)",
		Definition: "Customers in the top fifth on recency, frequency and monetary value at once (metric rfm_best_customers: quintile scores over every customer with an order, net revenue after refunds)."}
	var idx map[string]int
	if err == nil {
		idx, err = tableColumnIndex(t, "customer_id", "recency_days", "frequency", "net_revenue")
	}
	if err != nil {
		sec.Error = sectionError(err)
		return sec
	}
	sec.Note = "As of the end of " + f.InclusiveTo().Format("2 Jan 2006") + "."
	sec.Empty = "No customer scores 555."
	lt := &views.LinkTable{Head: []string{"Customer", "Days since last order", "Orders", "Net revenue"}, Num: []bool{false, true, true, true}}
	for _, r := range t.Rows[:min(len(t.Rows), customerListLen)] {
		id := fmt.Sprint(r[idx["customer_id"]])
		lt.Rows = append(lt.Rows, []views.Cell{{Text: id, Href: link(id)}, {Text: views.FormatNumber(cellNum(r[idx["recency_days"]]), 0)},
			{Text: views.FormatNumber(cellNum(r[idx["frequency"]]), 0)}, {Text: fmtMoney(cellNum(r[idx["net_revenue"]]), currency)}})
	}
	sec.Table = lt
	sec.Showing = views.Showing(len(lt.Rows), len(t.Rows), "555 customer", "555 customers", ", highest net revenue first")
	return sec
}

// segmentSections are the RFM segments (named R×F groups: customers, revenue, shares, with a
// chart) and the R×F grid of customers.
func segmentSections(t *MetricTable, err error, currency string, f Filters) []views.ListSection {
	sec := views.ListSection{ID: "rfm-segments", Title: "RFM segments", Wide: true,
		Definition: "Every customer with an order before the snapshot, by recency (R) and frequency (F) score (1–5, quintiles; metric rfm_segments), grouped into the usual named segments of the R×F grid. Net revenue is the customers' whole history, after refunds."}
	grid := views.ListSection{ID: "rfm-grid", Title: "RFM grid: customers by recency and frequency", Wide: true,
		Definition: "Customers per R×F cell (5 = most recent, most orders); each cell's segment below its count."}
	var idx map[string]int
	if err == nil {
		idx, err = tableColumnIndex(t, "r", "f", "customers", "net_revenue")
	}
	if err != nil {
		sec.Error, grid.Error = sectionError(err), sectionError(err)
		return []views.ListSection{sec, grid}
	}
	n := len(metrics.RFMSegments)
	custs, revenue := make([]float64, n), make([]float64, n)
	var cells [6][6]float64
	var allCusts, allRevenue float64
	for _, row := range t.Rows {
		r, fq := int(cellNum(row[idx["r"]])), int(cellNum(row[idx["f"]]))
		i := metrics.RFMSegmentOf(r, fq)
		if i < 0 {
			sec.Error = fmt.Sprintf("rfm_segments returned scores R %d, F %d outside 1–5", r, fq)
			grid.Error = sec.Error
			return []views.ListSection{sec, grid}
		}
		c, m := cellNum(row[idx["customers"]]), cellNum(row[idx["net_revenue"]])
		custs[i] += c
		revenue[i] += m
		cells[r][fq] += c
		allCusts += c
		allRevenue += m
	}
	asOf := f.InclusiveTo().Format("2 Jan 2006")
	sec.Note = fmt.Sprintf("As of the end of %s: %s customers, %s net revenue.", asOf, views.FormatNumber(allCusts, 0), fmtMoney(allRevenue, currency))
	sec.Empty = "No customer has an order before the snapshot."
	share := func(x, of float64) *float64 {
		if of == 0 {
			return nil
		}
		v := x / of
		return &v
	}
	lt := &views.LinkTable{Head: []string{"Segment", "R", "F", "Customers", "Share of customers", "Net revenue", "Share of revenue", "Revenue per customer"},
		Num: []bool{false, true, true, true, true, true, true, true}}
	labels := make([]string, n)
	custShare, revShare := make([]*float64, n), make([]*float64, n)
	span := func(a, b int) string {
		if a == b {
			return strconv.Itoa(a)
		}
		return fmt.Sprintf("%d–%d", a, b)
	}
	for i, s := range metrics.RFMSegments {
		labels[i] = s.Name
		custShare[i], revShare[i] = share(custs[i], allCusts), share(revenue[i], allRevenue)
		perCustomer := views.NoData
		if custs[i] > 0 {
			perCustomer = fmtMoney(revenue[i]/custs[i], currency)
		}
		lt.Rows = append(lt.Rows, []views.Cell{{Text: s.Name, Sub: s.Description}, {Text: span(s.RMin, s.RMax)}, {Text: span(s.FMin, s.FMax)},
			{Text: views.FormatNumber(custs[i], 0)}, {Text: views.FormatValue(custShare[i], "percent", "")}, {Text: fmtMoney(revenue[i], currency)},
			{Text: views.FormatValue(revShare[i], "percent", "")}, {Text: perCustomer}})
	}
	if allCusts > 0 {
		sec.Table = lt
		sec.Showing = fmt.Sprintf("All %d segments; every customer is in exactly one.", n)
		chartRows := make([][]string, n)
		for i := range n {
			chartRows[i] = []string{labels[i], views.FormatValue(custShare[i], "percent", ""), views.FormatValue(revShare[i], "percent", "")}
		}
		sec.Chart = &views.Chart{
			ID:     "chart-rfm-segments",
			Label:  "Share of customers and of net revenue per RFM segment, as of the end of " + asOf,
			Option: views.BarPercentOption(labels, []views.Series{{Name: "Share of customers", Values: custShare}, {Name: "Share of net revenue", Values: revShare}}),
			Class:  "bars",
			Table:  views.Table{Head: []string{"Segment", "Share of customers", "Share of net revenue"}, Rows: chartRows},
		}
	}
	gt := &views.LinkTable{Head: []string{"Recency \\ frequency", "F 1", "F 2", "F 3", "F 4", "F 5"}, Num: []bool{false, true, true, true, true, true}}
	for r := 5; r >= 1; r-- {
		label := "R " + strconv.Itoa(r)
		switch r {
		case 5:
			label += " (most recent)"
		case 1:
			label += " (least recent)"
		}
		row := []views.Cell{{Text: label}}
		for fq := 1; fq <= 5; fq++ {
			row = append(row, views.Cell{Text: views.FormatNumber(cells[r][fq], 0), Sub: metrics.RFMSegments[metrics.RFMSegmentOf(r, fq)].Name})
		}
		gt.Rows = append(gt.Rows, row)
	}
	if allCusts > 0 {
		grid.Table = gt
	}
	grid.Empty = sec.Empty
	return []views.ListSection{sec, grid}
}
