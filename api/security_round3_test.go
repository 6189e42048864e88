package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/token"
)

// Tests of the third security round's findings that live in the api
// (issue 20); each fails without its fix.

// TestNoCredentialIsNotAGuess (finding 2): a web page can make its
// visitors' browsers send requests without any passphrase (an <img> to
// /?name=…). Those are answered 401 and not counted, so they cannot lock
// the visitors' address out of the api, /init or the admin API; a wrong
// passphrase still counts.
func TestNoCredentialIsNotAGuess(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"AUTH_FAILURE_LIMIT": "3", "TRUSTED_PROXY_HOPS": "1", "ADMIN_PASSPHRASE": adminPass})
	h.Secret(adminPass)
	a := h.startAPI(nil)
	h.seed("widget", 6*time.Hour, 30*24*time.Hour, nil)
	const office = "198.51.100.77"
	from := map[string]string{"X-Forwarded-For": office}
	for i := range 10 {
		for _, path := range []string{"/?name=widget", fmt.Sprintf("/?name=made-up-%d", i), "/init?name=widget", "/admin/tokens"} {
			if r := get(t, a.url+path, from); r.code != 401 {
				t.Fatalf("%s without a passphrase: got %d, want 401", path, r.code)
			}
		}
	}
	with := map[string]string{"X-Forwarded-For": office, "x-token-passphrase": h.Env["TOKEN_PASSPHRASE"]}
	if r := get(t, a.url+"/?name=widget", with); r.code != 200 {
		t.Fatalf("the right passphrase after 40 requests without one: got %d %s, want 200", r.code, r.raw)
	}
	if r := get(t, a.url+"/admin/tokens", admin(from)); r.code != 200 {
		t.Fatalf("the admin passphrase after requests without one: got %d, want 200", r.code)
	}
	// Wrong passphrases still count.
	for range 3 {
		get(t, a.url+"/?name=widget", map[string]string{"X-Forwarded-For": office, "x-token-passphrase": "guess-" + randomHex(4)})
	}
	if r := get(t, a.url+"/?name=widget", with); r.code != 429 {
		t.Fatalf("after 3 wrong passphrases: got %d, want 429", r.code)
	}
}

// TestUnreadableTokenChecksThePassphraseFirst (finding 3): a token whose
// secrets no configured key opens is checked like any other first: a
// wrong passphrase is a 401 that counts (and learns nothing), the right
// one gets 503 "cannot be decrypted"; asking again within CACHE_MAX_AGE
// costs no store read, and it never makes the instance think the store
// is down (other tokens still refresh inline).
func TestUnreadableTokenChecksThePassphraseFirst(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"AUTH_FAILURE_LIMIT": "3", "TRUSTED_PROXY_HOPS": "1", "TOKEN_ENCRYPTION_KEYS": "k1:" + newKey(t)})
	a := h.startAPI(nil)
	h.seed("locked", 6*time.Hour, 30*24*time.Hour, map[string]any{"accessToken": "enc:v1:retired:" + strings.Repeat("A", 40)})
	h.seed("due", time.Hour, 30*24*time.Hour, nil)
	counting := &countingStore{Store: a.srv.store}
	a.srv.store = counting
	pass := h.Env["TOKEN_PASSPHRASE"]
	ask := func(ip, p, name string) reply {
		return get(t, a.url+"/?name="+name, map[string]string{"X-Forwarded-For": ip, "x-token-passphrase": p})
	}
	r := ask("198.51.100.1", pass, "locked")
	if r.code != 503 || !strings.Contains(r.str("message"), "cannot be decrypted") {
		t.Fatalf("right passphrase: got %d %s, want 503 saying it cannot be decrypted", r.code, r.raw)
	}
	reads := counting.reads.Load()
	for range 3 {
		if r := ask("198.51.100.2", "wrong-"+randomHex(6), "locked"); r.code != 401 {
			t.Fatalf("wrong passphrase: got %d %s, want 401", r.code, r.raw)
		}
	}
	if r := ask("198.51.100.2", pass, "locked"); r.code != 429 {
		t.Fatalf("after 3 wrong passphrases: got %d, want 429 (they counted)", r.code)
	}
	if got := counting.reads.Load() - reads; got != 0 {
		t.Errorf("asking again within CACHE_MAX_AGE read the store %d times, want 0", got)
	}
	r = ask("198.51.100.3", pass, "due")
	if r.code != 200 || h.Webex.Stats().Refreshes != 1 {
		t.Fatalf("a due token after the unreadable one: got %d with %d refreshes, want 200 refreshed inline (the store is not down)", r.code, h.Webex.Stats().Refreshes)
	}
	h.Secret(r.str("token"))
}

// TestCSRFTokenFromTheQueryIsRefused (finding 10): a state-changing
// console request must carry its CSRF token in the form body or a
// header; one in the query string (which leaks into logs and Referer) is
// refused.
func TestCSRFTokenFromTheQueryIsRefused(t *testing.T) {
	t.Parallel()
	h, _, c := consoleAPI(t, nil)
	h.seed("kept", 6*time.Hour, 30*24*time.Hour, nil)
	c.signIn()
	csrf := c.csrf()
	resp, _ := c.send(http.MethodPost, "/admin/token/kept/delete?csrf="+url.QueryEscape(csrf), url.Values{"confirm": {"kept"}}, map[string]string{"Origin": "same"})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("CSRF token in the query: got %d, want 403", resp.StatusCode)
	}
	if _, err := c.hc.Get(c.base + "/healthz"); err != nil || h.Doc("kept") == nil {
		t.Fatal("the token was deleted")
	}
	resp, _ = c.send(http.MethodPost, "/admin/token/kept/delete", url.Values{"confirm": {"kept"}, "csrf": {csrf}}, map[string]string{"Origin": "same"})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("CSRF token in the form: got %d, want 303", resp.StatusCode)
	}
}

// TestInitCreationsAreLimited (finding 11): one address creates at most
// 20 documents an hour through /init; an existing name still answers.
func TestInitCreationsAreLimited(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"TRUSTED_PROXY_HOPS": "1"})
	a := h.startAPI(nil)
	hdr := map[string]string{"X-Forwarded-For": "198.51.100.90", "x-token-passphrase": h.Env["TOKEN_PASSPHRASE"]}
	for i := range initCreations {
		if r := get(t, fmt.Sprintf("%s/init?name=made-%d", a.url, i), hdr); r.code != 200 {
			t.Fatalf("creation %d: got %d %s", i+1, r.code, r.raw)
		}
	}
	r := get(t, a.url+"/init?name=one-too-many", hdr)
	if r.code != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("creation %d: got %d %s, want 429 with Retry-After", initCreations+1, r.code, r.raw)
	}
	if _, err := a.store.Get(context.Background(), "one-too-many"); !errors.Is(err, token.ErrNotFound) {
		t.Errorf("the refused /init created the document (read: %v)", err)
	}
	if r := get(t, a.url+"/init?name=made-1", map[string]string{"X-Forwarded-For": "198.51.100.91", "x-token-passphrase": h.Env["TOKEN_PASSPHRASE"]}); r.code != 200 {
		t.Errorf("another address: got %d, want 200", r.code)
	}
}

// TestAdminPassphraseCrowdBudget (finding 12): once sign-in with Webex is
// configured, wrong admin passphrases from many addresses together close
// the break-glass passphrase for the window (people keep signing in
// with Webex); without sign-in with Webex, they do not (it would lock
// every admin out).
func TestAdminPassphraseCrowdBudget(t *testing.T) {
	t.Parallel()
	for _, webex := range []bool{true, false} {
		t.Run(fmt.Sprintf("sign-in with webex %v", webex), func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"AUTH_FAILURE_LIMIT": "2", "TRUSTED_PROXY_HOPS": "1", "ADMIN_PASSPHRASE": adminPass}
			h := newHarness(t, env)
			if webex {
				h.Env["CONSOLE_OIDC_CLIENT_ID"], h.Env["CONSOLE_OIDC_CLIENT_SECRET"] = "console-client", "console-secret-"+randomHex(8)
				h.Env["CONSOLE_OIDC_ISSUER"], h.Env["CONSOLE_URL"] = h.Webex.IssuerURL, "http://127.0.0.1"
				h.Env["CONSOLE_OPERATORS"] = "ops@example.com"
				h.Secret(h.Env["CONSOLE_OIDC_CLIENT_SECRET"])
			}
			h.Secret(adminPass)
			a := h.startAPI(nil)
			for i := range 2 * adminCrowdFactor { // one wrong guess from each of 20 addresses
				get(t, a.url+"/admin/tokens", map[string]string{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d", i+1), "x-admin-passphrase": "guess-" + randomHex(6)})
			}
			r := get(t, a.url+"/admin/tokens", admin(map[string]string{"X-Forwarded-For": "192.0.2.200"}))
			if want := map[bool]int{true: 429, false: 200}[webex]; r.code != want {
				t.Fatalf("the right passphrase from a new address: got %d, want %d", r.code, want)
			}
		})
	}
}
