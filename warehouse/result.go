package warehouse

import (
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/warehouse/embedded"
)

// How much of a query's result Go may hold. The store's memory limits bound what the engine
// uses, not what its answer costs the caller once it arrives: a result is bounded in bytes
// on its way in, at three levels.
//
//  1. The engine: the console asks for max_result_bytes where it holds the whole result
//     (Console.Run), and the block size of streamed ones (Console.BlockRows).
//  2. The embedded engine's bridge refuses a block of output larger than the query's Block
//     limit before it leaves the engine's memory (embedded.BlockLimitHeader, which the
//     transport sets from the context).
//  3. The client: the transport counts the bytes of each response and fails it past the
//     query's Total limit; the console's own reader also counts each block (consoleRows) and
//     the bytes of the values it holds.
//
// Each is reported as a *ResultTooLargeError.

// ResultLimit bounds one query's result in bytes (0: no bound at that level).
type ResultLimit struct {
	// Total is the most bytes of the whole response: for callers that hold the result.
	Total int64
	// Block is the most bytes of one block of it: for callers that stream it, who hold one
	// block at a time.
	Block int64
}

type resultLimitKey struct{}

// WithResultLimit bounds the results of the queries run with ctx (see ResultLimit).
func WithResultLimit(ctx context.Context, l ResultLimit) context.Context {
	return context.WithValue(ctx, resultLimitKey{}, l)
}

func resultLimitOf(ctx context.Context) ResultLimit {
	l, _ := ctx.Value(resultLimitKey{}).(ResultLimit)
	return l
}

// ResultTooLargeError is a result that was stopped because it is larger than the caller may
// hold: the whole of it (Block false) or one block of it (Block true: its rows are too wide
// to stream in blocks of the size asked for).
type ResultTooLargeError struct {
	Limit int64 // bytes
	Block bool
	Bytes int64 // the block's size, when known (Block)
	Rows  int64 // the block's rows, when known (Block)
}

func (e *ResultTooLargeError) Error() string {
	if e.Block {
		s := "result has a block larger than " + FormatBytes(e.Limit)
		if e.Bytes > 0 {
			s += " (" + FormatBytes(e.Bytes)
			if e.Rows > 0 {
				s += " in " + strconv.FormatInt(e.Rows, 10) + " rows"
			}
			s += ")"
		}
		return s
	}
	return "result larger than " + FormatBytes(e.Limit)
}

// FormatBytes states a size as people read it: "64 MiB", "1.5 GiB", "512 KiB", "100 bytes".
func FormatBytes(n int64) string {
	units := []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}}
	for _, u := range units {
		if n >= 1<<u.shift {
			v := float64(n) / float64(int64(1)<<u.shift)
			if n%(1<<u.shift) == 0 || v >= 100 {
				return strconv.FormatFloat(v, 'f', 0, 64) + " " + u.name
			}
			return strconv.FormatFloat(v, 'f', 1, 64) + " " + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// blockRe reads the bridge's refusal of a block (embedded.tooLargeBlock).
var blockRe = regexp.MustCompile(`a block of (\d+) bytes(?: \((\d+) rows\))? is larger than the limit of (\d+) bytes`)

// AsResultTooLarge finds a *ResultTooLargeError in err's chain, or reads one from the
// engine's refusal (TOO_MANY_ROWS_OR_BYTES, 396: the bridge's block limit, or
// max_result_bytes with limit the caller asked for).
func AsResultTooLarge(err error, limit int64) (*ResultTooLargeError, bool) {
	var rt *ResultTooLargeError
	if errors.As(err, &rt) {
		return rt, true
	}
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) || ex.Code != 396 {
		return nil, false
	}
	if m := blockRe.FindStringSubmatch(ex.Message); m != nil {
		b, _ := strconv.ParseInt(m[1], 10, 64)
		r, _ := strconv.ParseInt(m[2], 10, 64)
		l, _ := strconv.ParseInt(m[3], 10, 64)
		return &ResultTooLargeError{Limit: l, Block: true, Bytes: b, Rows: r}, true
	}
	if limit > 0 && strings.Contains(ex.Message, "max bytes") {
		return &ResultTooLargeError{Limit: limit}, true
	}
	return nil, false
}

// limitTransport applies each request's ResultLimit (from its context): it asks the embedded
// bridge for the block limit, and counts the response body against the total.
type limitTransport struct{ next http.RoundTripper }

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	l := resultLimitOf(req.Context())
	if l.Block > 0 {
		req = req.Clone(req.Context())
		req.Header.Set(embedded.BlockLimitHeader, strconv.FormatInt(l.Block, 10))
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil || l.Total <= 0 || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: l.Total, limit: l.Total}
	return resp, nil
}

// limitedBody fails once more than limit bytes have been read.
type limitedBody struct {
	io.ReadCloser
	mu    sync.Mutex
	left  int64
	limit int64
	err   error
}

func (b *limitedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		b.err = &ResultTooLargeError{Limit: b.limit}
		return 0, b.err
	}
	return n, err
}

// byteCounter counts what is read through it against a per-block and a total limit (0:
// none); the console's reader starts each block with startBlock.
type byteCounter struct {
	r          io.Reader
	block      int64 // bytes of the current block so far
	total      int64
	blockLimit int64
	totalLimit int64
	err        error // the first limit passed: sticky
}

func (c *byteCounter) startBlock() { c.block = 0 }

func (c *byteCounter) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	c.block += int64(n)
	c.total += int64(n)
	switch {
	case c.blockLimit > 0 && c.block > c.blockLimit:
		c.err = &ResultTooLargeError{Limit: c.blockLimit, Block: true}
	case c.totalLimit > 0 && c.total > c.totalLimit:
		c.err = &ResultTooLargeError{Limit: c.totalLimit}
	}
	if c.err != nil {
		return 0, c.err
	}
	return n, err
}
