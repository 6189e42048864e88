package webex

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/webexfake"
	"github.com/wxcc/tokenservice/shared/token"
)

const (
	testAppID = "Y2lzY29zcGFyazovL3VzL0FQUExJQ0FUSU9OL2FwcA"
	testOrg   = "1eb65fdf-9643-417f-9974-ad72cae0e10f"
	saSecret  = "sa-s3cr+t/=&secret"
)

// mintSetup serves a fake with a manager integration holding the scope
// and an app authorized for testOrg; it returns a valid mint request.
func mintSetup(t *testing.T) (*webexfake.Server, *Client, token.MintRequest) {
	t.Helper()
	s, c := setup(t, Options{})
	c.apiURL = s.URL
	s.SetClientScopes(testClient.ID, "spark:kms", webexfake.ApplicationsTokenScope)
	s.AddApp(testAppID, "sa-client", saSecret, testOrg)
	req := token.MintRequest{AppID: testAppID, Client: token.Client{ID: "sa-client", Secret: saSecret}, TargetOrgID: testOrg,
		ManagerToken: s.IssueAccessToken(testClient.ID, 0)}
	return s, c, req
}

func mintClass(err error) string {
	switch {
	case errors.Is(err, token.ErrManagerTokenRejected):
		return "manager token"
	case errors.Is(err, token.ErrManagerNotPermitted):
		return "manager scope"
	}
	return class(err)
}

func TestMintAgainstFake(t *testing.T) {
	s, c, req := mintSetup(t)
	g, err := c.Mint(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(g.AccessToken, webexfake.AccessTokenPrefix) || g.ExpiresIn != webexfake.DefaultExpiresIn ||
		!s.RefreshTokenValid(g.RefreshToken) || g.RefreshExpiresIn != webexfake.DefaultRefreshExpiresIn {
		t.Fatalf("got %+v, want a pair with the fake's lifetimes", g)
	}
	// The minted pair is the Service App's own: its refresh grant works.
	if _, err := c.Refresh(context.Background(), token.Client{ID: "sa-client", Secret: saSecret}, g.RefreshToken); err != nil {
		t.Fatalf("refreshing the minted pair: %v", err)
	}
	if st := s.MintStats(); st.Calls != 1 || st.Minted != 1 || st.ByApp[testAppID] != 1 {
		t.Fatalf("fake counted %+v", st)
	}
}

func TestMintErrorsAgainstFake(t *testing.T) {
	tests := []struct {
		name  string
		setup func(s *webexfake.Server, req *token.MintRequest)
		want  string
	}{
		{"manager token unknown", func(s *webexfake.Server, req *token.MintRequest) { req.ManagerToken = "not-issued" }, "manager token"},
		{"manager token revoked", func(s *webexfake.Server, req *token.MintRequest) { s.RevokeAccessToken(req.ManagerToken) }, "manager token"},
		{"manager token expired", func(s *webexfake.Server, req *token.MintRequest) {
			req.ManagerToken = s.IssueAccessToken(testClient.ID, time.Nanosecond)
			time.Sleep(time.Millisecond)
		}, "manager token"},
		{"manager lacks the scope", func(s *webexfake.Server, req *token.MintRequest) {
			s.SetClientScopes(testClient.ID, "spark:kms")
			req.ManagerToken = s.IssueAccessToken(testClient.ID, 0)
		}, "manager scope"},
		{"app unknown", func(s *webexfake.Server, req *token.MintRequest) { req.AppID = "unknown" }, "client"},
		{"app removed", func(s *webexfake.Server, req *token.MintRequest) { s.RemoveApp(testAppID) }, "client"},
		{"wrong client secret", func(s *webexfake.Server, req *token.MintRequest) { req.Client.Secret = "wrong" }, "client"},
		{"wrong client id", func(s *webexfake.Server, req *token.MintRequest) { req.Client.ID = "other" }, "client"},
		{"org not authorized", func(s *webexfake.Server, req *token.MintRequest) { s.DeauthorizeApp(testAppID, testOrg) }, "client"},
		{"server error", func(s *webexfake.Server, req *token.MintRequest) { s.FailMintNext(1, webexfake.ServerError(503)) }, "transient"},
		{"rate limited", func(s *webexfake.Server, req *token.MintRequest) { s.FailMintNext(1, webexfake.RateLimited("7")) }, "transient"},
		{"malformed answer", func(s *webexfake.Server, req *token.MintRequest) {
			s.FailMintNext(1, webexfake.Fault{Kind: webexfake.FaultMalformed})
		}, "transient"},
		{"hangs past the timeout", func(s *webexfake.Server, req *token.MintRequest) {
			s.FailMintNext(1, webexfake.Fault{Kind: webexfake.FaultHang})
		}, "transient"},
		{"no manager token", func(s *webexfake.Server, req *token.MintRequest) { req.ManagerToken = "" }, "manager token"},
		{"no target org", func(s *webexfake.Server, req *token.MintRequest) { req.TargetOrgID = "" }, "client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c, req := mintSetup(t)
			c.timeout = 300 * time.Millisecond
			tt.setup(s, &req)
			_, err := c.Mint(context.Background(), req)
			if got := mintClass(err); got != tt.want {
				t.Fatalf("got %s (%v), want %s", got, err, tt.want)
			}
			for _, secret := range []string{req.Client.Secret, req.ManagerToken} {
				if secret != "" && strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q holds a secret", err)
				}
			}
			var te *token.TransientError
			if tt.name == "rate limited" && (!errors.As(err, &te) || te.RetryAfter != 7*time.Second) {
				t.Fatalf("got %v, want Retry-After 7s honoured", err)
			}
		})
	}
}

// TestMintRequestShape: what goes over the wire, as Webex documents it.
func TestMintRequestShape(t *testing.T) {
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		body, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"a","expires_in":"3600","refresh_token":"r","refresh_token_expires_in":7776000,"token_type":"Bearer"}`)
	}))
	defer srv.Close()
	c, err := New(testOptions(Options{APIURL: srv.URL + "/", Timeout: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	g, err := c.Mint(context.Background(), token.MintRequest{AppID: "app/id", Client: token.Client{ID: "cid", Secret: "cs"}, TargetOrgID: "org", ManagerToken: "mgr-at"})
	if err != nil {
		t.Fatal(err)
	}
	if g.AccessToken != "a" || g.ExpiresIn != time.Hour || g.RefreshToken != "r" || g.RefreshExpiresIn != 90*24*time.Hour {
		t.Fatalf("got %+v", g)
	}
	if got.Method != http.MethodPost || got.URL.EscapedPath() != "/v1/applications/app%2Fid/token" ||
		got.Header.Get("Authorization") != "Bearer mgr-at" || got.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("request %s %s headers %v", got.Method, got.URL.EscapedPath(), got.Header)
	}
	var j map[string]string
	if err := json.Unmarshal(body, &j); err != nil || len(j) != 3 || j["clientId"] != "cid" || j["clientSecret"] != "cs" || j["targetOrgId"] != "org" {
		t.Fatalf("body %s", body)
	}
}

func TestMintOddAnswers(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"200 without access token", 200, `{"expires_in":3600}`, "transient"},
		{"200 html", 200, `<html>`, "transient"},
		{"403 not authorized for the org", 403, `{"message":"Not authorized","trackingId":"T_1"}`, "client"},
		{"403 missing scopes", 403, `{"message":"The access token is missing required scopes"}`, "manager scope"},
		{"404", 404, `{"message":"Not found"}`, "client"},
		{"400", 400, `{"message":"Bad request"}`, "client"},
		{"401", 401, `{"message":"Invalid token"}`, "manager token"},
		{"302", 302, ``, "transient"},
		{"418", 418, ``, "transient"},
		{"502 html", 502, `<html>bad gateway</html>`, "transient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := serve(t, tt.status, nil, tt.body)
			c.apiURL = strings.TrimSuffix(c.tokenURL, "/v1/access_token")
			_, err := c.Mint(context.Background(), token.MintRequest{AppID: "a", Client: token.Client{ID: "c", Secret: "s"}, TargetOrgID: "o", ManagerToken: "m"})
			if got := mintClass(err); got != tt.want {
				t.Fatalf("got %s (%v), want %s", got, err, tt.want)
			}
		})
	}
}
