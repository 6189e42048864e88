package main

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/shared/clientip"
	"github.com/wxcc/tokenservice/shared/config"
	"github.com/wxcc/tokenservice/shared/oauthstate"
	"github.com/wxcc/tokenservice/shared/passphrase"
	"github.com/wxcc/tokenservice/shared/throttle"
	"github.com/wxcc/tokenservice/shared/token"
)

// adminThrottleName is the throttle's "token name" for admin passphrase
// failures; it can never clash with a token, whose names are never empty.
const adminThrottleName = ""

// stateKey is STATE_SIGNING_KEY, or one derived from ADMIN_PASSPHRASE;
// never from TOKEN_PASSPHRASE, which flow authors know.
func stateKey(cfg *config.Config) []byte {
	if cfg.StateSigningKey != "" {
		return []byte(cfg.StateSigningKey)
	}
	return oauthstate.DeriveKey(cfg.AdminPassphrase)
}

// allowedNetworks answers 403 to addresses outside ALLOWED_CIDRS. Health
// probes stay open: Cloud Run sends them from inside.
func (s *server) allowedNetworks(next echo.HandlerFunc) echo.HandlerFunc {
	if len(s.cfg.AllowedCIDRs) == 0 {
		return next
	}
	return func(c echo.Context) error {
		if p := c.Path(); p == "/healthz" || p == "/readyz" {
			return next(c)
		}
		if !s.clients.Allows(s.clients.ClientAddr(c.Request())) {
			return writeError(c, errorf(http.StatusForbidden, "this address may not use the token service"))
		}
		return next(c)
	}
}

// throttleKey is the client part of the throttle key.
func (s *server) throttleKey(c echo.Context) string {
	return clientip.Key(s.clients.ClientAddr(c.Request()))
}

// authFailures counts failed passphrases twice: per (address, name), so
// that one misconfigured flow locks out only itself, and per address across
// names (AUTH_FAILURE_LIMIT distinct names per AUTH_FAILURE_WINDOW), so
// that changing the name does not reset the count. Requests for unknown
// names count against the per-address budget too: each costs a store read
// and a place in the cache.
type authFailures struct {
	pairs  *throttle.Throttle
	budget *throttle.Budget
}

func newAuthFailures(limit int, window time.Duration, now func() time.Time) *authFailures {
	return &authFailures{
		pairs:  throttle.New(limit, window, now),
		budget: throttle.NewBudget(limit, window, now),
	}
}

// Blocked reports whether addr may not try name now, and for how long.
func (f *authFailures) Blocked(addr, name string) (time.Duration, bool) {
	if wait, blocked := f.pairs.Blocked(addr, name); blocked {
		return wait, true
	}
	return f.budget.Blocked(addr)
}

// Fail records a wrong or missing passphrase from addr for name.
func (f *authFailures) Fail(addr, name string) {
	f.pairs.Fail(addr, name)
	f.budget.Fail(addr, name)
}

// Miss records a request from addr for a name that does not exist.
func (f *authFailures) Miss(addr, name string) { f.budget.Fail(addr, name) }

// throttled is the 429 for addr and name while they failed too often, or nil.
func (s *server) throttled(addr, name string) *apiError {
	if wait, blocked := s.throttle.Blocked(addr, name); blocked {
		return &apiError{code: http.StatusTooManyRequests, retryAfter: wait, hold: s.refusals.hold,
			message: "too many failed passphrases from this address; retry later"}
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

// checkTokenPassphrase checks the caller's x-token-passphrase for name and
// returns the token it opens, read through the cache. A token with its own
// passphrase accepts only that one; others accept TOKEN_PASSPHRASE or
// TOKEN_PASSPHRASE_PREVIOUS. Failures count towards the throttle, and so
// does a name that does not exist.
func (s *server) checkTokenPassphrase(c echo.Context, name string) (*token.Token, error) {
	addr := s.throttleKey(c)
	if ae := s.throttled(addr, name); ae != nil {
		return nil, ae
	}
	given := c.Request().Header.Get("x-token-passphrase")
	if given == "" {
		s.throttle.Fail(addr, name)
		return nil, errorf(http.StatusUnauthorized, "missing x-token-passphrase header")
	}
	ctx := c.Request().Context()
	t, err := s.cached(ctx, name)
	var ok bool
	switch {
	case errors.Is(err, token.ErrNotFound):
		// Only a caller who knows the global passphrase learns that the
		// name does not exist.
		if !s.tokenKeys.Match(given) {
			s.throttle.Fail(addr, name)
			return nil, errorf(http.StatusUnauthorized, "wrong passphrase")
		}
		s.throttle.Miss(addr, name)
		return nil, err
	case err != nil:
		return nil, err
	case t.PassphraseHash != "":
		ok, err = s.verifier.Check(ctx, passphrase.Caller{Key: addr, Priority: s.checkPriority(addr, name)}, given, t.PassphraseHash)
		switch {
		case errors.Is(err, passphrase.ErrBusy):
			return nil, &apiError{code: http.StatusTooManyRequests, retryAfter: time.Second, hold: s.refusals.hold,
				message: "too many passphrase checks waiting; retry in a second"}
		case errors.Is(err, passphrase.ErrMalformedHash):
			s.logger.Warn("token passphraseHash is malformed: set the passphrase again", "token", name)
		case err != nil:
			return nil, err
		}
	default:
		ok = s.tokenKeys.Match(given)
	}
	if !ok {
		s.throttle.Fail(addr, name)
		return nil, errorf(http.StatusUnauthorized, "wrong passphrase")
	}
	s.successes.Record(addr)
	return t, nil
}

// checkPriority is the place of addr's check of name's own passphrase in
// the argon2id queue: first for an address that recently presented a
// right passphrase and has not failed for this name; then for addresses
// without recent failures; last for the rest, one check at a time each.
func (s *server) checkPriority(addr, name string) passphrase.Priority {
	switch {
	case s.throttle.pairs.Failures(addr, name) > 0:
		return passphrase.Suspect
	case s.successes.Recent(addr):
		return passphrase.Vouched
	case s.throttle.budget.Names(addr) == 0:
		return passphrase.Unknown
	}
	return passphrase.Suspect
}

// requireAdmin guards the admin endpoints with x-admin-passphrase. A
// wrong passphrase counts towards the throttle and is logged; a request
// without one (a browser following a link) is refused without either,
// since it guesses nothing.
func (s *server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		addr := s.throttleKey(c)
		if ae := s.throttled(addr, adminThrottleName); ae != nil {
			return writeError(c, ae)
		}
		given := c.Request().Header.Get("x-admin-passphrase")
		if given == "" {
			return writeError(c, errorf(http.StatusUnauthorized, "missing x-admin-passphrase header"))
		}
		if !s.adminKey.Match(given) {
			s.throttle.Fail(addr, adminThrottleName)
			s.logger.Warn("admin passphrase rejected", "route", c.Path(), "remote_ip", c.RealIP())
			return writeError(c, errorf(http.StatusUnauthorized, "wrong x-admin-passphrase header"))
		}
		return next(c)
	}
}
