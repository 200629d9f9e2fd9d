package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/export"
	"github.com/converge-dev/converge/views"
)

// apiError is the JSON body of a failed API request. Param names the URL parameter at fault.
type apiError struct {
	Error string `json:"error"`
	Param string `json:"param,omitempty"`
}

// handleAPI adapts an API handler: like handle, but errors are JSON ({"error", "param"}).
func (s *Server) handleAPI(h handlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		err := h(c)
		if err == nil {
			return
		}
		log := s.reqLog(c)
		c.Header("Cache-Control", "no-store")
		var pe *paramError
		var he httpError
		var rd redirect
		switch {
		case errors.As(err, &rd):
			c.Redirect(http.StatusSeeOther, rd.to)
			c.Abort()
		case errors.As(err, &pe):
			log.Info("request failed", "status", http.StatusBadRequest, "param", pe.Param, "error", pe.Msg)
			c.AbortWithStatusJSON(http.StatusBadRequest, apiError{Error: pe.Msg, Param: pe.Param})
		case errors.As(err, &he) && he.cause != nil:
			log.Warn("request failed", "status", he.status, "error", he.msg, "cause", he.cause)
			c.AbortWithStatusJSON(he.status, apiError{Error: he.msg})
		case errors.As(err, &he):
			log.Info("request failed", "status", he.status, "error", he.msg)
			c.AbortWithStatusJSON(he.status, apiError{Error: he.msg})
		case errors.Is(err, errBudget):
			log.Warn("request failed", "status", http.StatusGatewayTimeout, "error", err)
			c.AbortWithStatusJSON(http.StatusGatewayTimeout, apiError{Error: err.Error()})
		case isTooLarge(err):
			log.Info("request failed", "status", http.StatusUnprocessableEntity, "error", err)
			c.AbortWithStatusJSON(http.StatusUnprocessableEntity, apiError{Error: tooLargeAnswer(err)})
		case errors.Is(err, context.Canceled) && c.Request.Context().Err() != nil:
			c.Abort()
		default:
			log.Error("request failed", "status", http.StatusInternalServerError, "error", err)
			c.AbortWithStatusJSON(http.StatusInternalServerError, apiError{Error: "internal error; it has been logged (request id " + requestIDOf(c) + ")"})
		}
	}
}

// isTooLarge reports whether err is an answer larger than the server holds
// (export.MetricResultBytes).
func isTooLarge(err error) bool {
	_, ok := export.AsResultTooLarge(err)
	return ok
}

// tooLargeAnswer says so, and what to do.
func tooLargeAnswer(err error) string {
	tl, _ := export.AsResultTooLarge(err)
	whole := &export.ResultTooLargeError{Limit: tl.Limit} // "result larger than 64 MiB", also for a block
	return "The answer is " + strings.TrimPrefix(whole.Error(), "result ") + ", more than the server holds for one answer: narrow the range, use a coarser grain, or filter the breakdown."
}

// metricJSON is a catalog entry in the API.
type metricJSON struct {
	Name        string   `json:"name"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Owner       string   `json:"owner"`
	Unit        string   `json:"unit"`
	Currency    string   `json:"currency,omitempty"`
	Polarity    string   `json:"polarity"`
	Kind        string   `json:"kind"`
	Version     string   `json:"version"`
	Formula     string   `json:"formula,omitempty"`
	Dimensions  []string `json:"dimensions"`
	Group4R     string   `json:"group_4r,omitempty"`
	Sources     []string `json:"sources"`
	Valid       bool     `json:"valid"`
	Error       string   `json:"error,omitempty"`
}

func toMetricJSON(m MetricInfo) metricJSON {
	return metricJSON{Name: m.Name, Title: m.Title, Description: m.Description, Owner: m.Owner,
		Unit: m.Unit, Currency: m.Currency, Polarity: m.Polarity, Kind: m.Kind, Version: m.Version,
		Formula: m.Formula, Dimensions: nonNil(m.Dimensions), Group4R: m.Group4R,
		Sources: nonNil(m.Sources), Valid: m.Valid, Error: m.Error}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// apiCatalog answers GET /api/v1/metrics: {"metrics": [...]}.
func (s *Server) apiCatalog(c *gin.Context) error {
	if s.metrics == nil {
		return errUnavailable(msgNotConfigured)
	}
	cat, err := s.catalog(c.Request.Context())
	if err != nil {
		if c.Request.Context().Err() != nil {
			return err
		}
		return errUnavailableCause(c.Request.Context(), "The list of KPIs could not be read", err)
	}
	out := make([]metricJSON, len(cat))
	for i, m := range cat {
		out[i] = toMetricJSON(m)
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"metrics": out})
	return nil
}

// queryJSON is the query an answer is for. from and to are the range as the request's from
// and to take them: days in the report zone, both included (to=2025-12-31 holds 31 December),
// so they can be sent back as they are; start and end are the instants they stand for, RFC
// 3339 in the report zone, end the first instant not included.
type queryJSON struct {
	Range   string            `json:"range"`
	From    string            `json:"from"`  // first day, included (YYYY-MM-DD)
	To      string            `json:"to"`    // last day, included (YYYY-MM-DD)
	Start   string            `json:"start"` // from's midnight, RFC 3339
	End     string            `json:"end"`   // the midnight after to, RFC 3339: not included
	Grain   string            `json:"grain"`
	TZ      string            `json:"tz"`
	Compare string            `json:"compare"`
	By      string            `json:"by,omitempty"`
	Filters map[string]string `json:"filters"`
}

type pointJSON struct {
	Bucket  string   `json:"bucket"` // bucket start, RFC 3339 in the report zone
	Label   string   `json:"label"`
	Value   *float64 `json:"value"`
	Compare *float64 `json:"compare,omitempty"`
	Target  *float64 `json:"target,omitempty"`
}

type seriesJSON struct {
	Key    string      `json:"key"`
	Points []pointJSON `json:"points"`
}

type resultJSON struct {
	Metric       metricJSON   `json:"metric"`
	Query        queryJSON    `json:"query"`
	Total        *float64     `json:"total"`
	CompareTotal *float64     `json:"compare_total,omitempty"`
	Target       *float64     `json:"target,omitempty"`
	Series       []seriesJSON `json:"series"`
	Freshness    *string      `json:"freshness"` // last ingest of its sources, RFC 3339; null if unknown
	// Warnings name the rows the answer leaves out (e.g. orders in a currency that cannot be
	// converted to the report currency); always a list, empty when nothing is left out.
	Warnings []warningJSON `json:"warnings"`
}

type warningJSON struct {
	Code     string `json:"code"`
	Metric   string `json:"metric"`
	Period   string `json:"period"`   // current | comparison
	Currency string `json:"currency"` // of the rows left out; "" when they have none
	Rows     int64  `json:"rows"`
	Message  string `json:"message"`
}

// apiMetric answers GET /api/v1/metrics/:name with the dashboard's URL parameters, as JSON, or
// with format=csv|xlsx as the metric export (see exportMetric).
func (s *Server) apiMetric(c *gin.Context) error {
	switch format := c.Query("format"); format {
	case "", "json":
	case "csv", "xlsx":
		return s.exportMetric(c, c.Param("name"))
	default:
		return badParam("format", format, "allowed are json, csv, xlsx")
	}
	f, err := s.filters(c)
	if err != nil {
		return err
	}
	info, res, err := s.queryForExport(c.Request.Context(), c.Param("name"), f)
	if err != nil {
		return exportError(err) // a bad parameter of the metrics layer is a 400 naming it
	}
	if res.Currency != "" && info.Unit == "currency" {
		info.Currency = res.Currency
	}
	q := f.Query(info.Dimensions, f.By)
	out := resultJSON{
		Metric: toMetricJSON(info),
		Query: queryJSON{Range: f.Range, From: f.From.Format(dateLayout), To: f.InclusiveTo().Format(dateLayout),
			Start: q.From.Format(time.RFC3339), End: q.To.Format(time.RFC3339),
			Grain: q.Grain, TZ: q.TZ, Compare: f.Compare, By: q.By, Filters: q.Filters},
		Total: res.Total, CompareTotal: res.CompareTotal, Target: res.Target,
		Series: []seriesJSON{}, Warnings: []warningJSON{},
	}
	for _, w := range res.Warnings {
		out.Warnings = append(out.Warnings, warningJSON{Code: w.Code, Metric: w.Metric, Period: w.Period, Currency: w.Currency, Rows: w.Rows, Message: w.Message})
	}
	if !res.Freshness.IsZero() {
		fr := res.Freshness.In(f.Loc).Format(time.RFC3339)
		out.Freshness = &fr
	}
	for _, sr := range res.Series {
		sj := seriesJSON{Key: sr.Key, Points: make([]pointJSON, len(sr.Points))}
		for i, p := range sr.Points {
			sj.Points[i] = pointJSON{Bucket: p.Bucket.In(f.Loc).Format(time.RFC3339),
				Label: views.BucketCSV(p.Bucket, f.Grain, f.Loc), Value: p.Value, Compare: p.Compare, Target: p.Target}
		}
		out.Series = append(out.Series, sj)
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, out)
	return nil
}
