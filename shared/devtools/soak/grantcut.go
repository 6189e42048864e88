package main

import (
	"context"
	"sync"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/webexfake"
)

// grantCut is the Firestore cut waiting for the next refresh grant: the
// fake Webex's OnGrant hook cuts Firestore before it answers, so the
// instance that asked gets a grant it cannot store (issue: no grant ever
// lost).
type grantCut struct {
	mu    sync.Mutex
	armed chan webexfake.Granted // nil: not armed
}

// onGrant is the fake's OnGrant hook: an armed cut fires on a grant made
// to the service (not to the Node sample stand-in, which refreshes some
// tokens by itself).
func (c *campaign) onGrant(g webexfake.Granted) {
	if t := c.tokenByClient(g.ClientID); t == nil || t.SampleWrites {
		return
	}
	c.grantCut.mu.Lock()
	ch := c.grantCut.armed
	c.grantCut.armed = nil
	c.grantCut.mu.Unlock()
	if ch == nil {
		return
	}
	c.fsProxy.Cut()
	ch <- g
}

// cutAfterGrant arms the cut and waits until it fires, or cuts Firestore
// after grantCutArm without a grant (said in the fault's note). It
// reports whether Firestore was cut.
func (c *campaign) cutAfterGrant(ctx context.Context, f *fault) bool {
	fired := make(chan webexfake.Granted, 1)
	c.grantCut.mu.Lock()
	c.grantCut.armed = fired
	c.grantCut.mu.Unlock()
	disarm := func() {
		c.grantCut.mu.Lock()
		c.grantCut.armed = nil
		c.grantCut.mu.Unlock()
	}
	select {
	case g := <-fired:
		name := ""
		if t := c.tokenByClient(g.ClientID); t != nil {
			name = t.Name
		}
		c.faults.set(f, func(f *fault) {
			f.Start, f.Granted = time.Now(), &g
			f.Note = "cut as Webex answered the refresh of " + name
		})
	case <-time.After(grantCutArm):
		disarm()
		select {
		case g := <-fired: // fired meanwhile
			c.faults.set(f, func(f *fault) { f.Start, f.Granted = time.Now(), &g })
		default:
			c.fsProxy.Cut()
			c.faults.set(f, func(f *fault) {
				f.Start, f.Note = time.Now(), "no refresh grant within "+grantCutArm.String()+": cut without one"
			})
		}
	case <-ctx.Done():
		disarm()
		return false
	}
	return true
}

// tokenByClient is the token whose OAuth client is id, or nil.
func (c *campaign) tokenByClient(id string) *soakToken {
	for _, t := range c.tokens {
		if t.ClientID == id {
			return t
		}
	}
	return nil
}
