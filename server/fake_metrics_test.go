package server

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"
)

// fakeMetrics implements Metrics with deterministic series: each bucket's value depends on its
// start day, so a different range gives different totals. It records the queries it receives.
type fakeMetrics struct {
	catalog    []MetricInfo
	catalogErr error
	fail       map[string]error // metric → error to return
	slow       map[string]bool  // metric → block until the context is done
	mu         sync.Mutex
	queries    map[string][]MetricQuery
	freshness  time.Time
}

func newFakeMetrics() *fakeMetrics {
	return &fakeMetrics{
		catalog: []MetricInfo{
			{Name: "revenue", Title: "Revenue", Description: "Net revenue of orders.", Owner: "CFO", Unit: "currency", Currency: "EUR",
				Polarity: "higher_is_better", Kind: "simple", Version: "v1", Formula: "sum(net_amount)", Dimensions: []string{"channel", "country"},
				Group4R: "Return", Sources: []string{"orders"}, Valid: true},
			{Name: "cac", Title: "Customer acquisition cost", Description: "Spend per new customer.", Owner: "CMO", Unit: "currency", Currency: "EUR",
				Polarity: "lower_is_better", Kind: "ratio", Version: "v2", Formula: "marketing_spend / new_customers", Dimensions: []string{"channel"},
				Group4R: "Return", Sources: []string{"marketing_spend", "orders"}, Valid: true},
			{Name: "new_customers", Title: "New customers", Description: "Customers with a first order.", Owner: "CMO", Unit: "count",
				Polarity: "higher_is_better", Kind: "simple", Version: "v1", Formula: "uniqExact(customer_id)", Dimensions: []string{"channel", "country"},
				Group4R: "Recognize", Sources: []string{"orders"}, Valid: true},
			{Name: "retention", Title: "Retention rate", Description: "Share of customers who order again.", Owner: "CCO", Unit: "percent",
				Polarity: "higher_is_better", Kind: "custom", Version: "v1", Group4R: "Relationship", Sources: []string{"orders"}, Valid: true},
			{Name: "nps", Title: "Net promoter score", Description: "Promoters minus detractors.", Owner: "CCO", Unit: "score",
				Polarity: "higher_is_better", Kind: "simple", Version: "v1", Formula: "100*(promoters-detractors)/responses", Group4R: "Relationship", Sources: []string{"survey_responses"}, Valid: true},
			{Name: "resolution_time", Title: "Time to resolution", Description: "Median hours to close a ticket.", Owner: "COO", Unit: "hours",
				Polarity: "lower_is_better", Kind: "simple", Version: "v1", Formula: "median(hours)", Dimensions: []string{"country"}, Group4R: "Relationship", Sources: []string{"tickets"}, Valid: true},
			{Name: "roas", Title: "ROAS", Description: "Revenue over ad spend.", Owner: "CMO", Unit: "ratio",
				Polarity: "higher_is_better", Kind: "ratio", Version: "v1", Formula: "revenue / marketing_spend", Dimensions: []string{"channel"}, Group4R: "Return", Sources: []string{"orders", "marketing_spend"}, Valid: true},
			{Name: "reach", Title: "Consented audience", Description: "Contacts with marketing consent.", Owner: "CMO", Unit: "count",
				Polarity: "higher_is_better", Kind: "simple", Version: "v1", Group4R: "Reach", Sources: []string{"consents"}, Valid: true},
			{Name: "broken", Title: "Broken", Owner: "CFO", Unit: "count", Valid: false, Error: "broken.sql line 3: unknown unit \"dollars\""},
		},
		fail:      map[string]error{},
		slow:      map[string]bool{},
		queries:   map[string][]MetricQuery{},
		freshness: time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC),
	}
}

func (f *fakeMetrics) Catalog(ctx context.Context) ([]MetricInfo, error) {
	if f.catalogErr != nil {
		return nil, f.catalogErr
	}
	return f.catalog, nil
}

// Definitions is the catalog: the fake has no table-shaped metrics.
func (f *fakeMetrics) Definitions(ctx context.Context) ([]MetricInfo, error) { return f.Catalog(ctx) }

// Table: the fake has no table-shaped metrics (pages built on tables are tested on the real
// metrics layer and a demo store).
func (f *fakeMetrics) Table(ctx context.Context, name string, q MetricQuery) (*MetricTable, error) {
	return nil, errors.New("fake metrics: no table-shaped metric " + name)
}

func (f *fakeMetrics) setFreshness(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.freshness = t
}

func (f *fakeMetrics) lastQuery(name string) (MetricQuery, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	qs := f.queries[name]
	if len(qs) == 0 {
		return MetricQuery{}, false
	}
	return qs[len(qs)-1], true
}

func (f *fakeMetrics) Query(ctx context.Context, name string, q MetricQuery) (*MetricResult, error) {
	f.mu.Lock()
	f.queries[name] = append(f.queries[name], q)
	fail, slow, fresh := f.fail[name], f.slow[name], f.freshness
	f.mu.Unlock()
	if slow {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if fail != nil {
		return nil, fail
	}
	var info MetricInfo
	for _, m := range f.catalog {
		if m.Name == name {
			info = m
		}
	}
	if info.Name == "" {
		return nil, errors.New("unknown metric " + name)
	}
	loc, err := time.LoadLocation(q.TZ)
	if err != nil {
		return nil, err
	}
	base := fakeBase(info)
	scale := 1.0
	for range q.Filters {
		scale *= 0.4
	}
	span := q.To.Sub(q.From)
	shift := func(t time.Time) time.Time {
		if q.Compare == "year" {
			return t.AddDate(-1, 0, 0)
		}
		return t.Add(-span)
	}
	keys := []string{""}
	shares := map[string]float64{"": 1}
	if q.By != "" {
		keys = []string{"", "email", "search", "social"}
		shares = map[string]float64{"": 1, "email": 0.5, "search": 0.3, "social": 0.2}
	}
	res := &MetricResult{Info: info, Freshness: fresh}
	additive := info.Unit == "currency" && info.Kind == "simple" || info.Unit == "count"
	for _, k := range keys {
		s := MetricSeries{Key: k}
		var sum, csum float64
		var n int
		for b := q.From.In(loc); b.Before(q.To); b = fakeNext(b, q.Grain) {
			v := fakeValue(base, b) * scale * shares[k]
			p := MetricPoint{Bucket: b, Value: ptr(v)}
			if q.Compare != "" {
				cv := fakeValue(base, shift(b)) * scale * shares[k]
				p.Compare = ptr(cv)
				csum += cv
			}
			if info.Name == "revenue" || info.Name == "cac" {
				p.Target = ptr(base * 1.05 * scale * shares[k])
			}
			sum += v
			n++
			s.Points = append(s.Points, p)
		}
		if k == "" && n > 0 {
			if additive {
				res.Total = ptr(sum)
				if q.Compare != "" {
					res.CompareTotal = ptr(csum)
				}
			} else {
				res.Total = ptr(sum / float64(n))
				if q.Compare != "" {
					res.CompareTotal = ptr(csum / float64(n))
				}
			}
			if info.Name == "revenue" || info.Name == "cac" {
				t := base * 1.05 * scale
				if additive {
					t *= float64(n)
				}
				res.Target = ptr(t)
			}
		}
		res.Series = append(res.Series, s)
	}
	return res, nil
}

func fakeBase(info MetricInfo) float64 {
	switch info.Name {
	case "revenue":
		return 48250
	case "cac":
		return 86.4
	case "new_customers":
		return 312
	case "retention":
		return 0.342
	case "nps":
		return 41
	case "resolution_time":
		return 7.5
	case "roas":
		return 3.2
	}
	return 1500
}

// fakeValue varies with the bucket's day, deterministically.
func fakeValue(base float64, t time.Time) float64 {
	day := float64(t.Unix() / 86400)
	return math.Round(base*(1+0.15*math.Sin(day/3)+0.05*math.Cos(day/17))*100) / 100
}

func fakeNext(t time.Time, grain string) time.Time {
	switch grain {
	case "week":
		return t.AddDate(0, 0, 7)
	case "month":
		return t.AddDate(0, 1, 0)
	case "quarter":
		return t.AddDate(0, 3, 0)
	case "year":
		return t.AddDate(1, 0, 0)
	}
	return t.AddDate(0, 0, 1)
}

func ptr(v float64) *float64 { return &v }

// fakeChanges implements Changes; Notify sends a change to every subscriber.
type fakeChanges struct {
	mu   sync.Mutex
	subs map[chan struct{}]bool
}

func (f *fakeChanges) Subscribe() (<-chan struct{}, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs == nil {
		f.subs = map[chan struct{}]bool{}
	}
	ch := make(chan struct{}, 1)
	f.subs[ch] = true
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs, ch)
	}
}

func (f *fakeChanges) Notify() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (f *fakeChanges) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// Explain: every fake metric reads raw rows (the real planner is tested on the real metrics
// layer, rollups_test.go).
func (f *fakeMetrics) Explain(ctx context.Context, name string, q MetricQuery) ([]MetricPath, error) {
	for _, m := range f.catalog {
		if m.Name == name {
			return []MetricPath{{Metric: name, Path: "raw", Tables: m.Sources, Reason: "fake metrics have no rollups"}}, nil
		}
	}
	return nil, errShown("unknown metric %q", name)
}

// Rollups: the fake has none.
func (f *fakeMetrics) Rollups(ctx context.Context) (RollupsReport, error) {
	return RollupsReport{}, nil
}
