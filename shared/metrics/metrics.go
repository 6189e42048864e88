// Package metrics defines the Prometheus metrics both binaries export on
// GET /metrics. Each binary owns a registry (no global state), so tests can
// run several in one process.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wxcc/tokenservice/shared/token"
)

// Metrics holds the collectors. A nil *Metrics is valid and records nothing.
type Metrics struct {
	reg *prometheus.Registry

	refreshes     *prometheus.CounterVec
	webexLatency  *prometheus.HistogramVec
	expiries      *expiryCollector
	cache         *prometheus.CounterVec
	httpRequests  *prometheus.CounterVec
	httpLatency   *prometheus.HistogramVec
	sweeps        *prometheus.CounterVec
	sweepDuration prometheus.Histogram
	topicMissing  prometheus.Gauge

	// Resolved label children of the hot path's metrics, so that a
	// request costs no label hashing.
	httpChildren  sync.Map // httpKey -> httpChild
	cacheChildren map[string]prometheus.Counter
}

type httpKey struct {
	route string
	code  int
}

type httpChild struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// New registers every collector on a new registry.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{reg: reg}
	m.refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "token_refreshes_total", Help: "Refresh attempts by trigger (scheduled, inline, authorization) and result.",
	}, []string{"trigger", "result"})
	m.webexLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "webex_token_request_duration_seconds", Help: "Latency of calls to the Webex token endpoint by grant and outcome.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 20},
	}, []string{"grant", "outcome"})
	m.expiries = newExpiryCollector()
	m.cache = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "token_cache_lookups_total", Help: "api token cache lookups: hit, miss (read from Firestore), stale (served while Firestore failed).",
	}, []string{"result"})
	m.topicMissing = prometheus.NewGauge(prometheus.GaugeOpts{Name: "events_topic_missing", Help: "1 while the events topic does not exist (events wait in the outbox)."})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total", Help: "HTTP requests by route and status code.",
	}, []string{"route", "code"})
	m.httpLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: []float64{.0005, .001, .005, .01, .05, .1, .5, 1, 2, 5},
	}, []string{"route"})
	m.sweeps = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sweeps_total", Help: "Worker sweeps by result (ok, error, halted)."}, []string{"result"})
	m.sweepDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "sweep_duration_seconds", Help: "Duration of worker sweeps.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
	})
	for _, c := range []prometheus.Collector{m.refreshes, m.webexLatency, m.expiries, m.cache, m.topicMissing, m.httpRequests, m.httpLatency, m.sweeps, m.sweepDuration} {
		f(c)
	}
	m.cacheChildren = map[string]prometheus.Counter{}
	for _, r := range []string{"hit", "miss", "stale"} {
		m.cacheChildren[r] = m.cache.WithLabelValues(r)
	}
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Refresh records one refresh attempt (token.RefresherConfig.OnRefresh).
func (m *Metrics) Refresh(r token.RefreshReport) {
	if m == nil {
		return
	}
	m.refreshes.WithLabelValues(string(r.Trigger), r.Result).Inc()
	m.webexLatency.WithLabelValues(r.Grant, r.Result).Observe(r.WebexLatency.Seconds())
	m.TokenExpiry(r.Token)
}

// TokenExpiry remembers t's expiries; /metrics reports the seconds left
// until each at the time it is scraped.
func (m *Metrics) TokenExpiry(t *token.Token) {
	if m == nil || t == nil || !t.HasAccessToken() {
		return
	}
	m.expiries.set(t.Name, t.AccessExpires, t.RefreshExpires)
}

// Cache records a token cache lookup: "hit", "miss" or "stale".
func (m *Metrics) Cache(result string) {
	if m == nil {
		return
	}
	if c, ok := m.cacheChildren[result]; ok {
		c.Inc()
		return
	}
	m.cache.WithLabelValues(result).Inc()
}

// HTTP records one request.
func (m *Metrics) HTTP(route string, code int, d time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	k := httpKey{route, code}
	ch, ok := m.httpChildren.Load(k)
	if !ok {
		ch, _ = m.httpChildren.LoadOrStore(k, httpChild{
			count:   m.httpRequests.WithLabelValues(route, strconv.Itoa(code)),
			latency: m.httpLatency.WithLabelValues(route),
		})
	}
	c := ch.(httpChild)
	c.count.Inc()
	c.latency.Observe(d.Seconds())
}

// EventStats is what the event relay counts.
type EventStats struct {
	Published, Failed uint64
	// Backlog is what the last drain left in the outbox; -1 before one.
	Backlog int
}

// WatchEvents exports the relay's counters, read at scrape time.
func (m *Metrics) WatchEvents(stats func() EventStats) {
	if m == nil {
		return
	}
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "events_published_total", Help: "Events published to Pub/Sub."},
			func() float64 { return float64(stats().Published) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "events_publish_failures_total", Help: "Failed event publishes (the event stays in the outbox)."},
			func() float64 { return float64(stats().Failed) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "events_outbox_depth", Help: "Events the last drain left in the Firestore outbox (-1: no drain yet)."},
			func() float64 { return float64(stats().Backlog) }),
	)
}

// TopicMissing says whether the events topic is missing.
func (m *Metrics) TopicMissing(missing bool) {
	if m == nil {
		return
	}
	v := 0.0
	if missing {
		v = 1
	}
	m.topicMissing.Set(v)
}

// Sweep records a worker sweep.
func (m *Metrics) Sweep(result string, d time.Duration) {
	if m != nil {
		m.sweeps.WithLabelValues(result).Inc()
		m.sweepDuration.Observe(d.Seconds())
	}
}
