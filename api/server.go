package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/sync/singleflight"

	"github.com/wxcc/tokenservice/api/console"
	"github.com/wxcc/tokenservice/api/listing"
	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/clientip"
	"github.com/wxcc/tokenservice/shared/config"
	"github.com/wxcc/tokenservice/shared/httpapi"
	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/logging"
	"github.com/wxcc/tokenservice/shared/metrics"
	"github.com/wxcc/tokenservice/shared/oauthstate"
	"github.com/wxcc/tokenservice/shared/passphrase"
	"github.com/wxcc/tokenservice/shared/people"
	"github.com/wxcc/tokenservice/shared/throttle"
	"github.com/wxcc/tokenservice/shared/token"
	"github.com/wxcc/tokenservice/shared/webexlogin"
)

// Store is everything the api reads from the store; the Firestore store
// is it. Writes go through the use cases (lifecycle.Service).
type Store interface {
	token.Store
	// Ping checks that the store answers, for /readyz.
	Ping(ctx context.Context) error
	// List calls fn for every token (GET /admin/tokens).
	List(ctx context.Context, pageSize int, fn func(*token.Token) error) error
	// UseNonce records an OAuth state's nonce as used, across instances.
	UseNonce(ctx context.Context, nonce string, expires time.Time) (bool, error)
	listing.Store
}

// deps are what the api is built from; run wires the real ones, tests their own.
type deps struct {
	cfg     *config.Config
	store   Store
	service *lifecycle.Service
	// The console's records: sessions, the activity record to list and
	// the recorder of its own entries (nil turns the console off).
	sessions people.SessionStore
	activity activity.Store
	recorder activity.Recorder
	// authorizeURL builds Webex's authorize URL (the Webex client's).
	authorizeURL func(c token.Client, scopes []string, state string) string
	// access and login are sign-in with Webex (nil when off).
	access  *people.Access
	login   *webexlogin.Client
	logger  *slog.Logger
	metrics *metrics.Metrics // nil records nothing
	now     func() time.Time
}

// An address that presented a right passphrase keeps its argon2id checks
// first for vouchedFor; at most maxVouched addresses are remembered.
const (
	vouchedFor = time.Hour
	maxVouched = 10_000
)

// An address refused a place in the argon2id queue waits behind newcomers
// for pushedBackFor (a crowd of first guesses retries at full speed); at
// most maxPushedBack addresses are remembered.
const (
	pushedBackFor = time.Minute
	maxPushedBack = 10_000
)

// server is the api: Echo routes over the token cache and the refresh protocol.
type server struct {
	deps
	echo  *echo.Echo
	cache *tokenCache
	loads singleflight.Group
	// storeDownUntil (unix ns) is set when the store failed to answer a
	// read: until then no inline refresh is tried (it would only make
	// callers wait for the store too).
	storeDownUntil atomic.Int64
	// rereads (name → unix ns) paces re-reading a cached token that
	// cannot be served; one entry per existing token at most.
	rereads   sync.Map
	tokenKeys passphrase.Configured // TOKEN_PASSPHRASE and _PREVIOUS
	adminKey  passphrase.Configured // ADMIN_PASSPHRASE
	verifier  *passphrase.Verifier  // per-token passphrases, memoised, queued
	throttle  *authFailures
	// creations counts the documents each address created through /init.
	creations *throttle.Throttle
	// successes are the addresses that recently presented a right
	// passphrase: their argon2id checks go first.
	successes *throttle.RecentAddrs
	// pushedBack are the addresses recently refused a place in that
	// queue: a newcomer's check goes before theirs.
	pushedBack *throttle.RecentAddrs
	refusals   *refusalPacer
	clients    clientip.Resolver
	signer     oauthstate.Signer
	// startWarnings are the weaknesses of the configuration, one short
	// sentence each for an operator (never a secret): logged at every
	// start, shown on /admin/status and the console.
	startWarnings []string
	// listing is the read model of every token (console, /admin/status);
	// console is the admin console. Both nil when admin is off.
	listing *listing.Listing
	console *console.Console
	// limitBody and cors are Echo's middleware, applied by frontDoor.
	limitBody, cors echo.MiddlewareFunc
}

func newServer(d deps) *server {
	if d.now == nil {
		d.now = time.Now
	}
	s := &server{
		deps:       d,
		cache:      newTokenCache(maxMissing),
		tokenKeys:  passphrase.NewConfigured(d.cfg.TokenPassphrase, d.cfg.PreviousPassphrase),
		adminKey:   passphrase.NewConfigured(d.cfg.AdminPassphrase, ""),
		verifier:   passphrase.NewVerifier(0, nil),
		successes:  throttle.NewRecentAddrs(vouchedFor, maxVouched, d.now),
		pushedBack: throttle.NewRecentAddrs(pushedBackFor, maxPushedBack, d.now),
		refusals:   newRefusalPacer(),
		throttle:   newAuthFailures(d.cfg.AuthFailureLimit, d.cfg.AuthFailureWindow, d.now, d.cfg.SignInWithWebex()),
		creations:  throttle.New(initCreations, initWindow, d.now),
		clients:    clientip.Resolver{TrustedHops: d.cfg.TrustedProxyHops, Allowed: d.cfg.AllowedCIDRs},
		signer:     oauthstate.Signer{Key: stateKey(d.cfg), Now: d.now},

		startWarnings: startWarnings(d.cfg),
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = httpapi.ErrorHandler
	e.IPExtractor = func(r *http.Request) string { return s.clients.ClientAddr(r).String() }
	s.limitBody = middleware.BodyLimit("64K")
	s.cors = middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOrigins: d.cfg.CORSAllowOrigins,
		AllowMethods: corsMethods,
		AllowHeaders: corsHeaders,
		MaxAge:       600,
	})
	e.Use(s.frontDoor)
	s.echo = e
	s.routes()
	return s
}

// routes registers every route. Middleware that guards a route is given
// to that route, never to a group: Echo gives a group with middleware a
// catch-all route, which would run the middleware (and count a failed
// admin sign-in) for every unknown path. Unknown paths answer 404 and
// wrong methods 405, from the router, in the JSON shape of every failure.
func (s *server) routes() {
	s.get("/", s.getToken)
	s.get("/init", s.initToken)
	s.get("/callback", s.callback)
	httpapi.Probes(s.echo, func(ctx context.Context) error { return s.store.Ping(ctx) }, s.logger)
	if (s.cfg.AdminPassphrase != "" || s.cfg.SignInWithWebex()) && s.sessions != nil {
		s.listing = listing.New(s.store, token.HealthWindows{Refresh: s.cfg.RefreshThreshold + s.cfg.RefreshLead, RefreshExpiry: s.cfg.ExpiryWarning}, s.now)
		d := console.Deps{
			Config: s.cfg, Service: s.service, Tokens: s.store, Listing: s.listing, Nonces: s.store,
			Sessions: s.sessions, Activity: s.activity, Recorder: s.recorder,
			Throttle: consoleThrottle{s}, ClientKey: s.throttleKeyOf, ClientAddr: s.clientAddr,
			AuthorizeURL: s.authorizeURL, Changed: s.cache.drop, Warnings: s.startWarnings, Logger: s.logger, Now: s.now,
		}
		if s.cfg.AdminPassphrase != "" {
			d.AdminKey = s.adminKey
		}
		if s.cfg.SignInWithWebex() {
			d.Access, d.Login = s.access, s.login
		}
		s.console = console.New(d)
		s.adminRoutes()
		s.console.Register(s.echo, s.get)
	}
	if s.metrics != nil && s.cfg.MetricsAddr == "" { // else run serves it on METRICS_ADDR only
		s.get("/metrics", echo.WrapHandler(s.metrics.Handler()))
	}
}

// get registers h for GET and HEAD: Echo does not answer HEAD by itself,
// and uptime probes use it. net/http drops the body of a HEAD answer.
func (s *server) get(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
	s.echo.GET(path, h, m...)
	s.echo.HEAD(path, h, m...)
}

// startWarnings lists what in cfg an operator should fix: settings that
// work, for compatibility with the sample, but weaken the service.
func startWarnings(cfg *config.Config) []string {
	var w []string
	if passphrase.Short(cfg.TokenPassphrase) {
		w = append(w, fmt.Sprintf("TOKEN_PASSPHRASE is shorter than %d characters: it opens every token without a passphrase of its own and is easier to guess; "+
			"rotate to a longer one (TOKEN_PASSPHRASE_PREVIOUS keeps the old one working while flows are updated)", passphrase.MinChars))
	}
	if cfg.PreviousPassphrase != "" && passphrase.Short(cfg.PreviousPassphrase) {
		w = append(w, fmt.Sprintf("TOKEN_PASSPHRASE_PREVIOUS is shorter than %d characters: remove it once every flow sends TOKEN_PASSPHRASE", passphrase.MinChars))
	}
	if cfg.CORSAllowsAll() {
		w = append(w, "CORS_ALLOW_ORIGINS is *: a web page on any origin may call GET / and /init from a browser (it still needs the passphrase); "+
			"set it to your agent desktop's origins")
	}
	if cfg.LegacyState {
		w = append(w, "LEGACY_STATE=true: /callback accepts a raw token name as state, so anyone can bind their own Webex account to a token (login CSRF)")
	}
	if cfg.MetricsAddr == "" && len(cfg.AllowedCIDRs) == 0 {
		w = append(w, "/metrics is served on the public port to every address: request, cache and refresh counts, no token names (those appear only on METRICS_ADDR); "+
			"set METRICS_ADDR=127.0.0.1:9090 (scraped by a sidecar) or ALLOWED_CIDRS")
	}
	return w
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// CORS covers the routes a browser page (an agent-desktop widget) calls:
// GET / and /init with x-token-passphrase.
var (
	corsMethods = []string{http.MethodGet, http.MethodHead, http.MethodOptions}
	corsHeaders = []string{"x-token-passphrase", "content-type"}
)

// header is r.Header.Get for a key already in canonical form (the server
// canonicalizes the keys it reads), without canonicalizing it again: the
// hot path reads a few headers per request.
func header(r *http.Request, canonicalKey string) string {
	if v := r.Header[canonicalKey]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// corsRoute reports whether CORS applies to the route path.
func corsRoute(path string) bool { return path == "/" || path == "/init" }

// adminPath reports whether the request is for an admin endpoint, by its
// route or, for paths without one, by its URL.
func adminPath(c echo.Context) bool {
	for _, p := range [2]string{c.Path(), c.Request().URL.Path} {
		if p == "/authorize" || p == "/admin" || strings.HasPrefix(p, "/admin/") {
			return true
		}
	}
	return false
}

// crossOrigin applies CORS_ALLOW_ORIGINS to the token routes only, and
// reports whether it answered the request itself. Admin endpoints never
// grant another origin: no Access-Control-Allow-Origin on their answers,
// and a browser's preflight for them gets none (a 204 without
// Access-Control-Allow-*), so a page on another origin can neither send
// x-admin-passphrase nor read an answer. Elsewhere a preflight gets no
// grant either. An OPTIONS request without Origin (not a browser's
// preflight) is answered as the sample did: 204 with the CORS headers,
// except for admin paths.
func (s *server) crossOrigin(c echo.Context, next echo.HandlerFunc) (handled bool, err error) {
	r := c.Request()
	options, fromBrowser := r.Method == http.MethodOptions, header(r, "Origin") != ""
	switch {
	case !options && !fromBrowser && corsRoute(c.Path()):
		// A flow's request (no browser): nothing for CORS to do. Vary
		// is moot under no-store.
		return false, nil
	case adminPath(c):
		if options && fromBrowser {
			// 204 as every OPTIONS gets (DESIGN: OPTIONS *), but without
			// a grant: the browser refuses the request.
			return true, c.NoContent(http.StatusNoContent)
		}
		return false, nil
	case options && !fromBrowser:
		return true, s.bareOptions(c)
	case corsRoute(c.Path()):
		return true, s.cors(next)(c)
	}
	return false, nil
}

// bareOptions answers an OPTIONS request without an Origin header as the
// sample did: 204 with the CORS headers, whatever the path.
func (s *server) bareOptions(c echo.Context) error {
	h := c.Response().Header()
	if s.cfg.CORSAllowsAll() {
		h.Set("Access-Control-Allow-Origin", "*")
	}
	h.Set("Access-Control-Allow-Methods", strings.Join(corsMethods, ","))
	h.Set("Access-Control-Allow-Headers", strings.Join(corsHeaders, ","))
	h.Set("Access-Control-Max-Age", "600")
	return c.NoContent(http.StatusNoContent)
}

// frontDoor is every request's way in, as one middleware: Echo composes
// the chain of its middleware anew for each request, so one step (and no
// closures of its own) instead of five spares the hot path an allocation
// each. Around everything, the request log and metrics; then
// ALLOWED_CIDRS, the static security headers, CORS and the body limit.
func (s *server) frontDoor(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start, log := s.beginRequest(c)
		if err := s.admit(c, next); err != nil {
			c.Error(err)
		}
		s.endRequest(c, start, log)
		return nil
	}
}

// admit runs next behind ALLOWED_CIDRS, the security headers, CORS and
// the body limit (for requests that have a body).
func (s *server) admit(c echo.Context, next echo.HandlerFunc) error {
	if ae := s.allowedNetworks(c); ae != nil {
		return httpapi.Write(c, ae)
	}
	setSecurityHeaders(c)
	if handled, err := s.crossOrigin(c, next); handled {
		return err
	}
	if r := c.Request(); r.ContentLength == 0 && len(r.TransferEncoding) == 0 {
		return next(c) // no body to limit: the hot path's requests
	}
	return s.limitBody(next)(c)
}

// staticHeaders go on every answer: no cache between us and the caller
// may keep a token, and no browser may sniff a JSON answer into anything
// else. That is all a JSON answer carries besides Content-Type and CORS
// (DESIGN 2); the console's HTML pages add their own page headers. The
// slices are shared, read-only, so setting them allocates nothing on the
// hot path.
var staticHeaders = [...]struct {
	key   string
	value []string
}{
	{"Cache-Control", []string{"no-store"}},
	{"X-Content-Type-Options", []string{"nosniff"}},
}

func setSecurityHeaders(c echo.Context) {
	h := c.Response().Header()
	for _, kv := range staticHeaders {
		h[kv.key] = kv.value
	}
}

// beginRequest starts the request's log line, which endRequest writes:
// route, status, latency; never the query string (it carries OAuth codes)
// nor a header value.
func (s *server) beginRequest(c echo.Context) (time.Time, *slog.Logger) {
	start := time.Now()
	req := c.Request()
	log := s.logger
	if tr := logging.Trace(s.cfg.Project, header(req, "X-Cloud-Trace-Context")); tr != "" {
		log = log.With(logging.TraceKey, tr)
		c.SetRequest(req.WithContext(logging.WithLogger(req.Context(), log)))
	}
	return start, log
}

// endRequest records the answered request in the metrics and the log.
func (s *server) endRequest(c echo.Context, start time.Time, log *slog.Logger) {
	req := c.Request()
	status := c.Response().Status
	took := time.Since(start)
	s.metrics.HTTP(c.Path(), status, took)
	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelWarn
	} else if status >= 400 {
		level = slog.LevelInfo
	}
	if log.Enabled(req.Context(), level) {
		log.LogAttrs(req.Context(), level, "request",
			slog.String("method", req.Method),
			slog.String("route", c.Path()),
			slog.Int("status", status),
			slog.Int64("latency_us", took.Microseconds()),
			slog.String("remote_ip", c.RealIP()),
		)
	}
}
