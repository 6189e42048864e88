package webex

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wxcc/tokenservice/shared/testing/webexfake"
	"github.com/wxcc/tokenservice/shared/token"
)

var testClient = token.Client{ID: "C1234", Secret: "s3cr+t/=&client-secret", RedirectURI: "https://api.example.test/callback"}

func setup(t *testing.T, o Options) (*webexfake.Server, *Client) {
	t.Helper()
	s := webexfake.Start(t)
	s.AddClient(testClient.ID, testClient.Secret)
	o.TokenURL, o.AuthorizeURL = s.TokenURL, s.AuthorizeURL
	c, err := New(testOptions(o))
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// class names the error class, for got/want messages.
func class(err error) string {
	var te *token.TransientError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, token.ErrGrantRejected):
		return "grant"
	case errors.Is(err, token.ErrClientRejected):
		return "client"
	case errors.As(err, &te):
		return "transient"
	default:
		return "unclassified"
	}
}

func TestRefreshAgainstFake(t *testing.T) {
	tests := []struct {
		name    string
		rotate  bool
		omit    bool
		wantRT  string // "same", "new" or "" (none)
		wantRTE bool
	}{
		{name: "same refresh token back", wantRT: "same", wantRTE: true},
		{name: "rotated refresh token", rotate: true, wantRT: "new", wantRTE: true},
		{name: "no refresh token in the answer", omit: true, wantRT: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := setup(t, Options{})
			s.SetRotation(tt.rotate)
			s.SetOmitRefreshToken(tt.omit)
			s.SetExpiresIn(2 * time.Hour)
			rt := s.IssueRefreshToken(testClient.ID, 30*24*time.Hour)

			g, err := c.Refresh(context.Background(), testClient, rt)
			if err != nil {
				t.Fatalf("got %v, want success", err)
			}
			if !strings.HasPrefix(g.AccessToken, webexfake.AccessTokenPrefix) || !s.AccessTokenValid(g.AccessToken) {
				t.Errorf("access token %q: want one the fake issued", g.AccessToken)
			}
			if g.ExpiresIn != 2*time.Hour {
				t.Errorf("ExpiresIn: got %s, want 2h", g.ExpiresIn)
			}
			switch tt.wantRT {
			case "same":
				if g.RefreshToken != rt {
					t.Errorf("RefreshToken: got %q, want %q", g.RefreshToken, rt)
				}
			case "new":
				if g.RefreshToken == rt || !s.RefreshTokenValid(g.RefreshToken) || s.RefreshTokenValid(rt) {
					t.Errorf("RefreshToken: got %q, want a new valid one replacing %q", g.RefreshToken, rt)
				}
			default:
				if g.RefreshToken != "" {
					t.Errorf("RefreshToken: got %q, want empty: Webex sent none", g.RefreshToken)
				}
			}
			if got := g.RefreshExpiresIn > 29*24*time.Hour && g.RefreshExpiresIn <= 30*24*time.Hour; got != tt.wantRTE {
				t.Errorf("RefreshExpiresIn: got %s, want about 30 days: %v", g.RefreshExpiresIn, tt.wantRTE)
			}
			if st := s.Stats(); st.Calls != 1 || st.Refreshes != 1 {
				t.Errorf("got %d calls (%d refreshes), want exactly 1", st.Calls, st.Refreshes)
			}
		})
	}
}

func TestExchangeAgainstFake(t *testing.T) {
	s, c := setup(t, Options{})
	code := s.IssueCode(testClient.ID, testClient.RedirectURI)

	g, err := c.Exchange(context.Background(), testClient, code)
	if err != nil {
		t.Fatalf("got %v, want success", err)
	}
	if !s.AccessTokenValid(g.AccessToken) || !s.RefreshTokenValid(g.RefreshToken) {
		t.Errorf("got %+v, want tokens the fake issued", g)
	}
	want := token.Grant{AccessToken: g.AccessToken, RefreshToken: g.RefreshToken,
		ExpiresIn: webexfake.DefaultExpiresIn, RefreshExpiresIn: webexfake.DefaultRefreshExpiresIn}
	if diff := cmp.Diff(want, g); diff != "" {
		t.Errorf("grant (-want +got):\n%s", diff)
	}

	_, err = c.Exchange(context.Background(), testClient, code)
	if got := class(err); got != "grant" {
		t.Errorf("second exchange of a code: got %s (%v), want grant", got, err)
	}
}

func TestAuthorizeFlowAgainstFake(t *testing.T) {
	_, c := setup(t, Options{})
	u := c.AuthorizeURL(testClient, []string{"cjp:config_read", "spark:people_read"}, "st")
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("state") != "st" || loc.Query().Get("code") == "" {
		t.Fatalf("got redirect %q, want one with a code and state st", resp.Header.Get("Location"))
	}
	if _, err := c.Exchange(context.Background(), testClient, loc.Query().Get("code")); err != nil {
		t.Errorf("exchange: got %v, want success", err)
	}
}

func TestErrorsAgainstFake(t *testing.T) {
	tests := []struct {
		name       string
		arrange    func(s *webexfake.Server, rt string) (tc token.Client, sendRT string)
		timeout    time.Duration
		want       string
		retryAfter time.Duration
		calls      int
	}{
		{name: "unknown refresh token", want: "grant", calls: 1,
			arrange: func(s *webexfake.Server, rt string) (token.Client, string) { return testClient, "fake-rt-unknown" }},
		{name: "revoked refresh token", want: "grant", calls: 1,
			arrange: func(s *webexfake.Server, rt string) (token.Client, string) {
				s.RevokeRefreshToken(rt)
				return testClient, rt
			}},
		{name: "expired refresh token", want: "grant", calls: 1,
			arrange: func(s *webexfake.Server, rt string) (token.Client, string) {
				s.AddRefreshToken(testClient.ID, rt, time.Now().Add(-time.Second))
				return testClient, rt
			}},
		{name: "forced invalid_grant", want: "grant", calls: 1,
			arrange: func(s *webexfake.Server, rt string) (token.Client, string) {
				s.FailNext(1, webexfake.Fault{Kind: webexfake.FaultInvalidGrant})
				return testClient, rt
			}},
		{name: "wrong client secret", want: "client", calls: 1,
			arrange: func(s *webexfake.Server, rt string) (token.Client, string) {
				s.AddClient(testClient.ID, "rotated-secret")
				return testClient, rt
			}},
		{name: "unknown client", want: "client", calls: 1,
			arrange: func(s *webexfake.Server, rt string) (token.Client, string) {
				s.RemoveClient(testClient.ID)
				return testClient, rt
			}},
		{name: "empty client secret is not sent", want: "client", calls: 0,
			arrange: func(s *webexfake.Server, rt string) (token.Client, string) {
				tc := testClient
				tc.Secret = ""
				return tc, rt
			}},
		{name: "empty refresh token is not sent", want: "grant", calls: 0,
			arrange: func(s *webexfake.Server, rt string) (token.Client, string) { return testClient, "" }},
		{name: "500", want: "transient", calls: 1,
			arrange: func(s *webexfake.Server, rt string) (token.Client, string) {
				s.FailNext(1, webexfake.ServerError(500))
				return testClient, rt
			}},
		{name: "503 with Retry-After", want: "transient", retryAfter: 20 * time.Second, calls: 1,
			arrange: func(s *webexfake.Server, rt string) (token.Client, string) {
				s.FailNext(1, webexfake.Fault{Kind: webexfake.FaultStatus, Status: 503, RetryAfter: "20"})
				return testClient, rt
			}},
		{name: "429 with Retry-After seconds", want: "transient", retryAfter: 7 * time.Second, calls: 1,
			arrange: func(s *webexfake.Server, rt string) (token.Client, string) {
				s.FailNext(1, webexfake.RateLimited("7"))
				return testClient, rt
			}},
		{name: "429 without Retry-After", want: "transient", calls: 1,
			arrange: func(s *webexfake.Server, rt string) (token.Client, string) {
				s.FailNext(1, webexfake.RateLimited(""))
				return testClient, rt
			}},
		{name: "malformed JSON", want: "transient", calls: 1,
			arrange: func(s *webexfake.Server, rt string) (token.Client, string) {
				s.FailNext(1, webexfake.Fault{Kind: webexfake.FaultMalformed})
				return testClient, rt
			}},
		{name: "hang until timeout", want: "transient", timeout: 100 * time.Millisecond, calls: 1,
			arrange: func(s *webexfake.Server, rt string) (token.Client, string) {
				s.FailNext(1, webexfake.Fault{Kind: webexfake.FaultHang})
				return testClient, rt
			}},
		{name: "latency over the timeout", want: "transient", timeout: 100 * time.Millisecond, calls: 1,
			arrange: func(s *webexfake.Server, rt string) (token.Client, string) {
				s.SetLatency(time.Second)
				return testClient, rt
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := setup(t, Options{Timeout: tt.timeout})
			rt := s.IssueRefreshToken(testClient.ID, 0)
			tc, sendRT := tt.arrange(s, rt)

			begin := time.Now()
			_, err := c.Refresh(context.Background(), tc, sendRT)
			if got := class(err); got != tt.want {
				t.Fatalf("got %s (%v), want %s", got, err, tt.want)
			}
			if tt.timeout > 0 {
				if d := time.Since(begin); d > tt.timeout+time.Second {
					t.Errorf("took %s, want about the %s timeout", d, tt.timeout)
				}
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("got %v, want it to wrap context.DeadlineExceeded", err)
				}
			}
			var te *token.TransientError
			if errors.As(err, &te) && te.RetryAfter != tt.retryAfter {
				t.Errorf("RetryAfter: got %s, want %s", te.RetryAfter, tt.retryAfter)
			}
			if got := s.Stats().Calls; got != tt.calls {
				t.Errorf("calls to webex: got %d, want %d", got, tt.calls)
			}
			if token.IsPermanent(err) != (tt.want != "transient") {
				t.Errorf("token.IsPermanent: got %v for %s", token.IsPermanent(err), tt.want)
			}
		})
	}
}

func TestExchangeErrorsAgainstFake(t *testing.T) {
	tests := []struct {
		name string
		tc   func() token.Client
		code func(s *webexfake.Server) string
		want string
	}{
		{"unknown code", func() token.Client { return testClient },
			func(*webexfake.Server) string { return "fake-code-unknown" }, "grant"},
		{"redirect_uri mismatch", func() token.Client { return testClient },
			func(s *webexfake.Server) string { return s.IssueCode(testClient.ID, "https://other.test/cb") }, "grant"},
		{"wrong secret", func() token.Client { tc := testClient; tc.Secret = "wrong"; return tc },
			func(s *webexfake.Server) string { return s.IssueCode(testClient.ID, testClient.RedirectURI) }, "client"},
		{"no redirect URI configured", func() token.Client { tc := testClient; tc.RedirectURI = ""; return tc },
			func(s *webexfake.Server) string { return s.IssueCode(testClient.ID, testClient.RedirectURI) }, "client"},
		{"empty code", func() token.Client { return testClient },
			func(*webexfake.Server) string { return "" }, "grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := setup(t, Options{})
			_, err := c.Exchange(context.Background(), tt.tc(), tt.code(s))
			if got := class(err); got != tt.want {
				t.Errorf("got %s (%v), want %s", got, err, tt.want)
			}
		})
	}
}

func TestCallerCancel(t *testing.T) {
	s, c := setup(t, Options{})
	s.FailAlways(webexfake.Fault{Kind: webexfake.FaultHang})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := c.Refresh(ctx, testClient, s.IssueRefreshToken(testClient.ID, 0))
	if class(err) != "transient" || !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want a transient error wrapping context.Canceled", err)
	}
}

func TestConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	tokenURL := srv.URL + "/v1/access_token"
	srv.Close()
	c, err := New(testOptions(Options{TokenURL: tokenURL}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Refresh(context.Background(), testClient, "rt")
	if got := class(err); got != "transient" {
		t.Errorf("got %s (%v), want transient", got, err)
	}
}

func TestConcurrentRefreshes(t *testing.T) {
	s, c := setup(t, Options{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			rt := s.IssueRefreshToken(testClient.ID, 0)
			if _, err := c.Refresh(context.Background(), testClient, rt); err != nil {
				t.Errorf("refresh: %v", err)
			}
		})
	}
	wg.Wait()
	if got := s.Stats().Refreshes; got != 16 {
		t.Errorf("refreshes: got %d, want 16", got)
	}
}

func TestAuthorizeURL(t *testing.T) {
	tests := []struct {
		name, base string
		scopes     []string
		want       url.Values
	}{
		{"default", "", []string{"cjp:config_read", "spark:people_read"}, url.Values{
			"response_type": {"code"}, "client_id": {testClient.ID}, "redirect_uri": {testClient.RedirectURI},
			"scope": {"cjp:config_read spark:people_read"}, "state": {"signed.state"},
		}},
		{"base with a query", "https://idp.example.test/authorize?tenant=x", []string{"spark:all"}, url.Values{
			"tenant": {"x"}, "response_type": {"code"}, "client_id": {testClient.ID}, "redirect_uri": {testClient.RedirectURI},
			"scope": {"spark:all"}, "state": {"signed.state"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(testOptions(Options{AuthorizeURL: tt.base}))
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(c.AuthorizeURL(testClient, tt.scopes, "signed.state"))
			if err != nil {
				t.Fatal(err)
			}
			wantBase := tt.base
			if wantBase == "" {
				wantBase = testOptions(Options{}).AuthorizeURL
			}
			if got := u.Scheme + "://" + u.Host + u.Path; !strings.HasPrefix(wantBase, got) {
				t.Errorf("base: got %q, want %q", got, wantBase)
			}
			if diff := cmp.Diff(tt.want, u.Query()); diff != "" {
				t.Errorf("query (-want +got):\n%s", diff)
			}
			if strings.Contains(u.String(), testClient.Secret) {
				t.Errorf("authorize URL contains the client secret")
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		o       Options
		wantErr bool
	}{
		{"complete", testOptions(Options{}), false},
		{"nothing: the defaults are the configuration's", Options{}, true},
		{"no timeout", Options{TokenURL: "https://a/t", AuthorizeURL: "https://a/a", APIURL: "https://a"}, true},
		{"relative token URL", testOptions(Options{TokenURL: "/v1/access_token"}), true},
		{"not http", testOptions(Options{TokenURL: "ftp://webexapis.com/v1/access_token"}), true},
		{"bad authorize URL", testOptions(Options{AuthorizeURL: "://"}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.o)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got err %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}
