package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// expiryCollector reports, per token, the seconds until its access and
// refresh tokens expire, computed when scraped so the values never go stale.
type expiryCollector struct {
	access, refresh *prometheus.Desc
	mu              sync.RWMutex
	byName          map[string][2]time.Time
	now             func() time.Time
}

func newExpiryCollector() *expiryCollector {
	return &expiryCollector{
		access: prometheus.NewDesc("token_access_expiry_seconds",
			"Seconds until the access token of each token expires (negative: expired).", []string{"name"}, nil),
		refresh: prometheus.NewDesc("token_refresh_expiry_seconds",
			"Seconds until the refresh token of each token expires.", []string{"name"}, nil),
		byName: map[string][2]time.Time{},
		now:    time.Now,
	}
}

// replace makes byName the whole set of tokens reported: a token deleted
// or no longer in view has no series, and none keeps a stale expiry.
func (c *expiryCollector) replace(byName map[string][2]time.Time) {
	c.mu.Lock()
	c.byName = byName
	c.mu.Unlock()
}

func (c *expiryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.access
	ch <- c.refresh
}

func (c *expiryCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	for name, e := range c.byName {
		ch <- prometheus.MustNewConstMetric(c.access, prometheus.GaugeValue, e[0].Sub(now).Seconds(), name)
		if !e[1].IsZero() {
			ch <- prometheus.MustNewConstMetric(c.refresh, prometheus.GaugeValue, e[1].Sub(now).Seconds(), name)
		}
	}
}
