package embedded

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The bridge on a loopback listener, as analysts' HTTP tools (curl,
// DBeaver, clickhouse-connect, Grafana) use it.
func TestHTTPListener(t *testing.T) {
	conn := testDB(t)
	ctx := context.Background()
	if err := conn.Exec(ctx, "CREATE TABLE kv (k String, v UInt32) ENGINE = MergeTree ORDER BY k"); err != nil {
		t.Fatal(err)
	}
	var dbName string
	if err := conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&dbName); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- testEngine.Serve(sctx, ln, "s3cret") }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + ln.Addr().String()

	do := func(method, path string, body io.Reader, hdr map[string]string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("default", "s3cret")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	q := func(sql string, extra ...string) string {
		v := url.Values{"query": {sql}, "database": {dbName}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return "/?" + v.Encode()
	}

	if code, _, body := do("GET", "/ping", nil, nil); code != 200 || body != "Ok.\n" {
		t.Fatalf("ping: %d %q", code, body)
	}
	// Insert CSV with the query in the URL and the data in the body.
	if code, _, body := do("POST", q("INSERT INTO kv FORMAT CSV"), strings.NewReader("a,1\nb,2\n"), nil); code != 200 {
		t.Fatalf("insert: %d %s", code, body)
	}
	// Query and data in the body together.
	if code, _, body := do("POST", "/?database="+dbName, strings.NewReader("INSERT INTO kv FORMAT TSV\nc\t3\n"), nil); code != 200 {
		t.Fatalf("insert in body: %d %s", code, body)
	}
	// A gzip-compressed body.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("d,4\n"))
	zw.Close()
	if code, _, body := do("POST", q("INSERT INTO kv FORMAT CSV"), &gz, map[string]string{"Content-Encoding": "gzip"}); code != 200 {
		t.Fatalf("gzip insert: %d %s", code, body)
	}
	// GET with a server-side parameter and a setting.
	code, hdr, body := do("GET", q("SELECT k, v FROM kv WHERE v >= {min:UInt32} ORDER BY k", "param_min", "2", "max_threads", "1", "default_format", "CSV"), nil, nil)
	if code != 200 || body != "\"b\",2\n\"c\",3\n\"d\",4\n" || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
		t.Fatalf("select: %d %q %v", code, body, hdr)
	}
	// Errors carry ClickHouse's status and headers.
	code, hdr, body = do("POST", q("SELECT * FROM missing"), nil, nil)
	if code != 404 || hdr.Get("X-ClickHouse-Exception-Code") != "60" || !strings.Contains(body, "UNKNOWN_TABLE") {
		t.Fatalf("unknown table: %d %v %q", code, hdr, body)
	}
	code, hdr, _ = do("POST", q("SELEC 1"), nil, nil)
	if code != 400 || hdr.Get("X-ClickHouse-Exception-Code") != "62" {
		t.Fatalf("syntax: %d %v", code, hdr)
	}
	// A mid-stream error is framed after the data already sent.
	code, hdr, body = do("POST", q("SELECT throwIf(number = 4000000) FROM numbers(10000000)", "default_format", "TSV"), nil, nil)
	tag := hdr.Get("X-ClickHouse-Exception-Tag")
	if code != 200 || tag == "" || !strings.Contains(body, "\r\n__exception__\r\n"+tag+"\r\nCode: 395.") || !strings.HasSuffix(body, tag+"\r\n__exception__\r\n") {
		t.Fatalf("mid-stream: %d tag %q, tail %q", code, tag, body[max(0, len(body)-300):])
	}
	// Settings do not leak into the next request on the same connection.
	for range 2 * cap(testEngine.pool) {
		_, _, body = do("GET", q("SELECT getSetting('max_threads')", "default_format", "TSV"), nil, nil)
		if body == "1\n" {
			t.Fatal("max_threads=1 of an earlier request leaked into a later one")
		}
	}
	// A wrong password is refused.
	req, _ := http.NewRequest("GET", base+q("SELECT 1"), nil)
	req.SetBasicAuth("default", "wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("X-ClickHouse-Exception-Code") != "516" {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
}

// A panic in the bridge fails that request with a 500; the process lives on.
func TestInProcessPanicIsContained(t *testing.T) {
	rt := &inProcess{h: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("bridge bug") })}
	req, _ := http.NewRequest("POST", "http://embedded/", strings.NewReader("SELECT 1"))
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	_, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || rerr == nil || !strings.Contains(rerr.Error(), "bridge bug") {
		t.Fatalf("status %d, body error %v", resp.StatusCode, rerr)
	}
}
