package webexfake

import "net/http/httptest"

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
