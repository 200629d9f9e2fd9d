package server

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/views"
)

// customersServer is the demo server with the customer pages on the demo store.
func customersServer(t *testing.T) *Server {
	t.Helper()
	return demoServer(t, Deps{Customers: metrics.NewCustomers(demoStore(t))})
}

// demoCustomer is a demo customer known in the shop, the CRM and the help desk, with rewards
// and survey answers: the one with the most orders. It returns the canonical id and the CRM
// and help desk ids.
func demoCustomer(t *testing.T) (id, crm, helpdesk string) {
	t.Helper()
	err := demoStore(t).Conn.QueryRow(context.Background(), `
SELECT o.customer_id, anyIf(i.source_key, i.source = 'crm'), anyIf(i.source_key, i.source = 'helpdesk')
FROM (SELECT customer_id, count() AS n FROM orders_resolved GROUP BY customer_id) AS o
JOIN identities AS i FINAL ON i.customer_id = o.customer_id
WHERE o.customer_id IN (SELECT customer_id FROM rewards_resolved) AND o.customer_id IN (SELECT customer_id FROM survey_responses_resolved)
GROUP BY o.customer_id, o.n
HAVING countIf(i.source = 'crm') = 1 AND countIf(i.source = 'helpdesk') = 1
ORDER BY o.n DESC, o.customer_id
LIMIT 1`).Scan(&id, &crm, &helpdesk)
	if err != nil {
		t.Fatal(err)
	}
	return id, crm, helpdesk
}

// text is the page's visible text: tags removed, entities decoded, spaces collapsed.
func text(body string) string {
	body = regexp.MustCompile(`(?s)<script.*?</script>|<[^>]+>`).ReplaceAllString(body, " ")
	return strings.Join(strings.Fields(html.UnescapeString(body)), " ")
}

// section is the HTML of the page's section with id, or "" when there is none.
func section(body, id string) string {
	start := strings.Index(body, `<section class="card customer-section`)
	for start >= 0 {
		end := strings.Index(body[start:], "</section>")
		s := body[start : start+end]
		if strings.Contains(s, `id="`+id+`"`) {
			return s
		}
		next := strings.Index(body[start+end:], `<section class="card customer-section`)
		if next < 0 {
			break
		}
		start += end + next
	}
	return ""
}

func TestCustomersPageDemo(t *testing.T) {
	srv := customersServer(t)
	st := demoStore(t)
	ctx := context.Background()
	rec := get(t, srv, "/customers?range=last_year")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	if strings.Contains(body, "section-error") {
		t.Errorf("a widget failed: %s", text(body))
	}
	// Best by predicted CLV: the top customer of the snapshot, with its CLV.
	var topID string
	var topCLV float64
	var n uint64
	if err := st.Conn.QueryRow(ctx, `SELECT argMax(customer_id, clv), max(clv), count() FROM customer_value FINAL WHERE model = 'bgnbd_gg'`).Scan(&topID, &topCLV, &n); err != nil {
		t.Fatal(err)
	}
	best := text(section(body, "best-clv"))
	for _, want := range []string{topID, views.FormatValue(&topCLV, "currency", "EUR"), fmt.Sprintf("Showing 20 of %s customers of the snapshot", views.FormatNumber(float64(n), 0)),
		"Snapshot of 30 Jun 2026"} {
		if !strings.Contains(best, want) {
			t.Errorf("best customers lack %q: %s", want, best)
		}
	}
	if !strings.Contains(section(body, "best-clv"), `href="/customers/`+topID+`?range=last_year`) {
		t.Errorf("the best customer does not link to its 360 with the filters")
	}
	// RFM 555 as of the end of last year (31 Dec 2025): as many as the metric says.
	tbl, err := demoMetrics(t).Table(ctx, "rfm_best_customers", MetricQuery{From: day("2025-01-01", time.UTC), To: day("2026-01-01", time.UTC), Grain: "month", TZ: "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	champions := len(tbl.Rows)
	rfm := text(section(body, "rfm-555"))
	if champions < 21 || !strings.Contains(rfm, fmt.Sprintf("Showing 20 of %d 555 customers", champions)) || !strings.Contains(rfm, "As of the end of 31 Dec 2025") {
		t.Errorf("RFM 555 (%d customers): %s", champions, rfm)
	}
	// At risk: a definition, and rows that meet it.
	risk := text(section(body, "at-risk"))
	for _, want := range []string{"top 20% of the latest snapshot", "at least 10 points below P(alive) just after their last purchase", "customers at risk, highest CLV first", "days ago"} {
		if !strings.Contains(risk, want) {
			t.Errorf("at risk lacks %q: %s", want, risk)
		}
	}
	// Segments: every customer with an order before 2026 in exactly one segment.
	var customers uint64
	if err := st.Conn.QueryRow(ctx, `SELECT uniqExact(customer_id) FROM orders_resolved WHERE status != 'cancelled' AND customer_id != '' AND ordered_at < '2026-01-01'`).Scan(&customers); err != nil {
		t.Fatal(err)
	}
	seg := text(section(body, "rfm-segments"))
	for _, want := range []string{"Champions", "Hibernating", "Can't lose them", fmt.Sprintf("%s customers", views.FormatNumber(float64(customers), 0)), "All 10 segments"} {
		if !strings.Contains(seg, want) {
			t.Errorf("segments lack %q: %s", want, seg)
		}
	}
	if !strings.Contains(section(body, "rfm-segments"), `id="chart-rfm-segments"`) || !strings.Contains(section(body, "rfm-grid"), "R 5 (most recent)") {
		t.Errorf("segments chart or grid missing")
	}
	// The filter form keeps the search; the nav marks the page.
	if !strings.Contains(body, `<a href="/customers" aria-current="page">Customers</a>`) {
		t.Errorf("nav link not current")
	}
}

func TestCustomerSearchDemo(t *testing.T) {
	srv := customersServer(t)
	id, crm, helpdesk := demoCustomer(t)
	n, err := strconv.Atoi(strings.TrimPrefix(id, "C"))
	if err != nil {
		t.Fatalf("demo customer id %q is not C<number>", id)
	}
	for _, tc := range []struct{ name, q string }{
		{"e-mail", fmt.Sprintf("CUSTOMER%d@", n)},
		{"crm id", strings.ToUpper(crm)},
		{"help desk id", helpdesk},
		{"phone", fmt.Sprintf("0151 %04d %04d", n/10000%10000, n%10000)},
	} {
		rec := get(t, srv, "/customers?q="+url.QueryEscape(tc.q))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d", tc.name, rec.Code)
		}
		res := section(rec.Body.String(), "search-results")
		if !strings.Contains(res, `href="/customers/`+id+`?`) {
			t.Errorf("search by %s %q does not find %s: %s", tc.name, tc.q, id, text(res))
		}
	}
	// Pages: "example" is in every e-mail.
	var total uint64
	if err := demoStore(t).Conn.QueryRow(context.Background(), `SELECT uniqExact(customer_id) FROM customers_resolved WHERE positionCaseInsensitive(email, 'example') > 0`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	rec := get(t, srv, "/customers?q=example&page=2&range=last_year")
	body := rec.Body.String()
	res := text(section(body, "search-results"))
	pages := (int(total) + searchPageSize - 1) / searchPageSize
	if rec.Code != http.StatusOK || !strings.Contains(res, fmt.Sprintf("Showing 26–50 of %s matching customers", views.FormatNumber(float64(total), 0))) ||
		!strings.Contains(text(body), fmt.Sprintf("Page 2 of %d", pages)) {
		t.Errorf("page 2 (%d matches): %d %s", total, rec.Code, res)
	}
	for _, want := range []string{`href="/customers?q=example&amp;range=last_year&amp;tz=UTC" rel="prev"`, `href="/customers?page=3&amp;q=example&amp;range=last_year&amp;tz=UTC" rel="next"`,
		`<input type="hidden" name="range" value="last_year">`} {
		if !strings.Contains(body, want) {
			t.Errorf("page 2 lacks %s", want)
		}
	}
	// Past the last page: no rows, and it says so.
	rec = get(t, srv, fmt.Sprintf("/customers?q=example&page=%d", pages+1))
	if rec.Code != http.StatusOK || !strings.Contains(text(rec.Body.String()), fmt.Sprintf("Page %d is past the last page", pages+1)) {
		t.Errorf("past the last page: %d", rec.Code)
	}
	rec = get(t, srv, "/customers?q=no-such-person-anywhere")
	if !strings.Contains(text(rec.Body.String()), "No customer matches “no-such-person-anywhere”") {
		t.Errorf("no match not said")
	}
}

func TestCustomerParamsAndStatus(t *testing.T) {
	srv := customersServer(t)
	_, crm, _ := demoCustomer(t)
	id, _, _ := demoCustomer(t)
	for _, tc := range []struct {
		target string
		status int
		want   string
	}{
		{"/customers?page=0", http.StatusBadRequest, `Invalid value "0" for parameter "page": a page number from 1 to 10000.`},
		{"/customers?page=x&q=a", http.StatusBadRequest, `parameter "page"`},
		{"/customers?q=" + strings.Repeat("a", metrics.MaxSearchQuery+1), http.StatusBadRequest, `parameter "q"`},
		{"/customers?q=a%00b", http.StatusBadRequest, `parameter "q"`},
		{"/customers?tz=Mars/Base", http.StatusBadRequest, `parameter "tz"`},
		{"/customers/no-such-customer", http.StatusNotFound, `There is no customer "no-such-customer"`},
		{"/customers/" + id + "?tz=Nowhere", http.StatusBadRequest, `parameter "tz"`},
	} {
		rec := get(t, srv, tc.target)
		if rec.Code != tc.status || !strings.Contains(html.UnescapeString(rec.Body.String()), tc.want) {
			t.Errorf("%s: %d, want %d with %q", tc.target, rec.Code, tc.status, tc.want)
		}
	}
	// A source id redirects to its customer, keeping the view state.
	rec := get(t, srv, "/customers/"+crm+"?tz=Europe%2FBerlin")
	if rec.Code != http.StatusFound || rec.Header().Get("Location") != "/customers/"+id+"?tz=Europe%2FBerlin" {
		t.Errorf("crm id: %d to %q, want 302 to %s", rec.Code, rec.Header().Get("Location"), id)
	}
	// Without a customer source: 503.
	bare := demoServer(t, Deps{})
	for _, target := range []string{"/customers", "/customers/" + id} {
		if rec := get(t, bare, target); rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "not configured") {
			t.Errorf("%s without customers: %d", target, rec.Code)
		}
	}
}

func TestCustomer360Demo(t *testing.T) {
	srv := customersServer(t)
	st := demoStore(t)
	ctx := context.Background()
	id, crm, helpdesk := demoCustomer(t)
	rec := get(t, srv, "/customers/"+id+"?range=last_year&q=example")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	body := rec.Body.String()
	if strings.Contains(body, "section-error") {
		t.Errorf("a section failed: %s", text(body))
	}
	var (
		orders, touch, tickets, surveys, consents, rewards, nonCancelled uint64
		revenue                                                          float64
		email                                                            string
	)
	q := `SELECT (SELECT count() FROM orders_resolved WHERE customer_id = {id:String}),
	  (SELECT countIf(status != 'cancelled') FROM orders_resolved WHERE customer_id = {id:String}),
	  (SELECT sumIf(toFloat64(revenue), status != 'cancelled') FROM orders_resolved WHERE customer_id = {id:String}),
	  (SELECT count() FROM touchpoints_resolved WHERE customer_id = {id:String}),
	  (SELECT count() FROM tickets_resolved WHERE customer_id = {id:String}),
	  (SELECT count() FROM survey_responses_resolved WHERE customer_id = {id:String}),
	  (SELECT count() FROM consents_resolved WHERE customer_id = {id:String}),
	  (SELECT count() FROM rewards_resolved WHERE customer_id = {id:String}),
	  (SELECT email FROM customers_resolved WHERE customer_id = {id:String})`
	if err := st.Conn.QueryRow(withParams(ctx, "id", id), q).Scan(&orders, &nonCancelled, &revenue, &touch, &tickets, &surveys, &consents, &rewards, &email); err != nil {
		t.Fatal(err)
	}
	if orders <= profileListLen || touch <= profileListLen {
		t.Fatalf("%s has %d orders and %d touchpoints: pick a customer with more than %d", id, orders, touch, profileListLen)
	}
	showing := func(n, total uint64, one, many string) string {
		return views.Showing(int(min(n, total)), int(total), one, many, ", newest first")
	}
	for _, tc := range []struct{ section, want string }{
		{"identities", "crm " + crm + " email"},
		{"identities", "helpdesk " + helpdesk},
		{"identities", "Showing all 3 identities"},
		{"profile", "E-mail " + email},
		{"profile", "Known in crm, helpdesk, shop"},
		{"value", "Predicted CLV (12 months) €"},
		{"value", "P(alive) on 30 Jun 2026"},
		{"value", "P(alive) today, 1 Jul 2026"},
		{"value", "Snapshot of 30 Jun 2026"},
		{"orders", fmt.Sprintf("Orders (not cancelled) %d", nonCancelled)},
		{"orders", "Revenue " + views.FormatValue(&revenue, "currency", "EUR")},
		{"orders", showing(profileListLen, orders, "order", "orders")},
		{"touchpoints", showing(profileListLen, touch, "touchpoint", "touchpoints")},
		{"tickets", showing(profileListLen, tickets, "ticket", "tickets")},
		{"surveys", showing(profileListLen, surveys, "answer", "answers")},
		{"consent", "email marketing"},
		{"consent-history", showing(profileListLen, consents, "record", "records")},
		{"rewards", showing(profileListLen, rewards, "reward", "rewards")},
	} {
		if got := text(section(body, tc.section)); !strings.Contains(got, tc.want) {
			t.Errorf("section %s lacks %q: %s", tc.section, tc.want, got)
		}
	}
	for _, id := range []string{"orders", "touchpoints", "tickets", "surveys", "consent", "consent-history", "rewards", "identities"} {
		if strings.Count(section(body, id), "<tr>") < 2 {
			t.Errorf("section %s has no rows", id)
		}
	}
	if !strings.Contains(body, `<h1>`+email+`</h1>`) || !strings.Contains(body, `href="/customers?q=example&amp;range=last_year&amp;tz=UTC">Customers</a>`) {
		t.Errorf("heading or the way back to the search missing")
	}
	// Times in the report zone.
	rec = get(t, srv, "/customers/"+id+"?tz=Asia%2FTokyo")
	if !strings.Contains(rec.Body.String(), "Asia/Tokyo") || rec.Code != http.StatusOK {
		t.Errorf("tz: %d", rec.Code)
	}
}

// withParams binds query parameters name, value, ….
func withParams(ctx context.Context, kv ...string) context.Context {
	p := clickhouse.Parameters{}
	for i := 0; i+1 < len(kv); i += 2 {
		p[kv[i]] = kv[i+1]
	}
	return clickhouse.Context(ctx, clickhouse.WithParameters(p))
}

// failingCustomers wraps the real customers and fails some parts.
type failingCustomers struct {
	Customers
	slow bool // BestCustomers blocks until its budget ends
}

func (f failingCustomers) Profile360(ctx context.Context, id string, o metrics.Profile360Options) (*metrics.Customer360, error) {
	r, err := f.Customers.Profile360(ctx, id, o)
	if r != nil {
		r.Orders.Err = errors.New("orders are being rebuilt")
	}
	return r, err
}

func (f failingCustomers) AtRisk(ctx context.Context, today time.Time, limit int) (*metrics.AtRiskCustomers, error) {
	return nil, errors.New("at-risk query failed")
}

func (f failingCustomers) BestCustomers(ctx context.Context, limit int) (*metrics.BestCustomers, error) {
	if f.slow {
		<-ctx.Done()
		time.Sleep(200 * time.Millisecond) // past the budget, whatever the context says
	}
	return f.Customers.BestCustomers(ctx, limit)
}

// A failing or late widget shows its error; the rest of the page renders.
func TestCustomersFailingWidgets(t *testing.T) {
	inner := metrics.NewCustomers(demoStore(t))
	srv := demoServer(t, Deps{Customers: failingCustomers{Customers: inner}})
	id, _, _ := demoCustomer(t)
	rec := get(t, srv, "/customers/"+id)
	body := rec.Body.String()
	// The errors are logged under the page's request ID, shown at its foot, not shown.
	internal := "Not available: an internal error; it is in the server log under this page's request ID (at the foot of the page)."
	if rec.Code != http.StatusOK || !strings.Contains(text(section(body, "orders")), internal) || strings.Contains(body, "being rebuilt") ||
		!strings.Contains(body, `request ID <code class="request-id">`+rec.Header().Get(HeaderRequestID)+"</code>") ||
		strings.Count(section(body, "touchpoints"), "<tr>") < 2 {
		t.Errorf("360 with a failing section: %d %s", rec.Code, text(section(body, "orders")))
	}
	rec = get(t, srv, "/customers")
	body = rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(text(section(body, "at-risk")), internal) || strings.Contains(body, "at-risk query failed") ||
		strings.Count(section(body, "best-clv"), "<tr>") < 2 {
		t.Errorf("customers with a failing widget: %d %s", rec.Code, text(section(body, "at-risk")))
	}

	slow := asAdmin(New(Config{TZ: "UTC", TileTimeout: 100 * time.Millisecond}, Deps{Store: fakeStore{}, Customers: failingCustomers{Customers: inner, slow: true}}))
	slow.now = srv.now
	start := time.Now()
	rec = get(t, slow, "/customers")
	if rec.Code != http.StatusOK || !strings.Contains(text(section(rec.Body.String(), "best-clv")), "no answer within its time budget") || time.Since(start) > 5*time.Second {
		t.Errorf("late widget: %d after %v: %s", rec.Code, time.Since(start), text(section(rec.Body.String(), "best-clv")))
	}
	// Without a metrics layer the RFM widgets say so; the customer widgets still work.
	if s := text(section(rec.Body.String(), "rfm-555")); !strings.Contains(s, "metrics are not configured") {
		t.Errorf("RFM without metrics: %s", s)
	}
}

// ambiguousCustomers answers every 360 with a source id that two customers share.
type ambiguousCustomers struct{ Customers }

func (ambiguousCustomers) Profile360(ctx context.Context, id string, o metrics.Profile360Options) (*metrics.Customer360, error) {
	return nil, &metrics.AmbiguousError{Given: id, IDs: []string{"A1", "B2"}}
}

// A source id several customers share leads to the search for it.
func TestCustomerAmbiguousID(t *testing.T) {
	srv := asAdmin(New(Config{TZ: "UTC"}, Deps{Store: fakeStore{}, Customers: ambiguousCustomers{}}))
	rec := get(t, srv, "/customers/dup-7?range=last_year")
	if rec.Code != http.StatusFound || rec.Header().Get("Location") != "/customers?q=dup-7&range=last_year&tz=UTC" {
		t.Errorf("ambiguous id: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
}
