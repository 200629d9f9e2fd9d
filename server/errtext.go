package server

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/metrics"
)

// What pages and the API show of an error. An error reaching a handler may carry the store's
// address (clickhouse-go's request URL, with its user and settings: "http://default@embedded:
// 8123?…"), a DSN, file paths or the engine's own message: those are for the log. A page
// shows the message of an error written for people (publicMessage: bad parameters, time
// budgets, definition errors with their file and line, …) and for anything else
// internalText, which names the request id the error is logged under.

// shownError is an error the server writes for people: a widget may show its message as is.
type shownError struct{ msg string }

func (e *shownError) Error() string { return e.msg }

// errShown is a shownError of the formatted message (arguments are not errors: wrap an error
// with %w in fmt.Errorf instead, and it stays for the log).
func errShown(format string, args ...any) error {
	return &shownError{msg: fmt.Sprintf(format, args...)}
}

// publicMessage is err's message when err is written for people (it, or an error it wraps,
// is one of the types below), with any URL in it replaced; ok is false for any other error.
// Only the message of the recognised error is used, not what wraps it.
func publicMessage(err error) (msg string, ok bool) {
	var (
		pe   *paramError
		he   httpError
		de   *metrics.Error
		mpe  *metrics.ParamError
		me   *metrics.MemoryError
		move *metrics.MovedError
		amb  *metrics.AmbiguousError
		inv  *access.InvalidError
		se   *shownError
	)
	switch {
	case err == nil:
		return "", false
	case errors.As(err, &se):
		msg = se.msg
	case errors.As(err, &pe):
		msg = pe.Msg
	case errors.As(err, &he) && he.msg != "":
		msg = he.msg
	case errors.Is(err, errBudget), errors.Is(err, metrics.ErrBudget):
		msg = "no answer within its time budget; try again or narrow the range."
	case errors.Is(err, metrics.ErrNoSnapshot), errors.Is(err, metrics.ErrCustomerNotFound):
		msg = innermost(err, metrics.ErrNoSnapshot, metrics.ErrCustomerNotFound)
	case errors.As(err, &de):
		msg = de.Error() // the analyst's definition: file, line and reason
	case errors.As(err, &mpe):
		msg = mpe.Error()
	case errors.As(err, &me):
		// Not me.Error(): it ends with the engine's message.
		msg = fmt.Sprintf("%s needs more memory than one query may use: narrow the range, or ask an administrator to raise engine.max_query_memory", me.Metric)
	case errors.As(err, &move):
		msg = move.Error()
	case errors.As(err, &amb):
		msg = amb.Error()
	case errors.As(err, &inv):
		msg = inv.Error()
	default:
		return "", false
	}
	return scrubURLs(msg), true
}

// innermost is the message of the first of sentinels err is.
func innermost(err error, sentinels ...error) string {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return err.Error()
}

// urlRe matches an absolute URL (scheme://…) up to the next space or quote.
var urlRe = regexp.MustCompile(`(?i)\b[a-z][a-z0-9+.-]*://[^\s"'<>]*`)

// scrubURLs replaces every absolute URL in s (which may carry a user, a password, settings)
// with "(address hidden)".
func scrubURLs(s string) string { return urlRe.ReplaceAllString(s, "(address hidden)") }

// internalText is what a page shows for an error not written for people: that it is in the
// log, under requestID ("": this page's, shown at its foot).
func internalText(requestID string) string {
	if requestID == "" {
		return "an internal error; it is in the server log under this page's request ID (at the foot of the page)."
	}
	return "an internal error; it is in the server log under request ID " + requestID + "."
}

// errorText is shownText for a request, logging err (as what failed) when it is not for
// people; for a caller that does not log err itself.
func (s *Server) errorText(c *gin.Context, what string, err error) string {
	if msg, ok := publicMessage(err); ok {
		return msg
	}
	s.reqLog(c).Warn(what, "error", err)
	return internalText(requestIDOf(c))
}

// shownText is what a page shows for err in the request of ctx: publicMessage, or
// internalText with the request's id. It does not log: its callers log err once.
func shownText(ctx context.Context, err error) string {
	if msg, ok := publicMessage(err); ok {
		return msg
	}
	return internalText(RequestID(ctx))
}
