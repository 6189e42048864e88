package main

import (
	"fmt"
	"sort"
	"time"
)

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
			logged := first(c.logs.StoreFailed[name], u.FirstGrant)
			if stalled := c.stalls.in(u.FirstGrant, logged); stalled >= time.Second {
				x.Excuse = fmt.Sprintf("the answer arrived but could not be stored while the machine stalled %v", stalled.Round(time.Millisecond))
				break
			}
			x.Why = fmt.Sprintf("the answer arrived but was dropped: the process logged \"new token could not be stored\" at %s (Firestore did not answer within the commit's deadline), and the spent refresh token was presented again", c.rel(logged))
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

// first returns the earliest t in ts at or after at.
func first(ts []time.Time, at time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if !t.Before(at) && (out.IsZero() || t.Before(out)) {
			out = t
		}
	}
	return out
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
