package server

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// liveMinInterval is the least time between two "data" events of one stream: changes that
// arrive sooner are coalesced into one event at the end of the interval, so a steady flow of
// events refreshes open pages every few seconds, not on every event.
const liveMinInterval = 2 * time.Second

// live streams server-sent events to open dashboard pages (/events/live): an "event: data"
// after changes reported by Deps.Changes (the pages then refresh their tiles; at most one event
// per liveMinInterval), and a keep-alive comment every Config.KeepAlive. Without Changes only
// keep-alives are sent. The stream ends when the client goes away or the server shuts down.
func (s *Server) live(c *gin.Context) error {
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // proxies must not buffer the stream
	c.Status(http.StatusOK)
	var changes <-chan struct{}
	if s.changes != nil {
		ch, unsubscribe := s.changes.Subscribe()
		defer unsubscribe()
		changes = ch
	}
	w := c.Writer
	// The client reconnects after 5 s when the stream breaks.
	if _, err := fmt.Fprint(w, "retry: 5000\n: connected\n\n"); err != nil {
		return nil
	}
	w.Flush()
	tick := time.NewTicker(s.cfg.KeepAlive)
	defer tick.Stop()
	ctx := c.Request.Context()
	var lastSent time.Time
	var pending <-chan time.Time // fires when a coalesced change may be sent
	for {
		var msg string
		select {
		case <-ctx.Done():
			return nil
		case <-s.closing:
			return nil
		case <-tick.C:
			msg = ": keep-alive\n\n"
		case _, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			if wait := liveMinInterval - time.Since(lastSent); wait > 0 {
				if pending == nil {
					pending = time.After(wait)
				}
				continue
			}
			msg, lastSent = "event: data\ndata: {}\n\n", time.Now()
		case <-pending:
			pending = nil
			msg, lastSent = "event: data\ndata: {}\n\n", time.Now()
		}
		if _, err := fmt.Fprint(w, msg); err != nil {
			return nil // the client went away
		}
		w.Flush()
	}
}
