package server

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/converge-dev/converge/ingest"
)

// TestBrowserData opens the data page and the quarantine browser over a store with
// quarantined records (dataFixture) and the real metrics layer with an invalid user
// definition, follows the links between them, and saves screenshots.
func TestBrowserData(t *testing.T) {
	st, ids := dataFixture(t)
	s := asAdmin(New(Config{TZ: "Europe/Berlin", TileTimeout: time.Minute}, Deps{Store: okStore(), Metrics: catalogMetrics(t), Data: ingest.NewCatalog(st), Version: "test"}))
	base := serveOnLoopback(t, s)
	// The first catalog asks every custom metric for its shape: do it before the browser's
	// time limit starts.
	if rec := get(t, s, "/data"); rec.Code != 200 {
		t.Fatalf("/data: %d", rec.Code)
	}

	b := newBrowser(t, 1440, 1000)
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(b, chromedp.Evaluate[string](`document.querySelector(`+strconv.Quote(sel)+`).innerText`))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.Join(strings.Fields(s), " ")
	}
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(b, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	do("open /data", chromedp.Navigate(base+"/data"), chromedp.WaitVisible(chromedp.CSS(`#catalog table`)))
	if src := text(`#sources tbody`); !strings.Contains(src, "shop orders 10") || !strings.Contains(src, "Stale") || !strings.Contains(src, "Fresh") {
		t.Errorf("sources table: %q", src)
	}
	if runs := text(`#runs .pager-summary`); runs != "Showing 1–3 of 3 runs" {
		t.Errorf("runs summary %q", runs)
	}
	// A run's warnings are on its row: the column of the crm file that customers do not have.
	if row := text(`#run-` + ids[1]); !strings.Contains(row, "succeeded columns not in customers: nickname (ignored)") {
		t.Errorf("crm run row %q, want its warning under its status", row)
	}
	if bad := text(`#metric-broken_orders`); !strings.Contains(bad, "Invalid") || !strings.Contains(bad, "broken_orders.sql:4:") {
		t.Errorf("invalid definition row: %q", bad)
	}
	screenshot(t, b, "data")

	// Filter the runs with the form: the filter lands in the URL.
	do("filter failed runs", chromedp.SetValue(chromedp.CSS(`#runs select[name=status]`), "failed"),
		chromedp.Click(chromedp.CSS(`#runs button[type=submit]`)))
	if err := waitFor(b, `location.search.includes('status=failed') && document.querySelectorAll('#runs tbody tr').length === 1`); err != nil {
		t.Fatal(err)
	}
	if row := text(`#runs tbody tr`); !strings.Contains(row, "empty file") {
		t.Errorf("failed run row %q", row)
	}

	// From the shop source's rejected count to its records.
	do("back to all runs", chromedp.Navigate(base+"/data"), chromedp.WaitVisible(chromedp.CSS(`#sources table`)))
	do("open rejected records of shop", chromedp.Click(chromedp.CSS(`#sources a[href^="/data/quarantine?"]`)))
	if err := waitFor(b, `location.pathname === '/data/quarantine' && location.search.includes('source=shop')`); err != nil {
		t.Fatal(err)
	}
	if sum := text(`.pager-summary`); sum != "Showing 1–50 of 66 rejected records" {
		t.Errorf("quarantine summary %q", sum)
	}
	if raw := text(`.quarantine-table tbody tr:first-child pre.raw`); raw != "t0,c1,not a date 0,1,EUR" {
		t.Errorf("first raw record %q", raw)
	}
	if mono, err := chromedp.Run(b, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('pre.raw')).fontFamily`)); err != nil || !strings.Contains(mono, "mono") {
		t.Errorf("raw record font %q (%v), want monospace", mono, err)
	}
	screenshot(t, b, "quarantine")

	// The second page holds the record whose id is an HTML tag: shown as text.
	do("next page", chromedp.Click(chromedp.CSS(`.pager a[rel=next]`)))
	if err := waitFor(b, `location.search.includes('page=2')`); err != nil {
		t.Fatal(err)
	}
	if n, err := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll('main script').length`)); err != nil || n != 0 {
		t.Errorf("a raw record became markup: %d scripts (%v)", n, err)
	}
	if last := text(`.quarantine-table tbody tr:last-child`); !strings.Contains(last, "orders.csv:77") || !strings.Contains(last, "currency") {
		t.Errorf("last record %q", last)
	}

	// One reason code, on a tablet.
	do("tablet, one code", chromedp.EmulateViewport(820, 1180), chromedp.Navigate(base+"/data/quarantine?code=missing_field&run="+ids[0]),
		chromedp.WaitVisible(chromedp.CSS(`.quarantine-table`)))
	if sum := text(`.pager-summary`); sum != "Showing 1–5 of 5 rejected records" {
		t.Errorf("quarantine by code: %q", sum)
	}
	screenshot(t, b, "quarantine-tablet")
	do("tablet data page", chromedp.Navigate(base+"/data"), chromedp.WaitVisible(chromedp.CSS(`#catalog table`)))
	screenshot(t, b, "data-tablet")
}
