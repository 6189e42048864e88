// Package webexfake is a fake Webex OAuth token endpoint for tests and for
// the local stack. It behaves as Webex documents its integrations' token
// endpoint (POST form-encoded grant_type=refresh_token or
// authorization_code to /v1/access_token, client_id and client_secret in
// the body, JSON answers and OAuth error bodies) and can be told to
// misbehave: latency, 5xx, 429 with Retry-After, forced invalid_grant,
// malformed JSON, hanging, connection resets, and answers that get lost
// after the grant was made. A ledger (RefreshTokenUses) records what
// became of every refresh token, so that a test can tell a refresh token
// presented twice from a retry after a lost answer.
//
// It also plays Login with Webex and people (oidc.go, people.go): OpenID
// discovery at <fake>/idb/.well-known/openid-configuration, a JWKS, RS256
// ID tokens from the token endpoint when the authorization asked for
// openid (wrong on command: SetIDTokenFault), and GET /v1/people/me,
// which answers the person whose authorization the access token came
// from. Who authorizes is DefaultPerson, the person SignInAs names, or
// the one picked on the person picker page (SetPersonPicker).
//
// A Fake is an http.Handler and imports no testing package, so a
// non-test binary can serve it with net/http. Start and NewServer run it
// on a loopback port with net/http/httptest. All methods are safe for
// concurrent use.
package webexfake

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// Paths the fake serves, as Webex does.
const (
	TokenPath     = "/v1/access_token"
	AuthorizePath = "/v1/authorize"
	// ConsentPath is where the consent page (SetConsentPage) posts the
	// person's decision. Webex has its own; this one is the fake's.
	ConsentPath = "/v1/authorize/consent"
)

// Defaults of the lifetimes the fake grants, as Webex answers them.
const (
	DefaultExpiresIn        = 43199 * time.Second   // about 12 hours
	DefaultRefreshExpiresIn = 5183999 * time.Second // about 60 days
	// CodeTTL is how long an authorization code can be exchanged.
	CodeTTL = 10 * time.Minute
)

// Prefixes of the values the fake issues, so that tests and logs can tell
// them apart.
const (
	AccessTokenPrefix  = "fake-at-"
	RefreshTokenPrefix = "fake-rt-"
	CodePrefix         = "fake-code-"
)

// Fake is the state and the switches of one fake token endpoint. The
// zero value is not usable; call New.
type Fake struct {
	mu sync.Mutex

	now     func() time.Time
	stop    chan struct{}
	stopped bool

	clients map[string]string // client id → secret
	codes   map[string]codeGrant
	refresh map[string]refreshGrant
	access  map[string]accessGrant

	// switches
	latency          time.Duration
	faults           faultQueue // the token endpoint's
	rotate           bool
	omitRefreshToken bool
	denyAuthorize    bool
	consentPage      bool
	expiresIn        time.Duration
	refreshExpiresIn time.Duration

	stats Stats

	apps applications // the Service Apps endpoint (applications.go)
	idp  identity     // OpenID Connect and people (oidc.go, people.go)
	msgs messages     // the Messages API (messages.go)

	// ledger: what became of every refresh token, and every value issued
	uses   map[string]*RefreshTokenUse
	issued []string
	// clientExpiresIn: access token lifetimes of clients that do not use
	// expiresIn (SetClientExpiresIn)
	clientExpiresIn map[string]time.Duration
	// onGrant is told about refresh grants before they are answered (OnGrant).
	onGrant func(Granted)
}

type codeGrant struct {
	clientID    string
	redirectURI string
	expires     time.Time
	// challenge is the PKCE code_challenge (S256) the authorization was
	// made with, "" without PKCE.
	challenge string
	// scope and nonce are the authorization's; with openid in scope the
	// exchange answers an ID token carrying nonce.
	scope, nonce string
	// person is who signed in and consented (a key of identity.people).
	person string
}

type refreshGrant struct {
	clientID string
	expires  time.Time
	person   string // whose grant it is; "" for the default person
}

type accessGrant struct {
	clientID string
	expires  time.Time
	scopes   []string // the client's scopes when it was issued; nil: every scope
	person   string   // who the token acts as; "" for the default person
}

// Stats counts the calls the fake has answered.
type Stats struct {
	// Calls counts every POST to the token endpoint, faulted ones too.
	Calls int
	// Refreshes and Exchanges count calls by grant_type.
	Refreshes int
	Exchanges int
	// Authorizations counts GETs of the authorize endpoint.
	Authorizations int
	// ByClient counts token endpoint calls by the client_id sent.
	ByClient map[string]int
	// ByRefreshToken counts refresh calls by the refresh_token sent.
	ByRefreshToken map[string]int
}

// New returns a fake with no clients, no tokens, no faults, rotation off,
// and the default lifetimes.
func New() *Fake {
	return &Fake{
		now:              time.Now,
		stop:             make(chan struct{}),
		clients:          map[string]string{},
		codes:            map[string]codeGrant{},
		refresh:          map[string]refreshGrant{},
		access:           map[string]accessGrant{},
		expiresIn:        DefaultExpiresIn,
		refreshExpiresIn: DefaultRefreshExpiresIn,
		stats:            Stats{ByClient: map[string]int{}, ByRefreshToken: map[string]int{}},
		uses:             map[string]*RefreshTokenUse{},
		idp:              newIdentity(),
	}
}

// Close ends every hanging or delayed answer; later ones no longer wait.
// The fake keeps answering otherwise. Close is idempotent.
func (f *Fake) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.stopped {
		f.stopped = true
		close(f.stop)
	}
}

// SetNow replaces the fake's clock (time.Now by default), which decides
// the expiry of codes and refresh tokens.
func (f *Fake) SetNow(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// AddClient registers an OAuth client, or changes its secret.
func (f *Fake) AddClient(id, secret string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clients[id] = secret
}

// RemoveClient unregisters a client; its tokens stay but cannot be used.
func (f *Fake) RemoveClient(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.clients, id)
}

// IssueRefreshToken makes a new valid refresh token for clientID that
// expires after ttl (the refresh lifetime if ttl is 0) and returns it.
func (f *Fake) IssueRefreshToken(clientID string, ttl time.Duration) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ttl == 0 {
		ttl = f.refreshExpiresIn
	}
	rt := random(RefreshTokenPrefix)
	f.refresh[rt] = refreshGrant{clientID: clientID, expires: f.now().Add(ttl), person: f.idp.signInAs}
	f.issuedRefreshLocked(rt, f.refresh[rt])
	return rt
}

// AddRefreshToken makes refreshToken valid for clientID until expires (in
// the past: known but expired). Use it to seed a value stored elsewhere.
func (f *Fake) AddRefreshToken(clientID, refreshToken string, expires time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refresh[refreshToken] = refreshGrant{clientID: clientID, expires: expires}
	f.issuedRefreshLocked(refreshToken, f.refresh[refreshToken])
}

// RevokeRefreshToken invalidates a refresh token, as a user revoking the
// integration's access does.
func (f *Fake) RevokeRefreshToken(refreshToken string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.refresh[refreshToken]; ok {
		f.retireLocked(refreshToken, RetiredByRevocation)
	}
	delete(f.refresh, refreshToken)
}

// RefreshTokenValid reports whether refreshToken is known, unrevoked and
// unexpired.
func (f *Fake) RefreshTokenValid(refreshToken string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.refresh[refreshToken]
	return ok && f.now().Before(g.expires)
}

// AccessTokenValid reports whether the fake issued accessToken and it has
// not expired.
func (f *Fake) AccessTokenValid(accessToken string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.access[accessToken]
	return ok && f.now().Before(g.expires)
}

// IssueCode makes a one-use authorization code for clientID and
// redirectURI, valid for CodeTTL, as a user's consent in the browser does.
// The person it acts as is the one SignInAs chose.
func (f *Fake) IssueCode(clientID, redirectURI string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.issueCodeLocked(codeGrant{clientID: clientID, redirectURI: redirectURI, person: f.idp.signInAs})
}

func (f *Fake) issueCodeLocked(c codeGrant) string {
	code := random(CodePrefix)
	c.expires = f.now().Add(CodeTTL)
	f.codes[code] = c
	return code
}

// SetLatency delays every answer by d (0: none). A request whose context
// ends meanwhile gets no answer.
func (f *Fake) SetLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = d
}

// SetRotation turns refresh-token rotation on (every refresh issues a new
// refresh token, with the old one's expiry, and invalidates the old one)
// or off (the default, as Webex does: the same refresh token comes back).
func (f *Fake) SetRotation(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rotate = on
}

// SetOmitRefreshToken makes refresh answers leave out refresh_token and
// refresh_token_expires_in; the old refresh token stays valid. It takes
// precedence over rotation. Exchanges always answer with a refresh token.
func (f *Fake) SetOmitRefreshToken(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.omitRefreshToken = on
}

// SetExpiresIn sets the access token lifetime granted (0: the default).
func (f *Fake) SetExpiresIn(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d == 0 {
		d = DefaultExpiresIn
	}
	f.expiresIn = d
}

// SetClientExpiresIn sets the lifetime of the access tokens issued to
// clientID (0: back to SetExpiresIn's), as lifetimes vary by integration.
func (f *Fake) SetClientExpiresIn(clientID string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.clientExpiresIn == nil {
		f.clientExpiresIn = map[string]time.Duration{}
	}
	if d == 0 {
		delete(f.clientExpiresIn, clientID)
		return
	}
	f.clientExpiresIn[clientID] = d
}

// SetRefreshExpiresIn sets the lifetime of refresh tokens issued by an
// exchange or IssueRefreshToken (0: the default). Refreshing never
// extends a refresh token's expiry.
func (f *Fake) SetRefreshExpiresIn(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d == 0 {
		d = DefaultRefreshExpiresIn
	}
	f.refreshExpiresIn = d
}

// SetDenyAuthorize makes the authorize endpoint redirect with
// error=access_denied instead of a code, as a user declining consent.
func (f *Fake) SetDenyAuthorize(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.denyAuthorize = on
}

// SetConsentPage makes the authorize endpoint show a page on which a
// person approves (or denies) with one click, as Webex's does, instead of
// consenting at once with a redirect (the default, for tests). The local
// stack turns it on.
func (f *Fake) SetConsentPage(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.consentPage = on
}

// Stats returns a copy of the call counters.
func (f *Fake) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.stats
	s.ByClient = make(map[string]int, len(f.stats.ByClient))
	for k, v := range f.stats.ByClient {
		s.ByClient[k] = v
	}
	s.ByRefreshToken = make(map[string]int, len(f.stats.ByRefreshToken))
	for k, v := range f.stats.ByRefreshToken {
		s.ByRefreshToken[k] = v
	}
	return s
}

// ResetStats sets every counter back to zero.
func (f *Fake) ResetStats() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats = Stats{ByClient: map[string]int{}, ByRefreshToken: map[string]int{}}
	f.apps.stats = MintStats{}
	f.idp.stats = IdentityStats{}
}

// random returns prefix followed by 32 random hex digits.
func random(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails, see crypto/rand
	return prefix + hex.EncodeToString(b)
}
