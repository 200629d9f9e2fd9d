package server

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// serveOnLoopback runs s on 127.0.0.1:0 until the test ends and returns its base URL.
func serveOnLoopback(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// The retention and funnel pages on the demo data: charts drawn, tables readable, shaded cells,
// print without the heatmap chart but with the shaded table.
func TestBrowserRetentionFunnel(t *testing.T) {
	base := serveOnLoopback(t, demoServer(t, Deps{Version: "test"}))
	ctx := newBrowser(t, 1440, 1000)
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return s
	}
	chartsReady := `[...document.querySelectorAll('.chart[data-option]')].every(e => e.dataset.ready && e.querySelector('svg'))`

	run("open retention", chromedp.Navigate(base+"/retention?range=last_year"), chromedp.WaitVisible(chromedp.CSS(`.cohort-matrix`)))
	if err := waitFor(ctx, chartsReady); err != nil {
		t.Fatal(err)
	}
	// The heatmap draws one rectangle per reached cell: 12 monthly cohorts of 2025 reach
	// 12 + 11 + … + 1 = 78 cells.
	if n := eval(`String(echarts.getInstanceByDom(document.getElementById('cohort-heatmap')).getOption().series[0].data.length)`); n != "78" {
		t.Errorf("heatmap cells %s, want 78", n)
	}
	// A dark cell has white text, a light one dark text.
	if got := eval(`getComputedStyle(document.querySelector('.cohort-matrix td.heat-10')).color`); got != "rgb(255, 255, 255)" {
		t.Errorf("text on a 100 %% cell %s, want white", got)
	}
	if got := eval(`getComputedStyle(document.querySelector('.cohort-matrix td.heat-2')).color`); got != "rgb(16, 21, 27)" {
		t.Errorf("text on a 20–30 %% cell %s, want dark", got)
	}
	screenshot(t, ctx, "retention")

	run("print media", chromedp.EmulateViewport(1100, 1400), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"})
		return err
	}), chromedp.Evaluate[chromedp.Void](`window.dispatchEvent(new Event('beforeprint'))`))
	if got := eval(`getComputedStyle(document.getElementById('cohort-heatmap')).display + ' ' + getComputedStyle(document.querySelector('.cohort-matrix td.heat-10')).backgroundColor`); got != "none rgb(22, 58, 108)" {
		t.Errorf("print: heatmap display and shaded cell %q, want the chart hidden and the cell shaded", got)
	}
	screenshot(t, ctx, "retention-print")
	run("screen media", chromedp.EmulateViewport(1440, 1000), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{})
		return err
	}))

	// The funnel, by following the navigation, then choosing a 60-day window.
	run("open funnel", chromedp.Click(chromedp.CSS(`.site-nav a[href="/funnel"]`)))
	if err := waitFor(ctx, `location.pathname === '/funnel' && document.readyState === 'complete' && !!document.querySelector('#funnel-overall')`); err != nil {
		t.Fatal(err)
	}
	run("pick 60 days", chromedp.Click(chromedp.CSS(`nav[aria-label="Window of each stage"] a[href*="window_days=60"]`)))
	if err := waitFor(ctx, `location.search.includes('window_days=60') && !!document.querySelector('#funnel-channels')`); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, chartsReady); err != nil {
		t.Fatal(err)
	}
	if w := eval(`document.querySelector('[data-window]').textContent`); w != "60 days" {
		t.Errorf("window %q", w)
	}
	// The funnel keeps the stage order: touchpoint first.
	if first := eval(`echarts.getInstanceByDom(document.getElementById('funnel-overall')).getOption().series[0].data[0].name`); first != "Marketing touchpoint" {
		t.Errorf("funnel's first stage %q", first)
	}
	// Changing the period keeps the window.
	run("pick year to date", chromedp.SetValue(chromedp.CSS(`select[name=range]`), "year_to_date"))
	if err := waitFor(ctx, `location.search.includes('range=year_to_date') && location.search.includes('window_days=60') && !!document.querySelector('#funnel-overall')`); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, chartsReady); err != nil {
		t.Fatal(err)
	}
	if rows := eval(`String(document.querySelectorAll('#funnel-channels ~ .table-wrap tbody tr').length)`); rows == "0" {
		t.Errorf("no channel rows")
	}
	if txt := eval(`document.querySelector('#funnel-overall ~ .table-wrap tbody').textContent`); !strings.Contains(txt, "Repeat order") {
		t.Errorf("funnel table %q", txt)
	}
	screenshot(t, ctx, "funnel")

	// A tablet.
	run("tablet", chromedp.EmulateViewport(820, 1180), chromedp.Navigate(base+"/retention?range=custom&from=2026-01-01&to=2026-06-30&grain=week"))
	if err := waitFor(ctx, chartsReady); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "retention-tablet")
}
