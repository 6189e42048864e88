package console

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/httpapi"
	"github.com/wxcc/tokenservice/shared/lifecycle"
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

// authorize sends the browser to Webex's authorize page.
func (cs *Console) authorize(c echo.Context) error {
	name := c.Param("name")
	if err := token.ValidateName(name); err != nil {
		return cs.renderMessage(c, http.StatusBadRequest, "Token", &flash{"error", httpapi.StatusOf(err, name, cs.now()).Message})
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	t, err := cs.d.Service.Authorizable(ctx, name)
	if err != nil {
		ae := httpapi.StatusOf(err, name, cs.now())
		return cs.renderToken(c, ae.Code, name, &flash{"error", "Cannot authorize: " + ae.Message}, nil)
	}
	if want := consoleOrigin(c.Request()) + "/callback"; !sameCallback(t.RedirectURI, c.Request()) {
		return cs.renderToken(c, http.StatusConflict, name, &flash{"error", "Cannot authorize from here: the redirect URI " + t.RedirectURI +
			" does not lead back to this console (" + want + "). Set it to " + want + ", and register that URI in the Webex integration too."}, nil)
	}
	state, nonce, _, err := cs.signer.Issue(name)
	if err != nil {
		cs.log.Error("console state not issued", "error", err.Error())
		return cs.renderToken(c, http.StatusServiceUnavailable, name, &flash{"error", "Cannot authorize: no state could be issued."}, nil)
	}
	u, err := url.Parse(cs.d.AuthorizeURL(token.Client{ID: t.ClientID, RedirectURI: t.RedirectURI}, t.Scopes, state))
	if err != nil {
		return cs.renderToken(c, http.StatusServiceUnavailable, name, &flash{"error", "Cannot authorize: WEBEX_AUTHORIZE_URL is not a URL."}, nil)
	}
	q := u.Query()
	q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(cs.keys.pkceVerifier(nonce)))
	q.Set("code_challenge_method", "S256")
	u.RawQuery = q.Encode()

	bindings := []string{cs.keys.bindValue(nonce)}
	for _, b := range strings.Split(cookieValue(c.Request(), bindCookie), ".") {
		if b != "" && len(bindings) < maxBindings {
			bindings = append(bindings, b)
		}
	}
	setCookie(c, bindCookie, strings.Join(bindings, "."), oauthstate.DefaultTTL, http.SameSiteLaxMode)
	cs.d.Service.AuthorizationStarted(ctx, cs.actor(c), name, "from the console")
	return c.Redirect(http.StatusSeeOther, u.String())
}

// sameCallback reports whether redirectURI leads to this service's
// /callback on the host the browser uses now: only then does the
// binding cookie come back with it.
func sameCallback(redirectURI string, r *http.Request) bool {
	u, err := url.Parse(redirectURI)
	return err == nil && strings.EqualFold(u.Host, r.Host) && u.Path == "/callback"
}

// CallbackThrottleName is the throttle's "token name" for failed
// /callback requests; no token name can contain '/'.
const CallbackThrottleName = "/callback"

// Callback completes at /callback an authorization that the console
// started, and reports whether the state was the console's (else the api
// handles the request). The state is verified exactly as for a success
// (signature, expiry, browser binding, single use across instances)
// before anything is recorded, an error redirect included: a stranger
// with a used or old state writes nothing. Every refusal counts towards
// the client address's throttle.
func (cs *Console) Callback(c echo.Context) (handled bool, err error) {
	if cs == nil {
		return false, nil
	}
	if handled, err := cs.linkCallback(c); handled {
		return true, err
	}
	q := c.QueryParams()
	claims, verr := cs.signer.Verify(q.Get("state"))
	var expired *oauthstate.ExpiredError
	switch {
	case errors.As(verr, &expired):
		claims = expired.Claims
	case verr != nil:
		return false, nil // not the console's
	}
	setPageHeaders(c, cs.csp)
	addr := cs.d.ClientKey(c.Request())
	if ae := cs.d.Throttle.Throttled(addr, CallbackThrottleName); ae != nil {
		httpapi.SetRetryAfter(c, ae.RetryAfter)
		return true, cs.landing(c, ae.Code, "", false, "Too many failed authorizations from this address: try again in "+humanDuration(ae.RetryAfter)+".")
	}
	// refuse answers a state that did not verify; nothing is recorded on
	// the token, whose page the browser is only sent back to.
	refuse := func(message string) error {
		cs.d.Throttle.Fail(addr, CallbackThrottleName)
		name := claims.Name
		if token.ValidateName(name) != nil {
			name = ""
		}
		return cs.landing(c, http.StatusBadRequest, name, false, message)
	}
	switch {
	case verr != nil:
		return true, refuse("The authorization took longer than 15 minutes: start it again with Authorize with Webex.")
	case !cs.boundHere(c, claims.Nonce):
		return true, refuse("This authorization was started in another browser, or too long ago: start it again with Authorize with Webex " +
			"in this browser (an authorize link cannot be completed elsewhere).")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	fresh, nerr := cs.d.Nonces.UseNonce(ctx, claims.Nonce, claims.Expires)
	switch {
	case nerr != nil:
		cs.log.Warn("state nonce not recorded", "error", nerr.Error())
		httpapi.SetRetryAfter(c, 5*time.Second)
		return true, cs.landing(c, http.StatusServiceUnavailable, claims.Name, false, "The authorization could not be recorded: start it again.")
	case !fresh:
		return true, refuse("This authorization was already completed: start again with Authorize with Webex.")
	}
	cs.unbind(c, claims.Nonce)
	name := claims.Name
	who := lifecycle.Actor{Kind: activity.ByVisitor, Addr: cs.d.ClientAddr(c.Request())}
	fail := func(ae *httpapi.Error) error {
		cs.d.Throttle.Fail(addr, CallbackThrottleName)
		cs.d.Service.AuthorizationFailed(ctx, who, name, ae.Message, ae.Code != http.StatusServiceUnavailable)
		cs.changed(name)
		if ae.RetryAfter > 0 {
			httpapi.SetRetryAfter(c, ae.RetryAfter)
		}
		return cs.landing(c, ae.Code, name, false, "The authorization of token "+name+" failed: "+ae.Message+".")
	}
	code := q.Get("code")
	switch e := q.Get("error"); {
	case e != "":
		msg := "webex did not authorize: " + Clean(e)
		if d := q.Get("error_description"); d != "" {
			msg += ": " + Clean(d)
		}
		return true, fail(httpapi.Errorf(http.StatusBadRequest, msg))
	case code == "":
		return true, fail(httpapi.Errorf(http.StatusBadRequest, "missing code: this URL is for Webex's OAuth redirect"))
	case len(code) > 2048:
		return true, fail(httpapi.Errorf(http.StatusBadRequest, "code is too long"))
	}
	_, err = cs.d.Service.CompleteAuthorization(ctx, who, lifecycle.Authorization{Name: name, Code: code, Verifier: cs.keys.pkceVerifier(claims.Nonce)})
	if err != nil {
		cs.log.Warn("authorization failed", "token", name, "error", err.Error())
		ae := httpapi.CallbackStatusOf(err, name, cs.now())
		if errors.Is(err, token.ErrClientRejected) {
			// Advice, on the page and in the token's last error alike.
			ae = &httpapi.Error{Code: ae.Code, Message: clientAdvice}
		}
		return true, fail(ae)
	}
	cs.changed(name)
	return true, cs.landing(c, http.StatusOK, name, true, "Token "+name+" is authorized: it is now served and refreshed automatically.")
}

// Clean keeps an untrusted query value short and printable before it is
// echoed in a message.
func Clean(s string) string {
	const maxLen = 200
	out := make([]byte, 0, min(len(s), maxLen))
	for i := 0; i < len(s) && len(out) < maxLen; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			out = append(out, c)
		}
	}
	return string(out)
}

// boundHere reports whether this browser's binding cookie holds nonce's MAC.
func (cs *Console) boundHere(c echo.Context, nonce string) bool {
	want := []byte(cs.keys.bindValue(nonce))
	found := 0
	for _, b := range strings.Split(cookieValue(c.Request(), bindCookie), ".") {
		found |= subtle.ConstantTimeCompare([]byte(b), want)
	}
	return found == 1
}

// unbind removes a used state's entry from the binding cookie.
func (cs *Console) unbind(c echo.Context, nonce string) {
	used := cs.keys.bindValue(nonce)
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

// landing answers /callback for a console authorization: a page that
// says how it went and sends the browser on to the token's page (name ""
// : the overview). A page, not a redirect: the browser arrives from
// Webex, another site, so it would not send the SameSite=Strict session
// cookie along a redirect; a navigation this page starts is same-site
// again.
func (cs *Console) landing(c echo.Context, status int, name string, ok bool, message string) error {
	next := "/admin/"
	if name != "" {
		result := "failed"
		if ok {
			result = "ok"
		}
		next = "/admin/token/" + name + "?authorization=" + result
	}
	p := page{Title: "Authorization", Goto: next, Data: landingView{OK: ok, Message: message, Next: next}}
	p.Flash = &flash{"error", message}
	if ok {
		p.Flash.Kind = "ok"
	}
	return cs.render(c, status, "landing", p)
}
