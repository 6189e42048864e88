// Package console is the admin console (DESIGN section 2a): server-rendered
// pages over the use cases of package lifecycle and a read model of the
// tokens, served by the api under /admin/. Its templates, stylesheet and
// script are embedded in the binary; nothing is loaded from another origin
// and there is no build step. The script only makes the pages better
// (local times, polling, the delete confirmation): every page works
// without it. The api's package main gives it its dependencies explicitly
// (Deps) and asks it two things back: whether a request carries a console
// session (Principal, for the JSON admin endpoints), and to complete the
// authorizations it started (Callback).
package console

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/api/listing"
	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/config"
	"github.com/wxcc/tokenservice/shared/httpapi"
	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/oauthstate"
	"github.com/wxcc/tokenservice/shared/people"
	"github.com/wxcc/tokenservice/shared/token"
	"github.com/wxcc/tokenservice/shared/webexlogin"
)

//go:embed templates/*.html
var templates embed.FS

//go:embed static
var static embed.FS

// Tokens reads one token for its page.
type Tokens interface {
	Get(ctx context.Context, name string) (*token.Token, error)
}

// Nonces records the nonces of OAuth states as used, across all instances.
type Nonces interface {
	UseNonce(ctx context.Context, nonce string, expires time.Time) (bool, error)
}

// Throttle is the api's passphrase throttle, which failed sign-ins share.
type Throttle interface {
	// Throttled is the 429 for addr and name while they failed too
	// often, or nil.
	Throttled(addr, name string) *httpapi.Error
	// Fail records a failed attempt of addr for name.
	Fail(addr, name string)
}

// Deps are what the console is built from.
type Deps struct {
	Config  *config.Config
	Service *lifecycle.Service
	Tokens  Tokens
	// Listing is the read model of every token the overview shows.
	Listing *listing.Listing
	Nonces  Nonces
	// AdminKey checks the admin passphrase in constant time; nil when
	// ADMIN_PASSPHRASE is unset (no break-glass way in).
	AdminKey interface{ Match(string) bool }
	// Sessions keeps the console's sessions, server-side.
	Sessions people.SessionStore
	// Access decides who may enter with Webex and as what; Login signs
	// them in. Both nil when sign-in with Webex is off.
	Access *people.Access
	Login  *webexlogin.Client
	// Activity lists the activity record; Recorder writes the console's
	// own entries (sign-ins, sessions ended).
	Activity activity.Store
	Recorder activity.Recorder
	Throttle Throttle
	// ClientKey is the throttle's key for the request's client address;
	// ClientAddr is the address as the log and the record show it.
	ClientKey  func(*http.Request) string
	ClientAddr func(*http.Request) string
	// AuthorizeURL builds Webex's authorize URL (the Webex client's).
	AuthorizeURL func(c token.Client, scopes []string, state string) string
	// Changed is told the name of every token the console changed, so
	// that the api's cache reads it again.
	Changed func(name string)
	// Warnings are the configuration's weaknesses, shown on the overview.
	Warnings []string
	Logger   *slog.Logger
	Now      func() time.Time
}

// AdminThrottleName is the throttle's "token name" for admin passphrase
// failures; it can never clash with a token, whose names are never empty.
const AdminThrottleName = ""

// adminTimeout bounds the store calls of one console request.
const adminTimeout = 10 * time.Second

// Console is the admin console. One per process.
type Console struct {
	d      Deps
	cfg    *config.Config
	keys   keys
	signer oauthstate.Signer // the console's OAuth states, apart from /authorize's
	pages  map[string]*template.Template
	assets map[string]asset
	csp    string
	// recent sums up the activity record's last week for the overview
	// (nil without an activity record).
	recent *listing.Recent
	log    *slog.Logger
	now    func() time.Time
}

// asset is one embedded static file.
type asset struct {
	body        []byte
	contentType string
	version     string // content hash, in the URL so that it can be cached for good
}

// New builds the console; its templates and assets are checked here, at
// start.
func New(d Deps) *Console {
	if d.Changed == nil {
		d.Changed = func(string) {}
	}
	keys := deriveKeys(keySecret(d.Config))
	cs := &Console{
		d:      d,
		cfg:    d.Config,
		keys:   keys,
		signer: oauthstate.Signer{Key: keys.state, Now: d.Now},
		log:    d.Logger,
		now:    d.Now,
		assets: map[string]asset{},
	}
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err)
	}
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		body, err := fs.ReadFile(files, e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(body)
		cs.assets[e.Name()] = asset{body: body, contentType: mime.TypeByExtension(path.Ext(e.Name())), version: hex.EncodeToString(sum[:6])}
	}
	cs.pages = cs.parsePages()
	if d.Activity != nil {
		cs.recent = listing.NewRecent(d.Activity, d.Now)
	}
	// Authorize with Webex is a form whose answer redirects to Webex:
	// form-action must allow Webex's authorize origin, nothing else.
	formAction := "'self'"
	if u, err := url.Parse(d.Config.WebexAuthorizeURL); err == nil && u.Host != "" {
		formAction += " " + u.Scheme + "://" + u.Host
	}
	cs.csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
		"object-src 'none'; base-uri 'none'; form-action " + formAction + "; frame-ancestors 'none'"
	return cs
}

// Register adds the console's pages to e. get registers a route for GET
// and HEAD with the api's own handling.
func (cs *Console) Register(e *echo.Echo, get func(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc)) {
	page, signed := cs.headers, cs.requireSession
	get("/admin", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/admin/") })
	get("/admin/", cs.home, page)
	get("/admin/signin", cs.signinPage, page)
	e.POST("/admin/signin", cs.signin, page)
	e.POST("/admin/signin/webex", cs.signinWebex, page)
	get(WebexCallbackPath, cs.webexCallback, page)
	e.POST("/admin/signout", cs.signout, page, signed)
	get("/admin/sessions", cs.sessionsPage, page, signed)
	e.POST("/admin/sessions/:key/end", cs.endSession, page, signed)
	get("/admin/activity-log", cs.activityPage, page, signed)
	e.POST("/admin/token/:name/links", cs.createLink, page, signed)
	e.POST("/admin/token/:name/links/:key/revoke", cs.revokeLink, page, signed)
	get(linkPath+":id", cs.linkPage, page)
	e.POST(linkPath+":id", cs.startLink, page)
	get("/admin/new", cs.newTokenPage, page, signed)
	e.POST("/admin/new", cs.createToken, page, signed)
	get("/admin/token/:name", cs.tokenPage, page, signed)
	e.POST("/admin/token/:name/config", cs.saveConfig, page, signed)
	e.POST("/admin/token/:name/passphrase", cs.savePassphrase, page, signed)
	e.POST("/admin/token/:name/refresh", cs.refresh, page, signed)
	e.POST(bulkRefreshPath, cs.refreshSelected, page, signed)
	e.POST("/admin/token/:name/authorize", cs.authorize, page, signed)
	e.POST("/admin/token/:name/delete", cs.deleteToken, page, signed)
	get("/admin/static/:file", cs.asset, page)
}

// headers puts the console's Content-Security-Policy and the page
// headers on its answers.
func (cs *Console) headers(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		setPageHeaders(c, cs.csp)
		return next(c)
	}
}

// setPageHeaders are an HTML page's headers beyond the JSON answers' own.
func setPageHeaders(c echo.Context, csp string) {
	h := c.Response().Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}

// page is what every template gets.
type page struct {
	Title  string
	Signed bool
	CSRF   string
	// Who is the signed-in person as the header shows them; CanChange is
	// false for a viewer, whose buttons say why they do nothing.
	Who       string
	Role      people.Role
	CanChange bool
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

// signedPage is a page for the signed-in person of c.
func (cs *Console) signedPage(c echo.Context, title string) page {
	sess, _ := c.Get(sessionKey).(*signedIn)
	if sess == nil {
		return page{Title: title}
	}
	return page{Title: title, Signed: true, CSRF: csrfToken(sess.id), Who: who(sess.Session), Role: sess.Role, CanChange: sess.canChange()}
}

// who is how a session's person is named to them and in the record.
func who(s *people.Session) string {
	if s.Via == people.ViaPassphrase {
		return activity.PassphraseActor
	}
	return s.Person.Email
}

// render writes the named page with status.
func (cs *Console) render(c echo.Context, status int, name string, p page) error {
	t := cs.pages[name]
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		cs.log.Error("console page not rendered", "page", name, "error", err.Error())
		return httpapi.Write(c, httpapi.Errorf(http.StatusInternalServerError, "the page could not be rendered"))
	}
	c.Response().Header().Set("Content-Type", "text/html; charset=utf-8")
	return c.HTMLBlob(status, buf.Bytes())
}

func (cs *Console) renderMessage(c echo.Context, status int, title string, f *flash) error {
	p := cs.signedPage(c, title)
	p.Flash = f
	return cs.render(c, status, "message", p)
}

// asset serves an embedded file, cached for good: its URL carries its
// content hash.
func (cs *Console) asset(c echo.Context) error {
	a, ok := cs.assets[c.Param("file")]
	if !ok {
		return httpapi.Write(c, httpapi.Errorf(http.StatusNotFound, "no such file"))
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	return c.Blob(http.StatusOK, a.contentType, a.body)
}

// home is the overview for a signed-in admin and the sign-in page for
// anyone else.
func (cs *Console) home(c echo.Context) error {
	sess, _, err := cs.sessionOf(c.Request())
	if err != nil {
		return cs.storeTrouble(c, err)
	}
	if sess == nil {
		return cs.renderSignin(c, http.StatusOK, "", "")
	}
	c.Set(sessionKey, sess)
	return cs.overviewPage(c)
}

// storeTrouble answers a request whose session could not be read.
func (cs *Console) storeTrouble(c echo.Context, err error) error {
	cs.log.Warn("console session not read", "error", err.Error())
	httpapi.SetRetryAfter(c, 5*time.Second)
	return cs.render(c, http.StatusServiceUnavailable, "message", page{Title: "Unavailable",
		Flash: &flash{"error", "The console cannot reach its store right now: reload in a few seconds."}})
}

// Actor is who acts through the request c, for the activity record: the
// signed-in person, or the holder of the admin passphrase.
func (cs *Console) Actor(c echo.Context) lifecycle.Actor { return cs.actor(c) }

func (cs *Console) actor(c echo.Context) lifecycle.Actor {
	if cs == nil {
		return lifecycle.Actor{Kind: activity.ByPassphrase, Name: activity.PassphraseActor, Addr: c.RealIP()}
	}
	a := lifecycle.Actor{Kind: activity.ByPassphrase, Name: activity.PassphraseActor, Addr: cs.d.ClientAddr(c.Request())}
	if sess, _ := c.Get(sessionKey).(*signedIn); sess != nil && sess.Via == people.ViaWebex {
		a.Kind, a.Name = activity.ByPerson, sess.Person.Email
	}
	return a
}

// record writes one of the console's own activity entries.
func (cs *Console) record(c echo.Context, a lifecycle.Actor, action activity.Action, outcome activity.Outcome, detail string) {
	if cs.d.Recorder == nil {
		return
	}
	cs.d.Recorder.Record(c.Request().Context(), activity.Entry{At: cs.now(), ActorKind: a.Kind, Actor: a.Name,
		Action: action, Addr: a.Addr, Outcome: outcome, Detail: detail})
}

// changed tells the api's cache and the overview that name changed here.
func (cs *Console) changed(name string) {
	cs.d.Changed(name)
	cs.d.Listing.Invalidate()
}
