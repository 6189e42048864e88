package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/shared/httpapi"
)

// sessionKey is where signedIn leaves the session for the handlers.
const sessionKey = "console.session"

// signedIn lets only a signed-in admin through, and only same-origin
// requests with the session's CSRF token when they change something.
func (cs *Console) signedIn(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		sess, _, ok := cs.sessionOf(r)
		if !ok {
			if safeMethod(r.Method) {
				return c.Redirect(http.StatusSeeOther, "/admin/signin?next="+url.QueryEscape(r.URL.Path))
			}
			return cs.render(c, http.StatusUnauthorized, "message", page{Title: "Signed out",
				Flash: &flash{"error", "Your session has ended: sign in again, then repeat what you were doing."}})
		}
		if !safeMethod(r.Method) && !cs.crossSiteSafe(c, sess) {
			cs.log.Warn("cross-site console request refused", "route", c.Path(), "remote_ip", c.RealIP())
			return cs.render(c, http.StatusForbidden, "message", page{Title: "Request refused", Signed: true, CSRF: cs.keys.csrfToken(sess),
				Flash: &flash{"error", "Request refused: it did not come from a page of this console. Nothing was changed."}})
		}
		c.Set(sessionKey, sess)
		return next(c)
	}
}

type signinView struct {
	Next  string
	Error string
}

func (cs *Console) renderSignin(c echo.Context, status int, next, problem string) error {
	p := page{Title: "Sign in", Data: signinView{Next: next, Error: problem}}
	if c.QueryParam("signedout") != "" {
		p.Flash = &flash{"ok", "You are signed out."}
	}
	return cs.render(c, status, "signin", p)
}

func (cs *Console) signinPage(c echo.Context) error {
	if _, _, ok := cs.sessionOf(c.Request()); ok {
		return c.Redirect(http.StatusSeeOther, localNext(c.QueryParam("next")))
	}
	return cs.renderSignin(c, http.StatusOK, localNext(c.QueryParam("next")), "")
}

// signin checks the admin passphrase, through the same throttle as every
// passphrase, and starts a session.
func (cs *Console) signin(c echo.Context) error {
	// The origin is checked before the form is parsed: a cross-site
	// request costs no parsing and learns nothing.
	if !sameOrigin(c.Request()) {
		return cs.renderSignin(c, http.StatusForbidden, "/admin/", "Sign-in refused: the form was not sent from this console.")
	}
	next := localNext(c.FormValue("next"))
	addr := cs.d.ClientKey(c.Request())
	if ae := cs.d.Throttle.Throttled(addr, AdminThrottleName); ae != nil {
		httpapi.SetRetryAfter(c, ae.RetryAfter)
		return cs.renderSignin(c, http.StatusTooManyRequests, next,
			"Too many failed sign-ins from this address: try again in "+humanDuration(ae.RetryAfter)+".")
	}
	if !cs.d.AdminKey.Match(c.FormValue("passphrase")) {
		cs.d.Throttle.Fail(addr, AdminThrottleName)
		cs.log.Warn("console sign-in refused: wrong admin passphrase", "remote_ip", c.RealIP())
		return cs.renderSignin(c, http.StatusUnauthorized, next, "Wrong passphrase: use the value of ADMIN_PASSPHRASE.")
	}
	_, value := cs.keys.issueSession(cs.now(), cs.cfg.AdminSessionTTL)
	setCookie(c, sessionCookie, value, cs.cfg.AdminSessionTTL, http.SameSiteStrictMode)
	cs.log.Info("admin action", "action", "console_signin", "remote_ip", c.RealIP())
	return c.Redirect(http.StatusSeeOther, next)
}

func (cs *Console) signout(c echo.Context) error {
	setCookie(c, sessionCookie, "", -1, http.SameSiteStrictMode)
	cs.log.Info("admin action", "action", "console_signout", "remote_ip", c.RealIP())
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
