package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/lifecycle"
)

// TestAuthorizationLinks (issue 22, part 3): POST /admin/tokens/N/authorize
// makes a link that works once, without console access, with PKCE whose
// verifier never leaves the service; a revoked or expired link, and one
// used already, authorize nothing.
func TestAuthorizationLinks(t *testing.T) {
	t.Parallel()
	h, a, _ := consoleAPI(t, nil)
	clientID, secret := "link-client-"+randomHex(3), "link-secret-"+randomHex(8)
	h.Secret(secret)
	h.Webex.AddClient(clientID, secret)
	if r := do(t, http.MethodPut, a.url+"/admin/tokens/desk", `{"clientId":"`+clientID+`","clientSecret":"`+secret+`","redirectUri":"`+a.url+`/callback","scopes":["spark:kms"]}`, admin(nil)); r.code != 200 {
		t.Fatalf("put: %d %s", r.code, r.raw)
	}
	newLink := func(body string) string {
		t.Helper()
		r := do(t, http.MethodPost, a.url+"/admin/tokens/desk/authorize", body, admin(map[string]string{"Content-Type": "application/json"}))
		if r.code != 200 || !strings.HasPrefix(r.str("url"), a.url+"/link/") || r.str("expiresAt") == "" {
			t.Fatalf("make a link: got %d %s", r.code, r.raw)
		}
		return r.str("url")
	}
	// follow opens a link in a fresh browser-like client, approves at the
	// fake Webex and returns the page /callback answered.
	follow := func(link string) (int, string) {
		t.Helper()
		c := (&consoleWorld{harness: h, base: a.url}).client()
		path := strings.TrimPrefix(link, a.url)
		if resp, body := c.send(http.MethodGet, path, nil, nil); resp.StatusCode != 200 {
			return resp.StatusCode, body
		}
		resp, body := c.send(http.MethodPost, path, url.Values{}, map[string]string{"Origin": "same"})
		if resp.StatusCode != http.StatusSeeOther {
			return resp.StatusCode, body
		}
		at, _ := url.Parse(resp.Header.Get("Location"))
		if at.Query().Get("code_challenge_method") != "S256" || at.Query().Get("code_challenge") == "" {
			t.Fatalf("the link sent the browser to %s, want PKCE S256", at)
		}
		back := do2(t, at.String(), nil)
		cb, _ := url.Parse(back.Header.Get("Location"))
		resp, body = c.send(http.MethodGet, "/callback?"+cb.RawQuery, nil, nil)
		return resp.StatusCode, body
	}

	first := newLink("")
	if code, body := follow(first); code != 200 || !strings.Contains(body, "is authorized") {
		t.Fatalf("the link: got %d %.400s", code, body)
	}
	d := h.Doc("desk")
	h.Secret(d["accessToken"].(string), d["refreshToken"].(string))
	if code, body := follow(first); code != http.StatusGone || !strings.Contains(body, "used already") {
		t.Errorf("the link again: got %d, want 410 saying it was used", code)
	}

	revoked := newLink(`{"email":"someone@example.com"}`)
	links, err := a.srv.service.Links(context.Background(), "desk")
	if err != nil || len(links) != 1 || links[0].Email != "someone@example.com" {
		t.Fatalf("pending links: %v %v", links, err)
	}
	if err := a.srv.service.RevokeLink(context.Background(), lifecycle.Actor{Kind: activity.ByPassphrase, Name: activity.PassphraseActor}, "desk", links[0].Key); err != nil {
		t.Fatal(err)
	}
	if code, body := follow(revoked); code != http.StatusGone || !strings.Contains(body, "revoked") {
		t.Errorf("a revoked link: got %d, want 410 saying so", code)
	}

	expired := newLink("")
	h.Clock.Advance(73 * time.Hour) // AUTHORIZE_LINK_TTL is 72h
	if code, body := follow(expired); code != http.StatusGone || !strings.Contains(body, "expired") {
		t.Errorf("an expired link: got %d, want 410 saying so", code)
	}
	if g := h.Doc("desk")["generation"]; g != int64(1) {
		t.Errorf("generation %v after the refused links, want 1 (only the first authorized)", g)
	}
}
