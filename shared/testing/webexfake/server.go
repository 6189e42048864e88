package webexfake

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
)

// Server is a Fake served over HTTP on a loopback port. Its Fake methods
// are promoted, so s.AddClient works directly.
type Server struct {
	*Fake
	// URL is the base URL, http://127.0.0.1:port, with no trailing slash.
	URL string
	// TokenURL and AuthorizeURL are the endpoints, for WEBEX_TOKEN_URL
	// and WEBEX_AUTHORIZE_URL.
	TokenURL     string
	AuthorizeURL string
	// IssuerURL is the OpenID issuer, URL + "/idb", for CONSOLE_OIDC_ISSUER;
	// URL itself is WEBEX_API_URL (people/me, applications).
	IssuerURL string

	srv *httptest.Server
}

// NewServer serves f on a loopback port until Close, with its issuer set
// to the server's.
func NewServer(f *Fake) *Server {
	srv := httptest.NewServer(f)
	f.SetIssuer(srv.URL + IssuerPath)
	return &Server{
		Fake:         f,
		URL:          srv.URL,
		TokenURL:     srv.URL + TokenPath,
		AuthorizeURL: srv.URL + AuthorizePath,
		IssuerURL:    srv.URL + IssuerPath,
		srv:          srv,
	}
}

// Close releases hanging answers, then stops the server and waits for the
// requests in flight.
func (s *Server) Close() {
	s.Fake.Close()
	s.srv.Close()
}

// Cleanuper is the part of testing.TB that Start needs.
type Cleanuper interface {
	Cleanup(func())
}

// Start serves a new Fake on a loopback port and closes it when the test
// (or whatever c is) cleans up.
func Start(c Cleanuper) *Server {
	s := NewServer(New())
	c.Cleanup(s.Close)
	return s
}

// AuthorizeAs completes the authorization that authorizeURL (an authorize
// URL of this server, as a relying party built it) starts, as the person
// with email choosing themselves on the picker and consenting, whatever
// the page switches say; SetDenyAuthorize still denies. It returns where
// the browser would be sent: the redirect URI with the code and state, or
// with an OAuth error. It is the picker's click for a Go test with no
// browser.
func (s *Server) AuthorizeAs(ctx context.Context, authorizeURL, email string) (*url.URL, error) {
	u, err := url.Parse(authorizeURL)
	if err != nil {
		return nil, fmt.Errorf("parse authorize URL: %w", err)
	}
	form := url.Values{}
	for _, k := range consentFields {
		if v := u.Query().Get(k); v != "" {
			form.Set(k, v)
		}
	}
	form.Set("person", email)
	form.Set("decision", "approve")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+ConsentPath, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("build consent: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(req)
	if err != nil {
		return nil, fmt.Errorf("post consent: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("consent answered %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return url.Parse(resp.Header.Get("Location"))
}
