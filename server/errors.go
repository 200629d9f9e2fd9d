package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/views"
)

// handlerFunc is a page or API handler. It writes its response on success and returns an error
// otherwise; it never renders or logs its own errors.
type handlerFunc func(c *gin.Context) error

// httpError is an error with a status whose msg can be shown to the client as is; cause, if
// any, is what went wrong, for the log only.
type httpError struct {
	status int
	msg    string
	cause  error
}

func (e httpError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

// errUnavailable is a 503 with a message for people.
func errUnavailable(msg string) error {
	return httpError{status: http.StatusServiceUnavailable, msg: msg}
}

// errUnavailableCause is a 503 saying what could not be done (what), with cause logged and
// shown only as shownText shows it.
func errUnavailableCause(ctx context.Context, what string, cause error) error {
	return httpError{status: http.StatusServiceUnavailable, msg: what + ": " + shownText(ctx, cause), cause: cause}
}

// redirect answers a request with 303 to another URL of this site (a handler returns it as its
// error, e.g. from Server.filters).
type redirect struct{ to string }

func (r redirect) Error() string { return "redirect to " + r.to }

// errNotFound is a 404 with a message for people.
func errNotFound(msg string) error { return httpError{status: http.StatusNotFound, msg: msg} }

// handle adapts h to gin: a returned error is logged once, here, and rendered as the error page
// with its status (an httpError's, or 500 for anything else).
func (s *Server) handle(h handlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		err := h(c)
		if err == nil {
			return
		}
		log := s.reqLog(c)
		var he httpError
		var pe *paramError
		var rd redirect
		switch {
		case errors.As(err, &rd):
			c.Header("Cache-Control", "no-store")
			c.Redirect(http.StatusSeeOther, rd.to)
			c.Abort()
		case errors.As(err, &pe):
			log.Info("request failed", "status", http.StatusBadRequest, "param", pe.Param, "error", pe.Msg)
			s.renderError(c, http.StatusBadRequest, pe.Msg)
		case errors.As(err, &he) && he.cause != nil:
			log.Warn("request failed", "status", he.status, "error", he.msg, "cause", he.cause)
			s.renderError(c, he.status, he.msg)
		case errors.As(err, &he):
			log.Info("request failed", "status", he.status, "error", he.msg)
			s.renderError(c, he.status, he.msg)
		case errors.Is(err, context.Canceled) && c.Request.Context().Err() != nil:
			// The client went away; there is nobody to render for.
			log.Debug("request canceled by client", "error", err)
			c.Abort()
		default:
			log.Error("request failed", "status", http.StatusInternalServerError, "error", err)
			s.renderError(c, http.StatusInternalServerError, "")
		}
	}
}

// recovery turns a handler panic into a logged 500 error page; the process keeps serving.
// http.ErrAbortHandler is re-panicked so net/http aborts the response as intended.
func (s *Server) recovery(c *gin.Context) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
			panic(v)
		}
		s.reqLog(c).Error("handler panic", "status", http.StatusInternalServerError,
			"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		s.renderError(c, http.StatusInternalServerError, "")
	}()
	c.Next()
}

// notFound is the handler for any unknown route.
func (s *Server) notFound(c *gin.Context) error {
	return errNotFound("There is no page at this address.")
}

// renderError renders the error page with status. msg is shown to the client; for 5xx it is
// replaced by a generic message, since internal errors are for the logs only. Nothing is rendered
// if the response has already started.
func (s *Server) renderError(c *gin.Context, status int, msg string) {
	defer c.Abort()
	if c.Writer.Written() {
		return
	}
	switch {
	case (status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout) && msg != "":
		// A 503 with a message says which part is not available; it is written for people.
	case status >= 500:
		msg = "Something went wrong on our side. It has been logged; please try again."
	case msg == "":
		msg = http.StatusText(status)
	}
	v := views.ErrorView{
		Page:    s.page(c, http.StatusText(status), ""),
		Status:  status,
		Heading: errorHeading(status),
		Message: msg,
	}
	c.Header("Cache-Control", "no-store")
	if err := s.renderHTML(c, status, views.Error(v)); err != nil {
		// The error page itself failed: fall back to plain text.
		s.reqLog(c).Error("render error page", "error", err)
		c.Data(status, "text/plain; charset=utf-8", []byte(http.StatusText(status)+"\n"))
	}
}

func errorHeading(status int) string {
	switch status {
	case http.StatusNotFound:
		return "Page not found"
	case http.StatusInternalServerError:
		return "Something went wrong"
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Error"
}

// reqLog is the request's logger (with its request id), or the server's outside a request.
func (s *Server) reqLog(c *gin.Context) *slog.Logger {
	if v, ok := c.Get(ctxLogger); ok {
		if l, ok := v.(*slog.Logger); ok {
			return l
		}
	}
	return s.log
}
