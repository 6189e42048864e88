// Package webexlogin is the console's relying party for Login with Webex
// (OpenID Connect): it builds the authorization URL (code flow with PKCE
// S256, a nonce and the caller's state) and completes a sign-in: the code
// exchanged at the token endpoint, the ID token verified with go-oidc
// against the issuer's JWKS (signature, issuer, audience, expiry, nonce),
// and the person read from Webex (GET /v1/people/me: ID tokens from the
// code flow carry only the openid scope's claims, and none of them names
// the organization).
//
// It knows no HTTP framework and sets no cookie: the console keeps the
// state, nonce and verifier of a sign-in between AuthCodeURL and Exchange.
// Discovery is read at the first use, not at New, so that an api starts
// while Webex is unreachable; a failed read is tried again at the next
// use, a good one is kept.
package webexlogin

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/wxcc/tokenservice/shared/token"
	"github.com/wxcc/tokenservice/shared/webex"
)

// Scopes asked for at sign-in: openid for the ID token; email and profile
// so that Webex's consent page tells the person that the console learns
// their e-mail and name (it reads them from /v1/people/me, as code-flow ID
// tokens do not carry them); spark:people_read for /v1/people/me, which
// also names the organization. The integration in the developer portal
// must hold spark:people_read (OpenID scopes need not be registered).
var Scopes = []string{"openid", "email", "profile", "spark:people_read"}

// DefaultTimeout bounds each call to the issuer when Options.Timeout is 0.
const DefaultTimeout = 10 * time.Second

// People tells who an access token acts as; *webex.Client is one.
type People interface {
	Me(ctx context.Context, accessToken string) (token.Person, error)
}

// Options configure a Client.
type Options struct {
	// Issuer is CONSOLE_OIDC_ISSUER, without a trailing slash; discovery
	// is read from Issuer + "/.well-known/openid-configuration" and must
	// name it.
	Issuer string
	// ClientID and ClientSecret are the sign-in integration's
	// (CONSOLE_OIDC_CLIENT_ID, CONSOLE_OIDC_CLIENT_SECRET).
	ClientID, ClientSecret string
	// RedirectURL is the console's callback, registered on the integration.
	RedirectURL string
	// People answers /v1/people/me with the signed-in person's access
	// token (a *webex.Client on WEBEX_API_URL, with its own timeout).
	People People
	// Timeout bounds each call to the issuer: discovery, the token
	// endpoint, the JWKS (WEBEX_TIMEOUT; 0: DefaultTimeout).
	Timeout time.Duration
	// HTTPClient makes those calls (a copy of it, with Timeout set). The
	// default one does not follow redirects, so the form with the client
	// secret goes to the token endpoint only.
	HTTPClient *http.Client
	// Now is the clock ID tokens' expiry is checked against (time.Now).
	Now func() time.Time
}

// Client signs people in with Webex. It is safe for concurrent use.
type Client struct {
	issuer, clientID, clientSecret, redirectURL string
	people                                      People
	hc                                          *http.Client
	now                                         func() time.Time

	mu     sync.Mutex
	prov   *provider // nil until discovery succeeded
	flight singleflight.Group
}

// New returns a Client without calling Webex, or an error naming what is
// missing or malformed.
func New(o Options) (*Client, error) {
	switch {
	case !absoluteHTTP(o.Issuer):
		return nil, fmt.Errorf("webexlogin: issuer %q is not an absolute http(s) URL", o.Issuer)
	case o.ClientID == "" || o.ClientSecret == "":
		return nil, errors.New("webexlogin: client ID and secret are required")
	case !absoluteHTTP(o.RedirectURL):
		return nil, fmt.Errorf("webexlogin: redirect URL %q is not an absolute http(s) URL", o.RedirectURL)
	case o.People == nil:
		return nil, errors.New("webexlogin: People is required")
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if o.HTTPClient != nil {
		cp := *o.HTTPClient
		hc = &cp
	}
	hc.Timeout = timeout
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &Client{
		issuer: strings.TrimRight(o.Issuer, "/"), clientID: o.ClientID, clientSecret: o.ClientSecret,
		redirectURL: o.RedirectURL, people: o.People, hc: hc, now: now,
	}, nil
}

// GenerateVerifier returns a new PKCE code verifier (32 random bytes,
// base64url: 43 characters).
func GenerateVerifier() string { return oauth2.GenerateVerifier() }

// GenerateNonce returns a new nonce, as unguessable as a verifier.
func GenerateNonce() string { return oauth2.GenerateVerifier() }

// verifierPattern is RFC 7636's code verifier.
var verifierPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// AuthCodeURL is the issuer's authorization URL for one sign-in:
// response_type=code, client_id, redirect_uri, scope (Scopes), state,
// nonce, and code_challenge (S256 of verifier) with
// code_challenge_method=S256. It reads discovery if it has not yet, so
// it fails with ErrUnavailable while Webex is unreachable.
func (c *Client) AuthCodeURL(ctx context.Context, state, nonce, verifier string) (string, error) {
	if err := checkSecrets(state, nonce, verifier); err != nil {
		return "", err
	}
	p, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	return c.config(p).AuthCodeURL(state, oauth2.SetAuthURLParam("nonce", nonce), oauth2.S256ChallengeOption(verifier)), nil
}

func checkSecrets(state, nonce, verifier string) error {
	switch {
	case state == "" || nonce == "":
		return &Error{Op: "authorize", Detail: "state and nonce are required", Err: ErrMisconfigured}
	case !verifierPattern.MatchString(verifier):
		return &Error{Op: "authorize", Detail: "the code verifier is not 43-128 unreserved characters", Err: ErrMisconfigured}
	}
	return nil
}

func (c *Client) config(p *provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     c.clientID,
		ClientSecret: c.clientSecret,
		RedirectURL:  c.redirectURL,
		Scopes:       Scopes,
		// Webex takes the client credentials in the body or as Basic; in
		// the body, as for the integrations' tokens, so no auth style is
		// probed with a code that can be used once.
		Endpoint: oauth2.Endpoint{AuthURL: p.authURL, TokenURL: p.tokenURL, AuthStyle: oauth2.AuthStyleInParams},
	}
}

// Exchange completes a sign-in whose callback brought code (the caller
// has checked the state; see CallbackError for an error redirect): it
// exchanges code with verifier, verifies the ID token and that it carries
// nonce, and returns who signed in, as /v1/people/me names them (ID,
// primary e-mail, display name, organization). The tokens themselves are
// not kept. Errors wrap ErrCodeRejected, ErrBadIDToken, ErrUnavailable or
// ErrMisconfigured.
func (c *Client) Exchange(ctx context.Context, code, verifier, nonce string) (token.Person, error) {
	if code == "" {
		return token.Person{}, &Error{Op: "exchange", Detail: "no code", Err: ErrCodeRejected}
	}
	if nonce == "" || !verifierPattern.MatchString(verifier) {
		return token.Person{}, &Error{Op: "exchange", Detail: "the nonce or code verifier of this sign-in is missing", Err: ErrMisconfigured}
	}
	p, err := c.discover(ctx)
	if err != nil {
		return token.Person{}, err
	}
	tok, err := c.config(p).Exchange(context.WithValue(ctx, oauth2.HTTPClient, c.hc), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return token.Person{}, tokenFailure(ctx, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return token.Person{}, &Error{Op: "id token", Detail: "the token endpoint answered no id_token", Err: ErrBadIDToken}
	}
	vctx, fetch := withFetchFailure(ctx)
	idt, err := p.verifier.Verify(vctx, raw)
	switch {
	case err != nil && fetch.err != nil:
		return token.Person{}, &Error{Op: "keys", Detail: "the issuer's keys could not be read", Err: fetch.err}
	case err != nil:
		return token.Person{}, &Error{Op: "id token", Detail: libraryText(err), Err: ErrBadIDToken}
	case subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1:
		return token.Person{}, &Error{Op: "id token", Detail: "its nonce is not this sign-in's", Err: ErrBadIDToken}
	}
	person, err := c.people.Me(ctx, tok.AccessToken)
	if err != nil {
		return token.Person{}, peopleFailure(err)
	}
	if person.Email == "" {
		return token.Person{}, &Error{Op: "people/me", Detail: "webex names no e-mail for this person", Err: ErrMisconfigured}
	}
	return person, nil
}

// peopleFailure classifies a failed /v1/people/me: transient is
// ErrUnavailable, anything else (no spark:people_read in the grant, the
// fresh token refused) is the integration's configuration.
func peopleFailure(err error) error {
	var te *token.TransientError
	switch {
	case errors.As(err, &te):
		return &Error{Op: "people/me", Err: classed{ErrUnavailable, err}}
	case errors.Is(err, webex.ErrNotPermitted):
		return &Error{Op: "people/me", Detail: "the sign-in integration needs the spark:people_read scope", Err: classed{ErrMisconfigured, err}}
	}
	return &Error{Op: "people/me", Err: classed{ErrMisconfigured, err}}
}
