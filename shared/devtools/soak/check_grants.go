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

// managerLost is why t's manager lost its grant for an excused reason, or
// "": a Service App then waits for its manager to be authorized again
// (DESIGN 5a), which invariants 4 and 5 excuse.
func (g grants) managerLost(t *soakToken) string {
	if t.Manager == "" {
		return ""
	}
	return g.casualties[t.Manager]
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
		case lostAt(c.logs.Lost[name], u.FirstGrant) != nil:
			l := lostAt(c.logs.Lost[name], u.FirstGrant)
			if c.inFirestoreOutage(l.At) {
				x.Excuse = fmt.Sprintf("the answer was lost with %s, stopped at %s while Firestore was unreachable", l.Where, c.rel(l.At))
				break
			}
			x.Why = fmt.Sprintf("the answer arrived but was dropped: %s logged \"new token lost\" at %s, with Firestore reachable, and the spent refresh token was presented again", l.Where, c.rel(l.At))
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

// lostAt returns the "new token lost" line whose grant was made at about
// at (the line's time less how long it was held), or nil.
func lostAt(lines []grantLine, at time.Time) *grantLine {
	for i, l := range lines {
		if d := l.At.Add(-l.HeldFor).Sub(at).Abs(); d <= 5*time.Second {
			return &lines[i]
		}
	}
	return nil
}

// inFirestoreOutage says whether t falls in a Firestore outage (stretched
// as firestoreOutages stretches them).
func (c *campaign) inFirestoreOutage(t time.Time) bool {
	return inAny(c.firestoreOutages(), t, t)
}

// G. No grant lost: the grant Webex made the moment Firestore was cut is
// stored once Firestore answers (seen in a version of the document, or
// its refresh token presented later), and no process lost a grant in
// hand other than by stopping while Firestore was unreachable.
func (c *campaign) checkGrantsKept() result {
	r := result{ID: "G", Title: "no grant lost: a grant Webex made is stored, even when Firestore was cut right after"}
	cuts, withGrant, kept := 0, 0, 0
	for _, f := range c.faults.all() {
		if f.Kind != faultGrantCut {
			continue
		}
		cuts++
		if f.Granted == nil {
			r.note("the cut at %s came without a grant, so it proves nothing (%s)", c.rel(f.Start), f.Note)
			continue
		}
		withGrant++
		t := c.tokenByClient(f.Granted.ClientID)
		if t == nil {
			r.fail("the cut at %s followed a grant to client %s, which no token of the run has", c.rel(f.Start), f.Granted.ClientID)
			continue
		}
		if at, ok := c.grantStored(t.Name, f.Granted.RefreshToken); ok {
			kept++
			r.note("%s: the grant made as Firestore was cut at %s was stored %s (%.1f s after the cut ended)", t.Name, c.rel(f.Start), c.rel(at), at.Sub(f.End).Seconds())
			continue
		}
		r.fail("%s: the grant Webex made as Firestore was cut at %s never reached the document, and its refresh token was never presented", t.Name, c.rel(f.Start))
	}
	count := func(m map[string][]grantLine) int {
		n := 0
		for _, ls := range m {
			n += len(ls)
		}
		return n
	}
	for name, ls := range c.logs.Lost {
		for _, l := range ls {
			if c.inFirestoreOutage(l.At) {
				r.note("%s: %s stopped while Firestore was unreachable and lost the grant it held for %v", name, l.Where, l.HeldFor)
				continue
			}
			r.fail("%s: %s lost a grant in hand (held %v) at %s, with Firestore reachable", name, l.Where, l.HeldFor, c.rel(l.At))
		}
	}
	r.Summary = fmt.Sprintf("%d Firestore cut(s) meant to follow a grant, %d with one, %d of those grants stored; grants the store did not take at once: %d, stored later %d, superseded %d, lost with a stopping process %d",
		cuts, withGrant, kept, count(c.logs.Kept), count(c.logs.Stored), count(c.logs.Superseded), count(c.logs.Lost))
	return r
}

// grantStored says whether, and when first, name's document held the
// refresh token rt (or, if no version shows it, when Webex saw it
// presented: only a stored refresh token is presented).
func (c *campaign) grantStored(name, rt string) (time.Time, bool) {
	for _, v := range c.tl.versions(name) {
		if v.RefreshToken == rt {
			return v.At, true
		}
	}
	if d, ok := c.final[name]; ok && d.RefreshToken == rt {
		return d.At, true
	}
	if u, ok := c.ledger[rt]; ok && u.Presented > 0 {
		return u.FirstGrant, true
	}
	return time.Time{}, false
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
