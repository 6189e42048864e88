package main

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/wxcc/tokenservice/shared/token"
)

// result is the verdict on one invariant of one profile.
type result struct {
	ID         string // "1" … "7", and "M" for the metrics check
	Title      string
	Summary    string
	Violations []string
	Notes      []string
}

func (r *result) Pass() bool { return len(r.Violations) == 0 }

func (r *result) fail(format string, args ...any) {
	r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
}

func (r *result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// evaluate runs every check on what the campaign observed.
func (c *campaign) evaluate() []result {
	c.logs = c.readLogs()
	g := c.analyzeGrants()
	return []result{
		c.checkRequests(),
		c.checkRefreshTokens(g),
		c.checkEvents(),
		c.checkRecovery(),
		c.checkReauth(g),
		c.checkResources(),
		c.checkLogsAndExits(),
		c.checkMetrics(),
	}
}

// rel writes t as seconds after t0, the way the report gives times.
func (c *campaign) rel(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return fmt.Sprintf("t0%+.1fs", t.Sub(c.t0).Seconds())
}

func (c *campaign) tokenByName(name string) *soakToken {
	for _, t := range c.tokens {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// firestoreOutages are the windows in which the binaries could not reach
// Firestore, stretched by how long the api keeps serving what it has
// without asking again (storeRetry) and the answer slack.
func (c *campaign) firestoreOutages() []window {
	var out []window
	for _, f := range c.faults.all() {
		if f.Kind == faultFirestore {
			end := f.End
			if end.IsZero() {
				end = c.tEnd
			}
			out = append(out, window{f.Start, end.Add(storeRetry + answerSlack)})
		}
	}
	return out
}

func inAny(ws []window, from, to time.Time) bool {
	for _, w := range ws {
		if w.overlaps(from, to) {
			return true
		}
	}
	return false
}

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

// grants is what the ledger of the fake Webex says about refresh tokens
// presented again after they were spent.
type grants struct {
	// reused are the refresh tokens presented after rotation retired them.
	reused []reuse
	// casualties are the tokens whose refresh token was spent without the
	// service storing the new one, for an excused reason.
	casualties map[string]string
}

type reuse struct {
	Token   string
	Granted time.Time
	Times   int
	// Excuse is why it is allowed ("" if it is not).
	Excuse string
	// Why explains a violation.
	Why string
}

func (c *campaign) analyzeGrants() grants {
	g := grants{casualties: map[string]string{}}
	byClient := map[string]string{}
	for _, t := range c.tokens {
		byClient[t.ClientID] = t.Name
	}
	sampleSpent := map[string]sampleWrite{}
	for _, w := range c.sample.all() {
		sampleSpent[w.OldRefresh] = w
	}
	var kills []time.Time
	for _, f := range c.faults.all() {
		if f.Kind == faultKillAPI || f.Kind == faultKillWorker {
			kills = append(kills, f.Start)
		}
	}
	for rt, u := range c.ledger {
		if u.AfterRotation == 0 || u.Granted == 0 {
			continue
		}
		name := byClient[u.ClientID]
		x := reuse{Token: name, Granted: u.FirstGrant, Times: u.AfterRotation}
		w, bySample := sampleSpent[rt]
		switch {
		case u.Lost > 0:
			x.Excuse = "a retry after an answer that was lost"
		case bySample && w.At.IsZero():
			x.Excuse = "the sample got the grant but did not store it (" + w.Failed + ")"
		case bySample:
			x.Why = fmt.Sprintf("the sample had replaced it at %s (its write of %s)", c.rel(w.At), c.rel(w.At))
		case near(kills, u.FirstGrant, -100*time.Millisecond, webexTimeout+5*time.Second):
			x.Excuse = "the answer was lost with a process killed (SIGKILL) before it could store it"
		case near(c.logs.StoreFailed[name], u.FirstGrant, 0, 15*time.Second):
			x.Excuse = "the answer arrived but could not be stored (the process logged \"new token could not be stored\")"
		default:
			x.Why = "presented again after Webex had rotated it"
		}
		if x.Excuse != "" {
			g.casualties[name] = x.Excuse
		}
		g.reused = append(g.reused, x)
	}
	sort.Slice(g.reused, func(i, j int) bool { return g.reused[i].Granted.Before(g.reused[j].Granted) })
	return g
}

// near says whether some t in ts lies in [at+from, at+to].
func near(ts []time.Time, at time.Time, from, to time.Duration) bool {
	for _, t := range ts {
		if !t.Before(at.Add(from)) && !t.After(at.Add(to)) {
			return true
		}
	}
	return false
}

// 2. No refresh token was presented to Webex twice, except a retry after
// an answer that was lost (counted separately).
func (c *campaign) checkRefreshTokens(g grants) result {
	r := result{ID: "2", Title: "no refresh token presented to Webex twice (retries after lost answers counted apart)"}
	excused := map[string]int{}
	for _, x := range g.reused {
		if x.Excuse != "" {
			excused[x.Excuse] += x.Times
			r.note("%s: refresh token granted at %s presented %d more time(s): %s", x.Token, c.rel(x.Granted), x.Times, x.Excuse)
			continue
		}
		r.fail("%s: refresh token granted at %s presented %d more time(s): %s", x.Token, c.rel(x.Granted), x.Times, x.Why)
	}
	presented, unanswered, granted, lost := 0, 0, 0, 0
	for _, u := range c.ledger {
		presented += u.Presented
		unanswered += u.Unanswered
		granted += u.Granted
		lost += u.Lost
	}
	r.Summary = fmt.Sprintf("%d refresh calls: %d granted, %d unanswered (faults), %d answers lost; presented again after rotation: %d excused (%s), %d not",
		presented, granted, unanswered, lost, sum(excused), describeCounts(excused), len(r.Violations))
	return r
}

// missingRotations lists the token.rotated events not received for the
// generations of the final documents.
func (c *campaign) missingRotations() []string {
	got := map[string]bool{}
	for _, e := range c.events.all() {
		got[e.ID] = true
	}
	var missing []string
	for name, d := range c.final {
		g0 := int64(0)
		if vs := c.tl.versions(name); len(vs) > 0 {
			g0 = vs[0].Generation
		}
		for g := g0 + 1; g <= d.Generation; g++ {
			if id := fmt.Sprintf("%s/%d/%s", name, g, token.EventRotated); !got[id] {
				missing = append(missing, id)
			}
		}
	}
	sort.Strings(missing)
	return missing
}

// 3. Every generation committed to Firestore has its token.rotated
// delivered at least once; after dropping duplicates by ce-id, nothing is
// missing. Besides, nothing false: no event for a generation never
// committed, and the expiries it carries are the committed ones.
func (c *campaign) checkEvents() result {
	r := result{ID: "3", Title: "every committed generation has its token.rotated delivered (nothing missing, nothing false)"}
	evs := c.events.all()
	distinct := map[string]event{}
	byType := map[string]int{}
	outOfOrder := 0
	lastGen := map[string]int64{}
	for _, e := range evs {
		if _, ok := distinct[e.ID]; !ok {
			distinct[e.ID] = e
			byType[e.Type]++
		}
		if e.Type == string(token.EventRotated) {
			if e.Generation < lastGen[e.Name] {
				outOfOrder++
			}
			lastGen[e.Name] = max(lastGen[e.Name], e.Generation)
		}
	}
	for _, id := range c.missingRotations() {
		r.fail("%s never arrived", id)
	}
	for _, e := range distinct {
		if e.Type == string(token.EventSweepHalted) {
			continue // invariant 5
		}
		if e.Data.Name != e.Name || e.Data.Generation != e.Generation {
			r.fail("%s: attributes say %s/%d, data says %s/%d", e.ID, e.Name, e.Generation, e.Data.Name, e.Data.Generation)
		}
		if c.tokenByName(e.Name) == nil {
			r.fail("%s: an event for a token the campaign never had", e.ID)
			continue
		}
		if e.Type != string(token.EventRotated) {
			continue
		}
		vs := c.tl.versions(e.Name)
		var committed *docState
		for i := range vs {
			if vs[i].Generation == e.Generation {
				committed = &vs[i]
				break
			}
		}
		if committed == nil {
			r.fail("%s: no such generation was ever committed (Firestore went up to %d)", e.ID, maxGeneration(vs))
			continue
		}
		if got, want := e.Data.AccessExpires, committed.AccessExpires.UnixMilli(); got != want {
			r.fail("%s: accessExpires %d, but the committed generation holds %d", e.ID, got, want)
		}
	}
	r.Summary = fmt.Sprintf("%d messages received, %d distinct ce-ids (%s); %d token.rotated arrived behind a later generation of the same token (subscribers order by generation)",
		len(evs), len(distinct), describeCounts(byType), outOfOrder)
	return r
}

func maxGeneration(vs []docState) int64 {
	var g int64
	for _, v := range vs {
		g = max(g, v.Generation)
	}
	return g
}

// recovery is how long the service took to be whole after one fault.
type recovery struct {
	Fault fault
	// Healthy is when full health came back (zero: not before the next
	// fault, or not at all).
	Healthy time.Time
	// Interrupted: the next fault started first.
	Interrupted bool
}

// recoveries measures, for every fault, the time from its end to the
// first sample of full health before the next fault started.
func (c *campaign) recoveries() []recovery {
	fs := c.faults.all()
	sort.Slice(fs, func(i, j int) bool { return fs[i].Start.Before(fs[j].Start) })
	hs := c.health.all()
	var out []recovery
	for i, f := range fs {
		rec := recovery{Fault: f}
		next := c.tEnd.Add(time.Hour)
		for _, g := range fs[i+1:] {
			if g.Start.After(f.End) {
				next = g.Start
				break
			}
		}
		for _, g := range fs {
			if g.Start.Before(f.End) && g.End.After(f.End) {
				rec.Interrupted = true // another fault was still on when this one ended
			}
		}
		for _, h := range hs {
			if h.At.Before(f.End) {
				continue
			}
			if h.At.After(next) {
				rec.Interrupted = true
				break
			}
			if h.healthy() {
				rec.Healthy = h.At
				break
			}
		}
		out = append(out, rec)
	}
	return out
}

// episode is a fault, or faults overlapping one another or the recovery
// of the one before, and the clocks of invariant 4 after it.
type episode struct {
	Faults []fault
	// End is when its last fault ended.
	End time.Time
	// Tokens and Outbox are when the clocks start (see recoveryClocks).
	Tokens, Outbox time.Time
}

// by is when everything must be whole again.
func (e episode) by() time.Time {
	return later(e.Tokens.Add(servableWithin), e.Outbox.Add(outboxWithin))
}

// episodes groups the faults: a fault that starts before the previous
// episode's recovery is due belongs to it.
func (c *campaign) episodes() []episode {
	fs := c.faults.all()
	sort.Slice(fs, func(i, j int) bool { return fs[i].Start.Before(fs[j].Start) })
	var out []episode
	for _, f := range fs {
		end := f.End
		if end.IsZero() {
			end = c.tEnd
		}
		tk, ob := recoveryClocks(f.Kind, f.Start, end)
		if n := len(out); n > 0 && f.Start.Before(out[n-1].by()) {
			e := &out[n-1]
			e.Faults = append(e.Faults, f)
			e.End, e.Tokens, e.Outbox = later(e.End, end), later(e.Tokens, tk), later(e.Outbox, ob)
			continue
		}
		out = append(out, episode{Faults: []fault{f}, End: end, Tokens: tk, Outbox: ob})
	}
	return out
}

// 4. After the last fault, every token with a valid grant is back to
// active within two sweep intervals, and the outbox is empty within one.
// Checked after every episode of faults, the last one included, and at
// the end. Servable (not only active) within two sweep intervals plus the
// backoff floor.
func (c *campaign) checkRecovery() result {
	r := result{ID: "4", Title: "after the last fault: tokens with a valid grant active within 2 sweep intervals, outbox empty within 1"}
	hs := c.health.all()
	if len(hs) == 0 {
		r.fail("no health sample was taken")
		return r
	}
	first := func(from time.Time, ok func(healthSample) bool) (time.Time, bool) {
		for _, h := range hs {
			if !h.At.Before(from) && ok(h) {
				return h.At, true
			}
		}
		return time.Time{}, false
	}
	eps := c.episodes()
	for i, e := range eps {
		kinds := make([]string, len(e.Faults))
		for j, f := range e.Faults {
			kinds[j] = f.Kind
		}
		what := fmt.Sprintf("after the faults ending at %s (%s)", c.rel(e.End), strings.Join(kinds, ", "))
		if i == len(eps)-1 {
			what = "after the last fault, at " + c.rel(e.End) + " (" + strings.Join(kinds, ", ") + ")"
		}
		if by := c.stalls.stretch(e.Tokens, e.Tokens.Add(activeWithin)); by.Before(c.tEnd) {
			if at, ok := first(e.Tokens, func(h healthSample) bool { return len(h.Inactive) == 0 }); !ok || at.After(by) {
				r.fail("%s: tokens with a valid grant still not active at %s: %s", what, c.rel(by), strings.Join(sampleAt(hs, by).Inactive, ", "))
			}
		}
		if by := c.stalls.stretch(e.Tokens, e.Tokens.Add(servableWithin)); by.Before(c.tEnd) {
			if at, ok := first(e.Tokens, func(h healthSample) bool { return len(h.Unservable) == 0 }); !ok || at.After(by) {
				r.fail("%s: tokens with a valid grant still without a servable token at %s: %s", what, c.rel(by), strings.Join(sampleAt(hs, by).Unservable, ", "))
			}
		}
		if by := c.stalls.stretch(e.Outbox, e.Outbox.Add(outboxWithin)); by.Before(c.tEnd) {
			if at, ok := first(e.Outbox, func(h healthSample) bool { return h.outboxClearOf(e.End) }); !ok || at.After(by) {
				s := sampleAt(hs, by)
				r.fail("%s: the outbox still held %d events at %s, the oldest committed at %s",
					what, s.OutboxLen, c.rel(by), c.rel(s.OutboxOldest))
			}
		}
	}
	last := sampleAt(hs, c.settled)
	if !last.tokensHealthy() {
		r.fail("at the end (%s): not active %v, not servable %v", c.rel(last.At), last.Inactive, last.Unservable)
	}
	longest := time.Duration(0)
	for _, rec := range c.recoveries() {
		if !rec.Healthy.IsZero() {
			longest = max(longest, rec.Healthy.Sub(rec.Fault.End))
		}
	}
	r.Summary = fmt.Sprintf("%d episodes of faults checked (active within %v, servable within %v, outbox empty within %v of their clocks); longest time from a fault's end to full health: %v",
		len(eps), activeWithin, servableWithin, outboxWithin, longest.Round(100*time.Millisecond))
	return r
}

// sampleAt is the last health sample at or before t.
func sampleAt(hs []healthSample, t time.Time) healthSample {
	out := hs[0]
	for _, h := range hs {
		if h.At.After(t) {
			break
		}
		out = h
	}
	return out
}

// 5. Lapsed or revoked tokens end in reauth_required with exactly one
// event each, and the brake never fires. Besides: a lapsed refresh token
// is never sent to Webex, and no other token is said to need
// re-authorization unless it lost its grant for an excused reason.
func (c *campaign) checkReauth(g grants) result {
	r := result{ID: "5", Title: "lapsed and revoked tokens end reauth_required with exactly one event; the brake never fires"}
	reauthEvents := map[string]map[string]bool{}
	halts := 0
	for _, e := range c.events.all() {
		switch e.Type {
		case string(token.EventReauthorizationRequired):
			if reauthEvents[e.Name] == nil {
				reauthEvents[e.Name] = map[string]bool{}
			}
			reauthEvents[e.Name][e.ID] = true
		case string(token.EventSweepHalted):
			halts++
			r.fail("token.sweep_halted published at %s: %s", c.rel(e.Published), e.Data.Message)
		}
	}
	if halts == 0 {
		for _, h := range c.logs.Halts {
			r.fail("the brake fired: %s", h)
		}
	}
	for name, page := range c.metricsPages {
		if v := page[`sweeps_total{result="halted"}`]; v > 0 {
			r.fail("%s counts %v halted sweeps", name, v)
		}
	}
	// A call that left just before the lapse may arrive just after it.
	const lapseEdge = time.Second
	lapsedSent := map[string]int{}
	for _, u := range c.ledger {
		if u.AfterExpiry > 1 || u.AfterExpiry == 1 && u.FirstAfterExpiry.Sub(u.Expires) > lapseEdge {
			lapsedSent[u.ClientID] += u.AfterExpiry
		}
	}
	expected := 0
	for _, t := range c.tokens {
		if n := lapsedSent[t.ClientID]; n > 0 {
			r.fail("%s: its lapsed refresh token was sent to Webex %d time(s)", t.Name, n)
		}
		d := c.final[t.Name]
		n := len(reauthEvents[t.Name])
		switch {
		case t.Group == groupRevoke && t.Revoked.IsZero():
			continue // the run ended before its revocation
		case t.expectReauth():
			expected++
			if d.state() != string(token.StatusReauthRequired) {
				r.fail("%s (%s): ended %q, want reauth_required", t.Name, t.Group, d.state())
			}
			if n != 1 {
				r.fail("%s (%s): %d distinct token.reauthorization_required events, want exactly 1", t.Name, t.Group, n)
			}
		case n > 0 && g.casualties[t.Name] == "":
			r.fail("%s: token.reauthorization_required published although its grant was neither lapsed, revoked nor lost", t.Name)
		case n > 0:
			r.note("%s: needs re-authorization because %s", t.Name, g.casualties[t.Name])
		}
	}
	r.Summary = fmt.Sprintf("%d lapsed or revoked tokens checked; %d tokens lost their grant for an excused reason; %d sweeps halted",
		expected, len(g.casualties), halts+len(c.logs.Halts))
	return r
}

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
		if t.RSS.Grows {
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
	r := result{ID: "M", Title: "each binary exports its own metric families; the workers' expiry gauges cover every token"}
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
			var missing []string
			for name, d := range c.final {
				if d.AccessToken == "" {
					continue
				}
				if _, ok := page[`token_access_expiry_seconds{name="`+name+`"}`]; !ok {
					missing = append(missing, name)
				}
			}
			sort.Strings(missing)
			if len(missing) > 0 {
				r.fail("%s has no token_access_expiry_seconds for %d of %d tokens: %s", p.Name, len(missing), len(c.final), strings.Join(missing, ", "))
			}
		}
	}
	r.Summary = fmt.Sprintf("/metrics of %d processes read at the end", checked)
	return r
}
