package metrics

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	convsql "github.com/converge-dev/converge/sql"
	"github.com/converge-dev/converge/warehouse"
)

// Customers answers the customer pages: search, the customer 360, the best customers by
// predicted CLV and the best customers at risk. A customer is a canonical customer id
// (identities maps each source's key to it); facts belong to a customer exactly as the
// *_resolved views map them (sql/schema 0031–0039), so every number here agrees with the KPIs.
// Its SQL is in sql/queries/customer_*.sql. Times are UTC.
type Customers struct {
	st *warehouse.Store
}

// NewCustomers reads customers from st.
func NewCustomers(st *warehouse.Store) *Customers { return &Customers{st: st} }

// CLVModel is the customer_value model the pages read (written by `converge clv fit`).
const CLVModel = "bgnbd_gg"

// Limits of the customer pages.
const (
	// MaxSearchQuery is the longest search text, in bytes.
	MaxSearchQuery = 200
	// maxIdentities bounds the identities read for one customer.
	maxIdentities = 1000
	// maxPageRows bounds any page of rows.
	maxPageRows = 1000
)

// At-risk rule (see AtRisk).
const (
	// AtRiskTopShare is the share of the snapshot's customers, by predicted CLV, that counts
	// as high value (customer_at_risk.sql: at or above the 80th percentile).
	AtRiskTopShare = 0.2
	// AtRiskMinDrop is how far P(alive) must have fallen since the last purchase: 10 points.
	AtRiskMinDrop = 0.10
)

// ErrCustomerNotFound: no customer has this id, and no source uses it as a key.
var ErrCustomerNotFound = errors.New("customer not found")

// ErrNoSnapshot: customer_value holds no snapshot of CLVModel (run `converge clv fit`).
var ErrNoSnapshot = errors.New("no predictive CLV snapshot: run `converge clv fit --calibration-end DATE`")

// MovedError is returned for a source id given instead of the canonical customer id: the
// customer is ID.
type MovedError struct {
	Given, ID string
}

func (e *MovedError) Error() string {
	return fmt.Sprintf("%q is a source id of customer %q", e.Given, e.ID)
}

// AmbiguousError is returned for a source key that several sources use for different
// customers.
type AmbiguousError struct {
	Given string
	IDs   []string // the customers, sorted
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("%q is a source id of %d customers: %s", e.Given, len(e.IDs), strings.Join(e.IDs, ", "))
}

// List is a page of rows and how many there are in all, so a page can say "showing N of M".
type List[T any] struct {
	Rows  []T
	Total int
}

// Identity is one source key mapped to a customer: by which rule and when.
type Identity struct {
	Source, Key, Rule string
	MatchedAt         time.Time
}

// CustomerProfile is the single customer view (customers_resolved) of one customer.
type CustomerProfile struct {
	ID, Email, Phone, Country               string
	AcquisitionChannel, AcquisitionCampaign string
	Segment                                 string
	FirstSeen                               time.Time
	Sources                                 []string
	Records                                 int // customer records merged into it
}

// CustomerMatch is one search result.
type CustomerMatch struct {
	CustomerProfile
	Exact bool // the e-mail, a source key or the id equals the search text
}

// CustomerOrder is one order.
type CustomerOrder struct {
	OrderedAt                                       time.Time
	Source, ID, Status, Channel, Campaign, Currency string
	Revenue, Refund                                 float64 // revenue net of discounts, before refunds; refund on the order
}

// CustomerOrders are a customer's orders, newest first, with totals over all of them.
type CustomerOrders struct {
	List[CustomerOrder]
	Orders          int      // not cancelled
	Revenue, Refund float64  // of the orders not cancelled; a sum only when Currencies has one entry
	Currencies      []string // of the orders not cancelled
	First, Last     time.Time
}

// Touchpoint is one marketing interaction.
type Touchpoint struct {
	OccurredAt                                            time.Time
	Source, Channel, Campaign, Kind, UTMSource, UTMMedium string
}

// Ticket is one service ticket in its current state. Status is the normalised state (open,
// pending, resolved, closed), StatusText the help desk's own word for it as sent.
type Ticket struct {
	OpenedAt                                     time.Time
	Source, ID, Channel, Status, Priority, Topic string
	StatusText                                   string
	FirstResponseAt, ResolvedAt                  *time.Time
	CSAT                                         *uint8 // 1–5, nil when not rated
}

// SurveyAnswer is one survey response.
type SurveyAnswer struct {
	AnsweredAt                                      time.Time
	Source, Kind, Topic, Channel, Comment, TicketID string
	Score                                           int16
}

// Consent is one grant or withdrawal.
type Consent struct {
	RecordedAt                             time.Time
	Channel, Purpose, SourceSystem, Source string
	Granted                                bool
}

// ConsentState is the current consent for a channel and purpose: the latest record.
type ConsentState struct {
	Channel, Purpose, SourceSystem string
	Granted                        bool
	Since                          time.Time
}

// CustomerConsents are the consent history (newest first) and the current state per channel
// and purpose (over the whole history).
type CustomerConsents struct {
	History List[Consent]
	Current []ConsentState
}

// Reward is one incentive given.
type Reward struct {
	GrantedAt                                    time.Time
	Source, ID, Kind, Currency, Reason, Campaign string
	Amount                                       float64
}

// CustomerRewards are a customer's rewards, newest first, with their amount over all of them.
type CustomerRewards struct {
	List[Reward]
	Amount     float64 // a sum only when Currencies has one entry
	Currencies []string
}

// CustomerValue is one snapshot's prediction for a customer (customer_value).
type CustomerValue struct {
	AsOf, CalibrationEnd time.Time
	Unit, Currency       string
	// X repeat purchases, Tx and T in Unit (see CLVCustomer).
	X, Tx, T           float64
	ExpectedPurchases  float64 // over the horizon
	PAlive             float64 // at the calibration end
	ExpectedSpend, CLV float64
	HorizonMonths      int
	// PAliveToday is P(alive) carried forward to Today with the snapshot's fitted parameters
	// (no purchase since the calibration end assumed); nil when clv_fits has no parameters for
	// the snapshot.
	PAliveToday *float64
	Today       time.Time
}

// Section is one part of a page: its data, or why it could not be loaded.
type Section[T any] struct {
	Data T
	Err  error
}

// Customer360 is everything known about one customer. Each section was loaded on its own
// within the time budget; a failed one carries its error.
type Customer360 struct {
	ID          string
	Identities  List[Identity]
	Profile     Section[*CustomerProfile] // nil Data: no customer record (an id known from facts only)
	Orders      Section[CustomerOrders]
	Touchpoints Section[List[Touchpoint]]
	Tickets     Section[List[Ticket]]
	Surveys     Section[List[SurveyAnswer]]
	Consents    Section[CustomerConsents]
	Rewards     Section[CustomerRewards]
	Values      Section[List[CustomerValue]] // newest snapshot first
}

// Profile360Options bound Profile360.
type Profile360Options struct {
	Limit  int           // rows per list; default 50
	Budget time.Duration // per section; default 3 s
	Today  time.Time     // for P(alive) today; default now
}

// CLVSnapshot is the latest snapshot of CLVModel.
type CLVSnapshot struct {
	AsOf, CalibrationEnd time.Time
	Unit, Currency       string
	Customers            int
	HorizonMonths        int
	Model                *BGNBD // nil when clv_fits has no parameters for it
}

// RankedCustomer is a customer of a snapshot with its prediction.
type RankedCustomer struct {
	CustomerProfile
	CLV, PAlive, ExpectedPurchases float64
	Purchases                      int // in the calibration window (x + 1)
}

// BestCustomers are the customers with the highest predicted CLV of the latest snapshot.
type BestCustomers struct {
	Snapshot CLVSnapshot
	List[RankedCustomer]
}

// AtRiskCustomer is a high-value customer whose P(alive) is falling.
type AtRiskCustomer struct {
	RankedCustomer
	// PAliveAfterLast is P(alive) just after the last purchase, PAliveToday on Today, both
	// with the snapshot's parameters; RankedCustomer.PAlive is at the calibration end.
	PAliveAfterLast, PAliveToday float64
	LastPurchase                 time.Time // UTC day
	UsualGapDays                 float64   // mean days between purchases (t_x / x)
}

// AtRiskCustomers answer AtRisk.
type AtRiskCustomers struct {
	Snapshot  CLVSnapshot
	Today     time.Time
	Threshold float64 // the lowest CLV counted as high value
	List[AtRiskCustomer]
}

var customerSQL = func() map[string]string {
	out := map[string]string{}
	fsys := convsql.CustomerQueries()
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			panic(err)
		}
		out[strings.TrimSuffix(n, ".sql")] = string(b)
	}
	return out
}()

// query runs the named query with bound parameters.
func (c *Customers) query(ctx context.Context, name string, params clickhouse.Parameters) (driver.Rows, error) {
	text, ok := customerSQL[name]
	if !ok {
		return nil, fmt.Errorf("customers: no query %s", name)
	}
	trace(tracing(ctx, "customer:"+name), text, params)
	ctx = clickhouse.Context(warehouse.Materialized(ctx), clickhouse.WithParameters(params))
	rows, err := c.st.Conn.Query(ctx, text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return rows, nil
}

// each runs the named query and calls scan for every row.
func (c *Customers) each(ctx context.Context, name string, params clickhouse.Parameters, scan func(driver.Rows) error) error {
	rows, err := c.query(ctx, name, params)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// stringParam writes s as a String parameter value: the HTTP interface reads parameter values
// with escape sequences, so a backslash must be doubled to stay one.
func stringParam(s string) string { return strings.ReplaceAll(s, `\`, `\\`) }

func clampLimit(n, def int) int {
	if n <= 0 {
		return def
	}
	return min(n, maxPageRows)
}

// SearchDigits is the phone part of a search: the digits of q without leading zeros (so
// "0151 …" finds "+49 151 …"), when q looks like a phone number (digits, spaces and + ( ) - / .)
// with at least four digits; else "".
func SearchDigits(q string) string {
	var b strings.Builder
	for _, r := range q {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case unicode.IsSpace(r) || strings.ContainsRune("+()-/.", r):
		default:
			return ""
		}
	}
	d := strings.TrimLeft(b.String(), "0")
	if len(d) < 4 {
		return ""
	}
	return d
}

// Search finds the customers with a record of any source whose e-mail, source key or
// customer id contains q, case-insensitively, or whose phone number contains q's digits (see
// SearchDigits); exact matches first, then by id. It returns limit matches from offset and the
// number of matches. Customer records carry no name: a name is found through an e-mail address
// that contains it.
func (c *Customers) Search(ctx context.Context, q string, offset, limit int) (*List[CustomerMatch], error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return nil, &ParamError{Param: "q", Reason: "empty search"}
	}
	if len(q) > MaxSearchQuery {
		return nil, &ParamError{Param: "q", Reason: fmt.Sprintf("longer than %d bytes", MaxSearchQuery)}
	}
	if offset < 0 {
		return nil, &ParamError{Param: "offset", Reason: "negative"}
	}
	limit = clampLimit(limit, 25)
	out := &List[CustomerMatch]{}
	var ids []string
	err := c.each(ctx, "customer_search", clickhouse.Parameters{"q": stringParam(q), "digits": SearchDigits(q),
		"limit": fmt.Sprint(limit), "offset": fmt.Sprint(offset)}, func(r driver.Rows) error {
		var (
			m     CustomerMatch
			exact uint8
			total uint64
		)
		if err := r.Scan(&m.ID, &exact, &total); err != nil {
			return err
		}
		m.Exact, out.Total = exact == 1, int(total)
		out.Rows = append(out.Rows, m)
		ids = append(ids, m.ID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out.Total == 0 && offset > 0 {
		// The page is past the end: count the matches for "page N of M".
		n, err := c.Search(ctx, q, 0, 1)
		if err != nil {
			return nil, err
		}
		out.Total = n.Total
	}
	profiles, err := c.Profiles(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range out.Rows {
		if p, ok := profiles[out.Rows[i].ID]; ok {
			out.Rows[i].CustomerProfile = p
		}
	}
	return out, nil
}

// Profiles reads the single customer view of ids; an id without a customer record is absent.
func (c *Customers) Profiles(ctx context.Context, ids []string) (map[string]CustomerProfile, error) {
	out := make(map[string]CustomerProfile, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	err := c.each(ctx, "customer_profiles", clickhouse.Parameters{"ids": warehouse.StringArray(ids)}, func(r driver.Rows) error {
		var (
			p       CustomerProfile
			records uint64
		)
		if err := r.Scan(&p.ID, &p.Email, &p.Phone, &p.FirstSeen, &p.AcquisitionChannel, &p.AcquisitionCampaign,
			&p.Country, &p.Segment, &p.Sources, &records); err != nil {
			return err
		}
		p.Records = int(records)
		out[p.ID] = p
		return nil
	})
	return out, err
}

// Resolve returns the identities of the customer id. A source key (or "source:key") of one
// customer is a *MovedError naming it, of several an *AmbiguousError; an id nobody uses is
// ErrCustomerNotFound. An id that only facts use, with no identity (the *_resolved views keep
// it as is), is a customer without identities.
func (c *Customers) Resolve(ctx context.Context, id string) (List[Identity], error) {
	var own List[Identity]
	others := map[string]bool{}
	if id == "" {
		return own, ErrCustomerNotFound
	}
	err := c.each(ctx, "customer_resolve", clickhouse.Parameters{"id": stringParam(id), "limit": fmt.Sprint(maxIdentities)}, func(r driver.Rows) error {
		var (
			in        Identity
			canonical string
			total     uint64
		)
		if err := r.Scan(&in.Source, &in.Key, &canonical, &in.Rule, &in.MatchedAt, &total); err != nil {
			return err
		}
		own.Total = int(total)
		if canonical == id {
			own.Rows = append(own.Rows, in)
		} else {
			others[canonical] = true
		}
		return nil
	})
	switch {
	case err != nil:
		return own, err
	case own.Total > 0:
		return own, nil
	case len(others) == 1:
		for other := range others {
			return own, &MovedError{Given: id, ID: other}
		}
	case len(others) > 1:
		e := &AmbiguousError{Given: id}
		for other := range others {
			e.IDs = append(e.IDs, other)
		}
		slices.Sort(e.IDs)
		return own, e
	}
	var found uint8
	err = c.each(ctx, "customer_in_facts", clickhouse.Parameters{"id": stringParam(id)}, func(r driver.Rows) error { return r.Scan(&found) })
	if err != nil {
		return own, err
	}
	if found == 0 {
		return own, ErrCustomerNotFound
	}
	return own, nil
}

// Profile360 is everything known about customer id: its identities first (which also tell
// whether id is a customer: see Resolve for the errors), then profile, orders, touchpoints,
// tickets, survey answers, consents, rewards and predicted value, loaded concurrently, each
// within o.Budget (a section that does not answer in time is abandoned and carries the error).
func (c *Customers) Profile360(ctx context.Context, id string, o Profile360Options) (*Customer360, error) {
	if o.Limit <= 0 {
		o.Limit = 50
	}
	o.Limit = min(o.Limit, maxPageRows)
	if o.Budget <= 0 {
		o.Budget = 3 * time.Second
	}
	if o.Today.IsZero() {
		o.Today = time.Now()
	}
	idents, err := Within(ctx, o.Budget, func(ctx context.Context) (List[Identity], error) { return c.Resolve(ctx, id) })
	if err != nil {
		return nil, err
	}
	v := &Customer360{ID: id, Identities: idents}
	p := clickhouse.Parameters{"id": stringParam(id), "limit": fmt.Sprint(o.Limit)}
	var wg sync.WaitGroup
	load := func(f func(ctx context.Context)) { wg.Go(func() { f(ctx) }) }
	load(func(ctx context.Context) {
		v.Profile = section(ctx, o.Budget, func(ctx context.Context) (*CustomerProfile, error) {
			ps, err := c.Profiles(ctx, []string{id})
			if p, ok := ps[id]; ok {
				return &p, err
			}
			return nil, err
		})
	})
	load(func(ctx context.Context) {
		v.Orders = section(ctx, o.Budget, func(ctx context.Context) (CustomerOrders, error) { return c.orders(ctx, p) })
	})
	load(func(ctx context.Context) {
		v.Touchpoints = section(ctx, o.Budget, func(ctx context.Context) (List[Touchpoint], error) { return c.touchpoints(ctx, p) })
	})
	load(func(ctx context.Context) {
		v.Tickets = section(ctx, o.Budget, func(ctx context.Context) (List[Ticket], error) { return c.tickets(ctx, p) })
	})
	load(func(ctx context.Context) {
		v.Surveys = section(ctx, o.Budget, func(ctx context.Context) (List[SurveyAnswer], error) { return c.surveys(ctx, p) })
	})
	load(func(ctx context.Context) {
		v.Consents = section(ctx, o.Budget, func(ctx context.Context) (CustomerConsents, error) { return c.consents(ctx, p) })
	})
	load(func(ctx context.Context) {
		v.Rewards = section(ctx, o.Budget, func(ctx context.Context) (CustomerRewards, error) { return c.rewards(ctx, p) })
	})
	load(func(ctx context.Context) {
		v.Values = section(ctx, o.Budget, func(ctx context.Context) (List[CustomerValue], error) { return c.values(ctx, id, o.Today, o.Limit) })
	})
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return v, nil
}

// ErrBudget marks a section that did not answer within its time budget.
var ErrBudget = errors.New("time budget exceeded")

// Within runs f with a budget; an f that does not return in time is abandoned (its context
// is cancelled) and reported as ErrBudget, whether or not it honours the cancellation.
func Within[T any](ctx context.Context, budget time.Duration, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, budget, ErrBudget)
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
	var a answer
	select {
	case a = <-ch:
	case <-ctx.Done():
		a.err = ctx.Err()
	}
	if a.err != nil && errors.Is(context.Cause(ctx), ErrBudget) {
		var zero T
		return zero, fmt.Errorf("no answer within %s: %w", budget, ErrBudget)
	}
	return a.v, a.err
}

func section[T any](ctx context.Context, budget time.Duration, f func(context.Context) (T, error)) Section[T] {
	v, err := Within(ctx, budget, f)
	return Section[T]{Data: v, Err: err}
}

// list runs the named query: a page of rows, each with its columns read into a T by dests,
// then the total count of rows, then any columns that repeat on every row (totals over all
// rows, read into extra).
func list[T any](ctx context.Context, c *Customers, name string, p clickhouse.Parameters, dests func(*T) []any, extra ...any) (List[T], error) {
	var out List[T]
	err := c.each(ctx, name, p, func(r driver.Rows) error {
		var (
			v     T
			total uint64
		)
		if err := r.Scan(append(append(dests(&v), &total), extra...)...); err != nil {
			return err
		}
		out.Total = int(total)
		out.Rows = append(out.Rows, v)
		return nil
	})
	return out, err
}

func (c *Customers) orders(ctx context.Context, p clickhouse.Parameters) (CustomerOrders, error) {
	var (
		out    CustomerOrders
		orders uint64
		err    error
	)
	out.List, err = list(ctx, c, "customer_orders", p, func(o *CustomerOrder) []any {
		return []any{&o.OrderedAt, &o.Source, &o.ID, &o.Status, &o.Channel, &o.Campaign, &o.Revenue, &o.Refund, &o.Currency}
	}, &orders, &out.Revenue, &out.Refund, &out.Currencies, &out.First, &out.Last)
	out.Orders = int(orders)
	if out.Orders == 0 {
		out.First, out.Last = time.Time{}, time.Time{}
	}
	return out, err
}

func (c *Customers) touchpoints(ctx context.Context, p clickhouse.Parameters) (List[Touchpoint], error) {
	return list(ctx, c, "customer_touchpoints", p, func(t *Touchpoint) []any {
		return []any{&t.OccurredAt, &t.Source, &t.Channel, &t.Campaign, &t.Kind, &t.UTMSource, &t.UTMMedium}
	})
}

func (c *Customers) tickets(ctx context.Context, p clickhouse.Parameters) (List[Ticket], error) {
	return list(ctx, c, "customer_tickets", p, func(t *Ticket) []any {
		return []any{&t.OpenedAt, &t.Source, &t.ID, &t.Channel, &t.Status, &t.StatusText, &t.Priority, &t.Topic, &t.FirstResponseAt, &t.ResolvedAt, &t.CSAT}
	})
}

func (c *Customers) surveys(ctx context.Context, p clickhouse.Parameters) (List[SurveyAnswer], error) {
	return list(ctx, c, "customer_surveys", p, func(s *SurveyAnswer) []any {
		return []any{&s.AnsweredAt, &s.Source, &s.Kind, &s.Score, &s.Topic, &s.Channel, &s.Comment, &s.TicketID}
	})
}

func (c *Customers) consents(ctx context.Context, p clickhouse.Parameters) (CustomerConsents, error) {
	var (
		out CustomerConsents
		err error
	)
	out.History, err = list(ctx, c, "customer_consents", p, func(s *Consent) []any {
		return []any{&s.RecordedAt, &s.Channel, &s.Purpose, &s.Granted, &s.SourceSystem, &s.Source}
	})
	if err != nil {
		return out, err
	}
	err = c.each(ctx, "customer_consent_state", clickhouse.Parameters{"id": p["id"]}, func(r driver.Rows) error {
		var s ConsentState
		if err := r.Scan(&s.Channel, &s.Purpose, &s.Granted, &s.Since, &s.SourceSystem); err != nil {
			return err
		}
		out.Current = append(out.Current, s)
		return nil
	})
	return out, err
}

func (c *Customers) rewards(ctx context.Context, p clickhouse.Parameters) (CustomerRewards, error) {
	var (
		out CustomerRewards
		err error
	)
	out.List, err = list(ctx, c, "customer_rewards", p, func(w *Reward) []any {
		return []any{&w.GrantedAt, &w.Source, &w.ID, &w.Kind, &w.Amount, &w.Currency, &w.Reason, &w.Campaign}
	}, &out.Amount, &out.Currencies)
	return out, err
}

// unitDays is the length of a fit's time unit in days.
func unitDays(unit string) float64 {
	if unit == "day" {
		return 1
	}
	return 7
}

// elapsedUnits is the time from the calibration end (its midnight, as T counts it) to today's
// UTC day, in unit; never negative.
func elapsedUnits(calibrationEnd, today time.Time, unit string) float64 {
	t := today.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return math.Max(0, day.Sub(calibrationEnd).Hours()/24/unitDays(unit))
}

func (c *Customers) values(ctx context.Context, id string, today time.Time, limit int) (List[CustomerValue], error) {
	var out List[CustomerValue]
	err := c.each(ctx, "customer_values", clickhouse.Parameters{"id": stringParam(id), "model": CLVModel, "limit": fmt.Sprint(limit)}, func(r driver.Rows) error {
		var (
			v       CustomerValue
			horizon uint16
			total   uint64
			hasFit  uint8
			m       BGNBD
		)
		if err := r.Scan(&v.AsOf, &v.CalibrationEnd, &v.Unit, &v.X, &v.Tx, &v.T, &v.ExpectedPurchases, &v.PAlive,
			&v.ExpectedSpend, &v.CLV, &v.Currency, &horizon, &total, &hasFit, &m.R, &m.Alpha, &m.A, &m.B); err != nil {
			return err
		}
		v.HorizonMonths, out.Total, v.Today = int(horizon), int(total), today
		if hasFit == 1 {
			p := m.PAlive(CLVCustomer{X: v.X, Tx: v.Tx, T: v.T + elapsedUnits(v.CalibrationEnd, today, v.Unit)})
			v.PAliveToday = &p
		}
		out.Rows = append(out.Rows, v)
		return nil
	})
	return out, err
}

// Snapshot reads the latest snapshot of CLVModel; ErrNoSnapshot when there is none.
func (c *Customers) Snapshot(ctx context.Context) (CLVSnapshot, error) {
	var (
		s     CLVSnapshot
		found bool
	)
	err := c.each(ctx, "customer_snapshot", clickhouse.Parameters{"model": CLVModel}, func(r driver.Rows) error {
		var (
			n       uint64
			horizon uint16
			hasFit  uint8
			m       BGNBD
		)
		if err := r.Scan(&s.AsOf, &s.CalibrationEnd, &s.Unit, &s.Currency, &n, &horizon, &hasFit, &m.R, &m.Alpha, &m.A, &m.B); err != nil {
			return err
		}
		found, s.Customers, s.HorizonMonths = true, int(n), int(horizon)
		if hasFit == 1 {
			s.Model = &m
		}
		return nil
	})
	if err == nil && !found {
		err = ErrNoSnapshot
	}
	return s, err
}

// BestCustomers are the limit customers with the highest predicted CLV in the latest snapshot.
func (c *Customers) BestCustomers(ctx context.Context, limit int) (*BestCustomers, error) {
	snap, err := c.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	out := &BestCustomers{Snapshot: snap}
	err = c.each(ctx, "customer_best", clickhouse.Parameters{"model": CLVModel, "as_of": snap.AsOf.Format(time.DateOnly),
		"limit": fmt.Sprint(clampLimit(limit, 20))}, func(r driver.Rows) error {
		var (
			rc    RankedCustomer
			x     float64
			total uint64
		)
		if err := r.Scan(&rc.ID, &rc.CLV, &rc.PAlive, &rc.ExpectedPurchases, &x, &total); err != nil {
			return err
		}
		rc.Purchases, out.Total = int(x)+1, int(total)
		out.Rows = append(out.Rows, rc)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, c.addProfiles(ctx, len(out.Rows), func(i int) *CustomerProfile { return &out.Rows[i].CustomerProfile })
}

// addProfiles fills the n profiles that at returns (each with its ID set) from the store.
func (c *Customers) addProfiles(ctx context.Context, n int, at func(int) *CustomerProfile) error {
	ids := make([]string, n)
	for i := range n {
		ids[i] = at(i).ID
	}
	ps, err := c.Profiles(ctx, ids)
	if err != nil {
		return err
	}
	for i := range n {
		if p, ok := ps[ids[i]]; ok {
			*at(i) = p
		}
	}
	return nil
}

// AtRisk are the best customers at risk, who to call today. In the latest snapshot of
// CLVModel, a customer is at risk when
//   - the predicted CLV is high: in the top fifth of the snapshot (AtRiskTopShare);
//   - P(alive) is falling: the customer bought again after the first purchase (before that,
//     BG/NBD gives P(alive) = 1), has not ordered since the calibration end, and P(alive) on
//     today's UTC day, carried forward with the snapshot's fitted BG/NBD parameters, is at
//     least AtRiskMinDrop (10 points) below P(alive) just after the last purchase.
//
// Highest CLV first, limit of them; Total counts all. The snapshot must have its parameters
// in clv_fits (written by `converge clv fit` since they are stored).
func (c *Customers) AtRisk(ctx context.Context, today time.Time, limit int) (*AtRiskCustomers, error) {
	snap, err := c.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	if snap.Model == nil {
		return nil, fmt.Errorf("the snapshot of %s has no stored model parameters: refit it with `converge clv fit --calibration-end %s`",
			snap.AsOf.Format(time.DateOnly), snap.CalibrationEnd.Format(time.DateOnly))
	}
	limit = clampLimit(limit, 20)
	out := &AtRiskCustomers{Snapshot: snap, Today: today}
	elapsed := elapsedUnits(snap.CalibrationEnd, today, snap.Unit)
	days := unitDays(snap.Unit)
	err = c.each(ctx, "customer_at_risk", clickhouse.Parameters{"model": CLVModel, "as_of": snap.AsOf.Format(time.DateOnly),
		"after": snap.CalibrationEnd.AddDate(0, 0, 1).Format(time.DateOnly) + " 00:00:00"}, func(r driver.Rows) error {
		var (
			a  AtRiskCustomer
			cc CLVCustomer
		)
		if err := r.Scan(&a.ID, &a.CLV, &a.PAlive, &a.ExpectedPurchases, &cc.X, &cc.Tx, &cc.T, &out.Threshold); err != nil {
			return err
		}
		a.PAliveAfterLast = snap.Model.PAlive(CLVCustomer{X: cc.X, Tx: cc.Tx, T: cc.Tx})
		a.PAliveToday = snap.Model.PAlive(CLVCustomer{X: cc.X, Tx: cc.Tx, T: cc.T + elapsed})
		if a.PAliveAfterLast-a.PAliveToday < AtRiskMinDrop {
			return nil
		}
		out.Total++
		if len(out.Rows) >= limit {
			return nil
		}
		a.Purchases = int(cc.X) + 1
		a.LastPurchase = snap.CalibrationEnd.AddDate(0, 0, -int(math.Round((cc.T-cc.Tx)*days)))
		a.UsualGapDays = cc.Tx / cc.X * days
		out.Rows = append(out.Rows, a)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, c.addProfiles(ctx, len(out.Rows), func(i int) *CustomerProfile { return &out.Rows[i].CustomerProfile })
}

// RFMSegment is a named group of RFM cells by recency score R and frequency score F (1–5,
// inclusive ranges), after the common R×F segmentation grid; the monetary score does not
// name a segment.
type RFMSegment struct {
	Name        string
	RMin, RMax  int
	FMin, FMax  int
	Description string
}

// RFMSegments cover each of the 25 R×F cells exactly once, best first.
var RFMSegments = []RFMSegment{
	{"Champions", 5, 5, 4, 5, "bought recently and often"},
	{"Loyal customers", 3, 4, 4, 5, "buy often, a while ago"},
	{"Potential loyalists", 4, 5, 2, 3, "recent, a few orders"},
	{"New customers", 5, 5, 1, 1, "recent first order"},
	{"Promising", 4, 4, 1, 1, "fairly recent, one order"},
	{"Need attention", 3, 3, 3, 3, "middle recency and frequency"},
	{"About to sleep", 3, 3, 1, 2, "few orders, fading"},
	{"Can't lose them", 1, 2, 5, 5, "bought most often, long ago"},
	{"At risk", 1, 2, 3, 4, "bought often, long ago"},
	{"Hibernating", 1, 2, 1, 2, "few orders, long ago"},
}

// RFMSegmentOf is the index in RFMSegments of the cell (r, f), or -1 outside 1–5.
func RFMSegmentOf(r, f int) int {
	for i, s := range RFMSegments {
		if r >= s.RMin && r <= s.RMax && f >= s.FMin && f <= s.FMax {
			return i
		}
	}
	return -1
}
