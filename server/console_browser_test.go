package server

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/export"
)

// pageText is the text of the first element sel selects, its spaces collapsed ("MISSING sel"
// when there is none). It reads in the page, not through DOM node ids, which a navigation
// invalidates.
func pageText(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector(`+strconv.Quote(sel)+`) || {textContent: 'MISSING `+sel+`'}).textContent`))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.Join(strings.Fields(s), " ")
}

// TestBrowserConsole: an analyst opens the SQL console, types a query, runs it and reads the
// rows with their types; the query then heads their history, and Run again runs it once more.
func TestBrowserConsole(t *testing.T) {
	_, reg, svc := exportFixture(t)
	svc.Console = export.Console{MaxRows: 1000, Timeout: 20 * time.Second}
	s := New(Config{TZ: "Europe/Berlin"}, Deps{Store: okStore(), Exports: svc, Version: "test",
		Metrics: NewRegistryMetrics(reg, RegistryConfig{Currency: "EUR", WeekStart: time.Monday})})
	s.testUser = &access.User{Email: "analyst@test", Role: access.RoleAnalyst}
	base := serveOnLoopback(t, s)
	ctx := newBrowser(t, 1280, 900)
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	textOf := func(sel string) string { t.Helper(); return pageText(t, ctx, sel) }

	run("open the console", chromedp.Navigate(base+"/sql"), chromedp.WaitVisible(chromedp.CSS(`#console-query`)))
	if s := textOf(`.console-rules`); !strings.Contains(s, "Read-only") || !strings.Contains(s, "INSERT") {
		t.Errorf("rules: %s", s)
	}
	query := "SELECT channel, count() AS orders, sum(revenue) AS revenue, min(ordered_at) AS first_order\n" +
		"FROM orders\nWHERE status = 'completed'\nGROUP BY channel\nORDER BY revenue DESC"
	run("type and run", chromedp.SendKeys(chromedp.CSS(`#console-query`), query), chromedp.Click(chromedp.CSS(`button.primary`)))
	if err := waitFor(ctx, `document.readyState === 'complete' && !!document.querySelector('.console-table tbody tr')`); err != nil {
		t.Fatal(err)
	}
	if s := textOf(`.result-summary`); !strings.HasPrefix(s, "4 rows in") {
		t.Errorf("summary %q", s)
	}
	if s := textOf(`.console-table thead`); !strings.Contains(s, "revenue Decimal(38, 4)") || !strings.Contains(s, "shown in Europe/Berlin") {
		t.Errorf("header %q", s)
	}
	// ads: p1 100, p3 50, o1 100, o2 50, o5 3000, o9 60 (o7 is cancelled); the first, p1, on
	// 10 Nov 2025 at 12:00 UTC.
	first, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelector('.console-table tbody tr').cells].map(c => c.textContent).join('|')`))
	if err != nil || first != "ads|6|3360|2025-11-10 13:00:00" {
		t.Errorf("first row %q (%v)", first, err)
	}
	screenshot(t, ctx, "console")

	if s := textOf(`.history-table tbody tr:first-child .query-cell`); !strings.HasPrefix(s, "SELECT channel, count()") {
		t.Errorf("history %q", s)
	}
	run("run again", chromedp.Click(chromedp.CSS(`.history-table tbody tr:first-child button`)))
	if err := waitFor(ctx, `document.querySelectorAll('.history-table tbody tr').length === 2`); err != nil {
		t.Fatal(err)
	}
}
