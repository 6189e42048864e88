package main

import (
	"fmt"
	"time"

	"github.com/wxcc/tokenservice/shared/token"
)

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
		case n > 0 && g.managerLost(t) != "":
			r.note("%s: needs its manager %s authorized again, which lost its grant because %s", t.Name, t.Manager, g.managerLost(t))
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
