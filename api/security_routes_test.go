package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/testkit"
)

// A browser asks for /favicon.ico after /callback, uptime probes send HEAD,
// scanners try paths: none of that is a failed admin sign-in. Before, every
// unmatched request fell into the admin group's catch-all, counted as a
// failure and wrote a warning, and eleven of them locked the admin out.
func TestStrayRequestsDoNotLockOutTheAdmin(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"ADMIN_PASSPHRASE": adminPass, "AUTH_FAILURE_LIMIT": "3", "TRUSTED_PROXY_HOPS": "1"})
	h.Secret(adminPass)
	a := h.startAPI(nil)
	const browser = "198.51.100.50"
	stray := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/favicon.ico", 404},
		{http.MethodGet, "/robots.txt", 404},
		{http.MethodGet, "/admin/nothing-here", 404},
		{http.MethodGet, "/admin/tokens/x", 405},
		{http.MethodPost, "/healthz", 405},
		{http.MethodDelete, "/", 405},
		{http.MethodPut, "/admin/tokens", 405},
	}
	for range 4 {
		for _, sr := range stray {
			r := do(t, sr.method, a.url+sr.path, "", map[string]string{"X-Forwarded-For": browser})
			if r.code != sr.want || r.str("message") == "" {
				t.Fatalf("%s %s: got %d %s, want %d with a JSON message", sr.method, sr.path, r.code, r.raw, sr.want)
			}
			if sr.want == 405 && r.header.Get("Allow") == "" {
				t.Fatalf("%s %s: 405 without Allow", sr.method, sr.path)
			}
		}
	}
	// An admin link opened without the header guesses nothing either.
	for range 4 {
		if r := do(t, http.MethodGet, a.url+"/admin/tokens", "", map[string]string{"X-Forwarded-For": browser}); r.code != 401 {
			t.Fatalf("admin route without passphrase: got %d, want 401", r.code)
		}
	}
	if r := do(t, http.MethodGet, a.url+"/admin/tokens", "", admin(map[string]string{"X-Forwarded-For": browser})); r.code != 200 {
		t.Fatalf("admin after stray requests: got %d %s, want 200", r.code, r.raw)
	}
	if strings.Contains(h.Logs.String(), `"WARN`) || strings.Contains(h.Logs.String(), "rejected") {
		t.Fatalf("stray requests wrote a warning: %s", h.Logs.String())
	}

	// Wrong admin passphrases still count.
	for range 3 {
		if r := do(t, http.MethodGet, a.url+"/admin/tokens", "", admin(map[string]string{"X-Forwarded-For": browser, "x-admin-passphrase": "not-the-admin-passphrase"})); r.code != 401 {
			t.Fatalf("wrong admin passphrase: got %d, want 401", r.code)
		}
	}
	if r := do(t, http.MethodGet, a.url+"/admin/tokens", "", admin(map[string]string{"X-Forwarded-For": browser})); r.code != 429 {
		t.Fatalf("right admin passphrase after 3 wrong ones: got %d, want 429", r.code)
	}
}

// HEAD answers wherever GET does, with the same status and headers and no
// body.
func TestHeadWorksWhereGetDoes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"ADMIN_PASSPHRASE": adminPass})
	h.Secret(adminPass)
	a := h.startAPI(nil)
	h.seed("probe", 6*time.Hour, 30*24*time.Hour, nil)
	pass := map[string]string{"x-token-passphrase": h.Env["TOKEN_PASSPHRASE"]}
	for _, tc := range []struct {
		path    string
		headers map[string]string
		want    int
	}{
		{"/healthz", nil, 200},
		{"/readyz", nil, 200},
		{"/metrics", nil, 200},
		{"/?name=probe", pass, 200},
		{"/?name=nope", pass, 404},
		{"/init?name=probe", pass, 200},
		{"/callback", nil, 400},
		{"/admin/tokens", admin(nil), 200},
		{"/authorize?name=probe", admin(nil), 409},
		{"/favicon.ico", nil, 404},
	} {
		got := testkit.Do(t, http.MethodGet, a.url+tc.path, "", tc.headers)
		head := testkit.Do(t, http.MethodHead, a.url+tc.path, "", tc.headers)
		if got.Code != tc.want || head.Code != tc.want {
			t.Errorf("%s: GET %d, HEAD %d, want both %d", tc.path, got.Code, head.Code, tc.want)
		}
		if len(head.Body) != 0 {
			t.Errorf("%s: HEAD answered a body of %d bytes", tc.path, len(head.Body))
		}
		if head.Header.Get("Content-Type") != got.Header.Get("Content-Type") {
			t.Errorf("%s: HEAD Content-Type %q, GET %q", tc.path, head.Header.Get("Content-Type"), got.Header.Get("Content-Type"))
		}
	}
}

// With the default CORS_ALLOW_ORIGINS=*, a page on any origin may read a
// token (as with the sample), but never reach an admin endpoint.
func TestAdminEndpointsRefuseOtherOrigins(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"ADMIN_PASSPHRASE": adminPass})
	h.Secret(adminPass)
	a := h.startAPI(nil)
	const evil = "https://evil.example.net"
	adminPreflight := func(method, path, hdr string) testkit.Response {
		return testkit.Do(t, http.MethodOptions, a.url+path, "", map[string]string{"Origin": evil,
			"Access-Control-Request-Method": method, "Access-Control-Request-Headers": hdr})
	}
	for _, p := range []struct{ method, path, hdr string }{
		{"PUT", "/admin/tokens/x", "x-admin-passphrase,content-type"},
		{"GET", "/admin/tokens", "x-admin-passphrase"},
		{"GET", "/authorize?name=x", "x-admin-passphrase"},
		{"GET", "/admin/", "x-admin-passphrase"},
	} {
		resp := adminPreflight(p.method, p.path, p.hdr)
		if resp.Code != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Headers") != "" ||
			resp.Header.Get("Access-Control-Allow-Methods") != "" {
			t.Errorf("preflight %s %s: got %d %v, want 204 without any CORS grant", p.method, p.path, resp.Code, resp.Header)
		}
	}
	// The request itself, had a browser sent it anyway: no grant to read it.
	resp := testkit.Do(t, http.MethodGet, a.url+"/admin/tokens", "", admin(map[string]string{"Origin": evil}))
	if resp.Code != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("admin answer to another origin: got %d ACAO %q, want 200 without ACAO", resp.Code, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	// A bare OPTIONS on an admin path carries no CORS headers either.
	resp = testkit.Do(t, http.MethodOptions, a.url+"/admin/tokens", "", nil)
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("bare OPTIONS on an admin path: got ACAO %q, want none", resp.Header.Get("Access-Control-Allow-Origin"))
	}

	// The token routes keep the sample's CORS.
	for _, path := range []string{"/?name=x", "/init?name=x"} {
		if resp := preflight(t, a.url+path, evil); resp.Code != 204 || resp.Header.Get("Access-Control-Allow-Origin") == "" {
			t.Errorf("preflight %s: got %d %v, want 204 granting the origin", path, resp.Code, resp.Header)
		}
		resp := testkit.Do(t, http.MethodOptions, a.url+path, "", nil)
		if resp.Code != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "x-token-passphrase") {
			t.Errorf("bare OPTIONS %s: got %d %v, want 204 with the sample's CORS headers", path, resp.Code, resp.Header)
		}
	}
	resp = testkit.Do(t, http.MethodGet, a.url+"/?name=x", "", map[string]string{"Origin": evil, "x-token-passphrase": h.Env["TOKEN_PASSPHRASE"]})
	if resp.Header.Get("Access-Control-Allow-Origin") == "" {
		t.Errorf("token route answer: got no ACAO, want the grant")
	}
	// Other routes grant nothing.
	if resp := preflight(t, a.url+"/healthz", evil); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight /healthz: got ACAO %q, want none", resp.Header.Get("Access-Control-Allow-Origin"))
	}
}
