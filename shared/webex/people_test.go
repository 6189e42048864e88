package webex

import (
	"context"
	"errors"
	"io"
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

// meSetup serves a fake whose API URL the client uses.
func meSetup(t *testing.T, o Options) (*webexfake.Server, *Client) {
	t.Helper()
	s, c := setup(t, o)
	c.apiURL = s.URL
	return s, c
}

func meClass(err error) string {
	switch {
	case errors.Is(err, ErrAccessTokenRejected):
		return "token"
	case errors.Is(err, ErrNotPermitted):
		return "scope"
	}
	return class(err)
}

// authorizeAs goes through the fake's authorize endpoint as person and
// exchanges the code, as an operator's authorization of an integration
// does; it returns the grant.
func authorizeAs(t *testing.T, s *webexfake.Server, c *Client, email string) token.Grant {
	t.Helper()
	if err := s.SignInAs(email); err != nil {
		t.Fatal(err)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(c.AuthorizeURL(testClient, []string{"cjp:config_read", "spark:people_read"}, "st"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	to, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || to.Query().Get("code") == "" {
		t.Fatalf("authorize redirected to %q, want a code", resp.Header.Get("Location"))
	}
	g, err := c.Exchange(context.Background(), testClient, to.Query().Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestMeAgainstFake(t *testing.T) {
	s, c := meSetup(t, Options{})
	ada := s.AddPerson(webexfake.Person{Email: "ada@example.com", DisplayName: "Ada Lovelace", OrgID: "org-ada"})
	g := authorizeAs(t, s, c, ada.Email)

	want := token.Person{ID: ada.ID, Email: ada.Email, DisplayName: ada.DisplayName, OrgID: "org-ada"}
	got, err := c.Me(context.Background(), g.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("person who authorized (-want +got):\n%s", diff)
	}

	// A refreshed access token still acts as the person who authorized.
	r, err := c.Refresh(context.Background(), testClient, g.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Me(context.Background(), r.AccessToken); err != nil || got != want {
		t.Errorf("after a refresh: got %+v, %v; want %+v", got, err, want)
	}

	// Someone else's authorization is someone else's.
	g2 := authorizeAs(t, s, c, "")
	if got, err := c.Me(context.Background(), g2.AccessToken); err != nil || got.Email != webexfake.DefaultPerson.Email {
		t.Errorf("default person: got %+v, %v; want %s", got, err, webexfake.DefaultPerson.Email)
	}
}

func TestMeErrorsAgainstFake(t *testing.T) {
	tests := []struct {
		name       string
		arrange    func(s *webexfake.Server) string // returns the access token to ask about
		timeout    time.Duration
		want       string
		retryAfter time.Duration
		calls      int
	}{
		{name: "unknown token", want: "token", calls: 1,
			arrange: func(s *webexfake.Server) string { return "fake-at-not-issued" }},
		{name: "revoked token", want: "token", calls: 1,
			arrange: func(s *webexfake.Server) string {
				at := s.IssueAccessToken(testClient.ID, 0)
				s.RevokeAccessToken(at)
				return at
			}},
		{name: "expired token", want: "token", calls: 1,
			arrange: func(s *webexfake.Server) string {
				s.AddAccessToken(testClient.ID, "fake-at-expired", time.Now().Add(-time.Second))
				return "fake-at-expired"
			}},
		{name: "empty token is not sent", want: "token", calls: 0,
			arrange: func(s *webexfake.Server) string { return "" }},
		{name: "grant without spark:people_read", want: "scope", calls: 1,
			arrange: func(s *webexfake.Server) string {
				s.SetClientScopes(testClient.ID, "cjp:config_read")
				return s.IssueAccessToken(testClient.ID, 0)
			}},
		{name: "500", want: "transient", calls: 1,
			arrange: func(s *webexfake.Server) string {
				s.FailMeNext(1, webexfake.ServerError(500))
				return s.IssueAccessToken(testClient.ID, 0)
			}},
		{name: "429 with Retry-After", want: "transient", retryAfter: 9 * time.Second, calls: 1,
			arrange: func(s *webexfake.Server) string {
				s.FailMeNext(1, webexfake.RateLimited("9"))
				return s.IssueAccessToken(testClient.ID, 0)
			}},
		{name: "not JSON", want: "transient", calls: 1,
			arrange: func(s *webexfake.Server) string {
				s.FailMeNext(1, webexfake.Fault{Kind: webexfake.FaultMalformed})
				return s.IssueAccessToken(testClient.ID, 0)
			}},
		{name: "connection reset", want: "transient", calls: 1,
			arrange: func(s *webexfake.Server) string {
				s.FailMeNext(1, webexfake.Fault{Kind: webexfake.FaultReset})
				return s.IssueAccessToken(testClient.ID, 0)
			}},
		{name: "hangs past the timeout", want: "transient", timeout: 100 * time.Millisecond, calls: 1,
			arrange: func(s *webexfake.Server) string {
				s.FailMeNext(1, webexfake.Fault{Kind: webexfake.FaultHang})
				return s.IssueAccessToken(testClient.ID, 0)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := meSetup(t, Options{Timeout: tt.timeout})
			at := tt.arrange(s)
			_, err := c.Me(context.Background(), at)
			if got := meClass(err); got != tt.want {
				t.Fatalf("got %s (%v), want %s", got, err, tt.want)
			}
			var te *token.TransientError
			if errors.As(err, &te) && te.RetryAfter != tt.retryAfter {
				t.Errorf("retry after: got %s, want %s", te.RetryAfter, tt.retryAfter)
			}
			if tt.timeout > 0 && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("got %v, want it to wrap context.DeadlineExceeded", err)
			}
			var e *Error
			if !errors.As(err, &e) || e.Op != opMe {
				t.Errorf("got %v, want an *Error of %s", err, opMe)
			}
			if at != "" && strings.Contains(err.Error(), at) {
				t.Errorf("error %q holds the access token", err)
			}
			if got := s.IdentityStats().Me; got != tt.calls {
				t.Errorf("calls: got %d, want %d", got, tt.calls)
			}
		})
	}
}

// TestMeAnswers checks answers the fake does not give: odd successes,
// and an error body that echoes the token.
func TestMeAnswers(t *testing.T) {
	const at = "ZDk1ZGY0YWUtYTk0NS00MWE5LWE1NDItMmU0MjE5ZmM0ZjkxMjM0_PF84_1eb65fdf"
	tests := []struct {
		name   string
		status int
		body   string
		want   string
		person token.Person
	}{
		{name: "person without e-mail or org", status: 200, body: `{"id":"p1","displayName":"Bot"}`, want: "ok",
			person: token.Person{ID: "p1", DisplayName: "Bot"}},
		{name: "first e-mail is the primary", status: 200, body: `{"id":"p1","emails":["a@x.test","b@x.test"],"orgId":"o1"}`, want: "ok",
			person: token.Person{ID: "p1", Email: "a@x.test", OrgID: "o1"}},
		{name: "no id", status: 200, body: `{"emails":["a@x.test"]}`, want: "transient"},
		{name: "HTML", status: 200, body: `<html>login</html>`, want: "transient"},
		{name: "404 from a proxy", status: 404, body: `not found`, want: "transient"},
		{name: "401 echoing the token", status: 401, body: `{"message":"token ` + at + ` is invalid","trackingId":"ROUTER_1"}`, want: "token"},
		{name: "403 echoing the token", status: 403, body: `{"message":"Bearer ` + at + ` lacks scopes"}`, want: "scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := serve(t, tt.status, nil, tt.body)
			c.apiURL = c.tokenURL[:strings.Index(c.tokenURL, "/v1/")]
			p, err := c.Me(context.Background(), at)
			if got := meClass(err); got != tt.want {
				t.Fatalf("got %s (%v), want %s", got, err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), at) {
				t.Errorf("error %q holds the access token", err)
			}
			if p != tt.person {
				t.Errorf("got %+v, want %+v", p, tt.person)
			}
		})
	}
}

func TestMeRequestShape(t *testing.T) {
	var (
		mu                         sync.Mutex
		method, path, auth, accept string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		method, path, auth, accept = r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), r.Header.Get("Accept")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"p1"}`)
	}))
	defer srv.Close()
	c, err := New(testOptions(Options{APIURL: srv.URL + "/"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Me(context.Background(), "at-1"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	got := []string{method, path, auth, accept}
	want := []string{http.MethodGet, "/v1/people/me", "Bearer at-1", "application/json"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
}
