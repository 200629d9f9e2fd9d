package server

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// rollupJSON is one rollup as GET /api/rollups answers it (the fields of `converge rollups
// status --format json`): as_of in the server's report zone, null when never built.
type rollupJSON struct {
	Table      string     `json:"table"`
	Metric     string     `json:"metric"`
	Status     string     `json:"status"`
	Rows       uint64     `json:"rows"`
	Bytes      uint64     `json:"bytes"`
	Generation uint64     `json:"generation"`
	AsOf       *time.Time `json:"as_of"`
	Lag        float64    `json:"lag_seconds"`
	Sources    []string   `json:"sources"`
	Serves     []string   `json:"serves,omitempty"`
	Error      string     `json:"error,omitempty"`
}

// rawMetricJSON is a simple metric answered from raw rows, and why.
type rawMetricJSON struct {
	Metric string   `json:"metric"`
	Tables []string `json:"tables"`
	Reason string   `json:"reason"`
}

// apiRollups answers GET /api/rollups: every rollup with its state and freshness, and the
// simple metrics read from raw rows (Metrics.Rollups, as the user may see them).
func (s *Server) apiRollups(c *gin.Context) error {
	if s.metrics == nil {
		return errUnavailable(msgNotConfigured)
	}
	ctx := c.Request.Context()
	rep, err := within(ctx, s.cfg.TileTimeout, s.metrics.Rollups)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return errUnavailableCause(ctx, "The rollups could not be read", err)
	}
	loc, err := loadZone(s.cfg.TZ)
	if err != nil {
		loc = time.UTC
	}
	rollups := make([]rollupJSON, 0, len(rep.Rollups))
	for _, x := range rep.Rollups {
		r := rollupJSON{Table: x.Table, Metric: x.Metric, Status: x.Status, Rows: x.Rows, Bytes: x.Bytes, Generation: x.Generation,
			Lag: x.Lag, Sources: x.Sources, Serves: x.Serves, Error: x.Error}
		if !x.AsOf.IsZero() {
			t := x.AsOf.In(loc)
			r.AsOf = &t
		}
		rollups = append(rollups, r)
	}
	raw := make([]rawMetricJSON, 0, len(rep.Raw))
	for _, m := range rep.Raw {
		raw = append(raw, rawMetricJSON{Metric: m.Metric, Tables: m.Tables, Reason: m.Reason})
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"rollups": rollups, "raw": raw})
	return nil
}
