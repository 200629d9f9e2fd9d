package embedded

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// The bridge writes chunks straight from chDB's memory and keeps up to fetchAheadChunks of
// them: a chunk must stay as it was while later ones are fetched.
func TestStreamChunksStayValid(t *testing.T) {
	c, err := testEngine.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer testEngine.release(c)
	s, err := c.stream("SELECT number, toString(number) FROM numbers(200000) SETTINGS max_block_size = 1000", "Native", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.free()
	var held []chunk
	var copies [][]byte
	defer func() {
		for i := range held {
			held[i].free()
		}
	}()
	for {
		ch, err := s.next()
		if err != nil {
			t.Fatal(err)
		}
		if len(ch.b) == 0 {
			ch.free()
			break
		}
		held = append(held, ch)
		copies = append(copies, bytes.Clone(ch.b))
	}
	if len(held) < 50 {
		t.Fatalf("%d chunks, want one per block of 1,000 rows", len(held))
	}
	for i := range held {
		if !bytes.Equal(held[i].b, copies[i]) {
			t.Fatalf("chunk %d changed after later chunks were fetched", i)
		}
	}
}

// rawQuery posts sql to the bridge in-process with extra URL parameters and headers and
// returns the status, the headers and the whole body.
func rawQuery(t *testing.T, sql string, params url.Values, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	if params == nil {
		params = url.Values{}
	}
	params.Set("default_format", "Native")
	req, err := http.NewRequest(http.MethodPost, "http://embedded/?"+params.Encode(), strings.NewReader(sql))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := testEngine.RoundTripper().RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// A block larger than the request's limit is refused before it leaves chDB's memory: with an
// error status while nothing was sent, framed in the stream after; the connection then serves
// the next query right.
func TestBridgeBlockLimit(t *testing.T) {
	limit := map[string]string{BlockLimitHeader: strconv.Itoa(1 << 20)}
	cases := []struct {
		name, sql string
		params    url.Values
		status    int
		want      string
	}{
		{"first block streamed", "SELECT repeat('y', 100000) FROM numbers(100)", nil, 500,
			"a block of 10000"},
		{"materialised", "SELECT repeat('y', 100000) FROM numbers(100)", url.Values{"wait_end_of_query": {"1"}}, 500,
			"is larger than the limit of 1048576 bytes"},
		// 2,000 rows of 1 kB in blocks of 10 go out first (over the MiB held back before the
		// status), then a block of 10 rows of 200 kB.
		{"after the status", "SELECT repeat('y', if(number < 2000, 1000, 200000)) FROM numbers(2100)",
			url.Values{"max_block_size": {"10"}}, 200, "a block of 2000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, body := rawQuery(t, tc.sql, tc.params, limit)
			if status != tc.status {
				t.Fatalf("status %d, want %d (%s)", status, tc.status, body[:min(len(body), 300)])
			}
			tail := string(body[max(0, len(body)-400):])
			if !strings.Contains(tail, tc.want) || !strings.Contains(tail, "TOO_MANY_ROWS_OR_BYTES") {
				t.Errorf("body ends %q, want TOO_MANY_ROWS_OR_BYTES saying %q", tail, tc.want)
			}
			if tc.status != 200 && hdr.Get("X-ClickHouse-Exception-Code") != "396" {
				t.Errorf("exception code %q, want 396", hdr.Get("X-ClickHouse-Exception-Code"))
			}
			if tc.status == 200 && !strings.Contains(tail, "__exception__") {
				t.Errorf("a failure after the status must be framed as an exception: %q", tail)
			}
			if tc.name == "first block streamed" && !strings.Contains(tail, "(100 rows)") {
				t.Errorf("the message should name the block's rows: %q", tail)
			}
		})
	}
	// Below the limit the same query passes; every pooled connection still answers right.
	status, _, body := rawQuery(t, "SELECT repeat('y', 1000) FROM numbers(100)", nil, limit)
	if status != 200 || len(body) < 100*1000 {
		t.Fatalf("100 kB result under a 1 MiB limit: status %d, %d bytes", status, len(body))
	}
	conn := testDB(t)
	for i := range 8 {
		var n uint64
		if err := conn.QueryRow(context.Background(), "SELECT count() FROM numbers(7)").Scan(&n); err != nil || n != 7 {
			t.Fatalf("query %d after refused blocks: %d, %v", i, n, err)
		}
	}
}

// Without the header the engine's own limit holds; a header asking for more is ignored.
func TestBridgeBlockLimitDefault(t *testing.T) {
	req, _ := http.NewRequest(http.MethodPost, "http://embedded/", nil)
	if got := testEngine.blockLimit(req); got != DefaultMaxResultBlock {
		t.Errorf("no header: limit %d, want %d", got, DefaultMaxResultBlock)
	}
	req.Header.Set(BlockLimitHeader, strconv.Itoa(DefaultMaxResultBlock*4))
	if got := testEngine.blockLimit(req); got != DefaultMaxResultBlock {
		t.Errorf("header above the engine's limit: %d, want %d", got, DefaultMaxResultBlock)
	}
	req.Header.Set(BlockLimitHeader, "4096")
	if got := testEngine.blockLimit(req); got != 4096 {
		t.Errorf("header 4096: %d", got)
	}
}

// Queries run at the engine's default priority unless they ask for another, so that a query
// that asks for a lower one (the SQL console's) yields to them.
func TestDefaultPriority(t *testing.T) {
	conn := testDB(t)
	var p string
	if err := conn.QueryRow(context.Background(), "SELECT toString(getSetting('priority'))").Scan(&p); err != nil {
		t.Fatal(err)
	}
	if p != strconv.Itoa(DefaultPriority) {
		t.Errorf("priority %q, want %d", p, DefaultPriority)
	}
}
