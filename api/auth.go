package main

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/api/console"
	"github.com/wxcc/tokenservice/shared/clientip"
	"github.com/wxcc/tokenservice/shared/config"
	"github.com/wxcc/tokenservice/shared/httpapi"
	"github.com/wxcc/tokenservice/shared/oauthstate"
	"github.com/wxcc/tokenservice/shared/passphrase"
	"github.com/wxcc/tokenservice/shared/token"
)

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
func (s *server) allowedNetworks(c echo.Context) *httpapi.Error {
	if len(s.cfg.AllowedCIDRs) == 0 || httpapi.IsProbe(c.Path()) || s.clients.Allows(s.clients.ClientAddr(c.Request())) {
		return nil
	}
	return httpapi.Errorf(http.StatusForbidden, "this address may not use the token service")
}

// throttleKey is the client part of the throttle key.
func (s *server) throttleKey(c echo.Context) string { return s.throttleKeyOf(c.Request()) }

func (s *server) throttleKeyOf(r *http.Request) string { return clientip.Key(s.clients.ClientAddr(r)) }

// clientAddr is the request's client address as logs and records show it.
func (s *server) clientAddr(r *http.Request) string { return s.clients.ClientAddr(r).String() }

// checkTokenPassphrase checks the caller's x-token-passphrase for name and
// returns the token it opens, read through the cache. A token with its own
// passphrase accepts only that one; others accept TOKEN_PASSPHRASE or
// TOKEN_PASSPHRASE_PREVIOUS. Wrong passphrases count towards the
// throttle, and so does a name that does not exist; a request that
// presents none is refused without counting: any web page can make a
// browser send one, and counting it would let that page lock out its
// visitors' address. A token whose secrets do not open is checked like
// any other first: only the right passphrase learns that it cannot be
// served.
func (s *server) checkTokenPassphrase(c echo.Context, name string, budget time.Time) (*token.Token, error) {
	addr := s.throttleKey(c)
	if ae := s.throttled(addr, name); ae != nil {
		return nil, ae
	}
	given := header(c.Request(), "X-Token-Passphrase")
	if given == "" {
		return nil, httpapi.Errorf(http.StatusUnauthorized, "missing x-token-passphrase header")
	}
	ctx := c.Request().Context()
	t, err := s.cached(ctx, name, budget)
	var sealed *token.SealedError
	if errors.As(err, &sealed) {
		if _, err := s.checkPassphraseOf(c, addr, name, given, sealed.Token); err != nil {
			return nil, err
		}
		return nil, sealed // the right passphrase: it learns the token cannot be decrypted
	}
	switch {
	case errors.Is(err, token.ErrNotFound):
		// Only a caller who knows the global passphrase learns that the
		// name does not exist.
		if !s.tokenKeys.Match(given) {
			s.throttle.Fail(addr, name)
			return nil, httpapi.Errorf(http.StatusUnauthorized, "wrong passphrase")
		}
		s.throttle.Miss(addr, name)
		return nil, err
	case err != nil:
		return nil, err
	}
	return s.checkPassphraseOf(c, addr, name, given, t)
}

// checkPassphraseOf checks given against t's own passphrase, or the
// global ones for a token without, and returns t if it opens it.
func (s *server) checkPassphraseOf(c echo.Context, addr, name, given string, t *token.Token) (*token.Token, error) {
	ok := false
	if t.PassphraseHash == "" {
		ok = s.tokenKeys.Match(given)
	} else {
		var err error
		ok, err = s.verifier.Check(c.Request().Context(), passphrase.Caller{Key: addr, Priority: s.checkPriority(addr, name)}, given, t.PassphraseHash)
		switch {
		case errors.Is(err, passphrase.ErrBusy):
			s.pushedBack.Record(addr)
			return nil, &httpapi.Error{Code: http.StatusTooManyRequests, RetryAfter: time.Second, Hold: s.refusals.hold,
				Message: "too many passphrase checks waiting; retry in a second"}
		case errors.Is(err, passphrase.ErrMalformedHash):
			s.logger.Warn("token passphraseHash is malformed: set the passphrase again", "token", name)
		case err != nil:
			return nil, err
		}
	}
	if !ok {
		s.throttle.Fail(addr, name)
		return nil, httpapi.Errorf(http.StatusUnauthorized, "wrong passphrase")
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
		if handled, ae := s.console.Principal(c); handled {
			if ae != nil {
				return httpapi.Write(c, ae)
			}
			return next(c)
		}
		addr := s.throttleKey(c)
		if ae := s.throttled(addr, console.AdminThrottleName); ae != nil {
			return httpapi.Write(c, ae)
		}
		given := c.Request().Header.Get("x-admin-passphrase")
		if given == "" {
			return httpapi.Write(c, httpapi.Errorf(http.StatusUnauthorized, "missing x-admin-passphrase header"))
		}
		if !s.adminKey.Match(given) {
			s.throttle.Fail(addr, console.AdminThrottleName)
			s.logger.Warn("admin passphrase rejected", "route", c.Path(), "remote_ip", c.RealIP())
			return httpapi.Write(c, httpapi.Errorf(http.StatusUnauthorized, "wrong x-admin-passphrase header"))
		}
		return next(c)
	}
}

// consoleThrottle is the console's view of the passphrase throttle.
type consoleThrottle struct{ s *server }

func (t consoleThrottle) Throttled(addr, name string) *httpapi.Error {
	return t.s.throttled(addr, name)
}
func (t consoleThrottle) Fail(addr, name string) { t.s.throttle.Fail(addr, name) }
