package server

import (
	"context"
	"log/slog"
)

// Request ids in logs. The requestID middleware puts the id on the request's context;
// LogHandler adds it as request_id to any line logged with that context (slog's *Context
// methods), so code that only has the context (the events service, the access service, a
// tile's query) logs lines that can be joined with the request's line. With log.format=json
// every line is one JSON object.

type requestIDKey struct{}

// WithRequestID returns ctx carrying a request id (the middleware does this for every request).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID is the request id on ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// LogHandler wraps h so that records logged with a request's context carry request_id. A
// logger that already has request_id (the request's own logger, With("request_id", …)) is
// left as is, so the attribute is never written twice. Wrapping twice is harmless.
func LogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(ctxHandler); ok {
		return h
	}
	return ctxHandler{inner: h}
}

type ctxHandler struct {
	inner slog.Handler
	hasID bool // a request_id attribute was added with WithAttrs
}

func (h ctxHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h ctxHandler) Handle(ctx context.Context, r slog.Record) error {
	if !h.hasID && ctx != nil {
		if id := RequestID(ctx); id != "" {
			r = r.Clone()
			r.AddAttrs(slog.String("request_id", id))
		}
	}
	return h.inner.Handle(ctx, r)
}

func (h ctxHandler) WithAttrs(as []slog.Attr) slog.Handler {
	has := h.hasID
	for _, a := range as {
		has = has || a.Key == "request_id"
	}
	return ctxHandler{inner: h.inner.WithAttrs(as), hasID: has}
}

func (h ctxHandler) WithGroup(name string) slog.Handler {
	return ctxHandler{inner: h.inner.WithGroup(name), hasID: h.hasID}
}
