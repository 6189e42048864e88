// Package webex is the Webex OAuth client of the token service: it makes
// the refresh_token and authorization_code grants at the Webex token
// endpoint (with golang.org/x/oauth2, client credentials in the form body),
// mints Service App pairs at the applications endpoint, asks who a token
// acts as (people/me), and builds the authorize URL. It implements token.Issuer and turns every failure into
// token.ErrGrantRejected, token.ErrClientRejected, a manager rejection or
// a *token.TransientError, with messages that never hold a secret.
package webex

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/wxcc/tokenservice/shared/token"
)

// Options configure a Client: the URLs and the timeout are required (their
// defaults live in the configuration).
type Options struct {
	TokenURL     string // WEBEX_TOKEN_URL
	AuthorizeURL string // WEBEX_AUTHORIZE_URL
	// APIURL is the base of the applications and people/me endpoints
	// (WEBEX_API_URL).
	APIURL string
	// Timeout bounds every call the client makes (WEBEX_TIMEOUT): it is
	// the one layer that does.
	Timeout time.Duration
	// HTTPClient makes the calls. The default one does not follow
	// redirects, so the form with the client secret goes to TokenURL only.
	HTTPClient *http.Client
}

// Client calls the Webex token endpoint. It is safe for concurrent use.
type Client struct {
	tokenURL     string
	authorizeURL string
	apiURL       string
	timeout      time.Duration
	hc           *http.Client
	now          func() time.Time // for Retry-After dates
}

var (
	_ token.Issuer         = (*Client)(nil)
	_ token.VerifierIssuer = (*Client)(nil)
)

// New returns a Client, or an error if a URL is not an absolute http(s)
// URL or the timeout is missing.
func New(o Options) (*Client, error) {
	c := &Client{
		tokenURL:     o.TokenURL,
		authorizeURL: o.AuthorizeURL,
		apiURL:       strings.TrimRight(o.APIURL, "/"),
		timeout:      o.Timeout,
		hc:           o.HTTPClient,
		now:          time.Now,
	}
	if c.timeout <= 0 {
		return nil, fmt.Errorf("webex: a timeout is required")
	}
	if c.hc == nil {
		c.hc = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	for _, u := range []string{c.tokenURL, c.authorizeURL, c.apiURL} {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("webex: %q is not an absolute http(s) URL", u)
		}
	}
	return c, nil
}

func (c *Client) config(tc token.Client, scopes []string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     tc.ID,
		ClientSecret: tc.Secret,
		RedirectURL:  tc.RedirectURI,
		Scopes:       scopes,
		Endpoint: oauth2.Endpoint{
			AuthURL:   c.authorizeURL,
			TokenURL:  c.tokenURL,
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
}

// Refresh makes a refresh_token grant. Grant.RefreshToken is empty when
// Webex did not send one (the old one stays valid).
func (c *Client) Refresh(ctx context.Context, tc token.Client, refreshToken string) (token.Grant, error) {
	if err := checkClient(opRefresh, tc); err != nil {
		return token.Grant{}, err
	}
	if refreshToken == "" {
		return token.Grant{}, &Error{Op: opRefresh, Description: "no refresh token to send", Err: token.ErrGrantRejected}
	}
	ctx, cancel := c.context(ctx)
	defer cancel()
	src := c.config(tc, nil).TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken})
	tok, err := src.Token()
	if err != nil {
		return token.Grant{}, c.classify(ctx, opRefresh, err, tc.Secret, refreshToken)
	}
	return toGrant(tok), nil
}

// Exchange makes an authorization_code grant for code, with the client's
// redirect URI.
func (c *Client) Exchange(ctx context.Context, tc token.Client, code string) (token.Grant, error) {
	return c.exchange(ctx, tc, code, "")
}

// ExchangeVerified is Exchange for an authorization started with PKCE
// (RFC 7636, method S256): it sends verifier as code_verifier.
func (c *Client) ExchangeVerified(ctx context.Context, tc token.Client, code, verifier string) (token.Grant, error) {
	return c.exchange(ctx, tc, code, verifier)
}

func (c *Client) exchange(ctx context.Context, tc token.Client, code, verifier string) (token.Grant, error) {
	if err := checkClient(opExchange, tc); err != nil {
		return token.Grant{}, err
	}
	if code == "" {
		return token.Grant{}, &Error{Op: opExchange, Description: "no code to send", Err: token.ErrGrantRejected}
	}
	ctx, cancel := c.context(ctx)
	defer cancel()
	var opts []oauth2.AuthCodeOption
	if verifier != "" {
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	tok, err := c.config(tc, nil).Exchange(ctx, code, opts...)
	if err != nil {
		return token.Grant{}, c.classify(ctx, opExchange, err, tc.Secret, code, verifier)
	}
	return toGrant(tok), nil
}

// AuthorizeURL is the Webex authorize URL at which a person grants tc the
// scopes: response_type=code, client_id, redirect_uri, scope (space
// separated) and state.
func (c *Client) AuthorizeURL(tc token.Client, scopes []string, state string) string {
	return c.config(tc, scopes).AuthCodeURL(state)
}

// context bounds a call by the timeout and hands the HTTP client to oauth2.
func (c *Client) context(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout, fmt.Errorf("no answer within %s: %w", c.timeout, context.DeadlineExceeded))
	return context.WithValue(ctx, oauth2.HTTPClient, c.hc), cancel
}

// checkClient refuses an incomplete client config without calling Webex:
// it is a config error (as /init leaves it), not an outage.
func checkClient(op string, tc token.Client) error {
	var missing string
	switch {
	case tc.ID == "":
		missing = "clientId"
	case tc.Secret == "":
		missing = "clientSecret"
	case op == opExchange && tc.RedirectURI == "":
		missing = "redirectUri"
	default:
		return nil
	}
	return &Error{Op: op, Description: missing + " is not configured", Err: token.ErrClientRejected}
}
