package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/api/console"
	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/httpapi"
	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/oauthstate"
	"github.com/wxcc/tokenservice/shared/token"
)

// statePlaceholder is what the sample's README left in the authorize URL
// for the integrator to replace with the token name.
const statePlaceholder = "set_state_here"

// initToken is the sample's GET /init?name=N: it creates the document with
// empty client fields if it does not exist and never changes an existing one.
func (s *server) initToken(c echo.Context) error {
	name := c.QueryParam("name")
	if name == "" {
		return httpapi.Write(c, httpapi.Errorf(http.StatusBadRequest, "missing name: call GET /init?name=<token name>"))
	}
	if err := token.ValidateName(name); err != nil {
		return httpapi.Write(c, httpapi.StatusOf(err, name, s.now()))
	}
	addr := s.throttleKey(c)
	if ae := s.throttled(addr, name); ae != nil {
		return httpapi.Write(c, ae)
	}
	given := c.Request().Header.Get("x-token-passphrase")
	if given == "" { // no credential, no guess: not counted (see checkTokenPassphrase)
		return httpapi.Write(c, httpapi.Errorf(http.StatusUnauthorized, "missing x-token-passphrase header"))
	}
	if !s.tokenKeys.Match(given) {
		s.throttle.Fail(addr, name)
		return httpapi.Write(c, httpapi.Errorf(http.StatusUnauthorized, "wrong passphrase"))
	}
	if wait, blocked := s.creations.Blocked(addr, initName); blocked {
		return httpapi.Write(c, &httpapi.Error{Code: http.StatusTooManyRequests, RetryAfter: wait,
			Message: "this address created many tokens lately; retry later, or create tokens in the console"})
	}
	who := lifecycle.Actor{Kind: activity.ByVisitor, Name: "flow passphrase", Addr: s.clientAddr(c.Request())}
	created, err := s.service.Init(c.Request().Context(), who, name)
	if err != nil {
		s.logger.Warn("init failed", "token", name, "error", err.Error())
		return httpapi.Write(c, httpapi.StatusOf(err, name, s.now()))
	}
	if created {
		s.creations.Fail(addr, initName)
	}
	s.cache.drop(name)
	if !created {
		return c.JSON(http.StatusOK, map[string]string{"status": "200",
			"message": "token " + name + " already exists; nothing was changed"})
	}
	s.logger.Info("token document created", "token", name)
	return c.JSON(http.StatusOK, map[string]string{"status": "200",
		"message": "token " + name + " created: set clientId, clientSecret and redirectUri, then authorize it"})
}

// callback is where Webex redirects the browser after an authorization.
// An authorization the console started (or an authorization link) is
// the console's to complete; the rest are /authorize's signed states and,
// with LEGACY_STATE, the sample's raw token names. The state is verified
// (signature, expiry, single use across instances) before anything else,
// an error redirect included: a stranger holding a used or old state
// records nothing on the token. Refusals count towards the client
// address's throttle. The code is exchanged with the client config
// stored for the token the state names, and the tokens stored; a failure
// once the state is verified is also recorded in the token's lastError.
func (s *server) callback(c echo.Context) error {
	if handled, err := s.console.Callback(c); handled {
		return err
	}
	q := c.QueryParams()
	code, state := q.Get("code"), q.Get("state")
	addr := s.throttleKey(c)
	if ae := s.throttled(addr, console.CallbackThrottleName); ae != nil {
		return httpapi.Write(c, ae)
	}
	refuse := func(ae *httpapi.Error) error {
		s.throttle.Fail(addr, console.CallbackThrottleName)
		return httpapi.Write(c, ae)
	}
	switch {
	case state == "":
		return refuse(httpapi.Errorf(http.StatusBadRequest, "missing state"))
	case state == statePlaceholder:
		return refuse(httpapi.Errorf(http.StatusBadRequest,
			"state is still the placeholder set_state_here: put the token name in the authorize URL's state"))
	}
	name, verifier, legacy, ae := s.verifyState(c, state)
	if ae != nil {
		return refuse(ae)
	}
	who := lifecycle.Actor{Kind: activity.ByVisitor, Addr: s.clientAddr(c.Request())}
	// fail answers a failure after the state was verified and records it
	// on the token; a raw legacy state proves nothing, so its failures
	// are recorded only once a code went to Webex.
	// cause, if not nil, is what Webex said, kept with the failure.
	fail := func(ae *httpapi.Error, cause error) error {
		if ae.Code != http.StatusNotFound && (!legacy || cause != nil) {
			msg := ae.Message
			if cause != nil {
				msg += " (" + cause.Error() + ")"
			}
			ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), 5*time.Second)
			defer cancel()
			s.service.AuthorizationFailed(ctx, who, name, msg, ae.Code != http.StatusServiceUnavailable)
			s.changed(name)
		}
		return refuse(ae)
	}
	if e := q.Get("error"); e != "" {
		msg := "webex did not authorize: " + console.Clean(e)
		if d := q.Get("error_description"); d != "" {
			msg += ": " + console.Clean(d)
		}
		return fail(httpapi.Errorf(http.StatusBadRequest, msg), nil)
	}
	if code == "" {
		return fail(httpapi.Errorf(http.StatusBadRequest, "missing code: this URL is for Webex's OAuth redirect"), nil)
	}
	if len(code) > 2048 {
		return fail(httpapi.Errorf(http.StatusBadRequest, "code is too long"), nil)
	}
	t, err := s.service.CompleteAuthorization(c.Request().Context(), who, lifecycle.Authorization{Name: name, Code: code, Verifier: verifier})
	if err != nil {
		s.logger.Warn("authorization failed", "token", name, "error", err.Error())
		return fail(httpapi.CallbackStatusOf(err, name, s.now()), err)
	}
	s.changed(name)
	s.cache.put(t, s.now().Add(s.cfg.CacheMaxAge))
	return c.JSON(http.StatusOK, map[string]string{"status": "200",
		"message": "token " + name + " authorized; it is now served and refreshed automatically"})
}

// verifyState returns the token name that state stands for and the PKCE
// verifier to send with the code: a signed state from /authorize, valid
// and not used before on any instance (its nonce is recorded as used
// here); or, only with LEGACY_STATE=true, the sample's raw token name
// (legacy, no verifier).
func (s *server) verifyState(c echo.Context, state string) (name, verifier string, legacy bool, ae *httpapi.Error) {
	claims, err := s.signer.Verify(state)
	switch {
	case err == nil:
		ctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
		defer cancel()
		fresh, err := s.store.UseNonce(ctx, claims.Nonce, claims.Expires)
		switch {
		case err != nil:
			s.logger.Warn("state nonce not recorded", "error", err.Error())
			return "", "", false, &httpapi.Error{Code: http.StatusServiceUnavailable, RetryAfter: 5 * time.Second, Message: "could not record the state; authorize again"}
		case !fresh:
			return "", "", false, httpapi.Errorf(http.StatusBadRequest, "this authorization link was already used: get a new one from /authorize")
		}
		return claims.Name, s.pkceVerifier(claims.Nonce), false, nil
	case errors.Is(err, oauthstate.ErrExpiredState):
		return "", "", false, httpapi.Errorf(http.StatusBadRequest, "this authorization link expired: get a new one from /authorize")
	case s.cfg.LegacyState:
		if err := token.ValidateName(state); err != nil {
			return "", "", false, httpapi.Errorf(http.StatusBadRequest, "state is neither a signed state nor a valid token name")
		}
		return state, "", true, nil
	}
	return "", "", false, httpapi.Errorf(http.StatusBadRequest,
		"state is not a valid signed state from /authorize (raw token names are accepted only with LEGACY_STATE=true)")
}
