package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// expiryCollector reports the seconds until the access and refresh tokens
// expire, computed when scraped so the values never go stale: per token
// (a name label) when names may be shown, and always the soonest of all,
// which names no token, so alerts work either way.
type expiryCollector struct {
	access, refresh               *prometheus.Desc // nil: no per-token series
	soonestAccess, soonestRefresh *prometheus.Desc
	mu                            sync.RWMutex
	byName                        map[string][2]time.Time
	now                           func() time.Time
}

func newExpiryCollector(tokenNames bool) *expiryCollector {
	c := &expiryCollector{
		soonestAccess: prometheus.NewDesc("token_access_expiry_soonest_seconds",
			"Seconds until the first of the access tokens expires (negative: expired); names no token.", nil, nil),
		soonestRefresh: prometheus.NewDesc("token_refresh_expiry_soonest_seconds",
			"Seconds until the first of the refresh tokens expires; names no token.", nil, nil),
		byName: map[string][2]time.Time{},
		now:    time.Now,
	}
	if tokenNames {
		c.access = prometheus.NewDesc("token_access_expiry_seconds",
			"Seconds until the access token of each token expires (negative: expired).", []string{"name"}, nil)
		c.refresh = prometheus.NewDesc("token_refresh_expiry_seconds",
			"Seconds until the refresh token of each token expires.", []string{"name"}, nil)
	}
	return c
}

// replace makes byName the whole set of tokens reported: a token deleted
// or no longer in view has no series, and none keeps a stale expiry.
func (c *expiryCollector) replace(byName map[string][2]time.Time) {
	c.mu.Lock()
	c.byName = byName
	c.mu.Unlock()
}

func (c *expiryCollector) Describe(ch chan<- *prometheus.Desc) {
	if c.access != nil {
		ch <- c.access
		ch <- c.refresh
	}
	ch <- c.soonestAccess
	ch <- c.soonestRefresh
}

func (c *expiryCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	// Like the per-token series: every access expiry counts, a refresh
	// expiry only when known.
	var soonest [2]time.Time
	var seen [2]bool
	for name, e := range c.byName {
		for i, t := range e {
			if (i == 0 || !t.IsZero()) && (!seen[i] || t.Before(soonest[i])) {
				soonest[i], seen[i] = t, true
			}
		}
		if c.access == nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.access, prometheus.GaugeValue, e[0].Sub(now).Seconds(), name)
		if !e[1].IsZero() {
			ch <- prometheus.MustNewConstMetric(c.refresh, prometheus.GaugeValue, e[1].Sub(now).Seconds(), name)
		}
	}
	for i, d := range []*prometheus.Desc{c.soonestAccess, c.soonestRefresh} {
		if seen[i] {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, soonest[i].Sub(now).Seconds())
		}
	}
}
