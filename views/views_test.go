package views

import (
	"context"
	"strings"
	"testing"

	"github.com/a-h/templ"
)

func render(t *testing.T, c templ.Component) string {
	t.Helper()
	var b strings.Builder
	if err := c.Render(context.Background(), &b); err != nil {
		t.Fatalf("render: %v", err)
	}
	return b.String()
}

func TestPages(t *testing.T) {
	page := Page{Version: "v9", StylesheetURL: "/static/css/app.css?v=abc", Nav: "home", RequestID: "req-1"}
	tests := []struct {
		name    string
		c       templ.Component
		want    []string
		notWant []string
	}{
		{
			name: "home",
			c:    Home(HomeView{Page: page, Name: "converge", Store: "embedded ./data", EngineVersion: "26.5.3.1"}),
			want: []string{"<!doctype html>", `<html lang="en">`, "<title>converge</title>", `href="/static/css/app.css?v=abc"`,
				"embedded ./data", "ClickHouse 26.5.3.1", "converge v9", `aria-current="page"`},
			notWant: []string{"Unavailable", "Request ID"},
		},
		{
			name:    "home with engine error",
			c:       Home(HomeView{Page: page, Name: "converge", Store: "s", EngineError: "timeout"}),
			want:    []string{"Unavailable: timeout"},
			notWant: []string{"ClickHouse "},
		},
		{
			name:    "error",
			c:       Error(ErrorView{Page: Page{Title: "Not Found", RequestID: "req-1"}, Status: 404, Heading: "Page not found", Message: "No <page>."}),
			want:    []string{"<title>Not Found · converge</title>", "404", "Page not found", "No &lt;page&gt;.", "req-1"},
			notWant: []string{`aria-current`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			html := render(t, tt.c)
			for _, w := range tt.want {
				if !strings.Contains(strings.ToLower(html), strings.ToLower(w)) {
					t.Errorf("lacks %q in:\n%s", w, html)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(html, w) {
					t.Errorf("contains %q", w)
				}
			}
		})
	}
}
