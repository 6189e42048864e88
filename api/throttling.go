package main

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/wxcc/tokenservice/shared/httpapi"
	"github.com/wxcc/tokenservice/shared/passphrase"
	"github.com/wxcc/tokenservice/shared/throttle"
)

// authFailures counts failed passphrases twice: per (address, name), so
// that one misconfigured flow locks out only itself, and per address across
// names (AUTH_FAILURE_LIMIT distinct names per AUTH_FAILURE_WINDOW), so
// that changing the name does not reset the count. Requests for unknown
// names count against the per-address budget too: each costs a store read
// and a place in the cache.
type authFailures struct {
	pairs  *throttle.Throttle
	budget *throttle.Budget
	// admin, when not nil, also counts admin passphrase failures across
	// every address: once sign-in with Webex is configured, many
	// addresses guessing the break-glass passphrase close it for a
	// window, while people keep signing in with Webex. Without sign-in
	// with Webex it is off: closing the only way in for everyone would
	// hand any crowd of addresses a lockout.
	admin *throttle.Throttle
}

// adminCrowdFactor times AUTH_FAILURE_LIMIT is how many wrong admin
// passphrases from all addresses together close the passphrase for the
// rest of AUTH_FAILURE_WINDOW (per instance).
const adminCrowdFactor = 10

// adminName is the throttle's name for admin passphrase failures (the
// console's AdminThrottleName), and crowd the one address they all count
// under in the global budget.
const (
	adminName = ""
	crowd     = "*"
)

// maxBudgetAddrs caps the addresses the per-address budget tracks (about
// 300 bytes each at a limit of 10). Past it, addresses with the fewest
// failures are forgotten first; blocked ones are kept.
const maxBudgetAddrs = 20_000

func newAuthFailures(limit int, window time.Duration, now func() time.Time, adminCrowd bool) *authFailures {
	f := &authFailures{
		pairs:  throttle.New(limit, window, now),
		budget: throttle.NewBudget(limit, window, now, throttle.WithMaxPairs(maxBudgetAddrs)),
	}
	if adminCrowd {
		f.admin = throttle.New(limit*adminCrowdFactor, window, now)
	}
	return f
}

// Blocked reports whether addr may not try name now, and for how long.
func (f *authFailures) Blocked(addr, name string) (time.Duration, bool) {
	if wait, blocked := f.pairs.Blocked(addr, name); blocked {
		return wait, true
	}
	if name == adminName && f.admin != nil {
		if wait, blocked := f.admin.Blocked(crowd, adminName); blocked {
			return wait, true
		}
	}
	return f.budget.Blocked(addr)
}

// Fail records a wrong passphrase from addr for name.
func (f *authFailures) Fail(addr, name string) {
	f.pairs.Fail(addr, name)
	f.budget.Fail(addr, name)
	if name == adminName && f.admin != nil {
		f.admin.Fail(crowd, adminName)
	}
}

// Miss records a request from addr for a name that does not exist.
func (f *authFailures) Miss(addr, name string) { f.budget.Fail(addr, name) }

// creations limits how many token documents one client address may
// create through /init: at most initCreations per initWindow.
const (
	initCreations = 20
	initWindow    = time.Hour
	initName      = "/init" // no token name contains '/'
)

// throttled is the 429 for addr and name while they failed too often, or nil.
func (s *server) throttled(addr, name string) *httpapi.Error {
	if wait, blocked := s.throttle.Blocked(addr, name); blocked {
		return &httpapi.Error{Code: http.StatusTooManyRequests, RetryAfter: wait, Hold: s.refusals.hold,
			Message: "too many failed passphrases from this address; retry later"}
	}
	return nil
}

// refusalPacer slows refusals down once there are many: a client that
// ignores 429 and asks again at once, from one connection or a hundred,
// would otherwise get answers as fast as it can send and turn refusing it
// into the load that slows everyone else. Up to perSecond refusals a
// second (per instance) are answered at once; past that each is held for
// holdFor first, at most maxHeld at a time (past that, answered at once:
// a held refusal costs a goroutine and a connection's buffers).
type refusalPacer struct {
	perSecond int64
	holdFor   time.Duration
	maxHeld   int64
	now       func() time.Time

	second atomic.Int64 // the unix second counted
	count  atomic.Int64 // refusals in it
	held   atomic.Int64
}

func newRefusalPacer() *refusalPacer {
	return &refusalPacer{perSecond: 100, holdFor: time.Second, maxHeld: 500, now: time.Now}
}

// hold returns at once, or after holdFor (or when ctx ends) while
// refusals are many.
func (p *refusalPacer) hold(ctx context.Context) {
	if now := p.now().Unix(); p.second.Load() != now {
		p.second.Store(now) // racing resets only lose a few counts
		p.count.Store(0)
	}
	if p.count.Add(1) <= p.perSecond {
		return
	}
	if p.held.Add(1) > p.maxHeld {
		p.held.Add(-1)
		return
	}
	defer p.held.Add(-1)
	t := time.NewTimer(p.holdFor)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// checkPriority is the place of addr's check of name's own passphrase in
// the argon2id queue: first for an address that recently presented a
// right passphrase and has not failed for this name; then for addresses
// without recent failures, those recently refused a place after the
// others; last for the rest, one check at a time each.
func (s *server) checkPriority(addr, name string) passphrase.Priority {
	switch {
	case s.throttle.pairs.Failures(addr, name) > 0:
		return passphrase.Suspect
	case s.successes.Recent(addr):
		return passphrase.Vouched
	case s.throttle.budget.Names(addr) > 0:
		return passphrase.Suspect
	case s.pushedBack.Recent(addr):
		return passphrase.Retrying
	}
	return passphrase.Unknown
}
