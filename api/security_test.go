package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/oauthstate"
	"github.com/wxcc/tokenservice/shared/testing/testkit"
)

const adminPass = "admin-passphrase-for-tests"

func admin(extra map[string]string) map[string]string {
	h := map[string]string{"x-admin-passphrase": adminPass, "content-type": "application/json"}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

func TestPreviousPassphraseDuringRotation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"TOKEN_PASSPHRASE_PREVIOUS": "old-flow-pass-" + randomHex(6)})
	h.Secret(h.Env["TOKEN_PASSPHRASE_PREVIOUS"])
	a := h.startAPI(nil)
	h.seed("rot", 6*time.Hour, 30*24*time.Hour, nil)
	for _, tc := range []struct {
		name, pass string
		want       int
	}{
		{"current", h.Env["TOKEN_PASSPHRASE"], 200},
		{"previous", h.Env["TOKEN_PASSPHRASE_PREVIOUS"], 200},
		{"other", "something-else-entirely", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := get(t, a.url+"/?name=rot", map[string]string{"x-token-passphrase": tc.pass}); r.code != tc.want {
				t.Fatalf("got %d, want %d", r.code, tc.want)
			}
		})
	}
}

func TestPerTokenPassphrase(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"ADMIN_PASSPHRASE": adminPass})
	a := h.startAPI(nil)
	h.seed("own", 6*time.Hour, 30*24*time.Hour, nil)
	own := "per-token-pass-" + randomHex(8)
	h.Secret(own, adminPass)
	url := a.url + "/admin/tokens/own"

	if r := do(t, http.MethodPut, url, `{"passphrase":"too-short"}`, admin(nil)); r.code != 400 {
		t.Fatalf("short passphrase: got %d, want 400", r.code)
	}
	if r := do(t, http.MethodPut, url, `{"passphrase":"`+own+`"}`, admin(nil)); r.code != 200 {
		t.Fatalf("set passphrase: got %d %s", r.code, r.raw)
	}
	d := h.Doc("own")
	hash, _ := d["passphraseHash"].(string)
	if !strings.HasPrefix(hash, "$argon2id$") || strings.Contains(hash, own) {
		t.Fatalf("passphraseHash %q is not a PHC argon2id hash", hash)
	}
	for k, v := range d {
		if s, ok := v.(string); ok && strings.Contains(s, own) {
			t.Fatalf("the passphrase is stored in %s", k)
		}
	}
	tok := func(pass string) int {
		return get(t, a.url+"/?name=own", map[string]string{"x-token-passphrase": pass}).code
	}
	if got := tok(own); got != 200 {
		t.Fatalf("own passphrase: got %d, want 200", got)
	}
	if got := tok(h.Env["TOKEN_PASSPHRASE"]); got != 401 {
		t.Fatalf("global passphrase on a token with its own: got %d, want 401", got)
	}
	// Omitted: unchanged.
	if r := do(t, http.MethodPut, url, `{"scopes":["spark:kms"]}`, admin(nil)); r.code != 200 || h.Doc("own")["passphraseHash"] != hash {
		t.Fatalf("omitted passphrase changed it: %d", r.code)
	}
	// Empty: removed, the global one opens the token again.
	if r := do(t, http.MethodPut, url, `{"passphrase":""}`, admin(nil)); r.code != 200 {
		t.Fatalf("remove passphrase: got %d", r.code)
	}
	if _, ok := h.Doc("own")["passphraseHash"]; ok {
		t.Fatal("passphraseHash still stored after removal")
	}
	if got := tok(h.Env["TOKEN_PASSPHRASE"]); got != 200 {
		t.Fatalf("global passphrase after removal: got %d, want 200", got)
	}
}

func TestFailedPassphrasesAreThrottled(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"AUTH_FAILURE_LIMIT": "3", "TRUSTED_PROXY_HOPS": "1"})
	a := h.startAPI(nil)
	h.seed("guarded", 6*time.Hour, 30*24*time.Hour, nil)
	h.seed("neighbour", 6*time.Hour, 30*24*time.Hour, nil)
	pass := h.Env["TOKEN_PASSPHRASE"]
	from := func(ip, name, p string) reply {
		return get(t, a.url+"/?name="+name, map[string]string{"x-token-passphrase": p, "X-Forwarded-For": ip})
	}
	if r := from("198.51.100.7", "guarded", pass); r.code != 200 {
		t.Fatalf("got %d", r.code)
	}
	for i := 0; i < 3; i++ {
		if r := from("198.51.100.7", "guarded", "wrong-"+randomHex(4)); r.code != 401 {
			t.Fatalf("failure %d: got %d, want 401", i+1, r.code)
		}
	}
	r := from("198.51.100.7", "guarded", pass)
	if r.code != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("right passphrase after the limit: got %d Retry-After %q, want 429 with Retry-After", r.code, r.header.Get("Retry-After"))
	}
	// A success did not reset the count, and other pairs are not affected.
	if r := from("198.51.100.7", "neighbour", pass); r.code != 200 {
		t.Fatalf("same address, other token: got %d, want 200", r.code)
	}
	if r := from("203.0.113.9", "guarded", pass); r.code != 200 {
		t.Fatalf("other address, same token: got %d, want 200", r.code)
	}
	// The client address is the hop Cloud Run's front end added, not one the client forged.
	if r := from("203.0.113.50, 198.51.100.7", "guarded", pass); r.code != 429 {
		t.Fatalf("forged left-most X-Forwarded-For: got %d, want 429", r.code)
	}
}

func TestAllowedCIDRs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"ALLOWED_CIDRS": "10.0.0.0/8, 2001:db8::/32", "TRUSTED_PROXY_HOPS": "1"})
	a := h.startAPI(nil)
	h.seed("net", 6*time.Hour, 30*24*time.Hour, nil)
	pass := h.Env["TOKEN_PASSPHRASE"]
	for _, tc := range []struct {
		name, xff string
		want      int
	}{
		{"inside v4", "10.20.30.40", 200},
		{"inside v6", "2001:db8::1", 200},
		{"outside", "192.0.2.1", 403},
		{"forged inside, real outside", "10.0.0.1, 192.0.2.1", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, a.url+"/?name=net", map[string]string{"x-token-passphrase": pass, "X-Forwarded-For": tc.xff})
			if r.code != tc.want {
				t.Fatalf("got %d, want %d", r.code, tc.want)
			}
		})
	}
	if r := get(t, a.url+"/healthz", map[string]string{"X-Forwarded-For": "192.0.2.1"}); r.code != 200 {
		t.Fatalf("healthz from outside: got %d, want 200", r.code)
	}
}

// preflight sends a browser's CORS preflight for a GET with the
// passphrase header from origin.
func preflight(t *testing.T, url, origin string) testkit.Response {
	return testkit.Do(t, http.MethodOptions, url, "", map[string]string{"Origin": origin,
		"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-token-passphrase"})
}

func TestCORSAndSecurityHeaders(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"CORS_ALLOW_ORIGINS": "https://desktop.example.com"})
	a := h.startAPI(nil)
	resp := preflight(t, a.url+"/?name=x", "https://desktop.example.com")
	if resp.Code != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://desktop.example.com" ||
		!strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "x-token-passphrase") {
		t.Fatalf("allowed origin: got %d %v", resp.Code, resp.Header)
	}
	if resp := preflight(t, a.url+"/?name=x", "https://evil.example.net"); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("other origin allowed: %v", resp.Header)
	}
	r := get(t, a.url+"/?name=x", nil)
	if r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("missing security headers: %v", r.header)
	}
	big := strings.Repeat("x", 100_000)
	if r := do(t, http.MethodGet, a.url+"/?name=x", big, nil); r.code != 413 {
		t.Fatalf("oversized body: got %d, want 413", r.code)
	}
}

func TestDefaultCORSAllowsEveryOrigin(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	a := h.startAPI(nil)
	resp := preflight(t, a.url+"/", "https://any.example.org")
	if resp.Code != 204 || resp.Header.Get("Access-Control-Allow-Origin") == "" {
		t.Fatalf("got %d %v, want 204 allowing the origin", resp.Code, resp.Header)
	}
	// A bare OPTIONS (no Origin), as curl sends it, gets the same headers on any path.
	resp = testkit.Do(t, http.MethodOptions, a.url+"/any/path", "", nil)
	if resp.Code != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "x-token-passphrase") {
		t.Fatalf("bare OPTIONS: got %d %v", resp.Code, resp.Header)
	}
}

func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	off := newHarness(t, nil)
	if r := do(t, http.MethodGet, off.startAPI(nil).url+"/admin/tokens", "", admin(nil)); r.code != 404 {
		t.Fatalf("admin endpoints without ADMIN_PASSPHRASE: got %d, want 404", r.code)
	}

	h := newHarness(t, map[string]string{"ADMIN_PASSPHRASE": adminPass, "CACHE_MAX_AGE": "50ms"})
	h.Secret(adminPass)
	a := h.startAPI(nil)
	base := a.url + "/admin/tokens/"
	cases := []struct {
		name, path, body string
		headers          map[string]string
		want             int
	}{
		{"no passphrase", "new1", `{}`, map[string]string{"content-type": "application/json"}, 401},
		{"wrong passphrase", "new1", `{}`, map[string]string{"x-admin-passphrase": "nope"}, 401},
		{"bad json", "new1", `{"clientId":`, admin(nil), 400},
		{"unknown field", "new1", `{"clientid":"x"}`, admin(nil), 400},
		{"bad name", "__x__", `{"clientId":"c","clientSecret":"s","redirectUri":"https://x.example.com/cb"}`, admin(nil), 400},
		{"new without secret", "new1", `{"clientId":"c","redirectUri":"https://x.example.com/cb"}`, admin(nil), 400},
		{"bad redirect", "new1", `{"clientId":"c","clientSecret":"s","redirectUri":"ftp://x"}`, admin(nil), 400},
		{"created", "new1", `{"clientId":"c1","clientSecret":"s1-secret","redirectUri":"https://x.example.com/cb","scopes":["spark:kms"]}`, admin(nil), 200},
	}
	h.Secret("s1-secret")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if r := do(t, http.MethodPut, base+tc.path, tc.body, tc.headers); r.code != tc.want {
				t.Fatalf("got %d %s, want %d", r.code, r.raw, tc.want)
			}
		})
	}
	d := h.Doc("new1")
	if d["clientId"] != "c1" || d["status"] != "pending" {
		t.Fatalf("created document: %v", keys(d))
	}

	// A token in config_error resumes once its client changes.
	h.seed("broken", time.Hour, 30*24*time.Hour, nil)
	good := h.Doc("broken")["clientSecret"].(string)
	if _, err := h.Firestore.Collection(h.Collection).Doc("broken").Update(context.Background(), []gfsUpdate{
		{Path: "clientSecret", Value: "wrong"}, {Path: "status", Value: "config_error"},
		{Path: "configFingerprint", Value: "x"}}); err != nil {
		t.Fatal(err)
	}
	if r := do(t, http.MethodPut, base+"broken", `{"clientSecret":"`+good+`"}`, admin(nil)); r.code != 200 {
		t.Fatalf("fix client: got %d", r.code)
	}
	if st := h.Doc("broken")["status"]; st != "active" {
		t.Fatalf("status after fixing the client: %v, want active", st)
	}
	if at := h.Doc("broken")["accessToken"]; at == "" {
		t.Fatal("PUT touched the tokens")
	}

	r := do(t, http.MethodGet, a.url+"/admin/tokens", "", admin(nil))
	if r.code != 200 {
		t.Fatalf("list: got %d", r.code)
	}
	list, _ := r.body["tokens"].([]any)
	if len(list) != 2 {
		t.Fatalf("list has %d tokens, want 2: %s", len(list), r.raw)
	}
	for _, secret := range append(h.Secrets(), good) {
		if strings.Contains(r.raw, secret) {
			t.Fatalf("the token list shows a secret")
		}
	}
	if strings.Contains(r.raw, "argon2") {
		t.Fatal("the token list shows a passphrase hash")
	}
}

func TestSignedStateOnboarding(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"ADMIN_PASSPHRASE": adminPass})
	h.Secret(adminPass)
	a, b := h.startAPI(nil), h.startAPI(nil)
	clientID, secret, redirect := "client-signed", "csecret-"+randomHex(8), "https://flows.example.com/callback"
	h.Secret(secret)
	h.Webex.AddClient(clientID, secret)
	body := `{"clientId":"` + clientID + `","clientSecret":"` + secret + `","redirectUri":"` + redirect + `","scopes":["cjp:config_read","spark:kms"]}`
	if r := do(t, http.MethodPut, a.url+"/admin/tokens/flow1", body, admin(nil)); r.code != 200 {
		t.Fatalf("put: %d %s", r.code, r.raw)
	}
	if r := do(t, http.MethodGet, a.url+"/authorize?name=flow1", "", nil); r.code != 401 {
		t.Fatalf("authorize without admin passphrase: got %d, want 401", r.code)
	}
	r := do(t, http.MethodGet, a.url+"/authorize?name=flow1", "", admin(nil))
	if r.code != 200 {
		t.Fatalf("authorize: %d %s", r.code, r.raw)
	}
	u, err := url.Parse(r.str("url"))
	if err != nil || !strings.HasPrefix(r.str("url"), h.Webex.AuthorizeURL) {
		t.Fatalf("authorize url %q", r.str("url"))
	}
	q := u.Query()
	state := q.Get("state")
	if q.Get("client_id") != clientID || q.Get("redirect_uri") != redirect || q.Get("scope") != "cjp:config_read spark:kms" || q.Get("response_type") != "code" || state == "" || state == "flow1" {
		t.Fatalf("authorize url query %v", q)
	}
	code := h.Webex.IssueCode(clientID, redirect)
	h.Secret(code)

	// Tampered and raw states are refused.
	tampered := state[:len(state)-2] + "AA"
	for _, bad := range []string{tampered, "flow1"} {
		if r := do(t, http.MethodGet, a.url+"/callback?code="+url.QueryEscape(code)+"&state="+url.QueryEscape(bad), "", nil); r.code != 400 {
			t.Fatalf("state %.10s…: got %d, want 400", bad, r.code)
		}
	}
	if r := do(t, http.MethodGet, a.url+"/callback?code="+url.QueryEscape(code)+"&state="+url.QueryEscape(state), "", nil); r.code != 200 {
		t.Fatalf("callback: %d %s", r.code, r.raw)
	}
	h.Secret(h.Doc("flow1")["accessToken"].(string), h.Doc("flow1")["refreshToken"].(string))
	// Once across all instances.
	if r := do(t, http.MethodGet, b.url+"/callback?code=other&state="+url.QueryEscape(state), "", nil); r.code != 400 || !strings.Contains(r.str("message"), "already used") {
		t.Fatalf("replayed state on another instance: got %d %s, want 400", r.code, r.raw)
	}
	// Expired states are refused.
	old := oauthstate.Signer{Key: stateKey(a.srv.cfg), Now: func() time.Time { return time.Now().Add(-20 * time.Minute) }}
	expired, _, _, _ := old.Issue("flow1")
	if r := do(t, http.MethodGet, a.url+"/callback?code=x&state="+url.QueryEscape(expired), "", nil); r.code != 400 || !strings.Contains(r.str("message"), "expired") {
		t.Fatalf("expired state: got %d %s", r.code, r.raw)
	}
}

func newKey(t *testing.T) string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func TestEncryptionAtRest(t *testing.T) {
	t.Parallel()
	k1, k2 := newKey(t), newKey(t)
	h := newHarness(t, map[string]string{"TOKEN_ENCRYPTION_KEYS": "k1:" + k1})
	h.Secret(k1, k2)
	a := h.startAPI(nil)
	h.seed("sealed", time.Hour, 30*24*time.Hour, nil)
	// The sample's plain text is served, then sealed at the refresh's write.
	r := h.token(a, "sealed")
	if r.code != 200 {
		t.Fatalf("got %d %s", r.code, r.raw)
	}
	served := r.str("token")
	h.Secret(served)
	d := h.Doc("sealed")
	for _, f := range []string{"accessToken", "refreshToken", "clientSecret"} {
		if v, _ := d[f].(string); !strings.HasPrefix(v, "enc:v1:k1:") {
			t.Fatalf("%s stored as %.12q…, want enc:v1:k1:…", f, v)
		}
	}
	// A rotated keyring still reads it; the next write uses the new primary.
	h.Env["TOKEN_ENCRYPTION_KEYS"] = "k2:" + k2 + ",k1:" + k1
	b := h.startAPI(nil)
	if r := h.token(b, "sealed"); r.code != 200 || r.str("token") != served {
		t.Fatalf("after key rotation: got %d", r.code)
	}
	if _, err := b.store.Update(context.Background(), "sealed", func(tok *tokenT) ([]eventT, error) {
		tok.Scopes = []string{"spark:kms"}
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	if v, _ := h.Doc("sealed")["accessToken"].(string); !strings.HasPrefix(v, "enc:v1:k2:") {
		t.Fatalf("after a write under the new primary: %.12q…", v)
	}
	// A sealed value moved to another document does not open.
	moved := h.Doc("sealed")
	moved["accessExpires"] = time.Now().Add(6 * time.Hour).UnixMilli()
	if _, err := h.Firestore.Collection(h.Collection).Doc("copy").Set(context.Background(), moved); err != nil {
		t.Fatal(err)
	}
	if r := h.token(b, "copy"); r.code != 503 {
		t.Fatalf("moved ciphertext: got %d %s, want 503", r.code, r.raw)
	}
	// Without the key it was sealed under: 503, and the log names the key id.
	h.Env["TOKEN_ENCRYPTION_KEYS"] = "k1:" + k1
	c := h.startAPI(nil)
	if r := h.token(c, "sealed"); r.code != 503 {
		t.Fatalf("missing key: got %d, want 503", r.code)
	}
	if !strings.Contains(h.Logs.String(), `\"k2\"`) && !strings.Contains(h.Logs.String(), `"k2"`) {
		t.Fatal("the log does not name the missing key id k2")
	}
}

// A key was dropped from TOKEN_ENCRYPTION_KEYS before every value sealed
// under it was written again: the token is not served, and an admin
// repairs it with a new client secret and a new authorization, without
// editing Firestore. The old values stay as stored until replaced, so
// putting the key back would also have worked.
func TestRepairAfterLostKey(t *testing.T) {
	t.Parallel()
	lost, kept := newKey(t), newKey(t)
	h := newHarness(t, map[string]string{"ADMIN_PASSPHRASE": adminPass, "TOKEN_ENCRYPTION_KEYS": "lost:" + lost})
	h.Secret(adminPass, lost, kept)
	a := h.startAPI(nil)
	oldAccess, _ := h.seed("broken", 6*time.Hour, 30*24*time.Hour, nil)
	if _, err := a.store.Update(context.Background(), "broken", func(tok *tokenT) ([]eventT, error) {
		tok.Scopes = []string{"spark:kms"}
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	before := h.Doc("broken")
	if v, _ := before["accessToken"].(string); !strings.HasPrefix(v, "enc:v1:lost:") {
		t.Fatalf("accessToken stored as %.14q…, want it sealed under lost", v)
	}

	h.Env["TOKEN_ENCRYPTION_KEYS"] = "kept:" + kept
	b := h.startAPI(nil)
	if r := h.token(b, "broken"); r.code != 503 {
		t.Fatalf("token under a lost key: got %d %s, want 503", r.code, r.raw)
	}
	if r := do(t, http.MethodGet, b.url+"/authorize?name=broken", "", admin(nil)); r.code != 503 {
		t.Fatalf("authorize while the client secret does not open: got %d %s, want 503", r.code, r.raw)
	}

	clientID, redirect := before["clientId"].(string), before["redirectUri"].(string)
	newSecret := "csecret-" + randomHex(8)
	h.Secret(newSecret)
	h.Webex.AddClient(clientID, newSecret)
	if r := do(t, http.MethodPut, b.url+"/admin/tokens/broken", `{"clientSecret":"`+newSecret+`"}`, admin(nil)); r.code != 200 {
		t.Fatalf("put a new client secret: got %d %s", r.code, r.raw)
	}
	after := h.Doc("broken")
	for _, f := range []string{"accessToken", "refreshToken"} {
		if after[f] != before[f] {
			t.Fatalf("the PUT changed %s, which it must never touch", f)
		}
	}
	if v, _ := after["clientSecret"].(string); !strings.HasPrefix(v, "enc:v1:kept:") {
		t.Fatalf("clientSecret stored as %.14q…, want it sealed under kept", v)
	}
	if r := h.token(b, "broken"); r.code != 503 {
		t.Fatalf("access token still under the lost key: got %d, want 503", r.code)
	}

	r := do(t, http.MethodGet, b.url+"/authorize?name=broken", "", admin(nil))
	if r.code != 200 {
		t.Fatalf("authorize: got %d %s", r.code, r.raw)
	}
	u, _ := url.Parse(r.str("url"))
	code := h.Webex.IssueCode(clientID, redirect)
	h.Secret(code)
	if r := do(t, http.MethodGet, b.url+"/callback?code="+url.QueryEscape(code)+"&state="+url.QueryEscape(u.Query().Get("state")), "", nil); r.code != 200 {
		t.Fatalf("callback: got %d %s", r.code, r.raw)
	}
	r = h.token(b, "broken")
	if r.code != 200 || r.str("token") == "" || r.str("token") == oldAccess {
		t.Fatalf("after the new authorization: got %d, want 200 with a new token", r.code)
	}
	h.Secret(r.str("token"))
	for _, f := range []string{"accessToken", "refreshToken", "clientSecret"} {
		if v, _ := h.Doc("broken")[f].(string); !strings.HasPrefix(v, "enc:v1:kept:") {
			t.Errorf("%s stored as %.14q…, want it sealed under kept", f, v)
		}
	}
}
