package server

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/converge-dev/converge/access"
)

// A person signs in through the sign-in page, sees the overview, and signs out.
func TestBrowserLogin(t *testing.T) {
	env := newAccessEnv(t, Config{TZ: "Europe/Berlin"}, access.Config{}, Deps{Version: "test"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- env.srv.Run(runCtx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	base := "http://" + ln.Addr().String()
	ctx := newBrowser(t, 1280, 800)
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector(`+strconv.Quote(sel)+`) || {}).textContent || ""`))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.Join(strings.Fields(s), " ")
	}

	// A KPI link opened without a session lands on the sign-in page, and after it on the KPI.
	run("open a KPI", chromedp.Navigate(base+"/kpi/cac?range=last_30_days"), chromedp.WaitVisible(chromedp.CSS(`#login-heading`)))
	if err := waitFor(ctx, `location.pathname === '/login' && location.search.includes('next=')`); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "login")

	run("wrong password", chromedp.SendKeys(chromedp.CSS(`#email`), "finance@test"), chromedp.SendKeys(chromedp.CSS(`#password`), "not my password"),
		chromedp.Click(chromedp.CSS(`button[type=submit].button`)), chromedp.WaitVisible(chromedp.CSS(`#login-error`)))
	if e := text(`#login-error`); e != "Wrong email or password." {
		t.Fatalf("error shown %q", e)
	}
	if v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#email').value`)); err != nil || v != "finance@test" {
		t.Errorf("the email is not kept after a failure: %q %v", v, err)
	}
	screenshot(t, ctx, "login-error")

	run("sign in", chromedp.SendKeys(chromedp.CSS(`#password`), "password-finance"), chromedp.Click(chromedp.CSS(`button[type=submit].button`)))
	if err := waitFor(ctx, `location.pathname === '/kpi/cac' && !!document.querySelector('.user-box')`); err != nil {
		t.Fatal(err)
	}
	if u := text(`.user-box`); !strings.Contains(u, "finance@test") || !strings.Contains(u, "finance") || !strings.Contains(u, "Sign out") {
		t.Errorf("user box %q", u)
	}
	// HttpOnly: scripts cannot read the session cookie.
	if c, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`)); err != nil || strings.Contains(c, sessionCookie) {
		t.Errorf("document.cookie %q shows the session (%v)", c, err)
	}

	run("overview", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`#tile-revenue .tile-value`)))
	if err := waitFor(ctx, `[...document.querySelectorAll('.chart[data-option]')].every(e => e.dataset.ready)`); err != nil {
		t.Fatal(err)
	}
	if h := text(`main h1`); h != "Overview" {
		t.Errorf("h1 %q", h)
	}
	if strings.Contains(text(`.site-nav`), "Admin") {
		t.Error("finance sees the Admin link")
	}
	screenshot(t, ctx, "login-overview")

	run("sign out", chromedp.Click(chromedp.CSS(`.user-box button`)), chromedp.WaitVisible(chromedp.CSS(`#login-heading`)))
	if n := text(`.login .notice`); n != "You are signed out." {
		t.Errorf("notice %q", n)
	}
	// The session is gone: the overview asks to sign in again.
	run("overview after sign-out", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`#login-heading`)))

	// An admin sees the administration pages.
	run("admin signs in", chromedp.SendKeys(chromedp.CSS(`#email`), "admin@test"), chromedp.SendKeys(chromedp.CSS(`#password`), "password-admin"),
		chromedp.Click(chromedp.CSS(`button[type=submit].button`)), chromedp.WaitVisible(chromedp.CSS(`.user-box`)))
	if err := waitFor(ctx, `!!document.querySelector('.site-nav a[href="/admin/users"]')`); err != nil {
		t.Fatal(err)
	}
	run("users page", chromedp.Navigate(base+"/admin/users"), chromedp.WaitVisible(chromedp.CSS(`table.users`)))
	run("add a user", chromedp.SendKeys(chromedp.CSS(`input[name=email][type=email]`), "cfo@test"),
		chromedp.SetValue(chromedp.CSS(`form[action="/admin/users"] select[name=role]`), "finance"),
		chromedp.Click(chromedp.CSS(`form[action="/admin/users"] button`)), chromedp.WaitVisible(chromedp.CSS(`code.secret`)))
	if rows := text(`table.users tbody`); !strings.Contains(rows, "cfo@test") {
		t.Errorf("users after adding: %q", rows)
	}
	screenshot(t, ctx, "admin-users")
	run("audit log", chromedp.Click(chromedp.CSS(`.view-switch a[href="/admin/audit"]`)), chromedp.WaitVisible(chromedp.CSS(`table.audit`)))
	if rows := text(`table.audit tbody`); !strings.Contains(rows, "user.create") || !strings.Contains(rows, "logout") || !strings.Contains(rows, "login.failure") {
		t.Errorf("audit log: %q", rows)
	}
	screenshot(t, ctx, "admin-audit")
}
