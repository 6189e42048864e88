package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"github.com/wxcc/tokenservice/shared/oauthstate"
	"github.com/wxcc/tokenservice/shared/token"
)

// An authorization started from the console ("Authorize with Webex"):
//
//   - its state is signed with the console's own key, so /callback knows
//     where it came from;
//   - it is bound to the browser that started it: the binding cookie holds
//     a MAC of the state's nonce (SameSite=Lax, because the browser comes
//     back from Webex, another site), and /callback refuses the state
//     without it, so a leaked authorize link cannot be completed in
//     another browser;
//   - it uses PKCE (S256, which Webex supports): the verifier is derived
//     from the nonce under a server key, so nothing is stored;
//   - /callback answers with a page that sends the browser back to the
//     token's console page, which says how it went.

// maxBindings is how many authorizations one browser may have in flight.
const maxBindings = 4

// authorizeFromConsole sends the browser to Webex's authorize page.
func (s *server) authorizeFromConsole(c echo.Context) error {
	name := c.Param("name")
	if err := token.ValidateName(name); err != nil {
		return s.renderMessage(c, http.StatusBadRequest, "Token", &flash{"error", statusOf(err, name, s.now()).message})
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	t, err := s.authorizable(ctx, name)
	if err != nil {
		ae := statusOf(err, name, s.now())
		return s.renderToken(c, ae.code, name, &flash{"error", "Cannot authorize: " + ae.message}, nil)
	}
	if want := consoleOrigin(c.Request()) + "/callback"; !sameCallback(t.RedirectURI, c.Request()) {
		return s.renderToken(c, http.StatusConflict, name, &flash{"error", "Cannot authorize from here: the redirect URI " + t.RedirectURI +
			" does not lead back to this console (" + want + "). Set it to " + want + ", and register that URI in the Webex integration too."}, nil)
	}
	state, nonce, _, err := s.console.signer.Issue(name)
	if err != nil {
		s.logger.Error("console state not issued", "error", err.Error())
		return s.renderToken(c, http.StatusServiceUnavailable, name, &flash{"error", "Cannot authorize: no state could be issued."}, nil)
	}
	u, err := url.Parse(s.authorizeURL(token.Client{ID: t.ClientID, RedirectURI: t.RedirectURI}, t.Scopes, state))
	if err != nil {
		return s.renderToken(c, http.StatusServiceUnavailable, name, &flash{"error", "Cannot authorize: WEBEX_AUTHORIZE_URL is not a URL."}, nil)
	}
	q := u.Query()
	q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(s.console.keys.pkceVerifier(nonce)))
	q.Set("code_challenge_method", "S256")
	u.RawQuery = q.Encode()

	bindings := []string{s.console.keys.bindValue(nonce)}
	for _, b := range strings.Split(cookieValue(c.Request(), bindCookie), ".") {
		if b != "" && len(bindings) < maxBindings {
			bindings = append(bindings, b)
		}
	}
	setCookie(c, bindCookie, strings.Join(bindings, "."), oauthstate.DefaultTTL, http.SameSiteLaxMode)
	s.logger.Info("admin action", "action", "authorize", "token", name, "via", "console", "remote_ip", c.RealIP())
	return c.Redirect(http.StatusSeeOther, u.String())
}

// sameCallback reports whether redirectURI leads to this service's
// /callback on the host the browser uses now: only then does the
// binding cookie come back with it.
func sameCallback(redirectURI string, r *http.Request) bool {
	u, err := url.Parse(redirectURI)
	return err == nil && strings.EqualFold(u.Host, r.Host) && u.Path == "/callback"
}

// consoleStateName checks a console state at /callback: authentic,
// unexpired, started in this browser, and not used before.
func (s *server) consoleStateName(c echo.Context, state string) (string, *apiError) {
	claims, err := s.console.signer.Verify(state)
	switch {
	case errors.Is(err, oauthstate.ErrExpiredState):
		return "", errorf(http.StatusBadRequest, "the authorization took longer than 15 minutes: start it again with Authorize with Webex")
	case err != nil:
		return "", errorf(http.StatusBadRequest, "state is not a valid signed state")
	}
	if !s.boundHere(c, claims.Nonce) {
		return "", errorf(http.StatusBadRequest, "this authorization was started in another browser, or too long ago: "+
			"start it again with Authorize with Webex in this browser (an authorize link cannot be completed elsewhere)")
	}
	if ae := s.useNonce(c, claims, "start again with Authorize with Webex"); ae != nil {
		return "", ae
	}
	s.unbind(c, claims.Nonce)
	return claims.Name, nil
}

// boundHere reports whether this browser's binding cookie holds nonce's MAC.
func (s *server) boundHere(c echo.Context, nonce string) bool {
	want := []byte(s.console.keys.bindValue(nonce))
	found := 0
	for _, b := range strings.Split(cookieValue(c.Request(), bindCookie), ".") {
		found |= subtle.ConstantTimeCompare([]byte(b), want)
	}
	return found == 1
}

// unbind removes a used state's entry from the binding cookie.
func (s *server) unbind(c echo.Context, nonce string) {
	used := s.console.keys.bindValue(nonce)
	var rest []string
	for _, b := range strings.Split(cookieValue(c.Request(), bindCookie), ".") {
		if b != "" && b != used {
			rest = append(rest, b)
		}
	}
	if len(rest) == 0 {
		setCookie(c, bindCookie, "", -1, http.SameSiteLaxMode)
		return
	}
	setCookie(c, bindCookie, strings.Join(rest, "."), oauthstate.DefaultTTL, http.SameSiteLaxMode)
}

type landingView struct {
	OK      bool
	Message string
	Next    string
}

// consoleLanding answers /callback for a console authorization: a page
// that says how it went and sends the browser on to the token's page. A
// page, not a redirect: the browser arrives from Webex, another site, so
// it would not send the SameSite=Strict session cookie along a redirect;
// a navigation this page starts is same-site again.
func (s *server) consoleLanding(c echo.Context, status int, flow callbackFlow, ok bool, message string) error {
	next := "/admin/"
	if flow.name != "" {
		result := "failed"
		if ok {
			result = "ok"
		}
		next = "/admin/token/" + flow.name + "?authorization=" + result
	}
	c.Response().Header().Set("Content-Security-Policy", s.console.csp)
	p := page{Title: "Authorization", Goto: next, Data: landingView{OK: ok, Message: message, Next: next}}
	if ok {
		p.Flash = &flash{"ok", message}
	} else {
		p.Flash = &flash{"error", message}
	}
	return s.render(c, status, "landing", p)
}
