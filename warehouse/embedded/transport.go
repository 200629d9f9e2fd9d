package embedded

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// RoundTripper serves HTTP requests in-process, with no socket: the request
// goes straight to the bridge and the response body streams back through a
// pipe, so a slow reader holds the engine back instead of buffering.
func (e *Engine) RoundTripper() http.RoundTripper {
	return &inProcess{h: e.Handler("")}
}

type inProcess struct{ h http.Handler }

func (t *inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	pr, pw := io.Pipe()
	w := &pipeWriter{
		header: http.Header{},
		pw:     pw,
		ready:  make(chan *http.Response, 1),
		req:    req,
		body:   &cancelBody{PipeReader: pr, cancel: cancel},
	}
	go func() {
		defer func() {
			// A bug in the bridge fails this request, not the process.
			if p := recover(); p != nil {
				w.respond(http.StatusInternalServerError)
				pw.CloseWithError(fmt.Errorf("embedded bridge panicked: %v", p))
				cancel()
			}
		}()
		t.h.ServeHTTP(w, req.WithContext(ctx))
		w.respond(http.StatusOK)
		pw.Close()
	}()
	select {
	case resp := <-w.ready:
		return resp, nil
	case <-req.Context().Done():
		// Nobody will read the body: unblock the handler's writes.
		cancel()
		pr.CloseWithError(req.Context().Err())
		return nil, req.Context().Err()
	}
}

// cancelBody cancels the handler's context when the client closes the body.
type cancelBody struct {
	*io.PipeReader
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	b.cancel()
	return b.PipeReader.Close()
}

type pipeWriter struct {
	header http.Header
	pw     *io.PipeWriter
	ready  chan *http.Response
	once   sync.Once
	req    *http.Request
	body   io.ReadCloser
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) WriteHeader(status int) { w.respond(status) }

func (w *pipeWriter) respond(status int) {
	w.once.Do(func() {
		w.ready <- &http.Response{
			Status:        strconv.Itoa(status) + " " + http.StatusText(status),
			StatusCode:    status,
			Proto:         "HTTP/1.1",
			ProtoMajor:    1,
			ProtoMinor:    1,
			Header:        w.header.Clone(),
			Body:          w.body,
			ContentLength: -1,
			Request:       w.req,
		}
	})
}

func (w *pipeWriter) Write(p []byte) (int, error) {
	w.respond(http.StatusOK)
	return w.pw.Write(p)
}

func (w *pipeWriter) Flush() {}

// Serve serves the ClickHouse HTTP interface on ln until ctx ends, for
// analysts' tools and for other converge processes. password, when set, is
// required of every request.
func (e *Engine) Serve(ctx context.Context, ln net.Listener, password string) error {
	return e.ServeAccess(ctx, ln, Access{Password: password})
}

// ServeAccess serves the ClickHouse HTTP interface on ln to the users of a
// (see Access) until ctx ends.
func (e *Engine) ServeAccess(ctx context.Context, ln net.Listener, a Access) error {
	srv := &http.Server{
		Handler:           e.HandlerFor(a),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
