package server

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// TestBrowserCustomers: open /customers on the demo company, search for a customer by CRM id,
// follow the result to the customer 360; then the 360 without JavaScript.
func TestBrowserCustomers(t *testing.T) {
	srv := customersServer(t)
	id, crm, _ := demoCustomer(t)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	ctx := newBrowser(t, 1440, 1000) // closed before the server (cleanups run last-in first-out)
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	textOf := func(sel string) string { t.Helper(); return pageText(t, ctx, sel) }

	run("open customers", chromedp.Navigate(ts.URL+"/customers?range=last_year"), chromedp.WaitVisible(chromedp.CSS(`#best-clv table`)))
	if err := waitFor(ctx, `!!document.querySelector('#chart-rfm-segments[data-ready] svg')`); err != nil {
		t.Fatalf("segments chart not drawn: %v", err)
	}
	if s := textOf(`#at-risk`); !strings.Contains(s, "customers at risk") {
		t.Errorf("at-risk widget: %s", s)
	}
	screenshot(t, ctx, "customers")

	// Search by the CRM id, in capitals: the form is a plain GET form.
	run("search", chromedp.SendKeys(chromedp.CSS(`#customer-q`), strings.ToUpper(crm)), chromedp.Submit(chromedp.CSS(`#customer-q`)))
	if err := waitFor(ctx, `location.search.includes('q=') && document.readyState === 'complete' && !!document.querySelector('#search-results table') &&
		!!document.querySelector('#chart-rfm-segments[data-ready] svg')`); err != nil {
		t.Fatal(err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(loc, "range=last_year") {
		t.Errorf("the search lost the period: %s", loc)
	}
	if s := textOf(`#search-results`); !strings.Contains(s, id) || !strings.Contains(s, "exact match") {
		t.Errorf("results: %s", s)
	}
	screenshot(t, ctx, "customers-search")

	// Follow the result to the 360.
	run("open the customer", chromedp.Click(chromedp.CSS(`#search-results tbody a`)))
	if err := waitFor(ctx, `location.pathname === '/customers/`+id+`' && document.readyState === 'complete' && !!document.querySelector('#orders table')`); err != nil {
		t.Fatal(err)
	}
	for _, sel := range []string{"#identities", "#profile", "#value", "#orders", "#touchpoints", "#tickets", "#surveys", "#consent", "#consent-history", "#rewards"} {
		if s := textOf(sel); strings.Contains(s, "Not available") {
			t.Errorf("%s failed: %s", sel, s)
		}
	}
	if s := textOf(`#orders .showing`); !strings.HasPrefix(s, "Showing 50 of ") {
		t.Errorf("orders: %q", s)
	}
	screenshot(t, ctx, "customer-360")

	// A tablet, then without JavaScript: the same tables.
	run("tablet", chromedp.EmulateViewport(820, 1180), chromedp.Navigate(ts.URL+"/customers?range=last_year"), chromedp.WaitVisible(chromedp.CSS(`#best-clv table`)))
	screenshot(t, ctx, "customers-tablet")
	run("no JavaScript", chromedp.EmulateViewport(1280, 900), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	}), chromedp.Navigate(ts.URL+"/customers?range=last_year"), chromedp.WaitVisible(chromedp.CSS(`#rfm-segments table`)))
	if s := textOf(`#rfm-segments .chart-table`); !strings.Contains(s, "Champions") {
		t.Errorf("no-JS segment table: %s", s)
	}
	screenshot(t, ctx, "customers-nojs")
}
