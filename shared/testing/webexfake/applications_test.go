package webexfake

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// mintWith posts a mint of app with bearer and body, and decodes the answer.
func mintWith(t *testing.T, s *Server, app, bearer, body string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+ApplicationsPathPrefix+app+"/token", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := reply{status: resp.StatusCode, header: resp.Header}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r.raw = string(b)
	_ = json.Unmarshal([]byte(r.raw), &r.json)
	return r
}

// TestMintScopesFollowGrants: the tokens of codes and refresh grants
// carry the client's scopes, so a manager authorized with
// spark:applications_token can mint, and one without cannot.
func TestMintScopesFollowGrants(t *testing.T) {
	s := start(t)
	s.AddApp("app", "sa-client", "sa-secret", "org")
	body := `{"clientId":"sa-client","clientSecret":"sa-secret","targetOrgId":"org"}`

	unrestricted := str(mustPost(t, s.TokenURL, exchangeForm(s.IssueCode(clientID, redirect))).json, "access_token")
	if r := mintWith(t, s, "app", unrestricted, body); r.status != http.StatusOK {
		t.Fatalf("a client whose scopes were never set: got %d %s, want 200", r.status, r.raw)
	}
	s.SetClientScopes(clientID, "spark:kms")
	without := str(mustPost(t, s.TokenURL, exchangeForm(s.IssueCode(clientID, redirect))).json, "access_token")
	if r := mintWith(t, s, "app", without, body); r.status != http.StatusForbidden || !strings.Contains(str(r.json, "message"), ApplicationsTokenScope) {
		t.Fatalf("without the scope: got %d %s, want 403 naming the scope", r.status, r.raw)
	}

	s.SetClientScopes(clientID, "spark:kms", ApplicationsTokenScope)
	ex := mustPost(t, s.TokenURL, exchangeForm(s.IssueCode(clientID, redirect))).json
	if r := mintWith(t, s, "app", str(ex, "access_token"), body); r.status != http.StatusOK || str(r.json, "refresh_token") == "" {
		t.Fatalf("with the scope (exchange): got %d %s", r.status, r.raw)
	}
	refreshed := str(mustPost(t, s.TokenURL, refreshForm(str(ex, "refresh_token"))).json, "access_token")
	if r := mintWith(t, s, "app", refreshed, body); r.status != http.StatusOK {
		t.Fatalf("with the scope (refresh): got %d %s", r.status, r.raw)
	}
	if r := mintWith(t, s, "app", without, body); r.status != http.StatusForbidden {
		t.Fatalf("a token issued before the scope was added keeps its scopes: got %d", r.status)
	}
	st := s.MintStats()
	if st.Calls != 5 || st.Minted != 3 || st.ByApp["app"] != 5 {
		t.Fatalf("stats %+v, want 5 calls, 3 minted", st)
	}
	s.ResetStats()
	if st := s.MintStats(); st.Calls != 0 || len(st.ByApp) != 0 {
		t.Fatalf("after ResetStats: %+v", st)
	}
}

func TestMintChecks(t *testing.T) {
	body := `{"clientId":"sa-client","clientSecret":"sa-secret","targetOrgId":"org"}`
	tests := []struct {
		name   string
		setup  func(s *Server) (app, bearer, body string)
		status int
	}{
		{"no bearer", func(s *Server) (string, string, string) { return "app", "", body }, 401},
		{"missing field", func(s *Server) (string, string, string) {
			return "app", s.IssueAccessToken(clientID, 0), `{"clientId":"sa-client","clientSecret":"sa-secret"}`
		}, 400},
		{"unknown app", func(s *Server) (string, string, string) { return "other", s.IssueAccessToken(clientID, 0), body }, 404},
		{"wrong secret", func(s *Server) (string, string, string) {
			return "app", s.IssueAccessToken(clientID, 0), strings.Replace(body, `"sa-secret"`, `"nope"`, 1)
		}, 400},
		{"org not authorized", func(s *Server) (string, string, string) {
			return "app", s.IssueAccessToken(clientID, 0), strings.Replace(body, `"org"`, `"other-org"`, 1)
		}, 403},
		{"authorized later", func(s *Server) (string, string, string) {
			s.AuthorizeApp("app", "other-org")
			return "app", s.IssueAccessToken(clientID, 0), strings.Replace(body, `"org"`, `"other-org"`, 1)
		}, 200},
		{"fault", func(s *Server) (string, string, string) {
			s.FailMintNext(1, ServerError(502))
			return "app", s.IssueAccessToken(clientID, 0), body
		}, 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t)
			s.SetClientScopes(clientID, ApplicationsTokenScope)
			s.AddApp("app", "sa-client", "sa-secret", "org")
			app, bearer, b := tt.setup(s)
			if r := mintWith(t, s, app, bearer, b); r.status != tt.status {
				t.Fatalf("got %d %s, want %d", r.status, r.raw, tt.status)
			}
		})
	}
}
