package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/shared/oauthstate"
	"github.com/wxcc/tokenservice/shared/token"
)

// The admin console (DESIGN section 2a): server-rendered pages over the
// same store and refresh protocol as the JSON endpoints, served under
// /admin/ only when ADMIN_PASSPHRASE is set. Its templates, stylesheet
// and script are embedded in the binary; nothing is loaded from another
// origin and there is no build step. The script only makes the pages
// better (local times, polling, the delete confirmation): every page
// works without it.

//go:embed console/templates/*.html
var consoleTemplates embed.FS

//go:embed console/static
var consoleStatic embed.FS

// overviewTTL is how long one listing of every token serves the
// overview, /admin/status and every open console's polling: a console
// left open must not cost a read per token every few seconds.
const overviewTTL = 10 * time.Second

// console is the admin console's state: keys, parsed templates, assets,
// and the last listing of every token.
type console struct {
	keys    consoleKeys
	signer  oauthstate.Signer // the console's OAuth states, apart from /authorize's
	pages   map[string]*template.Template
	assets  map[string]asset
	csp     string
	windows token.HealthWindows
	store   opsStore
	now     func() time.Time

	mu   sync.Mutex
	snap *overviewSnapshot
}

// asset is one embedded static file.
type asset struct {
	body        []byte
	contentType string
	version     string // content hash, in the URL so that it can be cached for good
}

// newConsole builds the console for s; its templates and assets are
// checked here, at start.
func newConsole(s *server) *console {
	keys := deriveConsoleKeys(s.cfg.AdminPassphrase)
	cs := &console{
		keys:    keys,
		signer:  oauthstate.Signer{Key: keys.state, Now: s.now},
		windows: token.HealthWindows{Refresh: s.cfg.RefreshThreshold + s.cfg.RefreshLead, RefreshExpiry: s.cfg.ExpiryWarning},
		store:   s.ops,
		now:     s.now,
		assets:  map[string]asset{},
	}
	static, err := fs.Sub(consoleStatic, "console/static")
	if err != nil {
		panic(err)
	}
	entries, err := fs.ReadDir(static, ".")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		body, err := fs.ReadFile(static, e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(body)
		cs.assets[e.Name()] = asset{body: body, contentType: mime.TypeByExtension(path.Ext(e.Name())), version: hex.EncodeToString(sum[:6])}
	}
	cs.pages = cs.parsePages()
	// Authorize with Webex is a form whose answer redirects to Webex:
	// form-action must allow Webex's authorize origin, nothing else.
	formAction := "'self'"
	if u, err := url.Parse(s.cfg.WebexAuthorizeURL); err == nil && u.Host != "" {
		formAction += " " + u.Scheme + "://" + u.Host
	}
	cs.csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
		"object-src 'none'; base-uri 'none'; form-action " + formAction + "; frame-ancestors 'none'"
	return cs
}

// consoleRoutes adds the console's pages.
func (s *server) consoleRoutes() {
	s.console = newConsole(s)
	e := s.echo
	page, signed := s.consoleHeaders, s.consolePage
	s.get("/admin", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/admin/") })
	s.get("/admin/", s.consoleHome, page)
	s.get("/admin/signin", s.signinPage, page)
	e.POST("/admin/signin", s.signin, page)
	e.POST("/admin/signout", s.signout, page, signed)
	s.get("/admin/new", s.newTokenPage, page, signed)
	e.POST("/admin/new", s.createFromConsole, page, signed)
	s.get("/admin/token/:name", s.tokenPage, page, signed)
	e.POST("/admin/token/:name/config", s.saveConfigFromConsole, page, signed)
	e.POST("/admin/token/:name/passphrase", s.savePassphraseFromConsole, page, signed)
	e.POST("/admin/token/:name/refresh", s.refreshFromConsole, page, signed)
	e.POST("/admin/token/:name/authorize", s.authorizeFromConsole, page, signed)
	e.POST("/admin/token/:name/delete", s.deleteFromConsole, page, signed)
	s.get("/admin/static/:file", s.consoleAsset, page)
}

// consoleHeaders puts the console's Content-Security-Policy on its answers.
func (s *server) consoleHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Content-Security-Policy", s.console.csp)
		return next(c)
	}
}

// sessionKey is where consolePage leaves the session for the handlers.
const sessionKey = "console.session"

// consolePage lets only a signed-in admin through, and only same-origin
// requests with the session's CSRF token when they change something.
func (s *server) consolePage(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		sess, _, ok := s.sessionOf(r)
		if !ok {
			if safeMethod(r.Method) {
				return c.Redirect(http.StatusSeeOther, "/admin/signin?next="+url.QueryEscape(r.URL.Path))
			}
			return s.render(c, http.StatusUnauthorized, "message", page{Title: "Signed out",
				Flash: &flash{"error", "Your session has ended: sign in again, then repeat what you were doing."}})
		}
		if !safeMethod(r.Method) && !s.crossSiteSafe(c, sess) {
			s.logger.Warn("cross-site console request refused", "route", c.Path(), "remote_ip", c.RealIP())
			return s.render(c, http.StatusForbidden, "message", page{Title: "Request refused", Signed: true, CSRF: s.console.keys.csrfToken(sess),
				Flash: &flash{"error", "Request refused: it did not come from a page of this console. Nothing was changed."}})
		}
		c.Set(sessionKey, sess)
		return next(c)
	}
}

// page is what every console template gets.
type page struct {
	Title  string
	Signed bool
	CSRF   string
	// Poll makes the script reload the page's live parts every so often.
	Poll  bool
	Flash *flash
	// Goto, if set, is where the page sends the browser on at once (the
	// landing page after /callback).
	Goto string
	// Canonical, if set, is the page's own address without one-off
	// messages: the script shows it in the address bar and polls it (a
	// page answered to a POST must not be polled at the POST's address).
	Canonical string
	Data      any
}

// flash is a message at the top of a page. Kind is ok, error, warning or info.
type flash struct{ Kind, Text string }

// signedPage is a page for the signed-in admin of c.
func (s *server) signedPage(c echo.Context, title string) page {
	sess, _ := c.Get(sessionKey).(session)
	return page{Title: title, Signed: true, CSRF: s.console.keys.csrfToken(sess)}
}

// render writes the named page with status.
func (s *server) render(c echo.Context, status int, name string, p page) error {
	t := s.console.pages[name]
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		s.logger.Error("console page not rendered", "page", name, "error", err.Error())
		return writeError(c, errorf(http.StatusInternalServerError, "the page could not be rendered"))
	}
	c.Response().Header().Set("Content-Type", "text/html; charset=utf-8")
	return c.HTMLBlob(status, buf.Bytes())
}

// consoleAsset serves an embedded file, cached for good: its URL carries
// its content hash.
func (s *server) consoleAsset(c echo.Context) error {
	a, ok := s.console.assets[c.Param("file")]
	if !ok {
		return writeError(c, errorf(http.StatusNotFound, "no such file"))
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	return c.Blob(http.StatusOK, a.contentType, a.body)
}

// consoleHome is the overview for a signed-in admin and the sign-in page
// for anyone else.
func (s *server) consoleHome(c echo.Context) error {
	sess, _, ok := s.sessionOf(c.Request())
	if !ok {
		return s.renderSignin(c, http.StatusOK, "", "")
	}
	c.Set(sessionKey, sess)
	return s.overviewPage(c)
}

type signinView struct {
	Next  string
	Error string
}

func (s *server) renderSignin(c echo.Context, status int, next, problem string) error {
	p := page{Title: "Sign in", Data: signinView{Next: next, Error: problem}}
	if c.QueryParam("signedout") != "" {
		p.Flash = &flash{"ok", "You are signed out."}
	}
	return s.render(c, status, "signin", p)
}

func (s *server) signinPage(c echo.Context) error {
	if _, _, ok := s.sessionOf(c.Request()); ok {
		return c.Redirect(http.StatusSeeOther, localNext(c.QueryParam("next")))
	}
	return s.renderSignin(c, http.StatusOK, localNext(c.QueryParam("next")), "")
}

// signin checks the admin passphrase, through the same throttle as every
// passphrase, and starts a session.
func (s *server) signin(c echo.Context) error {
	next := localNext(c.FormValue("next"))
	if !sameOrigin(c.Request()) {
		return s.renderSignin(c, http.StatusForbidden, next, "Sign-in refused: the form was not sent from this console.")
	}
	addr := s.throttleKey(c)
	if ae := s.throttled(addr, adminThrottleName); ae != nil {
		writeRetryAfter(c, ae)
		return s.renderSignin(c, http.StatusTooManyRequests, next,
			"Too many failed sign-ins from this address: try again in "+humanDuration(ae.retryAfter)+".")
	}
	if !s.adminKey.Match(c.FormValue("passphrase")) {
		s.throttle.Fail(addr, adminThrottleName)
		s.logger.Warn("console sign-in refused: wrong admin passphrase", "remote_ip", c.RealIP())
		return s.renderSignin(c, http.StatusUnauthorized, next, "Wrong passphrase: use the value of ADMIN_PASSPHRASE.")
	}
	_, value := s.console.keys.issueSession(s.now(), s.cfg.AdminSessionTTL)
	setCookie(c, sessionCookie, value, s.cfg.AdminSessionTTL, http.SameSiteStrictMode)
	s.logger.Info("admin action", "action", "console_signin", "remote_ip", c.RealIP())
	return c.Redirect(http.StatusSeeOther, next)
}

func (s *server) signout(c echo.Context) error {
	setCookie(c, sessionCookie, "", -1, http.SameSiteStrictMode)
	s.logger.Info("admin action", "action", "console_signout", "remote_ip", c.RealIP())
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

// writeRetryAfter sets Retry-After as writeError does.
func writeRetryAfter(c echo.Context, ae *apiError) {
	secs := int((ae.retryAfter + time.Second - 1) / time.Second)
	c.Response().Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
}

// overviewSnapshot is one listing of every token, without secrets.
type overviewSnapshot struct {
	at    time.Time
	rows  []tokenRow // most urgent first
	sweep *token.SweepRecord
	// sweepUnknown: the last sweep could not be read.
	sweepUnknown bool
}

// overview lists every token (at most once per overviewTTL).
func (cs *console) overview(ctx context.Context) (*overviewSnapshot, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	now := cs.now()
	if cs.snap != nil && now.Sub(cs.snap.at) < overviewTTL && !now.Before(cs.snap.at) {
		return cs.snap, nil
	}
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	snap := &overviewSnapshot{at: now}
	err := cs.store.ListChecked(ctx, 300, func(t *token.Token, unreadable []string) error {
		snap.rows = append(snap.rows, newTokenRow(t, unreadable, now, cs.windows))
		return nil
	})
	if err != nil {
		return nil, err
	}
	countBlocked(snap.rows)
	slices.SortStableFunc(snap.rows, urgentFirst)
	snap.sweep, err = cs.store.LastSweep(ctx)
	if err != nil && !errors.Is(err, token.ErrNotFound) {
		snap.sweepUnknown = true
	}
	cs.snap = snap
	return snap, nil
}

// countBlocked sets each manager's count of the Service Apps waiting for it.
func countBlocked(rows []tokenRow) {
	waiting := map[string]int{}
	for _, r := range rows {
		if r.WaitsForManager {
			waiting[r.Manager]++
		}
	}
	if len(waiting) == 0 {
		return
	}
	for i := range rows {
		if !rows[i].ServiceApp {
			rows[i].Blocked = waiting[rows[i].Name]
		}
	}
}

// invalidate makes the next overview list again: after a change made
// here, the page the admin lands on shows it.
func (cs *console) invalidate() {
	if cs == nil {
		return
	}
	cs.mu.Lock()
	cs.snap = nil
	cs.mu.Unlock()
}
