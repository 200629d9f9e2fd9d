package bench

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/server"
	"github.com/converge-dev/converge/static"
)

// year is the benchmark period: the twelve full months before the month of
// the data's last order.
func year(ctx context.Context, cfg *Config) (from, to time.Time, err error) {
	last, err := lastOrder(ctx, cfg)
	if err != nil {
		return from, to, err
	}
	from, to = yearBefore(last)
	return from, to, nil
}

// lastOrder is the time of the data's last order.
func lastOrder(ctx context.Context, cfg *Config) (time.Time, error) {
	var last time.Time
	if err := cfg.Store.Conn.QueryRow(ctx, "SELECT max(ordered_at) FROM orders").Scan(&last); err != nil {
		return last, err
	}
	if last.Year() < 2000 {
		return last, fmt.Errorf("the store has no orders: load `converge demo` first")
	}
	return last, nil
}

// yearBefore is the twelve full months before the month of last (year).
func yearBefore(last time.Time) (from, to time.Time) {
	to = time.Date(last.Year(), last.Month(), 1, 0, 0, 0, 0, time.UTC)
	return to.AddDate(-1, 0, 0), to
}

// tileErrRe finds a failed tile's message in the overview's HTML.
var tileErrRe = regexp.MustCompile(`(?s)<p class="tile-error" role="alert"><strong>Not available:</strong>(.*?)</p>`)

// replayCPU is replay that also says how many cores the process kept busy on average (its
// CPU time over the wall time).
func replayCPU(ctx context.Context, cfg *Config, stmts []metrics.Statement) (time.Duration, float64, error) {
	d, b, _, err := replayEach(ctx, cfg, stmts)
	return d, b, err
}

// replayEach is replayCPU that also sums the time by the metric each statement computes.
func replayEach(ctx context.Context, cfg *Config, stmts []metrics.Statement) (time.Duration, float64, map[string]float64, error) {
	c0 := cpuTime()
	t0 := time.Now()
	per := map[string]float64{}
	for _, s := range stmts {
		t := time.Now()
		if _, err := replay(ctx, cfg, []metrics.Statement{s}); err != nil {
			return 0, 0, nil, err
		}
		per[s.Metric] += msOf(time.Since(t))
	}
	d := time.Since(t0)
	return d, busy(cpuTime()-c0, d), per, nil
}

// slowest names the n metrics whose replayed statements took longest, by their median over
// the loads (ms).
func slowest(per []map[string]float64, n int) string {
	byName := map[string][]float64{}
	for _, m := range per {
		for k, v := range m {
			byName[k] = append(byName[k], v)
		}
	}
	type item struct {
		name string
		ms   float64
	}
	var items []item
	for k, v := range byName {
		if k == "" {
			k = "(unnamed)"
		}
		items = append(items, item{k, median(v)})
	}
	slices.SortFunc(items, func(a, b item) int { return cmp.Compare(b.ms, a.ms) })
	var parts []string
	for i, it := range items {
		if i == n {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.0f ms", it.name, it.ms))
	}
	return strings.Join(parts, ", ")
}

// busy is the average number of cores busy over wall time d given CPU time c.
func busy(c, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return c.Seconds() / d.Seconds()
}

// cpuTime is the process's user and system CPU time (the engine's threads included: it runs
// in this process); 0 where getrusage fails.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// replay runs stmts one after another, reading every row, and returns the time.
func replay(ctx context.Context, cfg *Config, stmts []metrics.Statement) (time.Duration, error) {
	t0 := time.Now()
	for _, s := range stmts {
		rows, err := cfg.Store.Conn.Query(clickhouse.Context(ctx, clickhouse.WithParameters(s.Args)), s.SQL)
		if err != nil {
			return 0, err
		}
		for rows.Next() {
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, err
		}
	}
	return time.Since(t0), nil
}

// recorder collects the statements of one traced call.
type recorder struct {
	mu    sync.Mutex
	stmts []metrics.Statement
}

func (r *recorder) ctx(ctx context.Context) context.Context {
	r.mu.Lock()
	r.stmts = r.stmts[:0]
	r.mu.Unlock()
	return metrics.WithTrace(ctx, func(s metrics.Statement) { r.mu.Lock(); r.stmts = append(r.stmts, s); r.mu.Unlock() })
}

// shortAnswers and maxSamples bound the extra cold answers of a quick metric (builtins).
const (
	shortAnswers = 3 * time.Second
	maxSamples   = 200
)

// builtins: every metric over the year at month grain: cold answers (a
// registry without result cache) vs their statements replayed one after
// another, and the cached answer. A metric is answered cold cfg.Cold times, and
// a quick one again until shortAnswers have gone by (at most maxSamples times):
// the medians of three answers of a few milliseconds are mostly noise.
func builtins(ctx context.Context, cfg *Config) ([]Result, error) {
	from, to, err := year(ctx, cfg)
	if err != nil {
		return nil, err
	}
	cold, err := metrics.New(ctx, metrics.Options{Store: cfg.Store, Lanes: cfg.Lanes, CacheTTL: -1})
	if err != nil {
		return nil, err
	}
	cached, err := metrics.New(ctx, metrics.Options{Store: cfg.Store, Lanes: cfg.Lanes})
	if err != nil {
		return nil, err
	}
	v := map[string][]string{"from": {from.Format(time.DateOnly)}, "to": {to.AddDate(0, 0, -1).Format(time.DateOnly)}, "grain": {"month"}}
	var out []Result
	for _, d := range cold.List() {
		if len(cfg.Metrics) > 0 && !slices.Contains(cfg.Metrics, d.Name) {
			continue
		}
		p, err := cold.ParseParams(d.Name, v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.Name, err)
		}
		if _, err := cold.Query(ctx, d.Name, p); err != nil { // definition checks, not timed
			return nil, fmt.Errorf("%s: %w", d.Name, err)
		}
		var rec recorder
		var q, raw []float64
		for began := time.Now(); len(q) < cfg.Cold || (time.Since(began) < shortAnswers && len(q) < maxSamples); {
			t0 := time.Now()
			if _, err := cold.Query(rec.ctx(ctx), d.Name, p); err != nil {
				return nil, fmt.Errorf("%s: %w", d.Name, err)
			}
			q = append(q, msOf(time.Since(t0)))
			r, err := replay(ctx, cfg, rec.stmts)
			if err != nil {
				return nil, fmt.Errorf("%s raw: %w", d.Name, err)
			}
			raw = append(raw, msOf(r))
		}
		if _, err := cached.Query(ctx, d.Name, p); err != nil {
			return nil, err
		}
		var c []float64
		for range 5 {
			t0 := time.Now()
			if _, err := cached.Query(ctx, d.Name, p); err != nil {
				return nil, err
			}
			c = append(c, msOf(time.Since(t0)))
		}
		qm, qp := quantiles(q)
		rm, _ := quantiles(raw)
		cm, _ := quantiles(c)
		out = append(out, Result{Group: "metric", Name: d.Name + " (" + string(d.Kind) + ")", Unit: "ms", Median: qm, P95: qp, Direct: rm, Ratio: qm / rm, N: len(q),
			Note: fmt.Sprintf("cached %.2f ms; %d statements", cm, len(rec.stmts))})
		cfg.Log.Info("bench: metric", "name", d.Name, "cold_ms", qm, "raw_ms", rm, "ratio", qm/rm, "cached_ms", cm)
	}
	return out, nil
}

// overview: the overview page served by the real server and metrics layer, in two views:
//   - over the year at month grain (the heaviest view an executive asks for): cfg.Cold cold
//     loads and cfg.Warm warm ones;
//   - as it opens, with no parameters (last 30 days at day grain, the clock set to the data's
//     last day): cfg.PageCold cold loads and cfg.Warm warm ones.
//
// A cold load has a fresh registry, so no answer is cached; each is followed by its
// statements replayed one after another. Also: bytes of the HTML and of the scripts it
// loads, and the process's memory after the loads and at its peak.
func overview(ctx context.Context, cfg *Config) ([]Result, error) {
	last, err := lastOrder(ctx, cfg)
	if err != nil {
		return nil, err
	}
	from, to := yearBefore(last)
	yearView := "/?range=custom&grain=month&from=" + from.Format(time.DateOnly) + "&to=" + to.AddDate(0, 0, -1).Format(time.DateOnly)
	y, err := pageLoads(ctx, cfg, yearView, time.Now, cfg.Cold)
	if err != nil {
		return nil, fmt.Errorf("overview over the year: %w", err)
	}
	opened := func() time.Time { return last }
	d, err := pageLoads(ctx, cfg, "/", opened, cfg.PageCold)
	if err != nil {
		return nil, fmt.Errorf("overview as it opens: %w", err)
	}
	js := scriptBytes(y.page)
	rss, hwm := memory()
	return []Result{
		y.coldResult("overview cold", "over the year at month grain"),
		{Group: "page", Name: "overview warm", Unit: "ms", Median: y.warmMedian, P95: y.warmP95, N: cfg.Warm, Note: "over the year at month grain"},
		d.coldResult("overview as opened, cold", "last 30 days to "+last.Format(time.DateOnly)+" at day grain"),
		{Group: "page", Name: "overview as opened, warm", Unit: "ms", Median: d.warmMedian, P95: d.warmP95, N: cfg.Warm},
		{Group: "page", Name: "overview HTML", Unit: "bytes", Median: float64(len(y.page)), N: 1, Note: fmt.Sprintf("scripts %d bytes; as opened %d bytes", js, len(d.page))},
		{Group: "memory", Name: "process RSS after the page loads", Unit: "MiB", Median: rss, N: 1, Note: fmt.Sprintf("peak %.0f MiB", hwm)},
	}, nil
}

// loaded is what pageLoads measured.
type loaded struct {
	cold, raw           []float64            // ms, per cold load and its statements replayed
	coldBusy, rawBusy   []float64            // cores busy on average during each
	perMetric           []map[string]float64 // per cold load: replayed ms by metric
	stmts               int                  // statements of the last cold load
	warmMedian, warmP95 float64
	page                string
}

func (l loaded) coldResult(name, view string) Result {
	cm, cp := quantiles(l.cold)
	rm, _ := quantiles(l.raw)
	note := fmt.Sprintf("%s; vs its %d statements one after another; cores busy %.2f, one after another %.2f of %d",
		view, l.stmts, median(l.coldBusy), median(l.rawBusy), runtime.NumCPU())
	if len(l.cold) <= 5 {
		note += "; each load " + loads(l.cold, l.raw)
	} else {
		r := make([]float64, len(l.cold))
		for i := range l.cold {
			r[i] = l.cold[i] / l.raw[i]
		}
		lo, hi := slices.Min(r), slices.Max(r)
		rq, rp := quantiles(r)
		note += fmt.Sprintf("; per-load ratio median %.2f, p95 %.2f, range %.2f–%.2f", rq, rp, lo, hi)
	}
	if s := slowest(l.perMetric, 5); s != "" {
		note += "; slowest statements by metric (median of the loads, one after another): " + s
	}
	return Result{Group: "page", Name: name, Unit: "ms", Median: cm, P95: cp, Direct: rm, Ratio: cm / rm, N: len(l.cold), Note: note}
}

// pageLoads loads target cold times (a fresh registry each, its statements replayed after
// it) and cfg.Warm times warm (one registry with its cache, after a first load), with the
// server's clock now.
func pageLoads(ctx context.Context, cfg *Config, target string, now func() time.Time, cold int) (loaded, error) {
	newServer := func(cacheTTL time.Duration) (*server.Server, error) {
		srv, _, err := pageServer(ctx, cfg, cacheTTL, now)
		return srv, err
	}
	load := func(srv *server.Server, rctx context.Context) (time.Duration, string, error) {
		return loadPage(rctx, srv, target)
	}
	var out loaded
	for i := range cold {
		srv, err := newServer(-1)
		if err != nil {
			return out, err
		}
		var rec recorder
		c0 := cpuTime()
		d, body, err := load(srv, rec.ctx(ctx))
		if err != nil {
			return out, err
		}
		cb := busy(cpuTime()-c0, d)
		r, rb, per, err := replayEach(ctx, cfg, rec.stmts)
		if err != nil {
			return out, err
		}
		out.perMetric = append(out.perMetric, per)
		out.cold, out.raw, out.page, out.stmts = append(out.cold, msOf(d)), append(out.raw, msOf(r)), body, len(rec.stmts)
		out.coldBusy, out.rawBusy = append(out.coldBusy, cb), append(out.rawBusy, rb)
		cfg.Log.Info("bench: cold load", "page", target, "n", i+1, "ms", msOf(d), "raw_ms", msOf(r), "cores_busy", cb, "raw_cores_busy", rb)
	}
	srv, err := newServer(time.Hour)
	if err != nil {
		return out, err
	}
	if _, _, err := load(srv, ctx); err != nil {
		return out, err
	}
	var warm []float64
	for range cfg.Warm {
		d, _, err := load(srv, ctx)
		if err != nil {
			return out, err
		}
		warm = append(warm, msOf(d))
	}
	out.warmMedian, out.warmP95 = quantiles(warm)
	return out, nil
}

// pageServer is the real server over a fresh metrics registry (result cache cacheTTL; -1:
// none) with the clock now, as serve builds it; the registry is returned too (the stream
// step runs its rollup upkeep).
func pageServer(ctx context.Context, cfg *Config, cacheTTL time.Duration, now func() time.Time) (*server.Server, *metrics.Registry, error) {
	reg, err := metrics.New(ctx, metrics.Options{Store: cfg.Store, Lanes: cfg.Lanes, CacheTTL: cacheTTL})
	if err != nil {
		return nil, nil, err
	}
	// Definitions are checked against the store once per version (a serving server has
	// done it before its first visitor): not part of a cold answer.
	if errs := reg.Check(ctx); len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	m := server.NewRegistryMetrics(reg, server.RegistryConfig{Currency: "EUR", WeekStart: time.Monday})
	if _, err := m.Catalog(ctx); err != nil {
		return nil, nil, err
	}
	return server.New(server.Config{TZ: "UTC", WeekStart: time.Monday, TileTimeout: time.Hour}, server.Deps{Store: cfg.Store, Metrics: m, Customers: metrics.NewCustomers(cfg.Store), Now: now}), reg, nil
}

// loadPage serves target in-process as the bench user and returns the server time and the
// HTML; a failed tile is an error naming it.
func loadPage(ctx context.Context, srv *server.Server, target string) (time.Duration, string, error) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequestWithContext(access.WithUser(ctx, benchUser), http.MethodGet, target, nil)
	t0 := time.Now()
	srv.Handler().ServeHTTP(rec, req)
	d := time.Since(t0)
	if rec.Code != http.StatusOK {
		return 0, "", fmt.Errorf("%s: status %d", target, rec.Code)
	}
	body := rec.Body.String()
	if errs := tileErrRe.FindAllStringSubmatch(body, -1); len(errs) > 0 {
		var msgs []string
		for _, e := range errs {
			msgs = append(msgs, html.UnescapeString(strings.TrimSpace(e[1])))
		}
		return 0, "", fmt.Errorf("%s: %d tiles failed: %s", target, len(errs), strings.Join(msgs, "; "))
	}
	return d, body, nil
}

// loads lists each cold load's time and its statements' (seconds): the first load of a run
// may not know yet which statements are heavy (metrics.Lanes).
func loads(cold, raw []float64) string {
	var parts []string
	for i := range cold {
		parts = append(parts, fmt.Sprintf("%.1f s vs %.1f s", cold[i]/1000, raw[i]/1000))
	}
	return strings.Join(parts, ", ")
}

// benchUser signs the in-process page loads in (as serve's warm-up does).
var benchUser = access.User{Email: "bench", Role: access.RoleAdmin}

var scriptSrc = regexp.MustCompile(`<script[^>]+src="([^"]+)"`)

// scriptBytes sums the sizes of the static scripts a page loads.
func scriptBytes(page string) int {
	n := 0
	for _, m := range scriptSrc.FindAllStringSubmatch(page, -1) {
		name, _, _ := strings.Cut(strings.TrimPrefix(m[1], static.Prefix), "?")
		if b, err := fs.ReadFile(static.FS(), name); err == nil {
			n += len(b)
		}
	}
	return n
}

// memoryAtRest: the process's resident memory with the store open.
func memoryAtRest(ctx context.Context, cfg *Config) ([]Result, error) {
	rss, _ := memory()
	return []Result{{Group: "memory", Name: "process RSS at rest (store open)", Unit: "MiB", Median: rss, N: 1}}, nil
}

// memory reads VmRSS and VmHWM of this process in MiB (0 where /proc is missing).
func memory() (rss, hwm float64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		switch k {
		case "VmRSS":
			rss = kb / 1024
		case "VmHWM":
			hwm = kb / 1024
		}
	}
	return rss, hwm
}
