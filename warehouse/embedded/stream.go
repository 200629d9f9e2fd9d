package embedded

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/sync/semaphore"
)

// How much of a result the bridge holds in memory.
//
// chDB hands a streaming result over in chunks (for Native, one block each), in its own
// memory. The bridge writes each chunk from there (no copy into Go's heap) and frees it once
// written. While the client reads one chunk the engine produces the next ones (fetch-ahead,
// the two run on different cores), at most fetchAheadChunks of them and fetchAheadBytes in
// all (a chunk larger than that is fetched alone). A chunk, or a materialised output, larger
// than the request's block limit is refused with TOO_MANY_ROWS_OR_BYTES before it reaches
// the client: the limit is Config.MaxResultBlock, or lower when the request says so in
// BlockLimitHeader (the warehouse package sets it from the query's context).
const (
	fetchAheadChunks = 4
	fetchAheadBytes  = 16 << 20
)

// BlockLimitHeader is the request header in which a client asks for a block limit (bytes)
// lower than the engine's Config.MaxResultBlock for its request.
const BlockLimitHeader = "X-Converge-Max-Block-Bytes"

// DefaultMaxResultBlock is Config.MaxResultBlock's default: the largest block of output (or
// materialised result) the bridge passes on.
const DefaultMaxResultBlock = 256 << 20

// codeTooManyRowsOrBytes is ClickHouse's TOO_MANY_ROWS_OR_BYTES, which it raises for a result
// over max_result_rows or max_result_bytes.
const codeTooManyRowsOrBytes = 396

// blockLimit is the block limit of request r: the engine's, or lower as r asks.
func (e *Engine) blockLimit(r *http.Request) int64 {
	limit := e.cfg.MaxResultBlock
	if v := r.Header.Get(BlockLimitHeader); v != "" {
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n > 0 && n < limit {
			limit = n
		}
	}
	return limit
}

// tooLargeBlock is the error for an output block of n bytes over limit; head is the start of
// the block, from which the rows of a Native block are read (chDB writes the revision-0
// layout: columns, then rows, as varints). The message is parsed by the warehouse package
// (warehouse.ResultTooLargeError): keep its shape.
func tooLargeBlock(format string, head []byte, n, limit int64) *Exception {
	rows := ""
	if format == "Native" {
		if _, k := binary.Uvarint(head); k > 0 {
			if r, j := binary.Uvarint(head[k:]); j > 0 {
				rows = " (" + strconv.FormatUint(r, 10) + " rows)"
			}
		}
	}
	return newException(codeTooManyRowsOrBytes, "TOO_MANY_ROWS_OR_BYTES",
		fmt.Sprintf("Limit for result exceeded: a block of %d bytes%s is larger than the limit of %d bytes per block", n, rows, limit))
}

type fetched struct {
	c   chunk
	err error
}

// streamOut writes stream s's output to w as the bridge's answer (status, headers, chunks, a
// framed exception if it fails after the status went out). It reports whether the query
// failed (the connection is then drained).
func (e *Engine) streamOut(ctx context.Context, req *request, s *stream, w http.ResponseWriter, limit int64) (failed bool) {
	h := w.Header()
	flusher, _ := w.(http.Flusher)
	exTag := randomTag()
	// Like ClickHouse's HTTP handler, hold the first MiB of output before
	// sending the status, so that an early error still gets its error status.
	var held []byte
	headerSent := false
	emit := func(b []byte) bool {
		if !headerSent {
			h.Set("X-ClickHouse-Exception-Tag", exTag)
			w.WriteHeader(http.StatusOK)
			headerSent = true
		}
		if len(b) == 0 {
			return true
		}
		if _, err := w.Write(b); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	budget := semaphore.NewWeighted(fetchAheadBytes)
	fctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	chunks := make(chan fetched, fetchAheadChunks)
	// rest reads the stream to its end, dropping the output: a stream is always read to its
	// end before the connection is used again (after a KILL, that is soon).
	rest := func() {
		for {
			c, err := s.next()
			n := len(c.b)
			c.free()
			if err != nil || n == 0 {
				return
			}
		}
	}
	go func() {
		defer close(chunks)
		for {
			c, err := s.next()
			if err == nil && int64(len(c.b)) > limit {
				err = tooLargeBlock(req.format, c.b[:min(len(c.b), 20)], int64(len(c.b)), limit)
				c.free()
				// Stop the query, and let its stream end before the error is reported.
				e.kill(req.tag)
				rest()
			}
			if err == nil && len(c.b) > 0 {
				if aerr := budget.Acquire(fctx, weight(c)); aerr != nil {
					// The writer gave up (the client went away and the query was killed).
					c.free()
					rest()
					return
				}
			}
			chunks <- fetched{c, err}
			if err != nil || len(c.b) == 0 {
				return
			}
		}
	}()
	// On the way out, free what was fetched but not written.
	defer func() {
		stop()
		for f := range chunks {
			f.c.free()
		}
	}()
	for f := range chunks {
		if f.err != nil {
			ex := asException(f.err)
			if !headerSent {
				writeException(w, ex)
				return true
			}
			writeStreamException(w, exTag, ex)
			return true
		}
		if len(f.c.b) == 0 { // end of the result
			f.c.free()
			emit(held)
			return false
		}
		ok := true
		if !headerSent && len(held)+len(f.c.b) < holdBytes {
			held = append(held, f.c.b...)
		} else {
			if held != nil {
				ok = emit(held)
				held = nil
			}
			if ok {
				ok = emit(f.c.b)
			}
		}
		budget.Release(weight(f.c))
		f.c.free()
		if !ok {
			// The client went away: stop the query and let the stream end.
			e.kill(req.tag)
			return true
		}
	}
	return false
}

// weight is what a chunk takes of the fetch-ahead budget: its size, at most all of it.
func weight(c chunk) int64 { return min(int64(len(c.b)), fetchAheadBytes) }

// holdBytes is how much output the bridge holds before committing to a 200.
const holdBytes = 1 << 20
