package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/views"
)

// customer360 renders the customer 360 (/customers/:id): identities, profile, predicted value,
// orders, touchpoints, tickets, survey answers, consents and rewards of the canonical customer
// id, each section loaded concurrently within Config.TileTimeout (a failed one shows its
// error), each list at most profileListLen rows with "showing N of M". A source id redirects
// (302) to its customer, one several customers share to the search; an unknown id is a 404.
// Times are shown in the report time zone.
func (s *Server) customer360(c *gin.Context) error {
	f, err := s.filters(c)
	if err != nil {
		return err
	}
	if s.customers == nil {
		return errUnavailable(msgCustomersNotConfigured)
	}
	id := c.Param("id")
	notFound := errNotFound(fmt.Sprintf("There is no customer %q: no customer has this id and no source uses it.", id))
	if len(id) > maxCustomerID || !validText(id) {
		return notFound
	}
	ctx := c.Request.Context()
	res, err := s.customers.Profile360(ctx, id, metrics.Profile360Options{Limit: profileListLen, Budget: s.cfg.TileTimeout, Today: s.now()})
	var (
		moved *metrics.MovedError
		amb   *metrics.AmbiguousError
	)
	switch {
	case errors.As(err, &moved):
		c.Redirect(http.StatusFound, customerURL(moved.ID, c.Request.URL.RawQuery))
		return nil
	case errors.As(err, &amb):
		c.Redirect(http.StatusFound, f.URL("/customers", func(v url.Values) { v.Set("q", id) }))
		return nil
	case errors.Is(err, metrics.ErrCustomerNotFound):
		return notFound
	case errors.Is(err, metrics.ErrBudget):
		return httpError{status: http.StatusGatewayTimeout, msg: fmt.Sprintf("The customer could not be looked up within %s; try again.", s.cfg.TileTimeout)}
	case err != nil:
		return fmt.Errorf("customer %q: %w", id, err)
	}
	c.Header("Cache-Control", "no-store")
	back := f.URL("/customers", func(v url.Values) {
		if q := c.Query("q"); q != "" {
			v.Set("q", q)
		}
	})
	v := views.Customer360View{Page: s.dashPage(c, id, "customers", f), ID: id, Heading: id, BackURL: back}
	if p := res.Profile.Data; p != nil && p.Email != "" {
		v.Heading = p.Email
		v.Page.Title = p.Email
	}
	for name, err := range map[string]error{"profile": res.Profile.Err, "orders": res.Orders.Err, "touchpoints": res.Touchpoints.Err,
		"tickets": res.Tickets.Err, "surveys": res.Surveys.Err, "consents": res.Consents.Err, "rewards": res.Rewards.Err, "values": res.Values.Err} {
		if err != nil {
			s.reqLog(c).Warn("customer 360: section", "section", name, "customer", id, "error", err)
		}
	}
	t := timeFormat{loc: f.Loc}
	v.Profile = profileSection(res.Profile)
	v.Value = valueSection(res.Values, t)
	cons := consentSections(res.Consents, t)
	v.Sections = []views.ListSection{
		identitiesSection(res.Identities, t),
		ordersSection(res.Orders, t),
		touchpointsSection(res.Touchpoints, t),
		ticketsSection(res.Tickets, t),
		surveysSection(res.Surveys, t),
		cons[0], cons[1],
		rewardsSection(res.Rewards, t),
	}
	return s.renderTables(c, http.StatusOK, &v, func() templ.Component { return views.Customer360(v) })
}

// timeFormat shows instants in the report time zone.
type timeFormat struct{ loc *time.Location }

func (t timeFormat) at(x time.Time) string {
	if x.IsZero() {
		return views.NoData
	}
	return x.In(t.loc).Format("2 Jan 2006 15:04")
}

func (t timeFormat) opt(x *time.Time) string {
	if x == nil {
		return views.NoData
	}
	return t.at(*x)
}

// dateText shows a calendar date (UTC dates of the model, as stored).
func dateText(x time.Time) string { return x.Format("2 Jan 2006") }

func orDash(s string) string {
	if s == "" {
		return views.NoData
	}
	return s
}

// statusCell shows a ticket's state in the help desk's words, with the normalised state metrics
// count it under when that reads differently ("On-hold", pending).
func statusCell(status, text string) views.Cell {
	if text == "" || strings.EqualFold(text, status) {
		return views.Cell{Text: orDash(orText(text, status))}
	}
	return views.Cell{Text: text, Sub: status}
}

func orText(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// sumText is a total over amounts in currencies: the sum when there is one currency.
func sumText(v float64, currencies []string) string {
	switch len(currencies) {
	case 0:
		return views.NoData
	case 1:
		return fmtMoney(v, currencies[0])
	}
	return "several currencies (" + strings.Join(currencies, ", ") + "): not added up"
}

func profileSection(p metrics.Section[*metrics.CustomerProfile]) views.ListSection {
	sec := views.ListSection{ID: "profile", Title: "Profile",
		Definition: "The single customer view: the records of every source merged (first known contact details and acquisition, latest segment)."}
	if p.Err != nil {
		sec.Error = sectionError(p.Err)
		return sec
	}
	if p.Data == nil {
		sec.Empty = "No customer record: this id is known from its facts only; no source described the customer."
		return sec
	}
	d := p.Data
	acq := orDash(d.AcquisitionChannel)
	if d.AcquisitionCampaign != "" {
		acq += " / " + d.AcquisitionCampaign
	}
	first := firstSeenText(d.FirstSeen)
	sec.Facts = []views.Fact{
		{Label: "E-mail", Value: orDash(d.Email)}, {Label: "Phone", Value: orDash(d.Phone)}, {Label: "Country", Value: orDash(d.Country)},
		{Label: "First seen", Value: first}, {Label: "Acquired through", Value: acq}, {Label: "Segment", Value: orDash(d.Segment)},
		{Label: "Known in", Value: orDash(strings.Join(d.Sources, ", "))}, {Label: "Records merged", Value: fmtCount(d.Records)},
	}
	return sec
}

func valueSection(vs metrics.Section[metrics.List[metrics.CustomerValue]], t timeFormat) views.ListSection {
	sec := views.ListSection{ID: "value", Title: "Predicted value",
		Definition: "Predicted CLV and P(alive) from the model snapshots (" + metrics.CLVModel + ", BG/NBD and Gamma-Gamma, written by `converge clv fit`)."}
	if vs.Err != nil {
		sec.Error = sectionError(vs.Err)
		return sec
	}
	if len(vs.Data.Rows) == 0 {
		sec.Empty = "No prediction: the customer is in no snapshot (no order up to a calibration end, or `converge clv fit` has not run)."
		return sec
	}
	v := vs.Data.Rows[0]
	today := views.NoData + " (the snapshot has no stored model parameters)"
	if v.PAliveToday != nil {
		today = fmtPct(*v.PAliveToday)
	}
	sec.Note = fmt.Sprintf("Snapshot of %s, fitted on the orders up to that day.", dateText(v.AsOf))
	sec.Facts = []views.Fact{
		{Label: fmt.Sprintf("Predicted CLV (%d months)", v.HorizonMonths), Value: fmtMoney(v.CLV, v.Currency)},
		{Label: "P(alive) on " + dateText(v.CalibrationEnd), Value: fmtPct(v.PAlive)},
		{Label: "P(alive) today, " + v.Today.UTC().Format("2 Jan 2006"), Value: today},
		{Label: fmt.Sprintf("Expected purchases (%d months)", v.HorizonMonths), Value: views.FormatNumber(v.ExpectedPurchases, 2)},
		{Label: "Expected spend per purchase", Value: fmtMoney(v.ExpectedSpend, v.Currency)},
		{Label: "Purchase days up to the snapshot", Value: views.FormatNumber(v.X+1, 0)},
	}
	if vs.Data.Total > 1 {
		lt := &views.LinkTable{Head: []string{"Snapshot", "Predicted CLV", "P(alive)", "Expected purchases"}, Num: []bool{false, true, true, true}}
		for _, r := range vs.Data.Rows {
			lt.Rows = append(lt.Rows, []views.Cell{{Text: dateText(r.AsOf)}, {Text: fmtMoney(r.CLV, r.Currency)}, {Text: fmtPct(r.PAlive)},
				{Text: views.FormatNumber(r.ExpectedPurchases, 2)}})
		}
		sec.Table = lt
	}
	sec.Showing = views.Showing(len(vs.Data.Rows), vs.Data.Total, "snapshot", "snapshots", ", newest first")
	return sec
}

func identitiesSection(ids metrics.List[metrics.Identity], t timeFormat) views.ListSection {
	sec := views.ListSection{ID: "identities", Title: "Identities", Wide: true,
		Definition: "The ids the sources use for this customer, the identity rule that matched each (explicit link, e-mail, phone, or its own id) and when.",
		Empty:      "No identity: the id is used by facts only, in sources that describe no customer."}
	lt := &views.LinkTable{Head: []string{"Source", "Source id", "Rule", "Matched"}}
	for _, in := range ids.Rows {
		lt.Rows = append(lt.Rows, []views.Cell{{Text: in.Source}, {Text: in.Key}, {Text: in.Rule}, {Text: t.at(in.MatchedAt)}})
	}
	sec.Table = lt
	sec.Showing = views.Showing(len(ids.Rows), ids.Total, "identity", "identities", ", newest match first")
	return sec
}

func ordersSection(o metrics.Section[metrics.CustomerOrders], t timeFormat) views.ListSection {
	sec := views.ListSection{ID: "orders", Title: "Orders", Wide: true,
		Definition: "Revenue is net of discounts, before refunds; the refund column is what was refunded on the order. Totals leave cancelled orders out.",
		Empty:      "No orders."}
	if o.Err != nil {
		sec.Error = sectionError(o.Err)
		return sec
	}
	d := o.Data
	if d.Total > 0 {
		first, last := views.NoData, views.NoData
		if d.Orders > 0 {
			first, last = t.at(d.First), t.at(d.Last)
		}
		sec.Facts = []views.Fact{{Label: "Orders (not cancelled)", Value: fmtCount(d.Orders)}, {Label: "Revenue", Value: sumText(d.Revenue, d.Currencies)},
			{Label: "Refunded on orders", Value: sumText(d.Refund, d.Currencies)}, {Label: "First order", Value: first}, {Label: "Last order", Value: last}}
	}
	lt := &views.LinkTable{Head: []string{"Ordered", "Order", "Status", "Channel", "Campaign", "Revenue", "Refund"},
		Num: []bool{false, false, false, false, false, true, true}}
	for _, r := range d.Rows {
		lt.Rows = append(lt.Rows, []views.Cell{{Text: t.at(r.OrderedAt)}, {Text: r.ID, Sub: r.Source}, {Text: r.Status}, {Text: orDash(r.Channel)},
			{Text: orDash(r.Campaign)}, {Text: fmtMoney(r.Revenue, r.Currency)}, {Text: fmtMoney(r.Refund, r.Currency)}})
	}
	sec.Table = lt
	sec.Showing = views.Showing(len(d.Rows), d.Total, "order", "orders", ", newest first")
	return sec
}

func touchpointsSection(tp metrics.Section[metrics.List[metrics.Touchpoint]], t timeFormat) views.ListSection {
	sec := views.ListSection{ID: "touchpoints", Title: "Touchpoints", Empty: "No touchpoints.",
		Definition: "Marketing interactions: impressions, clicks, visits, sign-ups, e-mail opens and clicks."}
	if tp.Err != nil {
		sec.Error = sectionError(tp.Err)
		return sec
	}
	lt := &views.LinkTable{Head: []string{"When", "Kind", "Channel", "Campaign", "Source"}}
	for _, r := range tp.Data.Rows {
		camp := orDash(r.Campaign)
		if r.UTMSource != "" || r.UTMMedium != "" {
			camp += " (utm " + r.UTMSource + "/" + r.UTMMedium + ")"
		}
		lt.Rows = append(lt.Rows, []views.Cell{{Text: t.at(r.OccurredAt)}, {Text: r.Kind}, {Text: r.Channel}, {Text: camp}, {Text: r.Source}})
	}
	sec.Table = lt
	sec.Showing = views.Showing(len(tp.Data.Rows), tp.Data.Total, "touchpoint", "touchpoints", ", newest first")
	return sec
}

// afterText is how long after from the instant to came: "2 h 05 min", "3.5 days".
func afterText(from time.Time, to *time.Time) string {
	if to == nil {
		return views.NoData
	}
	h := to.Sub(from).Hours()
	return views.FormatValue(&h, "hours", "")
}

func ticketsSection(tk metrics.Section[metrics.List[metrics.Ticket]], t timeFormat) views.ListSection {
	sec := views.ListSection{ID: "tickets", Title: "Service tickets", Empty: "No tickets.", Wide: true,
		Definition: "Each ticket in its current state; response and resolution times are counted from opening."}
	if tk.Err != nil {
		sec.Error = sectionError(tk.Err)
		return sec
	}
	lt := &views.LinkTable{Head: []string{"Opened", "Ticket", "Channel", "Status", "Priority", "Topic", "First response after", "Resolved after", "CSAT"},
		Num: []bool{false, false, false, false, false, false, true, true, true}}
	for _, r := range tk.Data.Rows {
		csat := views.NoData
		if r.CSAT != nil {
			csat = fmt.Sprintf("%d / 5", *r.CSAT)
		}
		lt.Rows = append(lt.Rows, []views.Cell{{Text: t.at(r.OpenedAt)}, {Text: r.ID, Sub: r.Source}, {Text: orDash(r.Channel)}, statusCell(r.Status, r.StatusText),
			{Text: orDash(r.Priority)}, {Text: orDash(r.Topic)}, {Text: afterText(r.OpenedAt, r.FirstResponseAt)}, {Text: afterText(r.OpenedAt, r.ResolvedAt)}, {Text: csat}})
	}
	sec.Table = lt
	sec.Showing = views.Showing(len(tk.Data.Rows), tk.Data.Total, "ticket", "tickets", ", newest first")
	return sec
}

// surveyScales are the score ranges of the survey kinds.
var surveyScales = map[string]string{"nps": "0–10", "csat": "1–5", "ces": "1–7"}

func surveysSection(sv metrics.Section[metrics.List[metrics.SurveyAnswer]], t timeFormat) views.ListSection {
	sec := views.ListSection{ID: "surveys", Title: "Survey answers", Empty: "No survey answers.",
		Definition: "NPS (0–10), CSAT (1–5) and CES (1–7) answers."}
	if sv.Err != nil {
		sec.Error = sectionError(sv.Err)
		return sec
	}
	lt := &views.LinkTable{Head: []string{"Answered", "Survey", "Score", "Topic", "Comment"}, Num: []bool{false, false, true, false, false}}
	for _, r := range sv.Data.Rows {
		score := fmt.Sprint(r.Score)
		if sc := surveyScales[r.Kind]; sc != "" {
			score += " (" + sc + ")"
		}
		topic := orDash(r.Topic)
		if r.TicketID != "" {
			topic += ", ticket " + r.TicketID
		}
		lt.Rows = append(lt.Rows, []views.Cell{{Text: t.at(r.AnsweredAt)}, {Text: strings.ToUpper(r.Kind), Sub: r.Channel}, {Text: score}, {Text: topic},
			{Text: orDash(r.Comment)}})
	}
	sec.Table = lt
	sec.Showing = views.Showing(len(sv.Data.Rows), sv.Data.Total, "answer", "answers", ", newest first")
	return sec
}

func grantedText(g bool) string {
	if g {
		return "Granted"
	}
	return "Withdrawn / refused"
}

// consentSections are the current consent per channel and purpose and the history.
func consentSections(cs metrics.Section[metrics.CustomerConsents], t timeFormat) [2]views.ListSection {
	cur := views.ListSection{ID: "consent", Title: "Consent now", Empty: "No consent recorded.",
		Definition: "Per channel and purpose, the latest grant or withdrawal of the whole history, whichever system recorded it."}
	hist := views.ListSection{ID: "consent-history", Title: "Consent history", Empty: "No consent recorded.",
		Definition: "Every grant and withdrawal, as recorded."}
	if cs.Err != nil {
		cur.Error, hist.Error = sectionError(cs.Err), sectionError(cs.Err)
		return [2]views.ListSection{cur, hist}
	}
	lt := &views.LinkTable{Head: []string{"Channel", "Purpose", "State", "Since", "Recorded in"}}
	for _, r := range cs.Data.Current {
		lt.Rows = append(lt.Rows, []views.Cell{{Text: r.Channel}, {Text: r.Purpose}, {Text: grantedText(r.Granted)}, {Text: t.at(r.Since)}, {Text: r.SourceSystem}})
	}
	cur.Table = lt
	ht := &views.LinkTable{Head: []string{"Recorded", "Channel", "Purpose", "Change", "System", "Loaded from"}}
	for _, r := range cs.Data.History.Rows {
		ht.Rows = append(ht.Rows, []views.Cell{{Text: t.at(r.RecordedAt)}, {Text: r.Channel}, {Text: r.Purpose}, {Text: grantedText(r.Granted)},
			{Text: r.SourceSystem}, {Text: r.Source}})
	}
	hist.Table = ht
	hist.Showing = views.Showing(len(cs.Data.History.Rows), cs.Data.History.Total, "record", "records", ", newest first")
	return [2]views.ListSection{cur, hist}
}

func rewardsSection(rw metrics.Section[metrics.CustomerRewards], t timeFormat) views.ListSection {
	sec := views.ListSection{ID: "rewards", Title: "Rewards", Empty: "No rewards.",
		Definition: "Small incentives given to the customer (vouchers, points, gifts), at their cost to us."}
	if rw.Err != nil {
		sec.Error = sectionError(rw.Err)
		return sec
	}
	if rw.Data.Total > 0 {
		sec.Facts = []views.Fact{{Label: "Rewarded in all", Value: sumText(rw.Data.Amount, rw.Data.Currencies)}}
	}
	lt := &views.LinkTable{Head: []string{"Granted", "Reward", "Kind", "Amount", "Reason", "Campaign"}, Num: []bool{false, false, false, true, false, false}}
	for _, r := range rw.Data.Rows {
		lt.Rows = append(lt.Rows, []views.Cell{{Text: t.at(r.GrantedAt)}, {Text: r.ID, Sub: r.Source}, {Text: orDash(r.Kind)}, {Text: fmtMoney(r.Amount, r.Currency)},
			{Text: orDash(r.Reason)}, {Text: orDash(r.Campaign)}})
	}
	sec.Table = lt
	sec.Showing = views.Showing(len(rw.Data.Rows), rw.Data.Total, "reward", "rewards", ", newest first")
	return sec
}
