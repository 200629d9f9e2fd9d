package server

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/reports"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// withRuns is a reports service whose recorded runs are another service's.
type withRuns struct {
	*reports.Service
	runs *reports.Service
}

func (w withRuns) Runs(ctx context.Context, schedule string, limit int) ([]reports.Run, error) {
	return w.runs.Runs(ctx, schedule, limit)
}

// TestBrowserReports opens the reports page as an admin over the demo company, with runs
// recorded by a second service (one that succeeded, one whose folder is not a folder),
// checks that the form asks for the pack it names, and saves screenshots.
func TestBrowserReports(t *testing.T) {
	st := whtest.Store(t)
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	reg, err := metrics.New(context.Background(), metrics.Options{Store: st, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, folder := range []string{dir, notDir} {
		svc, err := reports.New(reg, st, reports.Config{Dir: folder, TZ: time.UTC, Currency: "EUR", Tries: 2, Backoff: time.Millisecond,
			Schedules: []reports.Schedule{{Name: "finance-pack", Cron: "0 6 1 * *", Report: reports.KindFinance}}}, reports.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.RunNow(context.Background(), "finance-pack", "ops"); err != nil {
			t.Fatal(err)
		}
	}
	runs, _ := reports.New(reg, st, reports.Config{}, reports.Options{})
	srv := demoServer(t, Deps{Reports: withRuns{reportsOver(t, demoStore(t)), runs}})
	base := serveOnLoopback(t, srv)

	b := newBrowser(t, 1440, 1000)
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(b, chromedp.Evaluate[string](`document.querySelector(`+strconv.Quote(sel)+`).innerText`))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.Join(strings.Fields(s), " ")
	}
	if err := chromedp.Do(b, chromedp.Navigate(base+"/reports"), chromedp.WaitVisible(chromedp.CSS(`form[action="/reports/finance-monthly"]`))); err != nil {
		t.Fatal(err)
	}
	if got := text(`select[name=month] option:checked`); got != "June 2026" {
		t.Errorf("preselected month %q", got)
	}
	if got := text(`main`); !strings.Contains(got, "make the file: reports.dir: mkdir") || !strings.Contains(got, "failed 2") {
		t.Errorf("the failed run is not shown: %.400s", got)
	}
	screenshot(t, b, "reports")
	// What the form asks for: May, as a workbook.
	q := `(async () => {
		const f = document.querySelector('form[action="/reports/finance-monthly"]');
		f.month.value = '2026-05';
		f.querySelector('input[value=xlsx]').checked = true;
		const url = f.action + '?' + new URLSearchParams(new FormData(f));
		const r = await fetch(url);
		return url.replace(location.origin, '') + ' ' + r.status + ' ' + r.headers.get('content-disposition');
	})()`
	got, err := chromedp.Run(b, chromedp.Evaluate[string](q, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if want := `/reports/finance-monthly?month=2026-05&format=xlsx 200 attachment; filename="finance-monthly_2026-05.xlsx"`; got != want {
		t.Errorf("the form's download: %q, want %q", got, want)
	}
	if err := chromedp.Do(b, chromedp.EmulateViewport(820, 1180), chromedp.Navigate(base+"/reports"),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/reports/finance-monthly"]`))); err != nil {
		t.Fatal(err)
	}
	screenshot(t, b, "reports-tablet")
}
