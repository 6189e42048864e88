package main

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/shared/clientip"
	"github.com/wxcc/tokenservice/shared/config"
	"github.com/wxcc/tokenservice/shared/oauthstate"
	"github.com/wxcc/tokenservice/shared/passphrase"
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

// allowedNetworks is the 403 for an address outside ALLOWED_CIDRS, or
// nil. Health probes stay open: Cloud Run sends them from inside.
func (s *server) allowedNetworks(c echo.Context) *apiError {
	if len(s.cfg.AllowedCIDRs) == 0 || isProbe(c.Path()) || s.clients.Allows(s.clients.ClientAddr(c.Request())) {
		return nil
	}
	return errorf(http.StatusForbidden, "this address may not use the token service")
}

// isProbe reports whether path is a health probe's.
func isProbe(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/health", "/ready":
		return true
	}
	return false
}

// throttleKey is the client part of the throttle key.
func (s *server) throttleKey(c echo.Context) string {
	return clientip.Key(s.clients.ClientAddr(c.Request()))
}

// checkTokenPassphrase checks the caller's x-token-passphrase for name and
// returns the token it opens, read through the cache. A token with its own
// passphrase accepts only that one; others accept TOKEN_PASSPHRASE or
// TOKEN_PASSPHRASE_PREVIOUS. Failures count towards the throttle, and so
// does a name that does not exist.
func (s *server) checkTokenPassphrase(c echo.Context, name string, budget time.Time) (*token.Token, error) {
	addr := s.throttleKey(c)
	if ae := s.throttled(addr, name); ae != nil {
		return nil, ae
	}
	given := header(c.Request(), "X-Token-Passphrase")
	if given == "" {
		s.throttle.Fail(addr, name)
		return nil, errorf(http.StatusUnauthorized, "missing x-token-passphrase header")
	}
	ctx := c.Request().Context()
	t, err := s.cached(ctx, name, budget)
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
			s.pushedBack.Record(addr)
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

// requireAdmin guards the admin endpoints with x-admin-passphrase or a
// console session (adminBySession). A wrong passphrase counts towards the
// throttle and is logged; a request without one (a browser following a
// link) is refused without either, since it guesses nothing.
func (s *server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if handled, ae := s.adminBySession(c); handled {
			if ae != nil {
				return writeError(c, ae)
			}
			return next(c)
		}
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
