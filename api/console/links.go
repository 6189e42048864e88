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

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/httpapi"
	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/oauthstate"
	"github.com/wxcc/tokenservice/shared/people"
	"github.com/wxcc/tokenservice/shared/token"
)

// Authorization links (DESIGN 2b): the admin who runs the service is
// often not the Webex user who must authorize. An operator makes a link
// for a token (optionally naming who must use it); the person who opens
// it needs no console access:
//
//   - GET /link/<id> says what it is for; its button (POST, same origin)
//     sends the browser to Webex with the link's own PKCE challenge (the
//     verifier is held server-side) and a state signed with the link key,
//     and binds the authorization to that browser (the binding cookie
//     holds a MAC of the state's nonce and the link's ID);
//   - /callback checks the state, the binding and that the state was not
//     used before, exchanges the code with the link's verifier, asks Webex
//     who authorized, and uses the link (single use, across instances)
//     before the grant is stored: a link used, revoked, expired or meant
//     for someone else stores nothing;
//   - the person sees a plain confirmation page.

// linkPath is the public path of a link's page.
const linkPath = "/link/"

// linkBindCookie binds a link's authorization to the browser that
// started it: <link id>.<MAC of the state's nonce and the id>.
const linkBindCookie = "tks_link"

// LinkURL is the address of the link id on this console: CONSOLE_URL if
// set, else the origin the request came to.
func (cs *Console) LinkURL(r *http.Request, id string) string {
	base := cs.cfg.ConsoleURL
	if base == "" {
		base = consoleOrigin(r)
	}
	return base + linkPath + id
}

// createLink is the token page's "Create link" form.
func (cs *Console) createLink(c echo.Context) error {
	name := c.Param("name")
	email := strings.TrimSpace(c.FormValue("email"))
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	id, l, err := cs.d.Service.CreateLink(ctx, cs.actor(c), name, email)
	if err != nil {
		ae := httpapi.StatusOf(err, name, cs.now())
		return cs.renderToken(c, ae.Code, name, &flash{"error", "No link made: " + ae.Message}, nil)
	}
	for_ := "anyone who opens it"
	if l.Email != "" {
		for_ = l.Email + " only"
	}
	cs.changed(name)
	return cs.renderTokenWithLink(c, name, cs.LinkURL(c.Request(), id), "Link made for "+for_+", valid until "+
		l.Expires.UTC().Format("2 Jan 2006 15:04 MST")+" and usable once. Send it to them; it is shown only now.")
}

// revokeLink ends a pending link of the token.
func (cs *Console) revokeLink(c echo.Context) error {
	name, key := c.Param("name"), c.Param("key")
	if !people.ValidKey(key) {
		return cs.renderToken(c, http.StatusBadRequest, name, &flash{"error", "No such link."}, nil)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	if err := cs.d.Service.RevokeLink(ctx, cs.actor(c), name, key); err != nil {
		return cs.renderToken(c, http.StatusConflict, name, &flash{"error", "Not revoked: " + linkTrouble(err)}, nil)
	}
	return c.Redirect(http.StatusSeeOther, "/admin/token/"+name+"?done=link_revoked")
}

// linkTrouble says in words what is wrong with a link.
func linkTrouble(err error) string {
	switch {
	case errors.Is(err, people.ErrLinkUsed):
		return "this link was used already: each link authorizes once"
	case errors.Is(err, people.ErrLinkRevoked):
		return "this link was revoked by an operator"
	case errors.Is(err, people.ErrLinkExpired):
		return "this link has expired"
	case errors.Is(err, people.ErrLinkWrongPerson), errors.Is(err, lifecycle.ErrWrongPerson):
		return "this link is for someone else: sign in at Webex as the person it names"
	case errors.Is(err, people.ErrLinkNotFound):
		return "there is no such link"
	}
	return "it could not be read; try again in a minute"
}

type linkView struct {
	Token   string
	Email   string
	Expires time.Time
	// Problem says why the link cannot be used, "" when it can.
	Problem string
	OK      bool
	Message string
}

// linkPage is what the person who opens a link sees.
func (cs *Console) linkPage(c echo.Context) error {
	l, problem := cs.openLink(c)
	v := linkView{Problem: problem}
	status := http.StatusOK
	if l != nil {
		v.Token, v.Email, v.Expires = l.Token, l.Email, l.Expires
	}
	if problem != "" {
		status = http.StatusGone
	}
	return cs.render(c, status, "link", page{Title: "Authorize a token", Data: v})
}

// openLink reads the link of the request's :id and says why it cannot be
// used ("" when it can).
func (cs *Console) openLink(c echo.Context) (*people.Link, string) {
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	l, err := cs.d.Service.Link(ctx, c.Param("id"))
	if err != nil {
		return nil, linkTrouble(err)
	}
	if err := l.Check(cs.now(), ""); err != nil && !errors.Is(err, people.ErrLinkWrongPerson) {
		return l, linkTrouble(err)
	}
	return l, ""
}

// startLink sends the browser that opened a link to Webex.
func (cs *Console) startLink(c echo.Context) error {
	if !sameOrigin(c.Request()) {
		return cs.render(c, http.StatusForbidden, "link", page{Title: "Authorize a token",
			Data: linkView{Problem: "the form was not sent from this page"}})
	}
	id := c.Param("id")
	l, problem := cs.openLink(c)
	if problem != "" {
		return cs.render(c, http.StatusGone, "link", page{Title: "Authorize a token", Data: linkView{Problem: problem}})
	}
	fail := func(message string) error {
		return cs.render(c, http.StatusConflict, "link", page{Title: "Authorize a token",
			Data: linkView{Token: l.Token, Email: l.Email, Expires: l.Expires, Problem: message}})
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	t, err := cs.d.Service.Authorizable(ctx, l.Token)
	if err != nil {
		return fail("the token cannot be authorized right now (" + httpapi.StatusOf(err, l.Token, cs.now()).Message + "); tell the person who sent you the link")
	}
	if !sameCallback(t.RedirectURI, c.Request()) {
		return fail("the token's redirect URI does not lead back here; tell the person who sent you the link")
	}
	signer := oauthstate.Signer{Key: cs.keys.link, Now: cs.d.Now}
	state, nonce, _, err := signer.Issue(l.Token)
	if err != nil {
		return fail("no state could be issued")
	}
	u, err := url.Parse(cs.d.AuthorizeURL(token.Client{ID: t.ClientID, RedirectURI: t.RedirectURI}, t.Scopes, state))
	if err != nil {
		return fail("WEBEX_AUTHORIZE_URL is not a URL")
	}
	q := u.Query()
	q.Set("code_challenge", l.Challenge())
	q.Set("code_challenge_method", "S256")
	u.RawQuery = q.Encode()
	setCookie(c, linkBindCookie, id+"."+mac(cs.keys.bind, "link", nonce, id), oauthstate.DefaultTTL, http.SameSiteLaxMode)
	// Who opened it is known only once Webex says: the link's holder.
	who := lifecycle.Actor{Kind: activity.ByVisitor, Name: "holder of a link", Addr: cs.d.ClientAddr(c.Request())}
	for_ := "anyone"
	if l.Email != "" {
		for_ = l.Email
	}
	cs.d.Service.AuthorizationStarted(ctx, who, l.Token, "from an authorization link for "+for_+" made by "+l.CreatedBy)
	return c.Redirect(http.StatusSeeOther, u.String())
}

// linkCallback completes at /callback an authorization started from a
// link, and reports whether the state was a link's. Like Callback, it
// verifies everything before it records anything.
func (cs *Console) linkCallback(c echo.Context) (handled bool, err error) {
	q := c.QueryParams()
	signer := oauthstate.Signer{Key: cs.keys.link, Now: cs.d.Now}
	claims, verr := signer.Verify(q.Get("state"))
	var expired *oauthstate.ExpiredError
	switch {
	case errors.As(verr, &expired):
		claims = expired.Claims
	case verr != nil:
		return false, nil // not a link's
	}
	setPageHeaders(c, cs.csp)
	addr := cs.d.ClientKey(c.Request())
	done := func(status int, ok bool, message string) error {
		return cs.render(c, status, "link", page{Title: "Authorize a token", Data: linkView{Token: claims.Name, OK: ok, Message: message}})
	}
	if ae := cs.d.Throttle.Throttled(addr, CallbackThrottleName); ae != nil {
		httpapi.SetRetryAfter(c, ae.RetryAfter)
		return true, done(ae.Code, false, "Too many failed authorizations from this address: try again in "+humanDuration(ae.RetryAfter)+".")
	}
	refuse := func(message string) error {
		cs.d.Throttle.Fail(addr, CallbackThrottleName)
		return done(http.StatusBadRequest, false, message)
	}
	id, tag, _ := strings.Cut(cookieValue(c.Request(), linkBindCookie), ".")
	switch {
	case verr != nil:
		return true, refuse("The authorization took longer than 15 minutes: open the link again.")
	case id == "" || subtle.ConstantTimeCompare([]byte(tag), []byte(mac(cs.keys.bind, "link", claims.Nonce, id))) != 1:
		return true, refuse("This authorization was started in another browser: open the link again in this one.")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	fresh, nerr := cs.d.Nonces.UseNonce(ctx, claims.Nonce, claims.Expires)
	switch {
	case nerr != nil:
		httpapi.SetRetryAfter(c, 5*time.Second)
		return true, done(http.StatusServiceUnavailable, false, "The authorization could not be recorded: open the link again in a minute.")
	case !fresh:
		return true, refuse("This authorization was already completed.")
	}
	setCookie(c, linkBindCookie, "", -1, http.SameSiteLaxMode)
	l, lerr := cs.d.Service.Link(ctx, id)
	if lerr == nil {
		lerr = l.Check(cs.now(), "")
		if errors.Is(lerr, people.ErrLinkWrongPerson) {
			lerr = nil // who it is, Webex says below
		}
	}
	if lerr != nil || l.Token != claims.Name {
		return true, refuse("This link cannot be used: " + linkTrouble(lerr) + ".")
	}
	who := lifecycle.Actor{Kind: activity.ByVisitor, Addr: cs.d.ClientAddr(c.Request())}
	if e := q.Get("error"); e != "" {
		msg := "webex did not authorize: " + Clean(e)
		cs.d.Service.AuthorizationFailed(ctx, who, l.Token, msg, true)
		cs.changed(l.Token)
		return true, done(http.StatusBadRequest, false, "Webex did not authorize ("+Clean(e)+"). The link still works: open it again to try once more.")
	}
	code := q.Get("code")
	if code == "" || len(code) > 2048 {
		return true, refuse("Webex sent no usable code: open the link again.")
	}
	_, err = cs.d.Service.CompleteLink(ctx, who, l, code)
	cs.changed(l.Token)
	switch {
	case err == nil:
		return true, done(http.StatusOK, true, "Token "+l.Token+" is authorized. Thank you: you can close this page.")
	case errors.Is(err, lifecycle.ErrWrongPerson), errors.Is(err, people.ErrLinkWrongPerson):
		return true, done(http.StatusForbidden, false, "This link is for "+l.Email+": you signed in at Webex as someone else, so nothing was stored. "+
			"Open the link again and sign in at Webex as "+l.Email+".")
	case errors.Is(err, lifecycle.ErrPersonUnknown):
		return true, done(http.StatusForbidden, false, "Webex could not say who you are, and this link is for "+l.Email+" only, so nothing was stored. "+
			"Tell the person who sent you the link.")
	case errors.Is(err, people.ErrLinkUsed), errors.Is(err, people.ErrLinkRevoked), errors.Is(err, people.ErrLinkExpired):
		return true, done(http.StatusConflict, false, "This link cannot be used: "+linkTrouble(err)+". Nothing was stored.")
	}
	ae := httpapi.CallbackStatusOf(err, l.Token, cs.now())
	stored := ae.Message + " (" + err.Error() + ")"
	if errors.Is(err, token.ErrClientRejected) {
		// Advice for the operators who read the token's last error; the
		// error itself goes to the log.
		cs.log.Warn("authorization through a link failed", "token", l.Token, "error", err.Error())
		stored = clientAdvice
	}
	cs.d.Service.AuthorizationFailed(ctx, who, l.Token, stored, ae.Code != http.StatusServiceUnavailable)
	return true, done(ae.Code, false, "The authorization failed: "+ae.Message+". The link still works if it was not used: open it again.")
}
