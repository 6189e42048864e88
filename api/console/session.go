package console

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/argon2"

	"github.com/wxcc/tokenservice/shared/config"
	"github.com/wxcc/tokenservice/shared/httpapi"
	"github.com/wxcc/tokenservice/shared/people"
	"github.com/wxcc/tokenservice/shared/token"
)

// The console's cookies. Over HTTPS (or behind a proxy that says so) they
// carry the __Host- prefix, which browsers accept only with Secure,
// Path=/ and no Domain: no other host (a sibling subdomain) can plant or
// overwrite them. Over plain HTTP to a loopback address (the local stack)
// Secure would make the browser drop them, so they go without.
const (
	// sessionCookie holds a session's ID: 256 random bits; the session
	// itself is kept server-side (people.SessionStore), under its hash.
	sessionCookie = "tks_session"
	// bindCookie binds authorizations started from the console or a
	// link to the browser that started them: MACs of their states' nonces.
	bindCookie = "tks_authz"
	// loginCookie carries a sign-in with Webex between its start and
	// Webex's redirect back: the state, nonce and PKCE verifier, sealed.
	loginCookie = "tks_login"
	hostPrefix  = "__Host-"
)

// keys are the console's keys, derived from one secret every instance
// shares (STATE_SIGNING_KEY, else ADMIN_PASSPHRASE, else the sign-in
// integration's client secret): changing it ends every authorization and
// sign-in in flight, not the sessions, which are server-side.
type keys struct {
	login []byte // seals the sign-in cookie
	state []byte // signs the OAuth states of authorizations the console starts
	link  []byte // signs the OAuth states of authorization links
	bind  []byte // MACs the binding cookie; derives PKCE verifiers
}

// deriveKeys stretches secret with argon2id (a fixed salt, so every
// instance derives the same keys; about 30 ms at start), then expands it
// with HKDF under one label per key. The stretching keeps a leaked state
// from being a fast test of guesses of a passphrase.
func deriveKeys(secret string) keys {
	const label = "tokenservice console v1"
	stretched := argon2.IDKey([]byte(secret), []byte(label+" salt"), 2, 19456, 1, 32)
	key := func(purpose string) []byte {
		k, err := hkdf.Key(sha256.New, stretched, nil, label+" "+purpose, 32)
		if err != nil { // only for impossible lengths
			panic("console keys: " + err.Error())
		}
		return k
	}
	return keys{login: key("sign-in"), state: key("oauth state"), link: key("link state"), bind: key("browser binding")}
}

// keySecret is the secret the console's keys come from.
func keySecret(cfg *config.Config) string {
	switch {
	case cfg.StateSigningKey != "":
		return cfg.StateSigningKey
	case cfg.AdminPassphrase != "":
		return cfg.AdminPassphrase
	}
	return cfg.ConsoleOIDCClientSecret
}

func mac(key []byte, parts ...string) string {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfToken is a session's anti-forgery token, carried by every form
// (field csrf) and script request (header x-csrf-token) that changes
// something: a hash of the session's ID under its own label, so that the
// page can show it while the ID stays in an HttpOnly cookie, and so that
// neither it nor the stored session key gives the other away.
func csrfToken(sessionID string) string {
	sum := sha256.Sum256([]byte("tokenservice csrf v1\x00" + sessionID))
	return base64.RawURLEncoding.EncodeToString(sum[:])[:32]
}

// bindValue is what the binding cookie holds for a state's nonce: a MAC,
// so that someone holding a leaked authorize link (which shows the nonce)
// cannot make the cookie in their own browser.
func (k keys) bindValue(nonce string) string { return mac(k.bind, "bind", nonce)[:32] }

// pkceVerifier is the PKCE code verifier of a console authorization,
// derived from its state's nonce, so /callback knows it without storing
// it: 43 characters of base64url, as RFC 7636 asks.
func (k keys) pkceVerifier(nonce string) string { return mac(k.bind, "pkce", nonce) }

// plainLoopback reports whether r came over plain HTTP to a loopback
// address (the local stack): the only case in which the console's
// cookies go without Secure. Both the address the connection arrived at
// and the Host the browser asked for must be loopback, and no proxy may
// have said https.
func plainLoopback(r *http.Request) bool {
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return false
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if ip := net.ParseIP(host); !(strings.EqualFold(host, "localhost") || ip != nil && ip.IsLoopback()) {
		return false
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	tcp, ok := local.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// cookieName is base with the __Host- prefix unless r is plain loopback.
func cookieName(r *http.Request, base string) string {
	if plainLoopback(r) {
		return base
	}
	return hostPrefix + base
}

// setCookie sets (maxAge > 0) or removes (maxAge < 0) one of the
// console's cookies: HttpOnly, Path=/, Secure unless plain loopback.
func setCookie(c echo.Context, base, value string, maxAge time.Duration, sameSite http.SameSite) {
	r := c.Request()
	ck := &http.Cookie{
		Name: cookieName(r, base), Value: value, Path: "/",
		HttpOnly: true, Secure: !plainLoopback(r), SameSite: sameSite,
		MaxAge: int(maxAge / time.Second),
	}
	if maxAge < 0 {
		ck.MaxAge, ck.Value = -1, ""
	}
	c.SetCookie(ck)
}

// cookieValue reads one of the console's cookies under the name this
// request's kind of connection uses.
func cookieValue(r *http.Request, base string) string {
	ck, err := r.Cookie(cookieName(r, base))
	if err != nil {
		return ""
	}
	return ck.Value
}

// safeMethod: a request that changes nothing.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sameOrigin reports whether a state-changing request came from a page
// of this service: a browser says so in Sec-Fetch-Site (every current
// one sends it) or, failing that, in Origin. A request with neither is
// refused: no browser this console supports sends such a POST.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		return false
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// signedIn is the request's open session, with the ID its cookie holds.
type signedIn struct {
	id string
	*people.Session
}

// canChange reports whether the session may change anything: operators
// can, viewers cannot.
func (s *signedIn) canChange() bool { return s != nil && s.Role.CanChange() }

// sessionOf returns the request's open session. present says whether it
// carried a session cookie at all. A session seen for the first time in
// a minute is touched (last seen, address); an error of the store other
// than "no session" is returned, so that an outage reads as one.
func (cs *Console) sessionOf(r *http.Request) (sess *signedIn, present bool, err error) {
	id := cookieValue(r, sessionCookie)
	if id == "" {
		return nil, false, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), adminTimeout)
	defer cancel()
	s, err := cs.d.Sessions.Get(ctx, id)
	switch {
	case errors.Is(err, people.ErrNoSession):
		return nil, true, nil
	case err != nil:
		return nil, true, fmt.Errorf("read session: %w", err)
	}
	now := cs.now()
	if !s.Open(now) {
		return nil, true, nil
	}
	if s.NeedsTouch(now) {
		if err := cs.d.Sessions.Touch(ctx, s.Key, cs.d.ClientAddr(r)); err != nil && !errors.Is(err, people.ErrNoSession) {
			cs.log.Warn("session not touched", "error", err.Error())
		}
	}
	return &signedIn{id: id, Session: s}, true, nil
}

// startSession signs p in with role: a new server-side session and its
// cookie (SameSite=Strict, HttpOnly, Secure unless plain loopback).
func (cs *Console) startSession(c echo.Context, p token.Person, role people.Role, via people.Via) error {
	id, s, err := people.NewSession(p, role, via, cs.d.ClientAddr(c.Request()), cs.now(), cs.cfg.AdminSessionTTL, cs.cfg.AdminSessionIdle)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	if err := cs.d.Sessions.Create(ctx, s); err != nil {
		return fmt.Errorf("store session: %w", err)
	}
	setCookie(c, sessionCookie, id, cs.cfg.AdminSessionTTL, http.SameSiteStrictMode)
	return nil
}

// crossSiteSafe checks a state-changing request made with a session: it
// came from this origin and carries the session's CSRF token (form field
// csrf, or header x-csrf-token for scripts). Both, so that neither a
// browser that omits the headers nor a leaked token alone suffices.
func (cs *Console) crossSiteSafe(c echo.Context, sess *signedIn) bool {
	r := c.Request()
	if !sameOrigin(r) {
		return false
	}
	given := r.Header.Get("x-csrf-token")
	if given == "" {
		given = r.PostFormValue("csrf") // never the query string: a URL leaks into logs and Referer
	}
	return subtle.ConstantTimeCompare([]byte(given), []byte(csrfToken(sess.id))) == 1
}

// Principal lets a console session stand in for x-admin-passphrase at
// the JSON admin endpoints. handled says that the request was decided
// here (err nil: let it through); otherwise the passphrase decides. A
// session that is not open is refused without counting as a failed
// passphrase (no one guesses 256 random bits, and an expired session
// must not lock its person out); a viewer's session changes nothing.
func (cs *Console) Principal(c echo.Context) (handled bool, err *httpapi.Error) {
	r := c.Request()
	if cs == nil || r.Header.Get("x-admin-passphrase") != "" {
		return false, nil
	}
	sess, present, serr := cs.sessionOf(r)
	switch {
	case !present:
		return false, nil
	case serr != nil:
		cs.log.Warn("console session not read", "error", serr.Error())
		return true, &httpapi.Error{Code: http.StatusServiceUnavailable, RetryAfter: 5 * time.Second, Message: "the console session could not be read; retry"}
	case sess == nil:
		return true, httpapi.Errorf(http.StatusUnauthorized, "the console session ended or expired: sign in again")
	case !safeMethod(r.Method) && !cs.crossSiteSafe(c, sess):
		cs.log.Warn("cross-site admin request refused", "route", c.Path(), "remote_ip", c.RealIP())
		return true, httpapi.Errorf(http.StatusForbidden, "request refused: it did not come from this console (origin or CSRF token missing or wrong)")
	case !safeMethod(r.Method) && !sess.canChange():
		return true, httpapi.Errorf(http.StatusForbidden, "viewers change nothing: ask an operator")
	}
	c.Set(sessionKey, sess)
	return true, nil
}
