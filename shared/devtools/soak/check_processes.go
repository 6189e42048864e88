package main

import (
	"fmt"
	"strings"
	"time"
)

// Thresholds of a material growth over the window.
const (
	rssGrowthAbs       = 8 << 20 // bytes
	rssGrowthRel       = 0.15
	goroutineGrowthAbs = 15
	goroutineGrowthRel = 0.25
	// minTrendSpan is the shortest window worth testing.
	minTrendSpan = 40 * time.Second
)

// trendWarmup is the part of a life not tested: the first two minutes
// (the "from minute 2"), or a third of the run when it is short.
func (c *campaign) trendWarmup() time.Duration { return min(2*time.Minute, c.s.Duration/3) }

// lifeTrend is the trend test of one life of one process.
type lifeTrend struct {
	Proc            string
	Life            int
	From, To        time.Time
	RSS, Goroutines trendResult
}

func (c *campaign) trends() []lifeTrend {
	type key struct {
		proc string
		life int
	}
	series := map[key][]resourceSample{}
	var order []key
	for _, s := range c.resources.all() {
		k := key{s.Proc, s.Life}
		if series[k] == nil {
			order = append(order, k)
		}
		series[k] = append(series[k], s)
	}
	var out []lifeTrend
	for _, k := range order {
		ss := series[k]
		from := ss[0].At.Add(c.trendWarmup())
		var xs, rss, gr []float64
		var first, last time.Time
		for _, s := range ss {
			if s.At.Before(from) {
				continue
			}
			if first.IsZero() {
				first = s.At
			}
			last = s.At
			xs = append(xs, s.At.Sub(from).Seconds())
			rss = append(rss, s.RSS)
			gr = append(gr, s.Goroutines)
		}
		if last.Sub(first) < minTrendSpan {
			continue // not long-lived
		}
		out = append(out, lifeTrend{Proc: k.proc, Life: k.life, From: first, To: last,
			RSS: trend(xs, rss, rssGrowthAbs, rssGrowthRel), Goroutines: trend(xs, gr, goroutineGrowthAbs, goroutineGrowthRel)})
	}
	return out
}

// 6. Memory and goroutines of each long-lived process are flat: no growth
// trend from minute 2 to the end.
func (c *campaign) checkResources() result {
	r := result{ID: "6", Title: "memory and goroutines of each long-lived process are flat"}
	ts := c.trends()
	for _, t := range ts {
		what := fmt.Sprintf("%s-%d from %s to %s", t.Proc, t.Life, c.rel(t.From), c.rel(t.To))
		switch {
		case t.RSS.Grows && c.s.Race:
			// The race detector's shadow memory and history grow by
			// design: with SOAK_RACE, memory is reported, not judged.
			r.note("%s: resident memory grows %.1f MiB/min (race-built binaries: not judged)", what, t.RSS.Slope*60/(1<<20))
		case t.RSS.Grows:
			r.fail("%s: resident memory grows %.1f MiB/min (%.1f MiB over the window, median %.1f MiB, Mann–Kendall Z %.1f)",
				what, t.RSS.Slope*60/(1<<20), t.RSS.Growth/(1<<20), t.RSS.Median/(1<<20), t.RSS.Z)
		}
		if t.Goroutines.Grows {
			r.fail("%s: goroutines grow %.1f/min (%.0f over the window, median %.0f, Mann–Kendall Z %.1f)",
				what, t.Goroutines.Slope*60, t.Goroutines.Growth, t.Goroutines.Median, t.Goroutines.Z)
		}
	}
	if len(ts) == 0 {
		r.fail("no process lived long enough to test (%v of samples after a warm-up of %v)", minTrendSpan, c.trendWarmup())
	}
	r.Summary = fmt.Sprintf("%d long-lived processes tested after a warm-up of %v (growth material above max(%d MiB, %.0f%%) of memory, max(%d, %.0f%%) of goroutines, and Mann–Kendall Z > %.2f)",
		len(ts), c.trendWarmup(), rssGrowthAbs>>20, rssGrowthRel*100, goroutineGrowthAbs, goroutineGrowthRel*100, mannKendallZ)
	return r
}

// 7. No secret in any log line; no process exited that the campaign did
// not kill. Besides: no secret in an event or an admin answer; a process
// told SIGTERM exits 0 within 10 s; no data race, panic or fatal error.
func (c *campaign) checkLogsAndExits() result {
	r := result{ID: "7", Title: "no secret in any log line; no process exited that the campaign did not kill"}
	for _, l := range c.logs.Leaks {
		r.fail("secret %s in %s", l.Secret, l.Where)
	}
	for _, e := range c.events.all() {
		text := e.RawData
		for k, v := range e.Attributes {
			text += " " + k + "=" + v
		}
		if v, ok := c.secrets.find(text); ok {
			r.fail("secret %s in event %s", redact(v), e.ID)
		}
	}
	for _, b := range c.adminBodies.all() {
		if v, ok := c.secrets.find(b); ok {
			r.fail("secret %s in an admin answer", redact(v))
		}
	}
	lives := 0
	for _, p := range c.procs {
		for _, l := range p.Lives() {
			lives++
			s := p.snapshot(l)
			name := fmt.Sprintf("%s-%d", s.Proc, s.N)
			switch {
			case s.Ended.IsZero():
				r.fail("%s did not end after SIGTERM", name)
			case s.Told == "":
				r.fail("%s exited by itself at %s (%s); see %s", name, c.rel(s.Ended), s.Exit, s.Log)
			case s.Told == "SIGTERM" && (s.Code != 0 || s.Ended.Sub(s.ToldAt)-c.stalls.in(s.ToldAt, s.Ended) > 10*time.Second):
				r.fail("%s: SIGTERM at %s, then %s after %v; want exit 0 within 10 s", name, c.rel(s.ToldAt), s.Exit, s.Ended.Sub(s.ToldAt).Round(time.Millisecond))
			}
		}
	}
	for _, line := range c.logs.Crashes {
		r.fail("%s", line)
	}
	r.Summary = fmt.Sprintf("%d log lines of %d process lives scanned for %d secrets (%s)", c.logs.Lines, lives, c.secrets.len(), describeCounts(c.logs.BySeverity))
	return r
}

// M. Not one of the seven: each binary exports only its own metric
// families, and each worker's expiry gauges cover every token, so that
// the README's alert rules are right (issue 10, bug 4).
func (c *campaign) checkMetrics() result {
	r := result{ID: "M", Title: "each binary exports its own metric families; the public /metrics names no token, and the workers' soonest-expiry gauges are there"}
	family := func(page map[string]float64, name string) bool {
		for k := range page {
			if k == name || strings.HasPrefix(k, name+"{") || strings.HasPrefix(k, name+"_") {
				return true
			}
		}
		return false
	}
	checked := 0
	for _, p := range c.procs {
		page, ok := c.metricsPages[p.Name]
		if !ok {
			continue
		}
		checked++
		// The soak starts no process with METRICS_ADDR: every /metrics it
		// reads is the public one, where no series may carry a token name.
		for k := range page {
			for name := range c.final {
				if strings.Contains(k, `"`+name+`"`) {
					r.fail("%s's public /metrics names token %s: %s", p.Name, name, k)
				}
			}
		}
		switch p.Kind {
		case "api":
			for _, f := range []string{"sweeps_total", "sweep_duration_seconds"} {
				if family(page, f) {
					r.fail("%s exports the worker's family %s", p.Name, f)
				}
			}
		case "worker":
			if family(page, "token_cache_lookups_total") {
				r.fail("%s exports the api's family token_cache_lookups_total", p.Name)
			}
			if l := p.Current(); l == nil || time.Since(p.snapshot(l).Ready) < 2*sweepInterval {
				continue // too young to have seen every token
			}
			for _, f := range []string{"token_access_expiry_soonest_seconds", "token_refresh_expiry_soonest_seconds"} {
				if _, ok := page[f]; !ok {
					r.fail("%s has no %s", p.Name, f)
				}
			}
		}
	}
	r.Summary = fmt.Sprintf("/metrics of %d processes read at the end", checked)
	return r
}
