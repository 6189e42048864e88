package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// maxListed bounds the violations and notes the report lists per check.
const maxListed = 25

// writeReport writes report.md and the plots into dir and returns the
// report's path.
func writeReport(dir string, s settings, cs []*campaign, started time.Time) (string, error) {
	var b strings.Builder
	pass := passed(cs)
	verdict := "PASS"
	if !pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "# Soak report: %s\n\n", verdict)
	fmt.Fprintf(&b, "- seed **%d**, %v per profile, profiles %s, started %s, took %v\n",
		s.Seed, s.Duration, strings.Join(s.Profiles, ", "), started.Format(time.RFC3339), time.Since(started).Round(time.Second))
	fmt.Fprintf(&b, "- replay: `SOAK_SEED=%d SOAK_DURATION=%v make soak`", s.Seed, s.Duration)
	if s.Race {
		b.WriteString(" with `SOAK_RACE=1` (binaries built with the race detector)")
	}
	b.WriteString("\n")
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		fmt.Fprintf(&b, "- code: `%s`\n", strings.TrimSpace(string(out)))
	}
	b.WriteString("- time compressed: access tokens live " + accessLifetime.String() +
		fmt.Sprintf("; REFRESH_THRESHOLD %v, REFRESH_LEAD %v, SWEEP_INTERVAL %v, SWEEP_TIMEOUT %v, MIN_TOKEN_VALIDITY %v, CACHE_MAX_AGE %v, INLINE_REFRESH_TIMEOUT %v, WEBEX_TIMEOUT %v, REFRESH_EXPIRY_WARNING %v; not configurable: backoff floor %v, lease %v, outbox settle %v\n",
			refreshThreshold, refreshLead, sweepInterval, sweepTimeout, minValidity, cacheMaxAge, inlineTimeout, webexTimeout, expiryWarning, backoffFloor, leaseTTL, outboxSettle))
	if len(cs) > 0 {
		n, total, longest := cs[0].stalls.summary(started, time.Now())
		fmt.Fprintf(&b, "- the machine stalled (this process woke up %v or more late) %d times, %v in all, the longest %v; bounds on time are stretched by the stalls in their window\n",
			stallMin, n, total.Round(time.Millisecond), longest.Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "- per profile: %d api and %d worker processes, %d flow clients at %d GET/s each, an administrator every ~%v, the fake Webex rotating refresh tokens\n\n",
		s.APIs, s.Workers, flowClients, flowRate, adminEvery)

	b.WriteString("## Invariants\n\n| | check |")
	for _, c := range cs {
		fmt.Fprintf(&b, " %s |", c.p.Name)
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(cs)) + "\n")
	if len(cs) > 0 && cs[0].results != nil {
		for i, r := range cs[0].results {
			fmt.Fprintf(&b, "| %s | %s |", r.ID, r.Title)
			for _, c := range cs {
				switch {
				case c.err != nil:
					b.WriteString(" not run |")
				case c.results[i].Pass():
					b.WriteString(" pass |")
				default:
					fmt.Fprintf(&b, " **FAIL** (%d) |", len(c.results[i].Violations))
				}
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\nG and M are not among the issue's seven invariants: G checks that no grant Webex made is lost (Firestore cut right after Webex answered), M the metrics contract (issue 10, bug 4); both fail the run too.\n\n")

	for _, c := range cs {
		if err := c.writeProfile(&b, dir); err != nil {
			return "", err
		}
	}
	if err := writeSummary(dir, s, cs); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "report.md")
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}

// writeSummary writes summary.json: the verdicts and violations, for tools
// that compare runs.
func writeSummary(dir string, s settings, cs []*campaign) error {
	type check struct {
		ID         string   `json:"id"`
		Title      string   `json:"title"`
		Pass       bool     `json:"pass"`
		Summary    string   `json:"summary"`
		Violations []string `json:"violations"`
		Notes      []string `json:"notes"`
	}
	type prof struct {
		Name   string  `json:"name"`
		Error  string  `json:"error,omitempty"`
		Checks []check `json:"checks"`
	}
	out := struct {
		Seed     uint64 `json:"seed"`
		Duration string `json:"duration"`
		Pass     bool   `json:"pass"`
		Profiles []prof `json:"profiles"`
	}{Seed: s.Seed, Duration: s.Duration.String(), Pass: passed(cs)}
	for _, c := range cs {
		p := prof{Name: c.p.Name}
		if c.err != nil {
			p.Error = c.err.Error()
		}
		for _, r := range c.results {
			p.Checks = append(p.Checks, check{ID: r.ID, Title: r.Title, Pass: r.Pass(), Summary: r.Summary, Violations: r.Violations, Notes: r.Notes})
		}
		out.Profiles = append(out.Profiles, p)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "summary.json"), b, 0o644)
}

func passed(cs []*campaign) bool {
	for _, c := range cs {
		if c.err != nil {
			return false
		}
		for _, r := range c.results {
			if !r.Pass() {
				return false
			}
		}
	}
	return true
}

func (c *campaign) writeProfile(b *strings.Builder, dir string) error {
	fmt.Fprintf(b, "## Profile %s\n\n", c.p.Name)
	fmt.Fprintf(b, "TOKEN_ENCRYPTION_KEYS %s; Node sample stand-in %s; collection `%s`; logs in `%s`.\n\n",
		onOff(c.p.Encrypted), onOff(c.p.Sample), c.coll, rel(dir, c.dir))
	if c.err != nil {
		fmt.Fprintf(b, "**The profile could not run: %v**\n\n", c.err)
		return nil
	}
	b.WriteString("### Checks\n\n")
	for _, r := range c.results {
		status := "pass"
		if !r.Pass() {
			status = "**FAIL**"
		}
		fmt.Fprintf(b, "**%s. %s**: %s. %s.\n\n", r.ID, r.Title, status, r.Summary)
		list(b, "violation", r.Violations)
		list(b, "note", r.Notes)
	}
	c.writeRequests(b)
	c.writeWebex(b)
	c.writeFaults(b)
	return c.writeResources(b, dir)
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

func rel(base, path string) string {
	if r, err := filepath.Rel(base, path); err == nil {
		return r
	}
	return path
}

func list(b *strings.Builder, what string, items []string) {
	for i, v := range items {
		if i == maxListed {
			fmt.Fprintf(b, "- … and %d more %ss\n", len(items)-maxListed, what)
			break
		}
		fmt.Fprintf(b, "- %s\n", v)
	}
	if len(items) > 0 {
		b.WriteString("\n")
	}
}

func (c *campaign) writeRequests(b *strings.Builder) {
	b.WriteString("### Requests\n\n| request | api | answers | p50 | p99 | max |\n|---|---|---|---|---|---|\n")
	type key struct {
		kind string
		api  int
	}
	byKey := map[key][]request{}
	var keys []key
	for _, q := range c.reqs.all() {
		k := key{q.Kind, q.API}
		if byKey[k] == nil {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], q)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].kind != keys[j].kind {
			return keys[i].kind < keys[j].kind
		}
		return keys[i].api < keys[j].api
	})
	for _, k := range keys {
		qs := byKey[k]
		counts := map[string]int{}
		var lat []float64
		for _, q := range qs {
			if q.Status == 0 {
				counts[q.Err]++
			} else {
				counts[fmt.Sprint(q.Status)]++
			}
			lat = append(lat, q.latency().Seconds()*1000)
		}
		sort.Float64s(lat)
		fmt.Fprintf(b, "| %s | api-%d | %s | %.1f ms | %.1f ms | %.1f ms |\n", k.kind, k.api+1, describeCounts(counts),
			pct(lat, 0.5), pct(lat, 0.99), lat[len(lat)-1])
	}
	for _, kind := range []string{"get", ""} {
		var lat []float64
		for _, q := range c.reqs.all() {
			if kind == "" || q.Kind == kind {
				lat = append(lat, q.latency().Seconds()*1000)
			}
		}
		if len(lat) == 0 {
			continue
		}
		sort.Float64s(lat)
		what := "all requests"
		if kind != "" {
			what = "all " + kind
		}
		fmt.Fprintf(b, "| **%s** | every api | **%d** | **%.1f ms** | **%.1f ms** | %.1f ms |\n", what, len(lat), pct(lat, 0.5), pct(lat, 0.99), lat[len(lat)-1])
	}
	if ws := c.sample.all(); len(ws) > 0 {
		ok := 0
		for _, w := range ws {
			if !w.At.IsZero() {
				ok++
			}
		}
		fmt.Fprintf(b, "\nThe Node sample stand-in refreshed %d times (%d written, %d failed at Webex or Firestore).\n", len(ws), ok, len(ws)-ok)
	}
	b.WriteString("\n")
}

func pct(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

func (c *campaign) writeWebex(b *strings.Builder) {
	rotations := int64(0)
	for name, d := range c.final {
		g0 := int64(0)
		if vs := c.tl.versions(name); len(vs) > 0 {
			g0 = vs[0].Generation
		}
		rotations += d.Generation - g0
	}
	states := map[string]int{}
	for _, d := range c.final {
		states[d.state()]++
	}
	fmt.Fprintf(b, "### Webex, rotations, events\n\n- fake Webex: %d token endpoint calls (%d refreshes, %d code exchanges), %d authorizations\n",
		c.stats.Calls, c.stats.Refreshes, c.stats.Exchanges, c.stats.Authorizations)
	fmt.Fprintf(b, "- rotations committed (generations): %d over %d tokens; final states: %s\n", rotations, len(c.final), describeCounts(states))
	byType := map[string]int{}
	ids := map[string]bool{}
	for _, e := range c.events.all() {
		if !ids[e.ID] {
			ids[e.ID] = true
			byType[e.Type]++
		}
	}
	fmt.Fprintf(b, "- events: %d messages, %d distinct: %s\n\n", len(c.events.all()), len(ids), describeCounts(byType))
}

func (c *campaign) writeFaults(b *strings.Builder) {
	b.WriteString("### Faults\n\n| # | fault | target / parameter | start | end | lasted | full health after its end | note |\n|---|---|---|---|---|---|---|---|\n")
	longest := time.Duration(0)
	for i, rec := range c.recoveries() {
		f := rec.Fault
		health := "interrupted by the next fault"
		switch {
		case !rec.Healthy.IsZero():
			d := rec.Healthy.Sub(f.End)
			longest = max(longest, d)
			health = d.Round(100 * time.Millisecond).String()
		case !rec.Interrupted:
			health = "**not reached**"
		}
		target := f.Target
		if f.Param != "" {
			target = strings.TrimSpace(target + " " + f.Param)
		}
		fmt.Fprintf(b, "| %d | %s | %s | %s | %s | %v | %s | %s |\n", i+1, f.Kind, target, c.rel(f.Start), c.rel(f.End),
			f.End.Sub(f.Start).Round(100*time.Millisecond), health, f.Note)
	}
	revoked := 0
	for _, t := range c.tokens {
		if !t.Revoked.IsZero() {
			revoked++
		}
	}
	fmt.Fprintf(b, "\nLongest time from a fault's end to full health (every instance up, every token with a valid grant active and servable, no event older than 5 s in the outbox): **%v**. Integrations revoked by their user during the run: %d.\n\n",
		longest.Round(100*time.Millisecond), revoked)
}

func (c *campaign) writeResources(b *strings.Builder, dir string) error {
	svg := c.p.Name + "-resources.svg"
	if err := os.WriteFile(filepath.Join(dir, svg), []byte(c.plotResources()), 0o644); err != nil {
		return err
	}
	var csv strings.Builder
	csv.WriteString("seconds_after_t0,process,life,rss_bytes,goroutines\n")
	for _, s := range c.resources.all() {
		fmt.Fprintf(&csv, "%.1f,%s,%d,%.0f,%.0f\n", s.At.Sub(c.t0).Seconds(), s.Proc, s.Life, s.RSS, s.Goroutines)
	}
	data := c.p.Name + "-resources.csv"
	if err := os.WriteFile(filepath.Join(dir, data), []byte(csv.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(b, "### Memory and goroutines\n\n![%s](%s)\n\nSamples: [%s](%s).\n\n", svg, svg, data, data)
	c.writeResourceTable(b)
	b.WriteString("| process | tested window | RSS median | RSS slope | goroutines median | goroutines slope | trend |\n|---|---|---|---|---|---|---|\n")
	for _, t := range c.trends() {
		verdict := "flat"
		if t.RSS.Grows || t.Goroutines.Grows {
			verdict = "**grows**"
		}
		fmt.Fprintf(b, "| %s-%d | %s … %s | %.1f MiB | %+.2f MiB/min | %.0f | %+.2f/min | %s |\n", t.Proc, t.Life, c.rel(t.From), c.rel(t.To),
			t.RSS.Median/(1<<20), t.RSS.Slope*60/(1<<20), t.Goroutines.Median, t.Goroutines.Slope*60, verdict)
	}
	b.WriteString("\n")
	return nil
}

// resourceColumns is how many points in time the resource table shows.
const resourceColumns = 10

// writeResourceTable writes, per process, its resident memory and
// goroutines at evenly spaced times of the run (the sample nearest each,
// from whichever life of the process was up then).
func (c *campaign) writeResourceTable(b *strings.Builder) {
	samples := c.resources.all()
	if len(samples) == 0 || !c.tEnd.After(c.t0) {
		return
	}
	byProc := map[string][]resourceSample{}
	for _, s := range samples {
		byProc[s.Proc] = append(byProc[s.Proc], s)
	}
	span := c.tEnd.Sub(c.t0)
	b.WriteString("Resident memory (MiB) / goroutines over the run:\n\n| process |")
	for i := range resourceColumns {
		fmt.Fprintf(b, " t0+%s |", (span * time.Duration(i) / (resourceColumns - 1)).Round(time.Second))
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", resourceColumns) + "\n")
	for _, p := range c.procs {
		ss := byProc[p.Name]
		fmt.Fprintf(b, "| %s |", p.Name)
		for i := range resourceColumns {
			at := c.t0.Add(span * time.Duration(i) / (resourceColumns - 1))
			best, found := resourceSample{}, false
			for _, s := range ss {
				if d := s.At.Sub(at).Abs(); d <= 2*resourceEvery && (!found || d < best.At.Sub(at).Abs()) {
					best, found = s, true
				}
			}
			if !found {
				b.WriteString(" – |")
				continue
			}
			fmt.Fprintf(b, " %.1f / %.0f |", best.RSS/(1<<20), best.Goroutines)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}
