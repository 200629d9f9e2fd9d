package server

import (
	"context"
	"net/http"
	"testing"

	"github.com/converge-dev/converge/access"
)

// The Authorization scheme is case-insensitive (RFC 9110 11.1, RFC 6750 2.1).
func TestBearerScheme(t *testing.T) {
	for h, want := range map[string]string{
		"Bearer abc": "abc", "bearer abc": "abc", "BEARER abc": "abc", "Bearer\tabc": "abc", " Bearer  abc ": "abc",
		"Basic abc": "", "Bearerabc": "", "abc": "", "": "", "Bearer": "", "Bearer  ": "",
	} {
		if got, ok := bearerToken(h); got != want || ok != (want != "") {
			t.Errorf("bearerToken(%q) = %q, %v, want %q", h, got, ok, want)
		}
	}
	env := newAccessEnv(t, Config{}, access.Config{}, Deps{Tokens: fakeTokens{"r": "read", "m": "metrics"}})
	for _, tc := range []struct {
		header, path string
		want         int
	}{
		{"bearer r", "/api/v1/metrics", http.StatusOK},
		{"BEARER r", "/api/v1/metrics", http.StatusOK},
		{"Bearer\tr", "/api/v1/metrics", http.StatusOK},
		{"bearer m", metricsPath, http.StatusOK},
		{"Basic r", "/api/v1/metrics", http.StatusUnauthorized},
		{"Bearerr", "/api/v1/metrics", http.StatusUnauthorized},
	} {
		rec := env.send(t, context.Background(), http.MethodGet, tc.path, nil, nil, http.Header{"Authorization": {tc.header}})
		if rec.Code != tc.want {
			t.Errorf("Authorization %q on %s: %d, want %d", tc.header, tc.path, rec.Code, tc.want)
		}
	}
}
