package main

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// 1. Every GET for a token that had a servable token in Firestore got
// 200, except uncached reads while Firestore was unreachable (503 within
// the documented time, never 500 or a hang). The documented time is
// INLINE_REFRESH_TIMEOUT plus a little, for every GET: within the 2 s a
// flow waits (flowTimeout). Besides: every 200 carried
// a token Webex issued and had not expired; a token with a passphrase of
// its own refused TOKEN_PASSPHRASE; once the sample had written a token,
// no api served an older one after CACHE_MAX_AGE; admin requests never
// got a 5xx other than 503, nor hung.
func (c *campaign) checkRequests() result {
	r := result{ID: "1", Title: "every GET of a servable token got 200 (503 only for uncached reads while Firestore was unreachable, in time)"}
	down := make([][]window, len(c.apis()))
	for i, p := range c.apis() {
		down[i] = p.downWindows(c.tEnd.Add(time.Minute))
	}
	outages := c.firestoreOutages()
	writes := map[string][]sampleWrite{}
	for _, w := range c.sample.all() {
		if !w.At.IsZero() {
			writes[w.Token] = append(writes[w.Token], w)
		}
	}
	counts := map[string]int{}
	excusedDown, excused503, checkedFresh, excusedStall := 0, 0, 0, 0
	for _, q := range c.reqs.all() {
		if inAny(down[q.API], q.Start.Add(-500*time.Millisecond), q.End.Add(500*time.Millisecond)) {
			excusedDown++
			continue
		}
		key := fmt.Sprintf("%s %d", q.Kind, q.Status)
		if q.Status == 0 {
			key = q.Kind + " " + q.Err
		}
		counts[key]++
		where := fmt.Sprintf("%s %s on api-%d at %s", q.Kind, q.Token, q.API+1, c.rel(q.Start))
		stalled := c.stalls.in(q.Start, q.End)
		if q.Status == 0 {
			if q.Err == "timeout" && stalled >= time.Second {
				excusedStall++
				r.note("%s: no answer within %v, but the machine stalled %v meanwhile", where, requestTimeout, stalled.Round(time.Millisecond))
				continue
			}
			r.fail("%s: no answer (%s) after %v from a running instance", where, q.Err, q.latency().Round(time.Millisecond))
			continue
		}
		switch q.Kind {
		case "probe":
			if q.Status != http.StatusUnauthorized {
				r.fail("%s: TOKEN_PASSPHRASE for a token with its own passphrase got %d, want 401", where, q.Status)
			}
			continue
		case "put", "list", "refresh":
			if q.Status >= 500 && q.Status != http.StatusServiceUnavailable {
				r.fail("%s: admin request got %d", where, q.Status)
			}
			continue
		}
		if q.Status == http.StatusOK {
			exp, ok := c.fake.AccessTokenExpiry(q.Served)
			switch {
			case !ok:
				r.fail("%s: 200 with a token Webex never issued", where)
			case !exp.After(q.Start):
				r.fail("%s: 200 with a token that had expired %v earlier", where, q.Start.Sub(exp).Round(time.Millisecond))
			}
		}
		d, ok := c.tl.at(q.Token, q.Start)
		servable := ok && d.AccessToken != "" && d.AccessExpires.Sub(q.End) >= minValidity+validitySlack
		outage := inAny(outages, q.Start, q.End)
		if q.latency()-stalled > flowTimeout {
			during := ""
			if outage {
				during = " (Firestore unreachable)"
			}
			r.fail("%s: %d after %v%s, later than a flow waits (%v; documented: within INLINE_REFRESH_TIMEOUT %v plus a little)",
				where, q.Status, q.latency().Round(time.Millisecond), during, flowTimeout, inlineTimeout)
		}
		switch {
		case q.Status >= 500 && q.Status != http.StatusServiceUnavailable:
			r.fail("%s: %d", where, q.Status)
		case q.Status == http.StatusServiceUnavailable && outage:
			excused503++
		case servable && q.Status != http.StatusOK:
			r.fail("%s: %d although Firestore held a token with %v left (generation %d, status %q)",
				where, q.Status, d.AccessExpires.Sub(q.Start).Round(time.Second), d.Generation, d.state())
		case !servable && q.Status != http.StatusOK && q.Status != http.StatusConflict && q.Status != http.StatusServiceUnavailable:
			r.fail("%s: %d; want 200, 409 or 503", where, q.Status)
		}
		// The migration: what the sample wrote is served within CACHE_MAX_AGE.
		if q.Status == http.StatusOK && len(writes[q.Token]) > 0 {
			var last *sampleWrite
			for i, w := range writes[q.Token] {
				if !w.At.Add(cacheMaxAge + validitySlack).After(q.Start) {
					last = &writes[q.Token][i]
				}
			}
			if last != nil && !inAny(outages, last.At.Add(-cacheMaxAge), q.End) {
				checkedFresh++
				if seen, ok := c.tl.seen(q.Served); ok && seen.Before(last.At) {
					r.fail("%s: served a token older than the one the sample wrote at %s (more than CACHE_MAX_AGE %v before)",
						where, c.rel(last.At), cacheMaxAge)
				}
			}
		}
	}
	r.Summary = fmt.Sprintf("%d requests judged (%s); %d overlapped an instance the campaign had stopped; %d 503s while Firestore was unreachable; %d GETs checked against the sample's writes; %d without an answer while the machine stalled",
		sum(counts), describeCounts(counts), excusedDown, excused503, checkedFresh, excusedStall)
	return r
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func describeCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
