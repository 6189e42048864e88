package console

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/httpapi"
	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/people"
	"github.com/wxcc/tokenservice/shared/token"
	"github.com/wxcc/tokenservice/shared/webexlogin"
)

// Two ways into the console (DESIGN 2b): sign-in with Webex (OpenID
// Connect: code with PKCE, a nonce, the state bound to the browser by a
// sealed cookie; who may enter is CONSOLE_OPERATORS / CONSOLE_VIEWERS /
// CONSOLE_ORG_ID), and ADMIN_PASSPHRASE, the break-glass way in (an
// operator). Either may be configured alone. Both end in a server-side
// session that sign-out, or an operator, ends everywhere at once.

// sessionKey is where signedIn leaves the session for the handlers.
const sessionKey = "console.session"

// loginTTL bounds a sign-in with Webex from its start to Webex's answer.
const loginTTL = 10 * time.Minute

// WebexCallbackPath is where Webex sends the browser back after a
// sign-in: register <console origin> + it on the sign-in integration.
const WebexCallbackPath = "/admin/signin/webex/callback"

// requireSession lets only a signed-in person through; a request that
// changes something must come from this console's pages (same origin and
// the session's CSRF token) and from an operator.
func (cs *Console) requireSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		sess, _, err := cs.sessionOf(r)
		if err != nil {
			return cs.storeTrouble(c, err)
		}
		if sess == nil {
			if safeMethod(r.Method) {
				return c.Redirect(http.StatusSeeOther, "/admin/signin?next="+url.QueryEscape(r.URL.Path))
			}
			return cs.render(c, http.StatusUnauthorized, "message", page{Title: "Signed out",
				Flash: &flash{"error", "Your session has ended: sign in again, then repeat what you were doing."}})
		}
		c.Set(sessionKey, sess)
		if safeMethod(r.Method) {
			return next(c)
		}
		if !cs.crossSiteSafe(c, sess) {
			cs.log.Warn("cross-site console request refused", "route", c.Path(), "remote_ip", c.RealIP())
			return cs.renderMessage(c, http.StatusForbidden, "Request refused",
				&flash{"error", "Request refused: it did not come from a page of this console. Nothing was changed."})
		}
		if !sess.canChange() && c.Path() != "/admin/signout" {
			return cs.renderMessage(c, http.StatusForbidden, "Viewers change nothing",
				&flash{"error", "You are signed in as a viewer: viewers see everything and change nothing. Nothing was changed; ask an operator."})
		}
		return next(c)
	}
}

type signinView struct {
	Next  string
	Error string
	// The ways in that are configured.
	Webex, Passphrase bool
}

func (cs *Console) renderSignin(c echo.Context, status int, next, problem string) error {
	p := page{Title: "Sign in", Data: signinView{Next: next, Error: problem,
		Webex: cs.d.Login != nil, Passphrase: cs.d.AdminKey != nil}}
	if c.QueryParam("signedout") != "" {
		p.Flash = &flash{"ok", "You are signed out."}
	}
	return cs.render(c, status, "signin", p)
}

func (cs *Console) signinPage(c echo.Context) error {
	sess, _, err := cs.sessionOf(c.Request())
	if err != nil {
		return cs.storeTrouble(c, err)
	}
	if sess != nil {
		return c.Redirect(http.StatusSeeOther, localNext(c.QueryParam("next")))
	}
	return cs.renderSignin(c, http.StatusOK, localNext(c.QueryParam("next")), "")
}

// signin checks the admin passphrase, through the same throttle as every
// passphrase, and starts an operator's session.
func (cs *Console) signin(c echo.Context) error {
	// The origin is checked before the form is parsed: a cross-site
	// request costs no parsing and learns nothing.
	if !sameOrigin(c.Request()) {
		return cs.renderSignin(c, http.StatusForbidden, "/admin/", "Sign-in refused: the form was not sent from this console.")
	}
	next := localNext(c.FormValue("next"))
	if cs.d.AdminKey == nil {
		return cs.renderSignin(c, http.StatusNotFound, next, "Signing in with a passphrase is off here: sign in with Webex.")
	}
	addr := cs.d.ClientKey(c.Request())
	anon := lifecycle.Actor{Kind: activity.ByPassphrase, Name: activity.PassphraseActor, Addr: cs.d.ClientAddr(c.Request())}
	if ae := cs.d.Throttle.Throttled(addr, AdminThrottleName); ae != nil {
		httpapi.SetRetryAfter(c, ae.RetryAfter)
		return cs.renderSignin(c, http.StatusTooManyRequests, next,
			"Too many failed sign-ins from this address: try again in "+humanDuration(ae.RetryAfter)+".")
	}
	if !cs.d.AdminKey.Match(c.FormValue("passphrase")) {
		cs.d.Throttle.Fail(addr, AdminThrottleName)
		cs.record(c, anon, activity.SignInRefused, activity.Refused, "wrong admin passphrase")
		return cs.renderSignin(c, http.StatusUnauthorized, next, "Wrong passphrase: use the value of ADMIN_PASSPHRASE.")
	}
	if err := cs.startSession(c, token.Person{}, people.Operator, people.ViaPassphrase); err != nil {
		return cs.storeTrouble(c, err)
	}
	cs.record(c, anon, activity.SignIn, activity.OK, "with the admin passphrase, as operator")
	return c.Redirect(http.StatusSeeOther, next)
}

// signout ends the session everywhere at once.
func (cs *Console) signout(c echo.Context) error {
	sess, _ := c.Get(sessionKey).(*signedIn)
	setCookie(c, sessionCookie, "", -1, http.SameSiteStrictMode)
	if sess != nil {
		if err := cs.d.Sessions.End(c.Request().Context(), sess.Key); err != nil {
			return cs.storeTrouble(c, err)
		}
		cs.record(c, cs.actor(c), activity.SignOut, activity.OK, "")
	}
	return c.Redirect(http.StatusSeeOther, "/admin/signin?signedout=1")
}

// localNext is where to go after signing in: a console path, never
// another site.
func localNext(next string) string {
	if !strings.HasPrefix(next, "/admin/") || strings.ContainsAny(next, "\\\r\n") || strings.HasPrefix(next, "//") {
		return "/admin/"
	}
	return next
}

// ---- sign-in with Webex ----

// login is a sign-in with Webex in flight: what the browser's sealed
// cookie carries between the start and Webex's redirect back.
type login struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"x"`
	Expires  int64  `json:"e"`
}

// seal is l as a cookie value: base64url JSON and its MAC. Nothing in it
// is a secret on its own (the verifier is useless without the code, the
// code useless without the client secret), but no one else may make one.
func (cs *Console) seal(l login) string {
	body, _ := json.Marshal(l)
	v := base64.RawURLEncoding.EncodeToString(body)
	return v + "." + mac(cs.keys.login, "login", v)
}

// unseal is seal's inverse; false for a value that is not ours, or old.
func (cs *Console) unseal(v string) (login, bool) {
	var l login
	body, tag, ok := strings.Cut(v, ".")
	if !ok || len(v) > 2048 || subtle.ConstantTimeCompare([]byte(tag), []byte(mac(cs.keys.login, "login", body))) != 1 {
		return l, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || json.Unmarshal(raw, &l) != nil || cs.now().Unix() > l.Expires {
		return login{}, false
	}
	return l, true
}

// signinWebex starts a sign-in with Webex: the browser goes to Webex with
// a fresh state, nonce and PKCE challenge, which its sealed cookie keeps.
func (cs *Console) signinWebex(c echo.Context) error {
	if !sameOrigin(c.Request()) {
		return cs.renderSignin(c, http.StatusForbidden, "/admin/", "Sign-in refused: the form was not sent from this console.")
	}
	next := localNext(c.FormValue("next"))
	if cs.d.Login == nil {
		return cs.renderSignin(c, http.StatusNotFound, next, "Sign-in with Webex is off here: sign in with the admin passphrase.")
	}
	l := login{State: webexlogin.GenerateNonce(), Nonce: webexlogin.GenerateNonce(), Verifier: webexlogin.GenerateVerifier(),
		Next: next, Expires: cs.now().Add(loginTTL).Unix()}
	u, err := cs.d.Login.AuthCodeURL(c.Request().Context(), l.State, l.Nonce, l.Verifier)
	if err != nil {
		cs.log.Warn("sign-in with webex not started", "error", err.Error())
		return cs.renderSignin(c, http.StatusServiceUnavailable, next, "Webex cannot be reached right now: try again in a minute"+
			cs.orPassphrase()+".")
	}
	// Lax: the cookie must come back on Webex's redirect, a top-level
	// navigation from another site.
	setCookie(c, loginCookie, cs.seal(l), loginTTL, http.SameSiteLaxMode)
	return c.Redirect(http.StatusSeeOther, u)
}

// orPassphrase is the fallback a failed sign-in with Webex can suggest.
func (cs *Console) orPassphrase() string {
	if cs.d.AdminKey != nil {
		return ", or sign in with the admin passphrase"
	}
	return ""
}

// webexCallback completes a sign-in with Webex: the state must be the one
// this browser's cookie holds; the ID token is verified (signature,
// issuer, audience, expiry, nonce); who it is decides the role. The
// answer is a page that moves on to the console: the browser arrives
// from Webex, another site, so a redirect would not carry the new
// SameSite=Strict session cookie.
func (cs *Console) webexCallback(c echo.Context) error {
	setPageHeaders(c, cs.csp)
	q := c.QueryParams()
	r := c.Request()
	anon := lifecycle.Actor{Kind: activity.ByVisitor, Addr: cs.d.ClientAddr(r)}
	l, ok := cs.unseal(cookieValue(r, loginCookie))
	setCookie(c, loginCookie, "", -1, http.SameSiteLaxMode)
	addr := cs.d.ClientKey(r)
	if ae := cs.d.Throttle.Throttled(addr, AdminThrottleName); ae != nil {
		httpapi.SetRetryAfter(c, ae.RetryAfter)
		return cs.renderSignin(c, http.StatusTooManyRequests, "", "Too many failed sign-ins from this address: try again in "+humanDuration(ae.RetryAfter)+".")
	}
	refuse := func(status int, why, detail string) error {
		cs.d.Throttle.Fail(addr, AdminThrottleName)
		cs.record(c, anon, activity.SignInRefused, activity.Refused, detail)
		return cs.renderSignin(c, status, "", why)
	}
	if cs.d.Login == nil {
		return cs.renderSignin(c, http.StatusNotFound, "", "Sign-in with Webex is off here.")
	}
	if !ok || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(l.State)) != 1 {
		return refuse(http.StatusBadRequest, "This sign-in was started in another browser, or more than 10 minutes ago: sign in again.", "state not of this browser")
	}
	if err := webexlogin.CallbackError(q); err != nil {
		msg := "Webex did not sign you in"
		if errors.Is(err, webexlogin.ErrRefused) {
			msg = "You declined at Webex"
		}
		return refuse(http.StatusBadRequest, msg+": sign in again.", err.Error())
	}
	p, err := cs.d.Login.Exchange(r.Context(), q.Get("code"), l.Verifier, l.Nonce)
	if errors.Is(err, webexlogin.ErrUnavailable) {
		cs.log.Warn("sign-in with webex failed", "error", err.Error())
		httpapi.SetRetryAfter(c, 30*time.Second)
		return cs.renderSignin(c, http.StatusServiceUnavailable, "", "Webex cannot be reached right now: try again in a minute"+cs.orPassphrase()+".")
	}
	if err != nil {
		cs.log.Warn("sign-in with webex refused", "error", err.Error())
		return refuse(http.StatusUnauthorized, "Webex's answer could not be verified: sign in again. If it keeps happening, tell the administrator.", err.Error())
	}
	anon.Name = p.Email
	role, err := cs.d.Access.Decide(p)
	if err != nil {
		var why *people.Refusal
		reason := err.Error()
		if errors.As(err, &why) {
			reason = why.Reason
		}
		cs.record(c, lifecycle.Actor{Kind: activity.ByPerson, Name: p.Email, Addr: anon.Addr}, activity.SignInRefused, activity.Refused, reason)
		return cs.renderSignin(c, http.StatusForbidden, "", "Signed in with Webex as "+p.Email+", but "+reason+
			": this console is not open to you. Ask an administrator to add you to CONSOLE_OPERATORS or CONSOLE_VIEWERS.")
	}
	if err := cs.startSession(c, p, role, people.ViaWebex); err != nil {
		return cs.storeTrouble(c, err)
	}
	cs.record(c, lifecycle.Actor{Kind: activity.ByPerson, Name: p.Email, Addr: anon.Addr}, activity.SignIn, activity.OK, "with Webex, as "+string(role))
	next := localNext(l.Next)
	return cs.render(c, http.StatusOK, "landing", page{Title: "Signed in", Goto: next,
		Flash: &flash{"ok", "Signed in as " + p.Email + " (" + string(role) + ")."}, Data: landingView{OK: true, Next: next}})
}

// ---- open sessions ----

type sessionsView struct {
	Sessions []sessionRow
}

type sessionRow struct {
	people.Session
	Who  string
	Mine bool
}

// sessionsPage lists the open sessions: who, since, last seen, from
// where; an operator can end any of them.
func (cs *Console) sessionsPage(c echo.Context) error {
	var f *flash
	if c.QueryParam("ended") != "" {
		f = &flash{"ok", "Session ended: that person is signed out everywhere."}
	}
	return cs.renderSessions(c, http.StatusOK, f)
}

func (cs *Console) renderSessions(c echo.Context, status int, f *flash) error {
	open, err := cs.d.Sessions.List(c.Request().Context())
	if err != nil {
		return cs.storeTrouble(c, err)
	}
	mine, _ := c.Get(sessionKey).(*signedIn)
	v := sessionsView{}
	now := cs.now()
	for _, s := range open {
		if !s.Open(now) {
			continue
		}
		v.Sessions = append(v.Sessions, sessionRow{Session: s, Who: who(&s), Mine: mine != nil && mine.Key == s.Key})
	}
	p := cs.signedPage(c, "Sessions")
	p.Flash, p.Data, p.Canonical = f, v, "/admin/sessions"
	return cs.render(c, status, "sessions", p)
}

// endSession ends another session (or one's own) everywhere at once.
func (cs *Console) endSession(c echo.Context) error {
	key := c.Param("key")
	if !people.ValidKey(key) {
		return cs.renderSessions(c, http.StatusBadRequest, &flash{"error", "No such session."})
	}
	open, err := cs.d.Sessions.List(c.Request().Context())
	if err != nil {
		return cs.storeTrouble(c, err)
	}
	var ended *people.Session
	for i := range open {
		if open[i].Key == key {
			ended = &open[i]
		}
	}
	if ended == nil {
		return cs.renderSessions(c, http.StatusNotFound, &flash{"info", "That session has ended already."})
	}
	if err := cs.d.Sessions.End(c.Request().Context(), key); err != nil {
		return cs.storeTrouble(c, err)
	}
	cs.record(c, cs.actor(c), activity.SessionEnded, activity.OK, "the session of "+who(ended)+" since "+ended.Created.UTC().Format(time.RFC3339))
	if mine, _ := c.Get(sessionKey).(*signedIn); mine != nil && mine.Key == key {
		setCookie(c, sessionCookie, "", -1, http.SameSiteStrictMode)
		return c.Redirect(http.StatusSeeOther, "/admin/signin?signedout=1")
	}
	return c.Redirect(http.StatusSeeOther, "/admin/sessions?ended=1")
}
