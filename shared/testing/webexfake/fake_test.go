package webexfake

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	clientID = "C0ffee"
	secret   = "s3cret-client"
	redirect = "https://example.test/callback"
)

type reply struct {
	status int
	header http.Header
	raw    string
	json   map[string]any
}

func post(t *testing.T, ctx context.Context, tokenURL string, form url.Values) (reply, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	_ = json.Unmarshal(b, &r.json)
	return r, nil
}

func mustPost(t *testing.T, tokenURL string, form url.Values) reply {
	t.Helper()
	r, err := post(t, context.Background(), tokenURL, form)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	return r
}

func refreshForm(rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "client_secret": {secret}, "refresh_token": {rt}}
}

func exchangeForm(code string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "client_id": {clientID}, "client_secret": {secret}, "code": {code}, "redirect_uri": {redirect}}
}

func start(t *testing.T) *Server {
	t.Helper()
	s := Start(t)
	s.AddClient(clientID, secret)
	return s
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func num(m map[string]any, k string) float64 {
	n, _ := m[k].(float64)
	return n
}

func TestGrantErrors(t *testing.T) {
	s := start(t)
	s.AddClient("other", "other-secret")
	now := time.Now()
	valid := s.IssueRefreshToken(clientID, 0)
	othersRT := s.IssueRefreshToken("other", 0)
	expired := "fake-rt-expired"
	s.AddRefreshToken(clientID, expired, now.Add(-time.Minute))
	revoked := s.IssueRefreshToken(clientID, 0)
	s.RevokeRefreshToken(revoked)
	code := s.IssueCode(clientID, redirect)
	othersCode := s.IssueCode("other", redirect)

	with := func(f url.Values, k, v string) url.Values {
		g := url.Values{}
		for kk, vv := range f {
			g[kk] = vv
		}
		if v == "" {
			g.Del(k)
		} else {
			g.Set(k, v)
		}
		return g
	}
	tests := []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"missing grant_type", with(refreshForm(valid), "grant_type", ""), 400, "invalid_request"},
		{"unsupported grant_type", with(refreshForm(valid), "grant_type", "password"), 400, "unsupported_grant_type"},
		{"missing client_id", with(refreshForm(valid), "client_id", ""), 400, "invalid_request"},
		{"missing client_secret", with(refreshForm(valid), "client_secret", ""), 400, "invalid_request"},
		{"missing refresh_token", with(refreshForm(valid), "refresh_token", ""), 400, "invalid_request"},
		{"wrong secret", with(refreshForm(valid), "client_secret", "nope"), 401, "invalid_client"},
		{"unknown client", with(refreshForm(valid), "client_id", "nobody"), 401, "invalid_client"},
		{"unknown refresh token", refreshForm("fake-rt-unknown"), 400, "invalid_grant"},
		{"expired refresh token", refreshForm(expired), 400, "invalid_grant"},
		{"revoked refresh token", refreshForm(revoked), 400, "invalid_grant"},
		{"refresh token of another client", refreshForm(othersRT), 400, "invalid_grant"},
		{"missing code", with(exchangeForm(code), "code", ""), 400, "invalid_request"},
		{"missing redirect_uri", with(exchangeForm(code), "redirect_uri", ""), 400, "invalid_request"},
		{"unknown code", exchangeForm("fake-code-unknown"), 400, "invalid_grant"},
		{"code of another client", exchangeForm(othersCode), 400, "invalid_grant"},
		{"redirect_uri mismatch", with(exchangeForm(code), "redirect_uri", "https://evil.test/cb"), 400, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustPost(t, s.TokenURL, tt.form)
			if r.status != tt.status || str(r.json, "error") != tt.code {
				t.Errorf("got %d %q, want %d %q (body %s)", r.status, str(r.json, "error"), tt.status, tt.code, r.raw)
			}
			if str(r.json, "trackingId") == "" || str(r.json, "message") == "" {
				t.Errorf("error body lacks Webex's message/trackingId: %s", r.raw)
			}
			if strings.Contains(r.raw, secret) {
				t.Errorf("error body echoes the client secret: %s", r.raw)
			}
		})
	}
	// The code survived the failed attempts and still works once.
	if r := mustPost(t, s.TokenURL, exchangeForm(code)); r.status != 200 {
		t.Errorf("exchange after failed attempts: got %d, want 200 (%s)", r.status, r.raw)
	}
}

func TestCredentialsOnlyInBody(t *testing.T) {
	s := start(t)
	rt := s.IssueRefreshToken(clientID, 0)

	// In the query string instead of the body.
	q := refreshForm(rt)
	req, _ := http.NewRequest(http.MethodPost, s.TokenURL+"?"+q.Encode(), strings.NewReader(""))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("credentials in query: got %d, want 400", resp.StatusCode)
	}

	// In a basic auth header instead of the body.
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	req, _ = http.NewRequest(http.MethodPost, s.TokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("credentials in basic auth: got %d, want 400", resp.StatusCode)
	}
}

func TestMethodsAndPaths(t *testing.T) {
	s := start(t)
	tests := []struct {
		name, method, path string
		status             int
	}{
		{"GET token endpoint", http.MethodGet, TokenPath, 405},
		{"POST authorize", http.MethodPost, AuthorizePath, 405},
		{"POST people/me", http.MethodPost, PeopleMePath, 405},
		{"POST discovery", http.MethodPost, DiscoveryPath, 405},
		{"unknown path", http.MethodPost, "/v1/people", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, s.URL+tt.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("got %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
}

func TestRefresh(t *testing.T) {
	tests := []struct {
		name       string
		rotate     bool
		omit       bool
		wantSameRT bool
		wantNoRT   bool
		oldValid   bool
	}{
		{name: "no rotation returns the same refresh token", wantSameRT: true, oldValid: true},
		{name: "rotation replaces the refresh token", rotate: true, oldValid: false},
		{name: "omitted refresh token keeps the old one", omit: true, wantNoRT: true, oldValid: true},
		{name: "omission wins over rotation", rotate: true, omit: true, wantNoRT: true, oldValid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t)
			now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			s.SetNow(func() time.Time { return now })
			s.SetRotation(tt.rotate)
			s.SetOmitRefreshToken(tt.omit)
			rt := s.IssueRefreshToken(clientID, 0)
			now = now.Add(24 * time.Hour) // refreshing does not extend the refresh token

			r := mustPost(t, s.TokenURL, refreshForm(rt))
			if r.status != 200 {
				t.Fatalf("got %d, want 200 (%s)", r.status, r.raw)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type: got %q, want application/json", ct)
			}
			at := str(r.json, "access_token")
			if !strings.HasPrefix(at, AccessTokenPrefix) || !s.AccessTokenValid(at) {
				t.Errorf("access_token %q: want a valid %s… token", at, AccessTokenPrefix)
			}
			if got, want := num(r.json, "expires_in"), 43199.0; got != want {
				t.Errorf("expires_in: got %v, want %v", got, want)
			}
			if got := str(r.json, "token_type"); got != "Bearer" {
				t.Errorf("token_type: got %q, want Bearer", got)
			}
			newRT, hasRT := r.json["refresh_token"].(string)
			_, hasRTExp := r.json["refresh_token_expires_in"]
			switch {
			case tt.wantNoRT:
				if hasRT || hasRTExp {
					t.Errorf("got refresh_token %q, want none (%s)", newRT, r.raw)
				}
			case tt.wantSameRT:
				if newRT != rt {
					t.Errorf("refresh_token: got %q, want the old %q", newRT, rt)
				}
			default:
				if newRT == rt || !strings.HasPrefix(newRT, RefreshTokenPrefix) || !s.RefreshTokenValid(newRT) {
					t.Errorf("refresh_token: got %q, want a new valid one", newRT)
				}
			}
			if !tt.wantNoRT {
				if got, want := num(r.json, "refresh_token_expires_in"), 5183999.0-86400; got != want {
					t.Errorf("refresh_token_expires_in: got %v, want %v", got, want)
				}
			}
			if got := s.RefreshTokenValid(rt); got != tt.oldValid {
				t.Errorf("old refresh token valid: got %v, want %v", got, tt.oldValid)
			}
		})
	}
}

func TestExchange(t *testing.T) {
	s := start(t)
	s.SetExpiresIn(time.Hour)
	s.SetRefreshExpiresIn(48 * time.Hour)
	code := s.IssueCode(clientID, redirect)

	r := mustPost(t, s.TokenURL, exchangeForm(code))
	if r.status != 200 {
		t.Fatalf("got %d, want 200 (%s)", r.status, r.raw)
	}
	rt := str(r.json, "refresh_token")
	if !s.RefreshTokenValid(rt) || !strings.HasPrefix(rt, RefreshTokenPrefix) {
		t.Errorf("refresh_token %q: want a valid new one", rt)
	}
	if got := num(r.json, "expires_in"); got != 3600 {
		t.Errorf("expires_in: got %v, want 3600", got)
	}
	if got := num(r.json, "refresh_token_expires_in"); got != 48*3600 {
		t.Errorf("refresh_token_expires_in: got %v, want %v", got, 48*3600)
	}
	if r := mustPost(t, s.TokenURL, exchangeForm(code)); r.status != 400 || str(r.json, "error") != "invalid_grant" {
		t.Errorf("second use of a code: got %d %q, want 400 invalid_grant", r.status, str(r.json, "error"))
	}

	now := time.Now()
	s.SetNow(func() time.Time { return now })
	late := s.IssueCode(clientID, redirect)
	now = now.Add(CodeTTL)
	if r := mustPost(t, s.TokenURL, exchangeForm(late)); r.status != 400 || str(r.json, "error") != "invalid_grant" {
		t.Errorf("expired code: got %d %q, want 400 invalid_grant", r.status, str(r.json, "error"))
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name       string
		fault      Fault
		status     int
		code       string
		retryAfter string
	}{
		{"server error default", Fault{Kind: FaultStatus}, 500, "server_error", ""},
		{"bad gateway", ServerError(502), 502, "server_error", ""},
		{"unavailable with retry-after", Fault{Kind: FaultStatus, Status: 503, RetryAfter: "5"}, 503, "server_error", "5"},
		{"rate limited", RateLimited("30"), 429, "rate_limited", "30"},
		{"rate limited with date", RateLimited("Wed, 21 Oct 2026 07:28:00 GMT"), 429, "rate_limited", "Wed, 21 Oct 2026 07:28:00 GMT"},
		{"forced invalid_grant", Fault{Kind: FaultInvalidGrant}, 400, "invalid_grant", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t)
			rt := s.IssueRefreshToken(clientID, 0)
			s.FailNext(2, tt.fault)
			for i := range 2 {
				r := mustPost(t, s.TokenURL, refreshForm(rt))
				if r.status != tt.status || str(r.json, "error") != tt.code {
					t.Errorf("call %d: got %d %q, want %d %q", i, r.status, str(r.json, "error"), tt.status, tt.code)
				}
				if got := r.header.Get("Retry-After"); got != tt.retryAfter {
					t.Errorf("call %d: Retry-After: got %q, want %q", i, got, tt.retryAfter)
				}
			}
			if r := mustPost(t, s.TokenURL, refreshForm(rt)); r.status != 200 {
				t.Errorf("after the faults: got %d, want 200", r.status)
			}
			if !s.RefreshTokenValid(rt) {
				t.Errorf("a fault changed the grant state")
			}
		})
	}
}

func TestFailAlways(t *testing.T) {
	s := start(t)
	rt := s.IssueRefreshToken(clientID, 0)
	s.FailNext(1, RateLimited("1"))
	s.FailAlways(ServerError(503))
	want := []int{429, 503, 503, 503}
	for i, w := range want {
		if r := mustPost(t, s.TokenURL, refreshForm(rt)); r.status != w {
			t.Errorf("call %d: got %d, want %d", i, r.status, w)
		}
	}
	s.ClearFaults()
	if r := mustPost(t, s.TokenURL, refreshForm(rt)); r.status != 200 {
		t.Errorf("after ClearFaults: got %d, want 200", r.status)
	}
}

func TestMalformed(t *testing.T) {
	s := start(t)
	s.FailNext(1, Fault{Kind: FaultMalformed})
	r := mustPost(t, s.TokenURL, refreshForm(s.IssueRefreshToken(clientID, 0)))
	var v any
	if r.status != 200 || json.Unmarshal([]byte(r.raw), &v) == nil {
		t.Errorf("got %d %q, want 200 with a body that is not JSON", r.status, r.raw)
	}
}

func TestHangUntilClientGivesUp(t *testing.T) {
	for _, kind := range []FaultKind{FaultHang, FaultLostAnswer} {
		s := start(t)
		s.SetRotation(true)
		rt := s.IssueRefreshToken(clientID, 0)
		s.FailNext(1, Fault{Kind: kind})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err := post(t, ctx, s.TokenURL, refreshForm(rt))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("kind %d: got %v, want the client's deadline", kind, err)
		}
		// A hang leaves the grant alone; a lost answer rotated it.
		if got, want := s.RefreshTokenValid(rt), kind == FaultHang; got != want {
			t.Errorf("kind %d: old refresh token valid: got %v, want %v", kind, got, want)
		}
	}
}

func TestCloseReleasesHang(t *testing.T) {
	s := NewServer(New())
	s.AddClient(clientID, secret)
	s.FailAlways(Fault{Kind: FaultHang})
	done := make(chan error, 1)
	go func() {
		_, err := post(t, context.Background(), s.TokenURL, refreshForm("x"))
		done <- err
	}()
	for s.Stats().Calls == 0 { // the request is in, hanging
		time.Sleep(time.Millisecond)
	}
	s.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release a hanging answer")
	}
}

func TestLatency(t *testing.T) {
	s := start(t)
	rt := s.IssueRefreshToken(clientID, 0)
	s.SetLatency(150 * time.Millisecond)

	begin := time.Now()
	if r := mustPost(t, s.TokenURL, refreshForm(rt)); r.status != 200 {
		t.Fatalf("got %d, want 200", r.status)
	}
	if d := time.Since(begin); d < 150*time.Millisecond {
		t.Errorf("answered after %s, want at least 150ms", d)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := post(t, ctx, s.TokenURL, refreshForm(rt)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want the client's deadline", err)
	}
}

func TestStats(t *testing.T) {
	s := start(t)
	rt := s.IssueRefreshToken(clientID, 0)
	mustPost(t, s.TokenURL, refreshForm(rt))
	mustPost(t, s.TokenURL, refreshForm(rt))
	mustPost(t, s.TokenURL, exchangeForm(s.IssueCode(clientID, redirect)))
	s.FailNext(1, ServerError(500))
	mustPost(t, s.TokenURL, refreshForm("fake-rt-other"))

	st := s.Stats()
	if st.Calls != 4 || st.Refreshes != 3 || st.Exchanges != 1 {
		t.Errorf("got calls=%d refreshes=%d exchanges=%d, want 4 3 1", st.Calls, st.Refreshes, st.Exchanges)
	}
	if st.ByClient[clientID] != 4 || st.ByRefreshToken[rt] != 2 || st.ByRefreshToken["fake-rt-other"] != 1 {
		t.Errorf("got by client %v, by refresh token %v", st.ByClient, st.ByRefreshToken)
	}
	s.ResetStats()
	if st := s.Stats(); st.Calls != 0 || len(st.ByClient) != 0 {
		t.Errorf("after reset: got %+v, want zero", st)
	}
}

func TestAuthorize(t *testing.T) {
	s := start(t)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	authorize := func(q url.Values) *http.Response {
		t.Helper()
		resp, err := noFollow.Get(s.AuthorizeURL + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect}, "scope": {"spark:all"}, "state": {"st-1"}}

	resp := authorize(q)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), redirect+"?") {
		t.Fatalf("got %d to %q, want 302 to the redirect_uri", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := loc.Query().Get("state"); got != "st-1" {
		t.Errorf("state: got %q, want st-1", got)
	}
	if r := mustPost(t, s.TokenURL, exchangeForm(loc.Query().Get("code"))); r.status != 200 {
		t.Errorf("exchanging the redirected code: got %d, want 200 (%s)", r.status, r.raw)
	}

	s.SetDenyAuthorize(true)
	loc, _ = url.Parse(authorize(q).Header.Get("Location"))
	if got := loc.Query().Get("error"); got != "access_denied" || loc.Query().Get("code") != "" {
		t.Errorf("denied: got error %q code %q, want access_denied and no code", got, loc.Query().Get("code"))
	}

	bad := url.Values{"response_type": {"code"}, "client_id": {"nobody"}, "redirect_uri": {redirect}}
	if resp := authorize(bad); resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
		t.Errorf("unknown client: got %d to %q, want 400 without redirect", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestConcurrentRefreshes(t *testing.T) {
	s := start(t)
	s.SetRotation(true)
	rt := s.IssueRefreshToken(clientID, 0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 20 {
		wg.Go(func() {
			r, err := post(t, context.Background(), s.TokenURL, refreshForm(rt))
			if err == nil && r.status == 200 {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Errorf("with rotation, %d of 20 concurrent refreshes of one token succeeded, want 1", ok)
	}
	if st := s.Stats(); st.Refreshes != 20 {
		t.Errorf("refreshes: got %d, want 20", st.Refreshes)
	}
}

func TestConsentPage(t *testing.T) {
	s := start(t)
	s.SetConsentPage(true)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect}, "scope": {"spark:all spark:kms"}, "state": {"st-2"}}
	resp, err := noFollow.Get(s.AuthorizeURL + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Location") != "" {
		t.Fatalf("got %d to %q, want 200 and a page, no redirect yet", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, want := range []string{">Approve<", ">Deny<", "spark:kms", `action="` + ConsentPath + `"`, `value="st-2"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the consent page lacks %q", want)
		}
	}
	decide := func(decision string) *url.URL {
		t.Helper()
		form := url.Values{"decision": {decision}}
		for k, v := range q {
			form[k] = v
		}
		resp, err := noFollow.PostForm(s.URL+ConsentPath, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || err != nil || !strings.HasPrefix(loc.String(), redirect+"?") {
			t.Fatalf("%s: got %d to %q, want 303 to the redirect_uri", decision, resp.StatusCode, resp.Header.Get("Location"))
		}
		if loc.Query().Get("state") != "st-2" {
			t.Errorf("%s: state %q, want st-2", decision, loc.Query().Get("state"))
		}
		return loc
	}
	code := decide("approve").Query().Get("code")
	if r := mustPost(t, s.TokenURL, exchangeForm(code)); r.status != 200 {
		t.Errorf("exchanging the approved code: got %d, want 200 (%s)", r.status, r.raw)
	}
	if loc := decide("deny"); loc.Query().Get("error") != "access_denied" || loc.Query().Get("code") != "" {
		t.Errorf("denied: got %q, want error=access_denied and no code", loc)
	}
}

func TestPKCE(t *testing.T) {
	s := start(t)
	verifier := "a-verifier-of-at-least-43-characters-0123456789abcdef"
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	authorize := func() string {
		t.Helper()
		q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect},
			"code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"}}
		resp, err := noFollow.Get(s.AuthorizeURL + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		return loc.Query().Get("code")
	}
	with := func(code, v string) url.Values {
		f := exchangeForm(code)
		if v != "" {
			f.Set("code_verifier", v)
		}
		return f
	}
	code := authorize()
	for _, bad := range []string{"", "another-verifier-of-at-least-43-characters-0123456789"} {
		if r := mustPost(t, s.TokenURL, with(code, bad)); r.status != 400 || str(r.json, "error") != "invalid_grant" {
			t.Errorf("verifier %q: got %d %s, want 400 invalid_grant", bad, r.status, r.raw)
		}
	}
	if r := mustPost(t, s.TokenURL, with(code, verifier)); r.status != 200 {
		t.Errorf("the right verifier: got %d %s, want 200", r.status, r.raw)
	}
}
