package access

import (
	"context"
	"testing"

	"github.com/converge-dev/converge/warehouse/whtest"
)

// TestSignInAfterAppDatabaseMove: users, sessions and the audit log written
// by a converge from before the app database (its tables in the main
// database) are where access reads them after the store is migrated: the
// same password signs in, the open session still holds, the audit log keeps
// its entries.
func TestSignInAfterAppDatabaseMove(t *testing.T) {
	ctx := context.Background()
	st := whtest.LegacyStore(t)
	// The converge of before: access on the main database.
	before := *st
	before.App = st.Conn
	old, err := New(&before, Config{Hash: testHash}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.AddUser(ctx, "cli", User{Email: "ann@example.com", Role: RoleAnalyst}, "a long password"); err != nil {
		t.Fatal(err)
	}
	sess, err := old.Login(ctx, "ann@example.com", "a long password", Client{IP: "10.0.0.1", UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}

	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	svc, err := New(st, Config{Hash: testHash}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Login(ctx, "ann@example.com", "a long password", Client{IP: "10.0.0.2"}); err != nil {
		t.Fatalf("sign-in after the move: %v", err)
	}
	if _, err := svc.Login(ctx, "ann@example.com", "a wrong password", Client{IP: "10.0.0.2"}); err == nil {
		t.Fatal("a wrong password signs in after the move")
	}
	if got, err := svc.Session(ctx, sess.ID); err != nil || got.User.Email != "ann@example.com" {
		t.Fatalf("the session opened before the move: %+v, %v", got, err)
	}
	entries, _, err := svc.AuditLog(ctx, AuditQuery{Actor: "ann@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	logins := 0
	for _, e := range entries {
		if e.Action == ActionLogin {
			logins++
		}
	}
	if logins != 2 {
		t.Fatalf("audit log after the move: %d sign-ins of ann, want 2 (one before, one after): %+v", logins, entries)
	}
}
