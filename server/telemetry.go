package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/metrics"
)

// Prometheus metrics (GET /metrics, text exposition format). Every series is converge_* but
// the Go runtime's (go_*) and the process's (process_*):
//
//	converge_http_request_duration_seconds{method,route,status}  histogram; route is the
//	    router's template (/kpi/:name), "unmatched" for an unknown path
//	converge_metric_query_duration_seconds{metric,outcome}       histogram; outcome ok or error
//	converge_metric_cache_requests_total{result}                 counter; result hit or miss
//	converge_ingest_records_total{entity,outcome}                counter; outcome loaded,
//	    rejected or duplicate, counted when the batch holding the records is stored
//	converge_quarantine_records{entity}                          gauge, read from the store
//	    at each scrape (within TelemetryConfig.ScrapeTimeout)
//	converge_store_up                                            gauge, 1 when the store
//	    answered a ping at the scrape
//	converge_scrape_errors_total{part}                           counter; part quarantine or
//	    store, when the store did not answer in time
//
// Who may scrape: see metricsPath.

// metricsPath is the Prometheus endpoint of the main router. It needs an admin session, or an
// API token of scope metrics (or admin) as a bearer token, which Prometheus sends with
// `authorization: {credentials_file: …}`. A scraper that cannot hold a token scrapes the
// separate listener of server.metrics_addr instead (ServeMetrics): no authentication there,
// so bind it to a private address.
const metricsPath = "/metrics"

// QuarantineCounter counts the quarantined records per entity (ingest.Catalog).
type QuarantineCounter interface {
	QuarantineSize(ctx context.Context) (map[string]int64, error)
}

// TelemetryConfig configures the Prometheus metrics.
type TelemetryConfig struct {
	// Quarantine, optional, is read at each scrape for converge_quarantine_records.
	Quarantine QuarantineCounter
	// Store, optional, is pinged at each scrape for converge_store_up.
	Store Store
	// ScrapeTimeout bounds each store read of a scrape; default 2 s.
	ScrapeTimeout time.Duration
	// Log receives scrape failures; nil discards them.
	Log *slog.Logger
}

// Telemetry holds converge's Prometheus metrics: the server records HTTP requests itself;
// ObserveQuery (metrics.Options.OnQuery) and ObserveIngest (events.Service.OnRecords) are
// handed to the metrics layer and the ingest path.
type Telemetry struct {
	cfg     TelemetryConfig
	reg     *prometheus.Registry
	http    *prometheus.HistogramVec
	query   *prometheus.HistogramVec
	cache   *prometheus.CounterVec
	ingest  *prometheus.CounterVec
	handler http.Handler
	// scrape errors by part, reported by storeCollector in the scrape that had them
	storeErrs, quarantineErrs atomic.Uint64
}

// durationBuckets are the histogram buckets in seconds, from 5 ms (a cached page) to a
// minute (a cold page on a large store, a long export).
var durationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// NewTelemetry makes the metrics on a registry of their own (with the Go runtime and process
// collectors); nothing is global.
func NewTelemetry(cfg TelemetryConfig) *Telemetry {
	if cfg.ScrapeTimeout <= 0 {
		cfg.ScrapeTimeout = 2 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	t := &Telemetry{cfg: cfg, reg: prometheus.NewRegistry()}
	t.http = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "converge_http_request_duration_seconds", Help: "Time to serve an HTTP request, by method, route template and status.",
		Buckets: durationBuckets}, []string{"method", "route", "status"})
	t.query = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "converge_metric_query_duration_seconds", Help: "Time to answer a metric query (cache lookup included), by metric and outcome (ok, error).",
		Buckets: durationBuckets}, []string{"metric", "outcome"})
	t.cache = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "converge_metric_cache_requests_total", Help: "Lookups in the metric result cache, by result (hit, miss)."}, []string{"result"})
	t.ingest = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "converge_ingest_records_total", Help: "Records settled by ingest in this process (events API), by entity and outcome (loaded, rejected, duplicate), counted when stored."},
		[]string{"entity", "outcome"})
	// Both results exist from the start, so a rate over them is defined before the first query.
	t.cache.WithLabelValues(metrics.CacheHit)
	t.cache.WithLabelValues(metrics.CacheMiss)
	t.reg.MustRegister(t.http, t.query, t.cache, t.ingest, storeCollector{t},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	t.handler = promhttp.HandlerFor(t.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(cfg.Log.Handler(), slog.LevelWarn), ErrorHandling: promhttp.ContinueOnError})
	return t
}

// Registry is the Prometheus registry (to add collectors, or to gather in tests).
func (t *Telemetry) Registry() *prometheus.Registry { return t.reg }

// Handler serves the metrics in the Prometheus text format.
func (t *Telemetry) Handler() http.Handler { return t.handler }

// ObserveQuery records a metric query (metrics.Options.OnQuery).
func (t *Telemetry) ObserveQuery(s metrics.QueryStats) {
	outcome := "ok"
	if s.Err != nil {
		outcome = "error"
	}
	t.query.WithLabelValues(s.Metric, outcome).Observe(s.Duration.Seconds())
	if s.Cache != "" {
		t.cache.WithLabelValues(s.Cache).Inc()
	}
}

// ObserveIngest records the records of a stored batch by outcome (events.Service.OnRecords).
func (t *Telemetry) ObserveIngest(entity string, c ingest.Counts) {
	for _, o := range []struct {
		name string
		n    int64
	}{{"loaded", c.Loaded}, {"rejected", c.Rejected}, {"duplicate", c.Duplicates}} {
		if o.n > 0 {
			t.ingest.WithLabelValues(entity, o.name).Add(float64(o.n))
		}
	}
}

// observeHTTP is the middleware recording each request's duration by route template.
func (t *Telemetry) observeHTTP(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched" // unknown paths are not labels: they would be unbounded
	}
	t.http.WithLabelValues(methodLabel(c.Request.Method), route, strconv.Itoa(c.Writer.Status())).Observe(time.Since(start).Seconds())
}

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

var (
	quarantineDesc = prometheus.NewDesc("converge_quarantine_records", "Quarantined (rejected) records in the store, by entity; read at scrape time.", []string{"entity"}, nil)
	storeUpDesc    = prometheus.NewDesc("converge_store_up", "1 when the store answered a ping at scrape time, else 0.", nil, nil)
	scrapeErrDesc  = prometheus.NewDesc("converge_scrape_errors_total", "Scrapes in which a store read failed or timed out, by part (quarantine, store).", []string{"part"}, nil)
)

// storeCollector reads the store at scrape time, each read within ScrapeTimeout: a slow or
// absent store makes the scrape report it (store_up 0, no quarantine series, an error
// counted), never hang.
type storeCollector struct{ t *Telemetry }

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- quarantineDesc
	ch <- storeUpDesc
	ch <- scrapeErrDesc
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.t
	cfg := t.cfg
	if cfg.Store != nil {
		up := 1.0
		ctx, cancel := context.WithTimeout(context.Background(), cfg.ScrapeTimeout)
		err := cfg.Store.Ping(ctx)
		cancel()
		if err != nil {
			up = 0
			t.storeErrs.Add(1)
		}
		ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, up)
	}
	if cfg.Quarantine != nil {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.ScrapeTimeout)
		sizes, err := cfg.Quarantine.QuarantineSize(ctx)
		cancel()
		if err != nil {
			t.quarantineErrs.Add(1)
			cfg.Log.Warn("metrics scrape: quarantine size", "error", err)
		}
		for entity, n := range sizes {
			ch <- prometheus.MustNewConstMetric(quarantineDesc, prometheus.GaugeValue, float64(n), entity)
		}
	}
	ch <- prometheus.MustNewConstMetric(scrapeErrDesc, prometheus.CounterValue, float64(t.storeErrs.Load()), "store")
	ch <- prometheus.MustNewConstMetric(scrapeErrDesc, prometheus.CounterValue, float64(t.quarantineErrs.Load()), "quarantine")
}

// metricsPage serves GET /metrics on the main router (see metricsPath for who may).
func (s *Server) metricsPage(c *gin.Context) error {
	s.telemetry.Handler().ServeHTTP(c.Writer, c.Request)
	return nil
}

// ServeMetrics serves only GET /metrics, without authentication, on ln until ctx is done
// (server.metrics_addr: a listener for a scraper on a private network). It closes ln.
func (s *Server) ServeMetrics(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("GET "+metricsPath, s.telemetry.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	s.log.Info("metrics listening", "addr", ln.Addr().String(), "path", metricsPath)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
