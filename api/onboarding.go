package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

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
		return writeError(c, errorf(http.StatusBadRequest, "missing name: call GET /init?name=<token name>"))
	}
	if err := token.ValidateName(name); err != nil {
		return writeError(c, statusOf(err, name, s.now()))
	}
	addr := s.throttleKey(c)
	if ae := s.throttled(addr, name); ae != nil {
		return writeError(c, ae)
	}
	given := c.Request().Header.Get("x-token-passphrase")
	if !s.tokenKeys.Match(given) {
		s.throttle.Fail(addr, name)
		if given == "" {
			return writeError(c, errorf(http.StatusUnauthorized, "missing x-token-passphrase header"))
		}
		return writeError(c, errorf(http.StatusUnauthorized, "wrong passphrase"))
	}
	created, err := s.store.Create(c.Request().Context(), &token.Token{Name: name, Status: token.StatusPending})
	if err != nil {
		s.logger.Warn("init failed", "token", name, "error", err.Error())
		return writeError(c, statusOf(err, name, s.now()))
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
// It exchanges the code with the client config stored for the token named
// by state and stores the tokens. A failure is also recorded in the
// token's lastError when the state says which token it was for. An
// authorization started from the console is answered with a page that
// takes the browser back to the token's console page.
func (s *server) callback(c echo.Context) error {
	q := c.QueryParams()
	code, state := q.Get("code"), q.Get("state")
	flow := s.callbackFlow(state)
	if e := q.Get("error"); e != "" {
		msg := "webex did not authorize: " + clean(e)
		if d := q.Get("error_description"); d != "" {
			msg += ": " + clean(d)
		}
		return s.callbackFailed(c, flow, errorf(http.StatusBadRequest, msg), nil)
	}
	if code == "" {
		return s.callbackFailed(c, flow, errorf(http.StatusBadRequest, "missing code: this URL is for Webex's OAuth redirect"), nil)
	}
	if len(code) > 2048 {
		return s.callbackFailed(c, flow, errorf(http.StatusBadRequest, "code is too long"), nil)
	}
	if state == "" {
		return writeError(c, errorf(http.StatusBadRequest, "missing state"))
	}
	if state == statePlaceholder {
		return writeError(c, errorf(http.StatusBadRequest,
			"state is still the placeholder set_state_here: put the token name in the authorize URL's state"))
	}
	var name string
	var aerr *apiError
	if flow.console {
		name, aerr = s.consoleStateName(c, state)
	} else {
		name, aerr = s.stateName(c, state)
	}
	if aerr != nil {
		return s.callbackFailed(c, flow, aerr, nil)
	}
	flow.exchanged = true
	t, err := s.refresher.ExchangeCodeVerified(c.Request().Context(), name, code, flow.verifier)
	if err != nil {
		s.logger.Warn("authorization failed", "token", name, "error", err.Error())
		return s.callbackFailed(c, flow, s.callbackError(err, name), err)
	}
	s.cache.put(t, s.now().Add(s.cfg.CacheMaxAge))
	s.console.invalidate()
	if flow.console {
		return s.consoleLanding(c, http.StatusOK, flow, true, "Token "+name+" is authorized: it is now served and refreshed automatically.")
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "200",
		"message": "token " + name + " authorized; it is now served and refreshed automatically"})
}

// callbackFlow is what /callback knows from the state before using it.
type callbackFlow struct {
	// name is the token the state names ("" if it names none): a signed
	// state's, even an expired one, or with LEGACY_STATE a raw name.
	name string
	// legacy: name comes from a raw state anyone can write.
	legacy bool
	// console: the console started the authorization: it is bound to
	// the browser, made with PKCE, and answered with a page.
	console  bool
	verifier string
	// exchanged: the code went to Webex.
	exchanged bool
}

func (s *server) callbackFlow(state string) callbackFlow {
	var expired *oauthstate.ExpiredError
	if s.console != nil {
		claims, err := s.console.signer.Verify(state)
		switch {
		case err == nil:
			return callbackFlow{name: claims.Name, console: true, verifier: s.console.keys.pkceVerifier(claims.Nonce)}
		case errors.As(err, &expired):
			return callbackFlow{name: expired.Claims.Name, console: true}
		}
	}
	claims, err := s.signer.Verify(state)
	switch {
	case err == nil:
		return callbackFlow{name: claims.Name}
	case errors.As(err, &expired):
		return callbackFlow{name: expired.Claims.Name}
	case s.cfg.LegacyState && token.ValidateName(state) == nil:
		return callbackFlow{name: state, legacy: true}
	}
	return callbackFlow{}
}

// callbackFailed answers a failed /callback and records it on the token.
// A raw legacy state proves nothing, so its failures are recorded only
// once a code went to Webex: an anonymous caller cannot write to a token
// just by naming it.
func (s *server) callbackFailed(c echo.Context, flow callbackFlow, ae *apiError, cause error) error {
	if flow.name != "" && ae.code != http.StatusNotFound && (!flow.legacy || flow.exchanged) {
		s.recordAuthorizationFailure(c, flow.name, ae, cause)
	}
	if flow.console {
		if ae.retryAfter > 0 {
			writeRetryAfter(c, ae)
		}
		return s.consoleLanding(c, ae.code, flow, false, "The authorization of token "+flow.name+" failed: "+ae.message+".")
	}
	return writeError(c, ae)
}

// recordAuthorizationFailure stores a failed authorization in the
// token's lastError, with Webex's own words when it answered.
func (s *server) recordAuthorizationFailure(c echo.Context, name string, ae *apiError, cause error) {
	msg := "authorization failed: " + ae.message
	if cause != nil {
		msg += " (" + cause.Error() + ")"
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), 5*time.Second)
	defer cancel()
	_, err := s.store.Update(ctx, name, func(t *token.Token) ([]token.Event, error) {
		t.AuthorizationFailed(s.now(), msg, ae.code != http.StatusServiceUnavailable)
		return nil, nil
	})
	if err != nil && !errors.Is(err, token.ErrNotFound) {
		s.logger.Warn("failed authorization not recorded", "token", name, "error", err.Error())
	}
	s.console.invalidate()
}

// stateName returns the token name that state stands for: a signed state
// from /authorize, valid and not used before on any instance; or, only
// with LEGACY_STATE=true, the sample's raw token name.
func (s *server) stateName(c echo.Context, state string) (string, *apiError) {
	claims, err := s.signer.Verify(state)
	switch {
	case err == nil:
		if ae := s.useNonce(c, claims, "get a new one from /authorize"); ae != nil {
			return "", ae
		}
		return claims.Name, nil
	case errors.Is(err, oauthstate.ErrExpiredState):
		return "", errorf(http.StatusBadRequest, "this authorization link expired: get a new one from /authorize")
	case s.cfg.LegacyState:
		if err := token.ValidateName(state); err != nil {
			return "", errorf(http.StatusBadRequest, "state is neither a signed state nor a valid token name")
		}
		return state, nil
	}
	return "", errorf(http.StatusBadRequest,
		"state is not a valid signed state from /authorize (raw token names are accepted only with LEGACY_STATE=true)")
}

// useNonce records a signed state's nonce as used, across all instances;
// a state is accepted once. again says how to get a new one.
func (s *server) useNonce(c echo.Context, claims oauthstate.Claims, again string) *apiError {
	if s.admin == nil {
		return errorf(http.StatusServiceUnavailable, "signed states need the admin endpoints enabled")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
	defer cancel()
	fresh, err := s.admin.UseNonce(ctx, claims.Nonce, claims.Expires)
	if err != nil {
		s.logger.Warn("state nonce not recorded", "error", err.Error())
		return &apiError{code: http.StatusServiceUnavailable, retryAfter: 5 * time.Second, message: "could not record the state; authorize again"}
	}
	if !fresh {
		return errorf(http.StatusBadRequest, "this authorization link was already used: "+again)
	}
	return nil
}

func (s *server) callbackError(err error, name string) *apiError {
	var te *token.TransientError
	switch {
	case errors.Is(err, token.ErrNotFound):
		return errorf(http.StatusNotFound, "no token named "+name+": create it first")
	case errors.Is(err, token.ErrNoClientConfig):
		return errorf(http.StatusConflict, "token "+name+" has no complete client config (clientId, clientSecret, redirectUri)")
	case errors.Is(err, token.ErrGrantRejected):
		return errorf(http.StatusBadRequest, "webex rejected the authorization code (expired, already used, or for another redirect URI)")
	case errors.Is(err, token.ErrClientRejected):
		return errorf(http.StatusBadGateway, "webex rejected the client credentials stored for token "+name)
	case errors.As(err, &te):
		return &apiError{code: http.StatusServiceUnavailable, retryAfter: max(te.RetryAfter, 0), message: "webex is unavailable; authorize again later"}
	}
	return statusOf(err, name, s.now())
}

// clean keeps an untrusted query value short and printable before it is
// echoed in a message.
func clean(s string) string {
	const maxLen = 200
	out := make([]byte, 0, min(len(s), maxLen))
	for i := 0; i < len(s) && len(out) < maxLen; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			out = append(out, c)
		}
	}
	return string(out)
}
