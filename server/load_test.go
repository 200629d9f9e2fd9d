package server

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/ingest/events"
	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// The load test: simulated users browse the dashboard of a real server (embedded store, the
// demo company) over loopback while events stream in through the events API. `make test` runs
// the short default; `make soak` a long one. Settings (environment):
//
//	CONVERGE_LOAD_USERS     simulated users, default 50
//	CONVERGE_LOAD_DURATION  how long they browse, default 30s
//	CONVERGE_LOAD_EVENTS    events per second posted meanwhile, default 100 (in 10 batches)
//	CONVERGE_LOAD_THINK     a user's mean pause between pages, default 1s
type loadSettings struct {
	users     int
	duration  time.Duration
	eventsSec int
	think     time.Duration
}

func loadSettingsFromEnv(t *testing.T) loadSettings {
	t.Helper()
	s := loadSettings{users: 50, duration: 30 * time.Second, eventsSec: 100, think: time.Second}
	if v := os.Getenv("CONVERGE_LOAD_USERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("CONVERGE_LOAD_USERS=%q: not a positive number", v)
		}
		s.users = n
	}
	for _, d := range []struct {
		env string
		to  *time.Duration
	}{{"CONVERGE_LOAD_DURATION", &s.duration}, {"CONVERGE_LOAD_THINK", &s.think}} {
		if v := os.Getenv(d.env); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil || x < 0 {
				t.Fatalf("%s=%q: not a duration", d.env, v)
			}
			*d.to = x
		}
	}
	if v := os.Getenv("CONVERGE_LOAD_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			t.Fatalf("CONVERGE_LOAD_EVENTS=%q: not a number", v)
		}
		s.eventsSec = n
	}
	return s
}

// demoCopy is a fresh database with the demo company's rows, so that a test may write to it
// (the shared demo store is read-only).
func demoCopy(t *testing.T) *warehouse.Store {
	t.Helper()
	src := demoStore(t)
	st := whtest.Store(t)
	ctx := context.Background()
	rows, err := src.Conn.Query(ctx, "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree' ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	if len(tables) < 10 {
		t.Fatalf("the demo store has %d tables", len(tables))
	}
	for _, tb := range tables {
		// Names from system.tables of the demo database, not from input; quoted.
		q := fmt.Sprintf("INSERT INTO `%s` SELECT * FROM `%s`.`%s`", tb, src.Database, tb)
		if err := st.Conn.Exec(ctx, q); err != nil {
			t.Fatalf("copy %s: %v", tb, err)
		}
	}
	return st
}

// loadPages are what a simulated user opens, with the filters it changes.
var (
	loadPages = []string{"/", "/", "/kpi/revenue_gross", "/kpi/new_customers", "/kpi/nps", "/kpi/churn_rate",
		"/channels", "/funnel", "/retention", "/customers", "/data"}
	loadRanges   = []string{"last_30_days", "quarter_to_date", "year_to_date", "last_year"}
	loadCompares = []string{"previous", "year", "none"}
	loadGrains   = []string{"", "week", "month"}
	tileErrorRe  = regexp.MustCompile(`class="tile-error"`)
)

// loadResult is what the users saw.
type loadResult struct {
	mu         sync.Mutex
	times      []time.Duration
	errors     []string
	tileErrors int
}

func (r *loadResult) add(d time.Duration, err string, tileErrs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.times = append(r.times, d)
	if err != "" && len(r.errors) < 20 {
		r.errors = append(r.errors, err)
	}
	r.tileErrors += tileErrs
}

func (r *loadResult) errorCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.errors)
}

// quantile of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// heapAfterGC is the live heap in bytes.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestLoad: N users browse for a fixed time while events stream in: no request fails (every
// answer 2xx or 3xx, no transport error), every acknowledged event is stored, and after the
// load the goroutines and the live heap are back near where they were.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	cfg := loadSettingsFromEnv(t)
	ctx := context.Background()
	st := demoCopy(t)
	acc, err := access.New(st, access.Config{Hash: fastHash}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const email, password = "load@example.com", "load-test-password-1"
	if _, err := acc.AddUser(ctx, "test", access.User{Email: email, Name: "Load", Role: access.RoleAnalyst}, password); err != nil {
		t.Fatal(err)
	}
	tokens := events.NewTokens(st, time.Minute)
	token, _, err := tokens.Create(ctx, "load", events.ScopeIngest, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	catalog := ingest.NewCatalog(st)
	tel := NewTelemetry(TelemetryConfig{Quarantine: catalog, Store: st})
	reg, err := metrics.New(ctx, metrics.Options{Store: st, OnQuery: tel.ObserveQuery})
	if err != nil {
		t.Fatal(err)
	}
	evs := events.New(st, tokens, events.Config{}, nil)
	evs.OnRecords = tel.ObserveIngest
	srv := New(Config{TZ: "UTC", WeekStart: time.Monday, TileTimeout: 8 * time.Second}, Deps{Store: st, Access: acc, Tokens: tokens,
		Events: evs, Data: catalog, Customers: metrics.NewCustomers(st), Telemetry: tel, Changes: NewBroadcaster(),
		Metrics: NewRegistryMetrics(reg, RegistryConfig{Currency: "EUR", WeekStart: time.Monday})})
	srv.now = func() time.Time { return whtest.DemoEnd.Add(36 * time.Hour) }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopServer := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Run(runCtx, ln) }()
	base := "http://" + ln.Addr().String()
	transport := &http.Transport{MaxIdleConnsPerHost: cfg.users + 4, IdleConnTimeout: time.Minute}

	// A user signs in through the form, then opens pages with random filters, pausing between.
	signIn := func() (*http.Client, error) {
		jar, _ := cookiejar.New(nil)
		cl := &http.Client{Jar: jar, Transport: transport, Timeout: 2 * time.Minute,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := cl.Get(base + "/login")
		if err != nil {
			return nil, err
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindSubmatch(page)
		if m == nil {
			return nil, fmt.Errorf("no form token on the sign-in page")
		}
		resp, err = cl.PostForm(base+"/login", url.Values{"email": {email}, "password": {password}, "csrf_token": {string(m[1])}})
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			return nil, fmt.Errorf("sign-in: %d", resp.StatusCode)
		}
		return cl, nil
	}
	open := func(cl *http.Client, res *loadResult, target string) {
		t0 := time.Now()
		resp, err := cl.Get(base + target)
		if err != nil {
			res.add(time.Since(t0), target+": "+err.Error(), 0)
			return
		}
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		switch {
		case rerr != nil:
			res.add(d, target+": reading: "+rerr.Error(), 0)
		case resp.StatusCode >= 400:
			res.add(d, fmt.Sprintf("%s: %d", target, resp.StatusCode), 0)
		default:
			res.add(d, "", len(tileErrorRe.FindAll(body, -1)))
		}
	}
	// Half the visits keep a page's default filters (what most people look at, shared through
	// the cache); the others change range, comparison and grain.
	target := func(r *rand.Rand) string {
		page := loadPages[r.IntN(len(loadPages))]
		if r.IntN(2) == 0 {
			return page
		}
		v := url.Values{"range": {loadRanges[r.IntN(len(loadRanges))]}, "compare": {loadCompares[r.IntN(len(loadCompares))]}}
		if g := loadGrains[r.IntN(len(loadGrains))]; g != "" {
			v.Set("grain", g)
		}
		return page + "?" + v.Encode()
	}

	// Warm up: every page once (the cold answers, the sessions and the events run exist), then
	// the baseline.
	warm, err := signIn()
	if err != nil {
		t.Fatal(err)
	}
	var warmRes loadResult
	for _, p := range slices.Compact(slices.Clone(loadPages)) {
		open(warm, &warmRes, p)
	}
	if len(warmRes.errors) > 0 {
		t.Fatalf("warm-up: %v", warmRes.errors)
	}
	var evID atomic.Int64
	post := func(cl *http.Client, n int) error {
		recs := make([]string, n)
		for i := range recs {
			id := evID.Add(1)
			recs[i] = fmt.Sprintf(`{"event_id":"load-%d","customer_id":"C%d","occurred_at":"2026-06-%02dT%02d:%02d:00Z","channel":"email","campaign":"load","kind":"open"}`,
				id, id%500, 1+id%29, id%24, id%60)
		}
		req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/events/touchpoints", strings.NewReader(strings.Join(recs, "\n")))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := cl.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("events: %d %s", resp.StatusCode, b)
		}
		return nil
	}
	evClient := &http.Client{Transport: transport, Timeout: time.Minute}
	if err := post(evClient, 1); err != nil {
		t.Fatal(err)
	}
	transport.CloseIdleConnections()
	time.Sleep(time.Second)
	goBefore, heapBefore := runtime.NumGoroutine(), heapAfterGC()

	// The load.
	var res loadResult
	deadline := time.Now().Add(cfg.duration)
	var wg sync.WaitGroup
	for u := range cfg.users {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(u), 7))
			cl, err := signIn()
			if err != nil {
				res.add(0, "sign-in: "+err.Error(), 0)
				return
			}
			for time.Now().Before(deadline) {
				open(cl, &res, target(r))
				if cfg.think > 0 {
					time.Sleep(time.Duration(float64(cfg.think) * (0.5 + r.Float64())))
				}
			}
		})
	}
	var evErrs []error
	var evMu sync.Mutex
	batches := 0
	if cfg.eventsSec > 0 {
		per := max(cfg.eventsSec/10, 1)
		tick := time.NewTicker(100 * time.Millisecond)
		var ewg sync.WaitGroup
		for time.Now().Before(deadline) {
			<-tick.C
			batches++
			ewg.Go(func() {
				if err := post(evClient, per); err != nil {
					evMu.Lock()
					evErrs = append(evErrs, err)
					evMu.Unlock()
				}
			})
		}
		tick.Stop()
		ewg.Wait()
	}
	wg.Wait()
	elapsed := cfg.duration

	// Settle: idle connections closed, goroutines back, heap after GC.
	transport.CloseIdleConnections()
	goAfter := runtime.NumGoroutine()
	for settle := time.Now().Add(15 * time.Second); goAfter > goBefore+5 && time.Now().Before(settle); goAfter = runtime.NumGoroutine() {
		time.Sleep(200 * time.Millisecond)
	}
	heapAfter := heapAfterGC()

	slices.Sort(res.times)
	n := len(res.times)
	t.Logf("load: %d users for %s (think %s): %d page loads (%.1f/s), %d errors, %d tile errors; page time p50 %s p95 %s p99 %s max %s",
		cfg.users, elapsed, cfg.think, n, float64(n)/elapsed.Seconds(), res.errorCount(), res.tileErrors,
		quantile(res.times, 0.5).Round(time.Millisecond), quantile(res.times, 0.95).Round(time.Millisecond),
		quantile(res.times, 0.99).Round(time.Millisecond), quantile(res.times, 1).Round(time.Millisecond))
	t.Logf("events: %d posted in %d batches, %d refused; goroutines %d before, %d after; heap %.1f MiB before, %.1f MiB after",
		evID.Load()-1, batches, len(evErrs), goBefore, goAfter, float64(heapBefore)/(1<<20), float64(heapAfter)/(1<<20))

	if len(res.errors) > 0 {
		t.Errorf("%d failed requests, e.g. %v", res.errorCount(), res.errors)
	}
	if len(evErrs) > 0 {
		t.Errorf("%d event batches refused, e.g. %v", len(evErrs), evErrs[0])
	}
	if n < cfg.users {
		t.Errorf("only %d page loads by %d users", n, cfg.users)
	}
	if goAfter > goBefore+5 {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines grew from %d to %d:\n%s", goBefore, goAfter, buf[:runtime.Stack(buf, true)])
	}
	if heapAfter > 2*heapBefore+128<<20 {
		t.Errorf("live heap grew from %.1f MiB to %.1f MiB", float64(heapBefore)/(1<<20), float64(heapAfter)/(1<<20))
	}
	// Every acknowledged event is stored, once.
	var stored uint64
	if err := st.Conn.QueryRow(ctx, "SELECT count() FROM touchpoints FINAL WHERE campaign = 'load'").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if want := uint64(evID.Load()); len(evErrs) == 0 && stored != want {
		t.Errorf("%d load events stored, %d acknowledged", stored, want)
	}

	stopServer()
	if err := <-served; err != nil {
		t.Errorf("server: %v", err)
	}
	evs.Close(context.Background())
}
