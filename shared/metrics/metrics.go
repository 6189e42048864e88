// Package metrics defines the Prometheus metrics the binaries export on
// GET /metrics. Each binary registers only its own families (the api no
// sweep metrics, the worker no cache or HTTP metrics) on a registry of its
// own (no global state), so tests can run several in one process.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/token"
)

// Metrics holds the collectors of one binary. A nil *Metrics is valid and
// records nothing, and so is a method whose family the binary does not
// register.
type Metrics struct {
	reg *prometheus.Registry

	// Both binaries: the refresh protocol and event publishing.
	refreshes    *prometheus.CounterVec
	webexLatency *prometheus.HistogramVec

	// api only.
	cache        *prometheus.CounterVec
	httpRequests *prometheus.CounterVec
	httpLatency  *prometheus.HistogramVec

	// worker only.
	expiries      *expiryCollector
	sweeps        *prometheus.CounterVec
	sweepDuration prometheus.Histogram
	topicMissing  prometheus.Gauge
	outboxDepth   bool // events_outbox_depth, registered by WatchEvents

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

// Binary says whose families a Metrics registers.
type Binary int

// The binaries.
const (
	API Binary = iota
	Worker
)

// Option changes what New registers.
type Option func(*options)

type options struct {
	tokenNames bool
}

// TokenNames says whether series may carry token names (default true).
// Names tell whoever reads /metrics which flows exist, so a binary passes
// TokenNames(cfg.MetricsAddr != ""): names only where /metrics is private.
// Off, the worker's per-token expiry gauges are not exported; the
// soonest-expiry gauges, which name no token, still are.
func TokenNames(on bool) Option {
	return func(o *options) { o.tokenNames = on }
}

// New registers the families of binary b on a new registry.
func New(b Binary, opts ...Option) *Metrics {
	o := options{tokenNames: true}
	for _, opt := range opts {
		opt(&o)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{reg: reg}
	m.refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "token_refreshes_total", Help: "Refresh attempts by trigger (scheduled, inline, authorization, manual, mint) and result.",
	}, []string{"trigger", "result"})
	m.webexLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "webex_token_request_duration_seconds", Help: "Latency of calls to the Webex token endpoint by grant and outcome.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 20},
	}, []string{"grant", "outcome"})
	reg.MustRegister(m.refreshes, m.webexLatency)
	switch b {
	case API:
		m.cache = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "token_cache_lookups_total", Help: "api token cache lookups: hit, miss (read from Firestore), stale (served while Firestore failed).",
		}, []string{"result"})
		m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"})
		m.httpLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .005, .01, .05, .1, .5, 1, 2, 5},
		}, []string{"route"})
		reg.MustRegister(m.cache, m.httpRequests, m.httpLatency)
		m.cacheChildren = map[string]prometheus.Counter{}
		for _, r := range []string{"hit", "miss", "stale"} {
			m.cacheChildren[r] = m.cache.WithLabelValues(r)
		}
	case Worker:
		m.expiries = newExpiryCollector(o.tokenNames)
		m.sweeps = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sweeps_total", Help: "Worker sweeps by result (ok, error, halted)."}, []string{"result"})
		m.sweepDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sweep_duration_seconds", Help: "Duration of worker sweeps.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		})
		m.topicMissing = prometheus.NewGauge(prometheus.GaugeOpts{Name: "events_topic_missing", Help: "1 while the events topic does not exist (events wait in the outbox)."})
		m.outboxDepth = true
		reg.MustRegister(m.expiries, m.sweeps, m.sweepDuration, m.topicMissing)
	}
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Refresh records one refresh attempt (lifecycle.RefresherConfig.OnRefresh).
func (m *Metrics) Refresh(r lifecycle.RefreshReport) {
	if m == nil {
		return
	}
	m.refreshes.WithLabelValues(string(r.Trigger), r.Result).Inc()
	m.webexLatency.WithLabelValues(r.Grant, r.Result).Observe(r.WebexLatency.Seconds())
}

// SetExpiries replaces the worker's per-token expiry gauges by the tokens
// of view: /metrics reports the seconds left until each expiry at the
// time it is scraped. Tokens without an access token are left out.
func (m *Metrics) SetExpiries(view []*token.Token) {
	if m == nil || m.expiries == nil {
		return
	}
	byName := make(map[string][2]time.Time, len(view))
	for _, t := range view {
		if t != nil && t.HasAccessToken() {
			byName[t.Name] = [2]time.Time{t.AccessExpires, t.RefreshExpires}
		}
	}
	m.expiries.replace(byName)
}

// Cache records a token cache lookup: "hit", "miss" or "stale".
func (m *Metrics) Cache(result string) {
	if m == nil || m.cache == nil {
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
	if m == nil || m.httpRequests == nil {
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

// WatchEvents exports the relay's counters, read at scrape time; the
// worker, which drains the outbox, also exports its depth.
func (m *Metrics) WatchEvents(stats func() EventStats) {
	if m == nil {
		return
	}
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "events_published_total", Help: "Events published to Pub/Sub."},
			func() float64 { return float64(stats().Published) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "events_publish_failures_total", Help: "Failed event publishes (the event stays in the outbox)."},
			func() float64 { return float64(stats().Failed) }),
	)
	if m.outboxDepth {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "events_outbox_depth", Help: "Events the last drain left in the Firestore outbox (-1: no drain yet)."},
			func() float64 { return float64(stats().Backlog) }))
	}
}

// TopicMissing says whether the events topic is missing.
func (m *Metrics) TopicMissing(missing bool) {
	if m == nil || m.topicMissing == nil {
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
	if m != nil && m.sweeps != nil {
		m.sweeps.WithLabelValues(result).Inc()
		m.sweepDuration.Observe(d.Seconds())
	}
}
