package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/converge-dev/converge/access"
)

func TestAdminUsers(t *testing.T) {
	env := newAccessEnv(t, Config{}, access.Config{}, Deps{})
	ctx := context.Background()
	adm := env.session(t, access.RoleAdmin)
	post := func(path string, form url.Values) (int, string) {
		form.Set(csrfField, adm.CSRFToken())
		rec := env.send(t, ctx, http.MethodPost, path, &adm, form, nil)
		return rec.Code, rec.Body.String()
	}
	rec := env.send(t, ctx, http.MethodGet, "/admin/users", &adm, nil, nil)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "4 users") || !strings.Contains(rec.Body.String(), `action="/admin/users/executive@test"`) {
		t.Fatalf("users page: %d %.500s", rec.Code, rec.Body.String())
	}
	for _, tc := range []struct {
		name, path string
		form       url.Values
		status     int
		want       string
	}{
		{"add with a password", "/admin/users", url.Values{"email": {"cfo@test"}, "name": {"Chief"}, "role": {"finance"}, "password": {"a good password"}}, 200, "Added cfo@test (finance)."},
		{"add generates a password", "/admin/users", url.Values{"email": {"coo@test"}, "role": {"executive"}}, 200, "is shown this once"},
		{"add twice", "/admin/users", url.Values{"email": {"CFO@test"}, "role": {"finance"}, "password": {"a good password"}}, 400, "exists already"},
		{"add a bad role", "/admin/users", url.Values{"email": {"x@test"}, "role": {"owner"}}, 400, `role &#34;owner&#34; is not one of`},
		{"add a bad email", "/admin/users", url.Values{"email": {"not-an-email"}, "role": {"finance"}}, 400, "is not an email address"},
		{"role change", "/admin/users/cfo@test", url.Values{"role": {"analyst"}}, 200, "cfo@test: role analyst."},
		{"disable", "/admin/users/cfo@test", url.Values{"disabled": {"true"}}, 200, "cfo@test: disabled."},
		{"enable", "/admin/users/cfo@test", url.Values{"disabled": {"false"}}, 200, "cfo@test: enabled."},
		{"bad disabled", "/admin/users/cfo@test", url.Values{"disabled": {"maybe"}}, 400, "not true or false"},
		{"nothing", "/admin/users/cfo@test", url.Values{}, 400, "Nothing to change"},
		{"last admin", "/admin/users/admin@test", url.Values{"role": {"finance"}}, 400, "last enabled admin"},
		{"unknown user", "/admin/users/ghost@test", url.Values{"disabled": {"true"}}, 404, "There is no user"},
	} {
		status, body := post(tc.path, tc.form)
		if status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d, want %d and %q in %.300s", tc.name, status, tc.status, tc.want, body[strings.Index(body, "<main"):])
		}
	}
	u, err := env.svc.User(ctx, "cfo@test")
	if err != nil || u.Role != access.RoleAnalyst || u.Disabled || u.Name != "Chief" {
		t.Fatalf("cfo after the changes: %+v %v", u, err)
	}
	entries, _, err := env.svc.AuditLog(ctx, access.AuditQuery{Target: "cfo@test"})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range entries {
		if e.Actor != "admin@test" || e.IP != "192.0.2.1" {
			t.Errorf("entry %+v: want actor admin@test from 192.0.2.1", e)
		}
		count[e.Action]++
	}
	if fmt.Sprint(count) != "map[user.create:1 user.disable:1 user.enable:1 user.role:1]" {
		t.Fatalf("audit of the changes: %v", count)
	}
}

func TestAdminAudit(t *testing.T) {
	env := newAccessEnv(t, Config{TZ: "Europe/Berlin"}, access.Config{}, Deps{})
	ctx := access.WithRequest(context.Background(), env.svc, "203.0.113.9")
	start := env.clock.Now()
	for i := range 60 {
		env.clock.Add(time.Minute)
		if err := env.svc.Audit(ctx, "ops@test", "export", fmt.Sprintf("metric_%02d", i), map[string]int{"rows": i}); err != nil {
			t.Fatal(err)
		}
	}
	adm := env.session(t, access.RoleAdmin)
	get := func(q string) (int, string) {
		rec := env.send(t, context.Background(), http.MethodGet, "/admin/audit"+q, &adm, nil, nil)
		return rec.Code, rec.Body.String()
	}
	loc, _ := time.LoadLocation("Europe/Berlin")
	newest := start.Add(60 * time.Minute).In(loc).Format("2006-01-02 15:04:05")
	for _, tc := range []struct {
		q    string
		want []string
		not  []string
	}{
		{"?action=export", []string{"Entries 1–50 of 60", newest, "metric_59", `{&#34;rows&#34;:59}`, "203.0.113.9", `href="/admin/audit?action=export&amp;page=2"`}, []string{"metric_09<", "← Newer"}},
		{"?action=export&page=2", []string{"Entries 51–60 of 60", "metric_09", "metric_00", "← Newer"}, []string{"metric_10<", "Older →"}},
		{"?target=METRIC_0", []string{"Entries 1–10 of 10"}, nil},
		{"?actor=nobody", []string{"No entries"}, nil},
		{"?from=" + start.Add(48*time.Hour).In(loc).Format("2006-01-02"), []string{"No entries"}, nil},
	} {
		status, body := get(tc.q)
		if status != http.StatusOK {
			t.Errorf("%s: %d", tc.q, status)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: no %q", tc.q, w)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(body, w) {
				t.Errorf("%s: %q shown", tc.q, w)
			}
		}
	}
	for _, q := range []string{"?from=yesterday", "?to=2026-13-01", "?page=0", "?page=x"} {
		if status, body := get(q); status != http.StatusBadRequest || !strings.Contains(body, "Invalid value") {
			t.Errorf("%s: %d", q, status)
		}
	}
}
