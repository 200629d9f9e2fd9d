package server

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// cspWatch records, for the pages a browser opens, every Content-Security-Policy violation
// (the securitypolicyviolation events of each document, and the browser's console messages
// about the policy) and every uncaught script error.
type cspWatch struct {
	mu   sync.Mutex
	logs []string // console entries about the policy, and exceptions
}

// violationsJS collects each document's violations in window.__csp, before any of its scripts.
const violationsJS = `window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
  e.effectiveDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber + ' ' + (e.sample || '')));`

func watchCSP(t *testing.T, ctx context.Context) *cspWatch {
	t.Helper()
	w := &cspWatch{}
	if err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *log.EventEntryAdded:
			if e := ev.Entry; e != nil && (strings.Contains(e.Text, "Content Security Policy") || strings.Contains(e.Text, "Content-Security-Policy")) {
				msg = fmt.Sprintf("console %s: %s (%s)", e.Level, e.Text, e.URL)
			}
		case *runtime.EventExceptionThrown:
			if d := ev.ExceptionDetails; d != nil {
				msg = "exception: " + d.Text
				if d.Exception != nil {
					msg += " " + d.Exception.Description
				}
			}
		}
		if msg != "" {
			w.mu.Lock()
			w.logs = append(w.logs, msg)
			w.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: violationsJS}); err != nil {
		t.Fatal(err)
	}
	return w
}

// check fails the test for the violations and errors of the page open now, and of what the
// console reported since the last check.
func (w *cspWatch) check(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__csp || ['no violation recorder on this page']`))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	w.mu.Lock()
	got = append(got, w.logs...)
	w.logs = nil
	w.mu.Unlock()
	for _, v := range got {
		t.Errorf("%s: %s", what, v)
	}
}

// TestBrowserCSP opens every page in headless Chromium under the server's
// Content-Security-Policy and finds no violation and no script error: not on load, not when a
// chart shows its tooltip, a tile refreshes itself (htmx), a filter is removed, the SQL console
// runs a query or an error page is shown.
func TestBrowserCSP(t *testing.T) {
	st := demoStore(t)
	svc, err := access.New(whtest.Store(t), access.Config{Hash: fastHash}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := demoServer(t, Deps{Customers: metrics.NewCustomers(st), Data: ingest.NewCatalog(st), Reports: reportsOver(t, st), Access: svc, Version: "test"})
	base := serveOnLoopback(t, srv)
	id, _, _ := demoCustomer(t)
	// Warm the catalog (custom metrics' shapes) before the browser's time limit starts.
	if rec := get(t, srv, "/data"); rec.Code != http.StatusOK {
		t.Fatalf("/data: %d", rec.Code)
	}

	// A browser per step: each has newBrowser's time limit.
	var ctx context.Context
	var w *cspWatch
	fresh := func() {
		ctx = newBrowser(t, 1440, 1000)
		w = watchCSP(t, ctx)
	}
	chartsReady := `[...document.querySelectorAll('.chart[data-option]')].every(e => e.dataset.ready && e.querySelector('svg'))`
	open := func(path, ready string) {
		t.Helper()
		resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(base+path))
		if err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
		if csp := resp.Headers["Content-Security-Policy"]; !strings.Contains(fmt.Sprint(csp), "script-src 'self' 'nonce-") {
			t.Errorf("%s: Content-Security-Policy %q", path, csp)
		}
		if err := waitFor(ctx, `document.readyState === 'complete' && `+ready); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		w.check(t, ctx, path)
	}

	pages := []struct{ path, ready string }{
		{"/?range=last_year", chartsReady},
		{"/?range=last_year&view=4r", chartsReady},
		{"/kpi/revenue_gross?range=last_year&by=channel", chartsReady},
		{"/channels?range=last_year", chartsReady},
		{"/retention?range=last_year", chartsReady},
		{"/funnel?range=last_year", chartsReady},
		{"/customers", "true"},
		{"/customers/" + id, chartsReady},
		{"/data", "true"},
		{"/data/quarantine", "true"},
		{"/sql", "true"},
		{"/reports", "true"},
		{"/about", "true"},
		{"/admin/users", "true"},
		{"/admin/audit", "true"},
		{"/login", "true"},
		{"/no/such/page", "true"},
		{"/?range=nonsense", "true"},
	}
	for i, p := range pages {
		if i%3 == 0 { // a few pages per browser: its time limit holds on a loaded machine
			fresh()
		}
		open(p.path, p.ready)
	}

	// A chart's tooltip (ECharts draws it in the chart: no HTML with style attributes).
	fresh()
	open("/kpi/revenue_gross?range=last_year", chartsReady)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		const el = document.querySelector('.chart[data-option]');
		window.__texts = el.querySelectorAll('svg text').length;
		echarts.getInstanceByDom(el).dispatchAction({type: 'showTip', seriesIndex: 0, dataIndex: 1});
		return true; })()`)); err != nil {
		t.Fatal(err)
	}
	// The rich-text tooltip is drawn as SVG text in the chart.
	if err := waitFor(ctx, `document.querySelector('.chart[data-option]').querySelectorAll('svg text').length > window.__texts`); err != nil {
		t.Fatal(err)
	}
	w.check(t, ctx, "tooltip")

	// A live refresh: every tile fetches itself again (htmx) and is swapped in.
	fresh()
	open("/?range=last_year", chartsReady)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelectorAll('.tile .chart').forEach(e => e.dataset.stale = '1'), document.body.dispatchEvent(new CustomEvent('converge-data')), true`)); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, `![...document.querySelectorAll('.tile .chart')].some(e => e.dataset.stale) && `+chartsReady); err != nil {
		t.Fatal(err)
	}
	w.check(t, ctx, "tile refresh")

	// Removing a filter (a button of the filter form) lands on the view without it.
	fresh()
	open("/?range=last_year&f.channel=email&f.country=DE", chartsReady)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[name=drop][value=channel]`))); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, `location.search.includes('f.country=DE') && !location.search.includes('f.channel') && !location.search.includes('drop') && document.readyState === 'complete' && `+chartsReady); err != nil {
		t.Fatal(err)
	}
	w.check(t, ctx, "filter removed")

	// The SQL console runs a query and shows its rows.
	fresh()
	open("/sql", "true")
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS(`textarea[name=query]`), "SELECT number, toString(number) AS s FROM numbers(3)"),
		chromedp.Click(chromedp.CSS(`.console-form button[type=submit]:not([formaction])`))); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, `document.readyState === 'complete' && document.querySelectorAll('.console-table tbody tr').length === 3`); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("console: %v\n%s", err, regexp.MustCompile(`\s+`).ReplaceAllString(body, " "))
	}
	w.check(t, ctx, "console run")
}
