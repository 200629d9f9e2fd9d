package events

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/converge-dev/converge/warehouse/whtest"
)

func TestMain(m *testing.M) { os.Exit(whtest.Main(m)) }

func TestTokens(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	tokens := NewTokens(st, time.Millisecond)
	full, tok, err := tokens.Create(ctx, "shop webhook", ScopeIngest, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(full, "cvg_"+tok.ID+"_") {
		t.Fatalf("token %q, id %q", full, tok.ID)
	}
	// Only the hash is stored.
	var stored string
	if err := st.App.QueryRow(ctx, "SELECT hash FROM api_tokens FINAL").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(full, stored) || len(stored) != 64 {
		t.Fatalf("stored %q", stored)
	}
	if id, err := tokens.Verify(ctx, full, ScopeIngest); err != nil || id != tok.ID {
		t.Fatalf("verify: %q %v", id, err)
	}
	bad := []string{"", "Bearer " + full, full[:len(full)-1] + "x", "cvg_000000000000_" + full[len(full)-43:]}
	for _, b := range bad {
		if _, err := tokens.Verify(ctx, b, ScopeIngest); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("Verify(%q) = %v, want unauthorized", b, err)
		}
	}
	if _, err := tokens.Verify(ctx, full, ScopeAdmin); !errors.Is(err, ErrUnauthorized) {
		t.Error("an ingest token passed as admin")
	}
	if _, _, err := tokens.Create(ctx, "x", "superuser", "test", nil); err == nil {
		t.Error("unknown scope accepted")
	}
	past := time.Now().Add(-time.Hour)
	expired, _, err := tokens.Create(ctx, "old", ScopeIngest, "test", &past)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.Verify(ctx, expired, ScopeIngest); !errors.Is(err, ErrUnauthorized) {
		t.Error("expired token accepted")
	}
	if err := tokens.Revoke(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	if _, err := tokens.Verify(ctx, full, ScopeIngest); !errors.Is(err, ErrUnauthorized) {
		t.Error("revoked token accepted")
	}
	list, err := tokens.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %v %v", list, err)
	}
}

// Made-up token ids are not remembered: presenting them cannot grow the cache without bound;
// a real token is cached and still verifies.
func TestTokensCacheOnlyKnown(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	tokens := NewTokens(st, time.Minute)
	full, _, err := tokens.Create(ctx, "shop", ScopeIngest, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := tokens.Verify(ctx, fmt.Sprintf("cvg_%012x_%s", i, strings.Repeat("a", 43)), ScopeIngest); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("made-up token %d: %v", i, err)
		}
	}
	if _, err := tokens.Verify(ctx, full, ScopeIngest); err != nil {
		t.Fatal(err)
	}
	tokens.mu.Lock()
	n := len(tokens.cache)
	tokens.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d tokens cached, want the 1 that exists", n)
	}
}
