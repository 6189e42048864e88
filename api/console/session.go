package console

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/argon2"

	"github.com/wxcc/tokenservice/shared/httpapi"
)

// The console's cookies. Over HTTPS (or behind a proxy that says so) they
// carry the __Host- prefix, which browsers accept only with Secure,
// Path=/ and no Domain: no other host (a sibling subdomain) can plant or
// overwrite them. Over plain HTTP to a loopback address (the local stack)
// Secure would make the browser drop them, so they go without.
const (
	// sessionCookie holds the signed session: v1.<expiry>.<id>.<tag>.
	sessionCookie = "tks_session"
	// bindCookie binds authorizations started from the console to the
	// browser that started them: MACs of their states' nonces.
	bindCookie = "tks_authz"
	hostPrefix = "__Host-"
)

// keys are the console's keys, all derived from ADMIN_PASSPHRASE
// apart from the key of /authorize's states: changing the passphrase
// ends every session and every authorization in flight.
type keys struct {
	session []byte // signs session cookies and CSRF tokens
	state   []byte // signs the OAuth states of authorizations the console starts
	bind    []byte // MACs the binding cookie; derives PKCE verifiers
}

// deriveKeys stretches the admin passphrase with argon2id (a fixed
// salt, so every instance derives the same keys; about 30 ms at start),
// then expands it with HKDF under one label per key. The stretching
// keeps a leaked cookie or state from being a fast test of passphrase
// guesses.
func deriveKeys(adminPassphrase string) keys {
	const label = "tokenservice console v1"
	stretched := argon2.IDKey([]byte(adminPassphrase), []byte(label+" salt"), 2, 19456, 1, 32)
	key := func(purpose string) []byte {
		k, err := hkdf.Key(sha256.New, stretched, nil, label+" "+purpose, 32)
		if err != nil { // only for impossible lengths
			panic("console keys: " + err.Error())
		}
		return k
	}
	return keys{session: key("session"), state: key("oauth state"), bind: key("browser binding")}
}

func mac(key []byte, parts ...string) string {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// session is a signed-in console session.
type session struct {
	id      string
	expires time.Time
}

// issueSession returns a new session valid for ttl and its cookie value.
func (k keys) issueSession(now time.Time, ttl time.Duration) (session, string) {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails, see crypto/rand
	s := session{id: base64.RawURLEncoding.EncodeToString(b[:]), expires: now.Add(ttl).Truncate(time.Second)}
	body := "v1." + strconv.FormatInt(s.expires.Unix(), 10) + "." + s.id
	return s, body + "." + mac(k.session, "session", body)
}

// verifySession checks a cookie value's tag in constant time, then its
// expiry, which may not lie further ahead than ttl (a cookie signed
// under a longer ADMIN_SESSION_TTL ends when the current one says).
func (k keys) verifySession(value string, now time.Time, ttl time.Duration) (session, bool) {
	if len(value) > 200 {
		return session{}, false
	}
	i := strings.LastIndexByte(value, '.')
	if i < 0 {
		return session{}, false
	}
	body, tag := value[:i], value[i+1:]
	if !hmac.Equal([]byte(tag), []byte(mac(k.session, "session", body))) {
		return session{}, false
	}
	f := strings.Split(body, ".")
	if len(f) != 3 || f[0] != "v1" {
		return session{}, false
	}
	exp, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return session{}, false
	}
	s := session{id: f[2], expires: time.Unix(exp, 0)}
	if !now.Before(s.expires) || s.expires.Sub(now) > ttl+time.Minute {
		return session{}, false
	}
	return s, true
}

// csrfToken is the session's anti-forgery token, carried by every form
// (field csrf) and script request (header x-csrf-token) that changes
// something.
func (k keys) csrfToken(s session) string { return mac(k.session, "csrf", s.id)[:32] }

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

// sessionOf returns the request's valid session. present says whether it
// carried a session cookie at all (valid or not).
func (cs *Console) sessionOf(r *http.Request) (sess session, present, ok bool) {
	v := cookieValue(r, sessionCookie)
	if v == "" {
		return session{}, false, false
	}
	sess, ok = cs.keys.verifySession(v, cs.now(), cs.cfg.AdminSessionTTL)
	return sess, true, ok
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

// crossSiteSafe checks a state-changing request made with a session: it
// came from this origin and carries the session's CSRF token (form field
// csrf, or header x-csrf-token for scripts). Both, so that neither a
// browser that omits the headers nor a leaked token alone suffices.
func (cs *Console) crossSiteSafe(c echo.Context, sess session) bool {
	r := c.Request()
	if !sameOrigin(r) {
		return false
	}
	given := r.Header.Get("x-csrf-token")
	if given == "" {
		given = r.PostFormValue("csrf") // never the query string: a URL leaks into logs and Referer
	}
	return hmac.Equal([]byte(given), []byte(cs.keys.csrfToken(sess)))
}

// Principal lets a console session stand in for x-admin-passphrase at
// the JSON admin endpoints. handled says that the request was decided
// here (err nil: let it through); otherwise the passphrase decides. A
// session cookie that does not verify is refused without counting as a
// failed passphrase: no one guesses an HMAC, and an expired session must
// not lock its admin out.
func (cs *Console) Principal(c echo.Context) (handled bool, err *httpapi.Error) {
	r := c.Request()
	if cs == nil || r.Header.Get("x-admin-passphrase") != "" {
		return false, nil
	}
	sess, present, ok := cs.sessionOf(r)
	switch {
	case !present:
		return false, nil
	case !ok:
		return true, httpapi.Errorf(http.StatusUnauthorized, "the console session expired or is invalid: sign in again")
	case !safeMethod(r.Method) && !cs.crossSiteSafe(c, sess):
		cs.log.Warn("cross-site admin request refused", "route", c.Path(), "remote_ip", c.RealIP())
		return true, httpapi.Errorf(http.StatusForbidden, "request refused: it did not come from this console (origin or CSRF token missing or wrong)")
	}
	return true, nil
}

// SignedSessionForTest is a session cookie value issued at issued for
// ttl under the keys of adminPassphrase, for the api's tests of refused
// sessions.
func SignedSessionForTest(adminPassphrase string, issued time.Time, ttl time.Duration) string {
	_, v := deriveKeys(adminPassphrase).issueSession(issued, ttl)
	return v
}
