package main

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

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
	// Orphans is when its last process fault began: only events
	// committed before it may have been left by a dead process and wait
	// for the outbox settle time; the others are the live instances' to
	// deliver within one sweep interval of the episode's end.
	Orphans time.Time
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
		var orphans time.Time
		if isProcessFault(f.Kind) {
			orphans = f.Start
		}
		if n := len(out); n > 0 && f.Start.Before(out[n-1].by()) {
			e := &out[n-1]
			e.Faults = append(e.Faults, f)
			e.End, e.Tokens, e.Outbox, e.Orphans = later(e.End, end), later(e.Tokens, tk), later(e.Outbox, ob), later(e.Orphans, orphans)
			continue
		}
		out = append(out, episode{Faults: []fault{f}, End: end, Tokens: tk, Outbox: ob, Orphans: orphans})
	}
	return out
}

// 4. After the last fault, every token with a valid grant is back to
// active within two sweep intervals, and the outbox is empty within one.
// Checked after every episode of faults, the last one included, and at
// the end. Servable (not only active) within two sweep intervals plus the
// backoff floor.
//
// A Service App whose manager lost its grant for an excused reason (g)
// waits for its manager to be authorized again (DESIGN 5a): it is left
// out, as invariant 5 leaves it out, and named in a note.
func (c *campaign) checkRecovery(g grants) result {
	r := result{ID: "4", Title: "after the last fault: tokens with a valid grant active within 2 sweep intervals, outbox empty within 1"}
	hs := c.health.all()
	if len(hs) == 0 {
		r.fail("no health sample was taken")
		return r
	}
	waiting := map[string]bool{}
	for _, t := range c.tokens {
		if why := g.managerLost(t); why != "" {
			waiting[t.Name] = true
			r.note("%s: left out, its manager %s lost its grant because %s", t.Name, t.Manager, why)
		}
	}
	if len(waiting) > 0 {
		hs = withoutTokens(hs, waiting)
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
		outbox := func(from, to, clock time.Time, whose string) {
			by := c.stalls.stretch(clock, clock.Add(outboxWithin))
			if !by.Before(c.tEnd) {
				return
			}
			if at, ok := first(clock, func(h healthSample) bool { return h.outboxClear(from, to) }); !ok || at.After(by) {
				s := sampleAt(hs, by)
				r.fail("%s: the outbox still held %s events at %s (%d in all, the oldest committed at %s)",
					what, whose, c.rel(by), len(s.Outbox), c.rel(s.outboxOldest()))
			}
		}
		if e.Orphans.IsZero() {
			outbox(time.Time{}, e.End, e.Outbox, "the episode's")
		} else {
			outbox(time.Time{}, e.Orphans, e.Outbox, "a stopped instance's")
			outbox(e.Orphans, e.End, e.End, "live instances'")
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

// withoutTokens returns copies of hs that do not name the tokens in drop.
func withoutTokens(hs []healthSample, drop map[string]bool) []healthSample {
	keep := func(names []string) []string {
		var out []string
		for _, n := range names {
			if !drop[n] {
				out = append(out, n)
			}
		}
		return out
	}
	out := make([]healthSample, len(hs))
	for i, h := range hs {
		h.Inactive, h.Unservable = keep(h.Inactive), keep(h.Unservable)
		out[i] = h
	}
	return out
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
