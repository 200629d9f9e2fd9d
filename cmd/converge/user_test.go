package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// runIn runs converge with in as its standard input.
func runIn(t *testing.T, ctx context.Context, in string, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(in))
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

func TestAuthConfigErrors(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"CONVERGE_AUTH_COOKIE_SECURE": "sometimes"}, "auth.cookie_secure"},
		{map[string]string{"CONVERGE_AUTH_SESSION_IDLE": "forever"}, "auth.session_idle"},
		{map[string]string{"CONVERGE_AUTH_SESSION_ABSOLUTE": "1000h"}, "absolute session timeout"},
		{map[string]string{"CONVERGE_AUTH_SESSION_IDLE": "3h", "CONVERGE_AUTH_SESSION_ABSOLUTE": "1h"}, "idle timeout"},
		{map[string]string{"CONVERGE_AUTH_PROXY_HEADER": "X-Email"}, "auth.trusted_proxies is empty"},
		{map[string]string{"CONVERGE_AUTH_TRUSTED_PROXIES": "10.0.0.1, proxy.local"}, `auth.trusted_proxies: "proxy.local"`},
		{map[string]string{"CONVERGE_AUTH_BOOTSTRAP_EMAIL": "admin"}, "auth.bootstrap_email"},
		{map[string]string{"CONVERGE_AUTH_LOGIN_FAILURES_PER_IP": "0"}, "auth.login_failures_per_ip"},
		{map[string]string{"CONVERGE_AUTH_LOGIN_WINDOW": "48h"}, "auth.login_window"},
	} {
		t.Run(c.want, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			_, err := run(t, context.Background(), "config", "keys")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
	out, err := run(t, context.Background(), "config", "keys")
	if err != nil || !strings.Contains(out, "CONVERGE_AUTH_SESSION_IDLE") || !strings.Contains(out, "admin@localhost") {
		t.Fatalf("config keys: %v\n%s", err, out)
	}
}

var csrfRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// signIn signs in through the sign-in page with a fresh cookie jar and returns the client
// (signed in on success), the final status and page.
func signIn(t *testing.T, base, email, password string) (*http.Client, int, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRe.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no form token on the sign-in page: %s", page)
	}
	resp, err = c.PostForm(base+"/login", url.Values{"email": {email}, "password": {password}, "csrf_token": {string(m[1])}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return c, resp.StatusCode, string(body)
}

// checkUsersWhileServing: the user commands reach the running server's store; the users they
// add sign in on its pages; every change is in the audit log.
func checkUsersWhileServing(t *testing.T, dir, addr string) {
	t.Helper()
	ctx := context.Background()
	base := "http://" + addr
	out, err := runIn(t, ctx, "a long password 1\n", "--data-dir", dir, "user", "add", "--email", "Ann@Example.com", "--role", "finance", "--name", "Ann")
	if err != nil || !strings.Contains(out, "user ann@example.com (finance) added") {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	for _, c := range []struct {
		in   string
		args []string
		want string
	}{
		{"a long password 1\n", []string{"user", "add", "--email", "bob@example.com", "--role", "viewer"}, `role "viewer" is not one of executive, finance, analyst, admin`},
		{"short\n", []string{"user", "add", "--email", "bob@example.com", "--role", "analyst"}, "use at least 10"},
		{"", []string{"user", "add", "--email", "bob@example.com", "--role", "analyst"}, "no password on stdin"},
		{"a long password 1\n", []string{"user", "add", "--email", "ann@example.com", "--role", "analyst"}, "exists already"},
		{"", []string{"user", "disable", "--email", "admin@localhost"}, "last enabled admin"},
	} {
		if _, err := runIn(t, ctx, c.in, append([]string{"--data-dir", dir}, c.args...)...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
	out, err = run(t, ctx, "--data-dir", dir, "user", "list")
	if err != nil || !regexp.MustCompile(`(?m)^admin@localhost\s+Administrator\s+admin\s+active`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^ann@example.com\s+Ann\s+finance\s+active`).MatchString(out) {
		t.Fatalf("user list: %v\n%s", err, out)
	}
	// Ann signs in on the dashboard.
	client, status, page := signIn(t, base, "ann@example.com", "a long password 1")
	if status != http.StatusOK || !strings.Contains(page, "ann@example.com") || !strings.Contains(page, "<h1>Overview</h1>") {
		t.Fatalf("sign-in: %d %.500s", status, page)
	}
	resp, err := client.Get(base + "/admin/users")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("finance on /admin/users: %d", resp.StatusCode)
	}
	// A new password; then disabled.
	if out, err := runIn(t, ctx, "another password 2\n", "--data-dir", dir, "user", "passwd", "--email", "ann@example.com"); err != nil {
		t.Fatalf("passwd: %v\n%s", err, out)
	}
	if _, status, _ := signIn(t, base, "ann@example.com", "a long password 1"); status != http.StatusUnauthorized {
		t.Fatalf("old password: %d", status)
	}
	if _, status, _ := signIn(t, base, "ann@example.com", "another password 2"); status != http.StatusOK {
		t.Fatalf("new password: %d", status)
	}
	if out, err := run(t, ctx, "--data-dir", dir, "user", "disable", "--email", "ann@example.com"); err != nil || !strings.Contains(out, "disabled") {
		t.Fatalf("disable: %v\n%s", err, out)
	}
	if _, status, page := signIn(t, base, "ann@example.com", "another password 2"); status != http.StatusForbidden || !strings.Contains(page, "disabled") {
		t.Fatalf("disabled user: %d", status)
	}
	out, err = run(t, ctx, "--data-dir", dir, "sql", "--format", "csv",
		"SELECT action, actor FROM converge_app.audit_log WHERE target = 'ann@example.com' ORDER BY at, action")
	want := "action,actor\nuser.create,cli\nlogin,ann@example.com\nuser.password,cli\nlogin.failure,ann@example.com\nlogin,ann@example.com\nuser.disable,cli\nlogin.failure,ann@example.com\n"
	if err != nil || out != want {
		t.Fatalf("audit log: %v\n%s\nwant\n%s", err, out, want)
	}
}
