package warehouse_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/converge-dev/converge/warehouse/whtest"
)

// The embedded store reuses a DataVersion answer only while nothing has
// written: an insert through the client, straight into the engine, or
// through the engine's HTTP endpoint (analysts' tools) is seen at once.
func TestDataVersionSeesEveryWrite(t *testing.T) {
	ctx := context.Background()
	s := whtest.Store(t)
	tables := []string{"orders"}
	rowsNow := func(what string) uint64 {
		t.Helper()
		_, rows, _, err := s.DataVersion(ctx, tables)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return rows
	}
	if n := rowsNow("empty"); n != 0 {
		t.Fatalf("empty store: %d rows", n)
	}
	w := s.Engine.Writes()
	var n uint64
	if err := s.Conn.QueryRow(ctx, "SELECT count() FROM orders").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if got := s.Engine.Writes(); got != w {
		t.Fatalf("a SELECT counted as a write: %d → %d", w, got)
	}
	insert := "INSERT INTO " + s.Database + ".orders (order_id, ordered_at, revenue, currency, source) VALUES ('%s', now64(3), 1, 'EUR', 'x')"

	if err := s.Conn.Exec(ctx, fmt.Sprintf(insert, "client")); err != nil {
		t.Fatal(err)
	}
	if got := s.Engine.Writes(); got != w+2 {
		t.Fatalf("an INSERT: writes %d → %d, want +2 (its start and its end)", w, got)
	}
	if n := rowsNow("after the client's insert"); n != 1 {
		t.Fatalf("after the client's insert: %d rows, want 1", n)
	}

	if _, err := s.Engine.Query(ctx, fmt.Sprintf(insert, "engine"), "TabSeparated"); err != nil {
		t.Fatal(err)
	}
	if n := rowsNow("after an insert straight into the engine"); n != 2 {
		t.Fatalf("after an insert straight into the engine: %d rows, want 2", n)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Engine.Serve(sctx, ln, "pw") }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	req, err := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/?"+url.Values{"password": {"pw"}}.Encode(),
		strings.NewReader(fmt.Sprintf(insert, "endpoint")))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("insert through the endpoint: status %d", resp.StatusCode)
	}
	if n := rowsNow("after an insert through the endpoint"); n != 3 {
		t.Fatalf("after an insert through the endpoint: %d rows, want 3", n)
	}
	if err := s.Conn.Exec(ctx, "TRUNCATE TABLE orders"); err != nil {
		t.Fatal(err)
	}
	if n := rowsNow("after TRUNCATE"); n != 0 {
		t.Fatalf("after TRUNCATE: %d rows, want 0", n)
	}
}
