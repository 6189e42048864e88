package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/api/console"
	"github.com/wxcc/tokenservice/shared/people"
)

// consoleAPI is a harness api with the console on, and a signed-out client.
func consoleAPI(t *testing.T, env map[string]string) (*harness, *api, *client) {
	t.Helper()
	e := map[string]string{"ADMIN_PASSPHRASE": adminPass}
	for k, v := range env {
		e[k] = v
	}
	h := newHarness(t, e)
	h.Secret(adminPass)
	a := h.startAPI(nil)
	w := &consoleWorld{harness: h, base: a.url}
	return h, a, w.client()
}

func TestConsoleAbsentWithoutAdminPassphrase(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	a := h.startAPI(nil)
	for _, p := range []string{"/admin/", "/admin/signin", "/admin/static/console.css", "/admin/status", "/admin/token/x"} {
		if r := do(t, http.MethodGet, a.url+p, "", nil); r.code != 404 {
			t.Errorf("GET %s without ADMIN_PASSPHRASE: got %d, want 404", p, r.code)
		}
	}
	if r := do(t, http.MethodPost, a.url+"/admin/signin", "passphrase=x", map[string]string{"content-type": "application/x-www-form-urlencoded"}); r.code != 404 && r.code != 405 {
		t.Errorf("POST /admin/signin without ADMIN_PASSPHRASE: got %d, want 404", r.code)
	}
}

func TestConsoleSessionCookie(t *testing.T) {
	t.Parallel()
	_, _, c := consoleAPI(t, map[string]string{"ADMIN_SESSION_TTL": "2h"})
	resp, _ := c.send(http.MethodPost, "/admin/signin", url.Values{"passphrase": {adminPass}},
		map[string]string{"Origin": "same"})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: got %d", resp.StatusCode)
	}
	ck := sessionSetCookie(t, resp, "tks_session")
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.Path != "/" || ck.MaxAge != 7200 {
		t.Errorf("session cookie over plain loopback HTTP: %+v, want HttpOnly, SameSite=Strict, not Secure, Path=/, Max-Age=7200", ck)
	}
	// Behind a proxy that says https (Cloud Run), it is Secure and __Host-.
	resp, _ = c.send(http.MethodPost, "/admin/signin", url.Values{"passphrase": {adminPass}},
		map[string]string{"Origin": "same", "X-Forwarded-Proto": "https"})
	ck = sessionSetCookie(t, resp, "__Host-tks_session")
	if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
		t.Errorf("session cookie over https: %+v, want Secure, HttpOnly, SameSite=Strict", ck)
	}
	// Signing out removes it.
	c.signIn()
	resp, _ = c.send(http.MethodPost, "/admin/signout", url.Values{"csrf": {c.csrf()}}, map[string]string{"Origin": "same"})
	if ck := sessionSetCookie(t, resp, "tks_session"); ck.MaxAge >= 0 || ck.Value != "" {
		t.Errorf("sign out left the cookie: %+v", ck)
	}
	if _, body := c.send(http.MethodGet, "/admin/", nil, nil); !strings.Contains(body, `id="signin"`) {
		t.Error("after signing out the console still opens")
	}
}

func sessionSetCookie(t *testing.T, resp *http.Response, name string) *http.Cookie {
	t.Helper()
	for _, ck := range resp.Cookies() {
		if ck.Name == name {
			return ck
		}
	}
	t.Fatalf("no %s cookie set (got %v)", name, resp.Header["Set-Cookie"])
	return nil
}

func TestConsoleRefusesBadSessions(t *testing.T) {
	t.Parallel()
	h, a, c := consoleAPI(t, nil)
	h.seed("kept", 10*time.Hour, 30*24*time.Hour, nil)
	c.signIn()
	valid := c.cookie("tks_session")
	// Another person's browser signs in and out: its old cookie is dead
	// everywhere at once (a signed-out cookie used to delete a token).
	other := (&consoleWorld{harness: h, base: a.url}).client()
	other.signIn()
	signedOut := other.cookie("tks_session")
	if resp, _ := other.send(http.MethodPost, "/admin/signout", url.Values{"csrf": {other.csrf()}}, map[string]string{"Origin": "same"}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", resp.StatusCode)
	}
	never, _ := people.NewSecret()
	for _, tc := range []struct {
		name, cookie string
		ok           bool
	}{
		{"valid", valid, true},
		{"signed out", signedOut, false},
		{"never issued", never, false},
		{"tampered", valid[:len(valid)-2] + "xx", false},
		{"garbage", "v1.99999999999.x.y", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"Cookie": "tks_session=" + tc.cookie}
			resp := do(t, http.MethodGet, a.url+"/admin/status", "", hdr)
			if tc.ok != (resp.code == 200) {
				t.Errorf("GET /admin/status: got %d", resp.code)
			}
			if !tc.ok && resp.code != 401 {
				t.Errorf("GET /admin/status: got %d, want 401", resp.code)
			}
			page := do2(t, a.url+"/admin/token/kept", hdr)
			if tc.ok != (page.StatusCode == 200) {
				t.Errorf("GET the token page: got %d", page.StatusCode)
			}
			del := do(t, http.MethodDelete, a.url+"/admin/tokens/kept", "", map[string]string{"Cookie": "tks_session=" + tc.cookie,
				"Origin": a.url, "x-csrf-token": "whatever"})
			if !tc.ok && del.code != 401 {
				t.Errorf("DELETE with the %s cookie: got %d, want 401", tc.name, del.code)
			}
		})
	}
	// Idle for longer than ADMIN_SESSION_IDLE (1h), the session ends.
	h.Clock.Advance(61 * time.Minute)
	if r := do(t, http.MethodGet, a.url+"/admin/status", "", map[string]string{"Cookie": "tks_session=" + valid}); r.code != 401 {
		t.Errorf("after an idle hour: got %d, want 401", r.code)
	}
	// A session that does not verify is not a failed passphrase: many of
	// them do not lock the admin out.
	for range 15 {
		do(t, http.MethodGet, a.url+"/admin/status", "", map[string]string{"Cookie": "tks_session=" + signedOut})
	}
	if r := get(t, a.url+"/admin/status", admin(nil)); r.code != 200 {
		t.Errorf("after many dead cookies the admin passphrase gets %d, want 200", r.code)
	}
}

// do2 is a GET that does not follow redirects and returns the raw answer.
func do2(t *testing.T, u string, headers map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestConsoleRefusesCrossSiteRequests(t *testing.T) {
	t.Parallel()
	h, a, c := consoleAPI(t, nil)
	h.seed("target", 10*time.Hour, 30*24*time.Hour, nil)
	c.signIn()
	csrf := c.csrf()
	form := url.Values{"csrf": {csrf}, "confirm": {"target"}}
	for _, tc := range []struct {
		name    string
		form    url.Values
		headers map[string]string
	}{
		{"another origin", form, map[string]string{"Origin": "http://evil.example"}},
		{"another site per Sec-Fetch-Site", form, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "same"}},
		{"same site, another origin (port)", form, map[string]string{"Sec-Fetch-Site": "same-site"}},
		{"neither Origin nor Sec-Fetch-Site", form, nil},
		{"no CSRF token", url.Values{"confirm": {"target"}}, map[string]string{"Origin": "same"}},
		{"wrong CSRF token", url.Values{"csrf": {strings.Repeat("A", 32)}, "confirm": {"target"}}, map[string]string{"Origin": "same"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := c.send(http.MethodPost, "/admin/token/target/delete", tc.form, tc.headers)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Request refused") {
				t.Errorf("got %d, want 403 with an explanation", resp.StatusCode)
			}
		})
	}
	// The JSON endpoints with a session: the same rules.
	if resp, _ := c.send(http.MethodDelete, "/admin/tokens/target", nil, map[string]string{"Origin": "http://evil.example", "x-csrf-token": csrf}); resp.StatusCode != 403 {
		t.Errorf("cross-origin DELETE with the session: got %d, want 403", resp.StatusCode)
	}
	if resp, _ := c.send(http.MethodPost, "/admin/tokens/target/refresh", nil, map[string]string{"Origin": "same"}); resp.StatusCode != 403 {
		t.Errorf("session POST without a CSRF token: got %d, want 403", resp.StatusCode)
	}
	if r := h.token(a, "target"); r.code != 200 {
		t.Fatalf("the token did not survive: %d", r.code)
	}
	// The console's own form works.
	if resp, _ := c.send(http.MethodPost, "/admin/token/target/delete", form, map[string]string{"Origin": "same"}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("same-origin delete with the CSRF token: got %d, want 303", resp.StatusCode)
	}
	// Signing in from another site is refused too.
	if resp, _ := c.send(http.MethodPost, "/admin/signin", url.Values{"passphrase": {adminPass}}, map[string]string{"Origin": "http://evil.example"}); resp.StatusCode != 403 {
		t.Errorf("cross-origin sign-in: got %d, want 403", resp.StatusCode)
	}
}

func TestConsoleHeadersAndNoInlineCode(t *testing.T) {
	t.Parallel()
	h, _, c := consoleAPI(t, nil)
	h.seed("page", 10*time.Hour, 30*24*time.Hour, nil)
	check := func(path string, wantStatus int) string {
		t.Helper()
		resp, body := c.send(http.MethodGet, path, nil, nil)
		if resp.StatusCode != wantStatus {
			t.Fatalf("GET %s: got %d, want %d", path, resp.StatusCode, wantStatus)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("GET %s: CSP %q allows inline code", path, csp)
		}
		return body
	}
	pages := []string{check("/admin/", 200), check("/admin/signin", 200)}
	c.signIn()
	pages = append(pages, check("/admin/", 200), check("/admin/token/page", 200), check("/admin/new", 200))
	scriptTag := regexp.MustCompile(`(?i)<script[^>]*>`)
	inline := regexp.MustCompile(`(?i)\son[a-z]+=|\sstyle=|javascript:|<style`)
	external := regexp.MustCompile(`(?i)(?:src|href|action)="(?:https?:)?//`)
	for i, body := range pages {
		for _, tag := range scriptTag.FindAllString(body, -1) {
			if !strings.Contains(tag, ` src="/admin/static/`) {
				t.Errorf("page %d has an inline script: %q", i, tag)
			}
		}
		if m := inline.FindString(body); m != "" {
			t.Errorf("page %d has inline code or style: %q", i, m)
		}
		if m := external.FindString(body); m != "" {
			t.Errorf("page %d refers to another origin: %q", i, m)
		}
	}
	resp, _ := c.send(http.MethodGet, "/admin/static/console.js", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "javascript") {
		t.Errorf("console.js: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// TestConsoleShowsNoSecret reads every page and JSON answer the console
// gets, signed in, and looks for every secret stored: client secrets,
// access and refresh tokens, passphrase hashes, the admin passphrase.
func TestConsoleShowsNoSecret(t *testing.T) {
	t.Parallel()
	h, a, c := consoleAPI(t, nil)
	w := &consoleWorld{harness: h, store: a.store}
	names := w.seedStates()
	c.signIn()
	// A token with its own passphrase set through the console.
	own := "own-passphrase-" + randomHex(8)
	h.Secret(own)
	if resp, _ := c.send(http.MethodPost, "/admin/token/billing-flow/passphrase", url.Values{"csrf": {c.csrf()}, "action": {"set"}, "passphrase": {own}},
		map[string]string{"Origin": "same"}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("set passphrase: %d", resp.StatusCode)
	}
	var secrets []string
	for name := range names {
		d := h.Doc(name)
		for _, f := range []string{"clientSecret", "accessToken", "refreshToken", "passphraseHash"} {
			if v, _ := d[f].(string); v != "" {
				secrets = append(secrets, v)
			}
		}
	}
	secrets = append(secrets, own, adminPass)
	if len(secrets) < 20 {
		t.Fatalf("only %d secrets seeded", len(secrets))
	}
	paths := []string{"/admin/", "/admin/?status=reauth_required", "/admin/new", "/admin/status", "/admin/tokens", "/admin/static/console.js"}
	for name := range names {
		paths = append(paths, "/admin/token/"+name)
	}
	for _, p := range paths {
		resp, body := c.send(http.MethodGet, p, nil, nil)
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
		}
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("GET %s shows a secret (%.8s…)", p, s)
			}
		}
	}
	// A failed form echoes what was typed, except the secrets.
	typed := "typed-secret-" + randomHex(6)
	resp, body := c.send(http.MethodPost, "/admin/new", url.Values{"csrf": {c.csrf()}, "name": {"x"}, "clientId": {"c"},
		"clientSecret": {typed}, "redirectUri": {"ftp://nope"}, "passphrase": {"short"}}, map[string]string{"Origin": "same"})
	if resp.StatusCode != 400 || strings.Contains(body, typed) || strings.Contains(body, `value="short"`) {
		t.Errorf("a refused New token form: %d, echoes a secret: %v", resp.StatusCode, strings.Contains(body, typed))
	}
}

// TestConsoleAuthorizationIsBoundToTheBrowser: an authorize link started
// in the console completes only in the browser that started it, and uses
// PKCE; a stranger's attempt writes nothing on the token.
func TestConsoleAuthorizationIsBoundToTheBrowser(t *testing.T) {
	t.Parallel()
	h, a, c := consoleAPI(t, nil)
	clientID, secret := "bound-client", "bound-secret-"+randomHex(6)
	h.Secret(secret)
	h.Webex.AddClient(clientID, secret)
	c.signIn()
	if resp, body := c.send(http.MethodPost, "/admin/new", url.Values{"csrf": {c.csrf()}, "name": {"bound"}, "clientId": {clientID},
		"clientSecret": {secret}, "redirectUri": {a.url + "/callback"}, "scopes": {"spark:kms"}}, map[string]string{"Origin": "same"}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	start := func() *url.URL {
		t.Helper()
		resp, body := c.send(http.MethodPost, "/admin/token/bound/authorize", url.Values{"csrf": {c.csrf()}}, map[string]string{"Origin": "same"})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("authorize: %d %s", resp.StatusCode, body)
		}
		u, _ := url.Parse(resp.Header.Get("Location"))
		if !strings.HasPrefix(u.String(), h.Webex.AuthorizeURL) || u.Query().Get("code_challenge_method") != "S256" || len(u.Query().Get("code_challenge")) != 43 {
			t.Fatalf("authorize went to %s, want Webex's authorize URL with a PKCE S256 challenge", u)
		}
		// What the fake Webex answers after the person approved.
		resp2 := do2(t, u.String(), nil)
		back, _ := url.Parse(resp2.Header.Get("Location"))
		return back
	}
	back := start()
	// Another browser (no binding cookie, no session) opens the callback.
	stranger := (&consoleWorld{harness: h, base: a.url}).client()
	resp, body := stranger.send(http.MethodGet, "/callback?"+back.RawQuery, nil, nil)
	if resp.StatusCode != 400 || !strings.Contains(body, "another browser") {
		t.Errorf("callback in another browser: got %d, want 400 saying so", resp.StatusCode)
	}
	// Nothing a stranger sends is recorded on the token: the state was
	// not verified (issue 20, finding 1).
	if le, ok := h.Doc("bound")["lastError"]; ok {
		t.Errorf("refused callback recorded on the token as %v", le)
	}
	// The browser that started it completes it (the code verifier is
	// sent: the fake checks it), and lands on a page that moves on to the
	// token's console page.
	resp, body = c.send(http.MethodGet, "/callback?"+back.RawQuery, nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `data-goto="/admin/token/bound?authorization=ok"`) {
		t.Fatalf("callback in the right browser: got %d %s", resp.StatusCode, body)
	}
	if st := h.Doc("bound")["status"]; st != "active" {
		t.Errorf("status after authorizing: %v", st)
	}
	h.Secret(h.Doc("bound")["accessToken"].(string), h.Doc("bound")["refreshToken"].(string))
	// Used once: the same callback again fails, and says so on the page.
	resp, body = c.send(http.MethodGet, "/callback?"+back.RawQuery, nil, nil)
	if resp.StatusCode != 400 || !strings.Contains(body, "authorization=failed") {
		t.Errorf("second use: got %d", resp.StatusCode)
	}
	// A redirect URI that does not lead back to this console is refused
	// before anyone is sent to Webex.
	if resp, _ := c.send(http.MethodPost, "/admin/token/bound/config", url.Values{"csrf": {c.csrf()}, "clientId": {clientID},
		"redirectUri": {"https://elsewhere.example/callback"}, "scopes": {"spark:kms"}}, map[string]string{"Origin": "same"}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save config: %d", resp.StatusCode)
	}
	resp, body = c.send(http.MethodPost, "/admin/token/bound/authorize", url.Values{"csrf": {c.csrf()}}, map[string]string{"Origin": "same"})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "does not lead back to this console") {
		t.Errorf("authorize with a foreign redirect URI: got %d", resp.StatusCode)
	}
}

// TestConsoleShowsStartWarnings: what the configuration check warned
// about at start is on /admin/status and on the console's overview.
func TestConsoleShowsStartWarnings(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"ADMIN_PASSPHRASE": adminPass, "TOKEN_PASSPHRASE": "short-pass"})
	h.Secret(adminPass)
	const warning = "TOKEN_PASSPHRASE is shorter than 16 characters"
	a := h.startAPI(nil)
	r := get(t, a.url+"/admin/status", admin(nil))
	if w, _ := r.body["warnings"].([]any); len(w) == 0 || !strings.HasPrefix(w[0].(string), warning) {
		t.Errorf("/admin/status warnings %v, want one starting %q", r.body["warnings"], warning)
	}
	c := (&consoleWorld{harness: h, base: a.url}).client()
	c.signIn()
	if _, body := c.send(http.MethodGet, "/admin/", nil, nil); !strings.Contains(body, warning) {
		t.Error("the overview does not show the start-up warning")
	}
}

// TestConsoleOverviewWithThousandTokens: 1 000 tokens are paged 50 at a
// time, most urgent first, and can be filtered by name and status.
func TestConsoleOverviewWithThousandTokens(t *testing.T) {
	t.Parallel()
	h, _, c := consoleAPI(t, nil)
	ctx := context.Background()
	bw := h.Firestore.BulkWriter(ctx)
	now := time.Now()
	for i := range 1000 {
		doc := map[string]any{"clientId": "c", "clientSecret": "s", "redirectUri": "https://x.example/callback",
			"accessToken": "at", "refreshToken": "rt",
			"accessExpires": now.Add(time.Duration(3+i%9) * time.Hour).UnixMilli(), "refreshExpires": now.Add(50 * 24 * time.Hour).UnixMilli()}
		if i%100 == 7 {
			doc["status"] = "reauth_required"
		}
		if _, err := bw.Set(h.Firestore.Collection(h.Collection).Doc(fmt.Sprintf("flow-%04d", i)), doc); err != nil {
			t.Fatal(err)
		}
	}
	bw.End()
	c.signIn()
	start := time.Now()
	_, body := c.send(http.MethodGet, "/admin/", nil, nil)
	t.Logf("overview of 1 000 tokens rendered in %s", time.Since(start).Round(time.Millisecond))
	rows := regexp.MustCompile(`<tr data-name="([^"]+)" data-health="([^"]+)"`).FindAllStringSubmatch(body, -1)
	if len(rows) != console.OverviewPageSize || !strings.Contains(body, "1–50 of 1000") || !strings.Contains(body, `rel="next"`) {
		t.Fatalf("page 1: %d rows, want %d, with a next page", len(rows), console.OverviewPageSize)
	}
	for i, r := range rows[:10] {
		if r[2] != "reauth_required" {
			t.Errorf("row %d is %s (%s), want the 10 re-authorizations first", i, r[1], r[2])
		}
	}
	_, body = c.send(http.MethodGet, "/admin/?page=20", nil, nil)
	if !strings.Contains(body, "951–1000 of 1000") || strings.Contains(body, `rel="next"`) {
		t.Error("page 20 is not the last 50")
	}
	_, body = c.send(http.MethodGet, "/admin/?q=flow-012&status=active", nil, nil)
	if rows := regexp.MustCompile(`<tr data-name="`).FindAllString(body, -1); len(rows) != 10 || !strings.Contains(body, "of 10 matching") {
		t.Errorf("filter by name and status: %d rows", len(rows))
	}
}
