package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/testkit"
)

// The trigger guard's rules beyond the secret and the signed token
// (trigger_auth_test.go): tokens whose signature Cloud Run's front end
// removed, the failure throttle, and which client address counts.

// sigRemoved is a Scheduler token for runAudience from schedulerSA (changed
// by mod) as Cloud Run's front end passes it on: header.payload.
// SIGNATURE_REMOVED_BY_GOOGLE.
func sigRemoved(t *testing.T, mod func(c map[string]any)) string {
	t.Helper()
	return unsigned(t, "RS256", "test-kid-1", schedulerClaims(mod)) + removedSignature
}

// rawToken joins a header and a payload given as JSON text with the
// removed signature, for shapes a map cannot produce.
func rawToken(header, payload string) string {
	return b64([]byte(header)) + "." + b64([]byte(payload)) + "." + removedSignature
}

func TestSignatureRemovedBehindIAM(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{
		"RUN_BEHIND_CLOUD_RUN_IAM": "true",
		"RUN_OIDC_AUDIENCE":        runAudience,
		"RUN_OIDC_SERVICE_ACCOUNT": schedulerSA,
		"AUTH_FAILURE_LIMIT":       "1000",
	})
	w := h.startWorker(nil) // the real wiring, newTriggerGuard from the environment
	bearer := func(tok string) map[string]string {
		for _, seg := range strings.Split(tok, ".")[:2] {
			h.Secret(seg) // no part of a token may be logged
		}
		return map[string]string{"Authorization": "Bearer " + tok}
	}
	with := func(mod func(c map[string]any)) map[string]string { return bearer(sigRemoved(t, mod)) }
	now := time.Now()
	header := `{"alg":"RS256","typ":"JWT","kid":"k"}`
	claims := func(extra string) string {
		return `{"iss":"https://accounts.google.com","aud":"` + runAudience + `","email":"` + schedulerSA +
			`","email_verified":true,"iat":` + strconv.FormatInt(now.Unix()-60, 10) +
			`,"exp":` + strconv.FormatInt(now.Unix()+3600, 10) + extra + `}`
	}
	valid := sigRemoved(t, nil)
	parts := strings.Split(valid, ".")
	padded := base64.URLEncoding.EncodeToString([]byte(header))
	for pad := " "; !strings.HasSuffix(padded, "="); pad += " " {
		padded = base64.URLEncoding.EncodeToString([]byte(header + pad))
	}

	checkTrigger(t, h, w.url, []triggerCase{
		{name: "Scheduler token, signature removed", header: with(nil), want: http.StatusOK},
		{name: "issuer without scheme", header: with(func(c map[string]any) { c["iss"] = "accounts.google.com" }), want: http.StatusOK},
		{name: "e-mail in another case", header: with(func(c map[string]any) { c["email"] = strings.ToUpper(schedulerSA) }), want: http.StatusOK},
		{name: "hand-written claims", header: bearer(rawToken(header, claims(""))), want: http.StatusOK},

		{name: "another account", header: with(func(c map[string]any) { c["email"] = "someone@proj.iam.gserviceaccount.com" }), want: http.StatusUnauthorized},
		{name: "no e-mail", header: with(func(c map[string]any) { delete(c, "email") }), want: http.StatusUnauthorized},
		{name: "e-mail not verified", header: with(func(c map[string]any) { c["email_verified"] = false }), want: http.StatusUnauthorized},
		{name: "email_verified missing", header: with(func(c map[string]any) { delete(c, "email_verified") }), want: http.StatusUnauthorized},
		{name: "email_verified as a string", header: with(func(c map[string]any) { c["email_verified"] = "true" }), want: http.StatusUnauthorized},
		{name: "another audience", header: with(func(c map[string]any) { c["aud"] = "https://other-abc123-ew.a.run.app" }), want: http.StatusUnauthorized},
		{name: "audience with a path", header: with(func(c map[string]any) { c["aud"] = runAudience + "/run" }), want: http.StatusUnauthorized},
		{name: "audience as a list", header: with(func(c map[string]any) { c["aud"] = []string{runAudience} }), want: http.StatusUnauthorized},
		{name: "no audience", header: with(func(c map[string]any) { delete(c, "aud") }), want: http.StatusUnauthorized},
		{name: "issued by someone else", header: with(func(c map[string]any) { c["iss"] = "https://evil.example.com" }), want: http.StatusUnauthorized},
		{name: "no issuer", header: with(func(c map[string]any) { delete(c, "iss") }), want: http.StatusUnauthorized},
		{name: "expired", header: with(func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-time.Minute).Unix()
		}), want: http.StatusUnauthorized},
		{name: "issued in the future", header: with(func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(10*time.Minute).Unix(), now.Add(70*time.Minute).Unix()
		}), want: http.StatusUnauthorized},
		{name: "no exp", header: with(func(c map[string]any) { delete(c, "exp") }), want: http.StatusUnauthorized},
		{name: "no iat", header: with(func(c map[string]any) { delete(c, "iat") }), want: http.StatusUnauthorized},
		{name: "exp as a string", header: with(func(c map[string]any) { c["exp"] = strconv.FormatInt(now.Add(time.Hour).Unix(), 10) }), want: http.StatusUnauthorized},
		{name: "exp as a fraction", header: bearer(rawToken(header, strings.Replace(claims(""), `"exp":`, `"exp":1.5e99,"x":`, 1))), want: http.StatusUnauthorized},
		{name: "alg none", header: bearer(unsigned(t, "none", "k", schedulerClaims(nil)) + removedSignature), want: http.StatusUnauthorized},
		{name: "alg HS256", header: bearer(unsigned(t, "HS256", "k", schedulerClaims(nil)) + removedSignature), want: http.StatusUnauthorized},
		{name: "no alg", header: bearer(rawToken(`{"typ":"JWT"}`, claims(""))), want: http.StatusUnauthorized},
		{name: "crit header", header: bearer(rawToken(`{"alg":"RS256","crit":["exp"]}`, claims(""))), want: http.StatusUnauthorized},
		{name: "e-mail twice, the second one right", header: bearer(rawToken(header,
			strings.Replace(claims(""), `"email":`, `"email":"intruder@example.com","email":`, 1))), want: http.StatusUnauthorized},
		{name: "something after the claims", header: bearer(rawToken(header, claims("")+`{}`)), want: http.StatusUnauthorized},
		{name: "claims not an object", header: bearer(rawToken(header, `["`+schedulerSA+`"]`)), want: http.StatusUnauthorized},
		{name: "padded base64", header: bearer(padded + "." + parts[1] + "." + removedSignature), want: http.StatusUnauthorized},
		{name: "standard base64 alphabet", header: bearer(parts[0] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(parts[1]) + "+/." + removedSignature), want: http.StatusUnauthorized},
		{name: "two segments", header: bearer(parts[1] + "." + removedSignature), want: http.StatusUnauthorized},
		{name: "four segments", header: bearer(parts[0] + "." + parts[1] + "." + parts[1] + "." + removedSignature), want: http.StatusUnauthorized},
		{name: "far too long", header: bearer(parts[0] + "." + parts[1] + strings.Repeat("A", maxIDTokenBytes) + "." + removedSignature), want: http.StatusUnauthorized},
		{name: "valid again", header: with(nil), want: http.StatusOK},
	})
	if strings.Contains(h.Logs.String(), removedSignature) {
		t.Error("the log shows a token's signature segment")
	}
}

// TestSignatureRemovedWithoutIAM: while RUN_BEHIND_CLOUD_RUN_IAM is false,
// a token without its signature is refused at once, without asking
// Google's key set.
func TestSignatureRemovedWithoutIAM(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	w := h.startWorker(nil)
	g := newFakeGoogle(t)
	u := h.serveRun(w, guardSettings{verify: oidcValidator(g.validator(t), runAudience), audience: runAudience, account: schedulerSA})
	tok := sigRemoved(t, nil)
	checkTrigger(t, h, u, []triggerCase{
		{name: "Scheduler token, signature removed", header: map[string]string{"Authorization": "Bearer " + tok}, want: http.StatusUnauthorized},
		{name: "the same claims, signed", header: map[string]string{"Authorization": "Bearer " + g.sign(t, g.key, g.kid, g.claims(nil))}, want: http.StatusOK},
	})
	if n := len(g.fetched()); n != 1 {
		t.Errorf("the key set was fetched %d times, want once (for the signed token only)", n)
	}
}

// TestTriggerThrottle: failed credentials, secrets and tokens alike, are
// counted per client address; past AUTH_FAILURE_LIMIT every request from
// the address gets 429 with Retry-After, the right secret included.
// Requests without any credential are refused but not counted.
func TestTriggerThrottle(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{
		"RUN_AUTH_SECRET": runSecret, "RUN_OIDC_AUDIENCE": runAudience, "RUN_OIDC_SERVICE_ACCOUNT": schedulerSA,
		"AUTH_FAILURE_LIMIT": "3", "AUTH_FAILURE_WINDOW": "1h",
	})
	h.Secret(runSecret)
	w := h.startWorker(nil)
	secret := map[string]string{"x-run-secret": runSecret}
	wrong := map[string]string{"x-run-secret": "not-the-secret-not-the-secret-not-the-secret"}
	badToken := map[string]string{"Authorization": "Bearer a.b.c"}

	steps := []struct {
		name   string
		header map[string]string
		times  int
		want   int
	}{
		{"no credential, many times", nil, 25, http.StatusUnauthorized},
		{"empty secret, many times", map[string]string{"x-run-secret": ""}, 25, http.StatusUnauthorized},
		{"right secret after them", secret, 1, http.StatusOK},
		{"wrong secrets", wrong, 2, http.StatusUnauthorized},
		{"a wrong bearer token, the third failure", badToken, 1, http.StatusUnauthorized},
		{"right secret once blocked", secret, 1, http.StatusTooManyRequests},
		{"wrong secret once blocked", wrong, 1, http.StatusTooManyRequests},
		{"no credential once blocked", nil, 1, http.StatusUnauthorized},
	}
	for _, s := range steps {
		for range s.times {
			h.seed(canaryTokenName, time.Hour, 30*24*time.Hour)
			before := h.Webex.Stats().Refreshes
			resp := testkit.Do(t, http.MethodPost, w.url+"/run", "", s.header)
			if resp.Code != s.want {
				t.Fatalf("%s: got %d %s, want %d", s.name, resp.Code, resp.Body, s.want)
			}
			var body map[string]string
			json.Unmarshal(resp.Body, &body)
			if s.want == http.StatusTooManyRequests {
				if body["status"] != "429" || body["message"] == "" {
					t.Errorf("%s: got body %s, want status \"429\" and a message", s.name, resp.Body)
				}
				if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 3600 {
					t.Errorf("%s: got Retry-After %q, want 1..3600 seconds", s.name, resp.Header.Get("Retry-After"))
				}
			}
			if calls := h.Webex.Stats().Refreshes - before; s.want != http.StatusOK && calls != 0 {
				t.Errorf("%s: a refused trigger made %d Webex calls", s.name, calls)
			}
		}
	}
	h.Secret(h.Doc(canaryTokenName)["accessToken"].(string), h.Doc(canaryTokenName)["refreshToken"].(string))
}

// TestTriggerClientAddress: the address that is logged and throttled is
// the socket's, or with TRUSTED_PROXY_HOPS=1 the last X-Forwarded-For
// entry, never one the client chose (X-Real-IP, the left of
// X-Forwarded-For).
func TestTriggerClientAddress(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		hops string
		// header is sent with the n-th request.
		header func(n int) map[string]string
		// want is the logged address; blocked whether the fourth
		// request (after three failures) is throttled.
		want    string
		blocked bool
	}{
		{name: "no trusted proxy: spoofed headers change nothing", hops: "0",
			header: func(n int) map[string]string {
				return map[string]string{"X-Real-IP": "198.51.100." + strconv.Itoa(n), "X-Forwarded-For": "192.0.2." + strconv.Itoa(n)}
			},
			want: "127.0.0.1", blocked: true},
		{name: "one trusted proxy: its entry counts", hops: "1",
			header: func(n int) map[string]string {
				return map[string]string{"X-Real-IP": "198.51.100." + strconv.Itoa(n), "X-Forwarded-For": "192.0.2." + strconv.Itoa(n) + ", 203.0.113.9"}
			},
			want: "203.0.113.9", blocked: true},
		{name: "one trusted proxy: another client is another count", hops: "1",
			header: func(n int) map[string]string {
				return map[string]string{"X-Forwarded-For": "203.0.113." + strconv.Itoa(n)}
			},
			want: "203.0.113.", blocked: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, map[string]string{
				"RUN_AUTH_SECRET": runSecret, "TRUSTED_PROXY_HOPS": tc.hops,
				"AUTH_FAILURE_LIMIT": "3", "AUTH_FAILURE_WINDOW": "1h",
			})
			w := h.startWorker(nil)
			for n := 1; n <= 4; n++ {
				hdr := tc.header(n)
				hdr["x-run-secret"] = "not-the-secret-not-the-secret-not-the-secret"
				want := http.StatusUnauthorized
				if n == 4 && tc.blocked {
					want = http.StatusTooManyRequests
				}
				if got := testkit.Do(t, http.MethodPost, w.url+"/run", "", hdr).Code; got != want {
					t.Fatalf("request %d: got %d, want %d", n, got, want)
				}
			}
			refusals := 0
			for _, line := range strings.Split(h.Logs.String(), "\n") {
				var l map[string]any
				if json.Unmarshal([]byte(line), &l) != nil || l["message"] != "trigger refused" {
					continue
				}
				ip, _ := l["remote_ip"].(string)
				if !strings.HasPrefix(ip, tc.want) || strings.HasPrefix(ip, "198.51.100.") || strings.HasPrefix(ip, "192.0.2.") {
					t.Errorf("logged remote_ip %q, want %s", ip, tc.want)
				}
				refusals++
			}
			if refusals != 4 {
				t.Errorf("got %d \"trigger refused\" lines, want 4", refusals)
			}
		})
	}
}

// FuzzParseSignatureRemoved: the parser of unverified claims never
// panics, accepts only RS256 tokens whose signature was removed, and
// accepts only what encoding/json also reads as an object.
func FuzzParseSignatureRemoved(f *testing.F) {
	now := time.Now().Unix()
	ok := `{"iss":"https://accounts.google.com","aud":"` + runAudience + `","email":"` + schedulerSA +
		`","email_verified":true,"iat":` + strconv.FormatInt(now, 10) + `,"exp":` + strconv.FormatInt(now+3600, 10) + `}`
	for _, seed := range []string{
		rawToken(`{"alg":"RS256","typ":"JWT","kid":"k"}`, ok),
		rawToken(`{"alg":"none"}`, ok),
		rawToken(`{"alg":"RS256"}`, `{"email":"a","email":"b"}`),
		rawToken(`{"alg":"RS256"}`, `{"exp":1e3}`),
		rawToken(`{"alg":"RS256"}`, `{"aud":["x"]}`),
		"a.b." + removedSignature,
		"..",
		"e30.e30." + removedSignature,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := parseSignatureRemoved(raw)
		if err != nil {
			return
		}
		parts := strings.Split(raw, ".")
		if len(parts) != 3 || parts[2] != removedSignature {
			t.Fatalf("accepted a token whose signature segment is not %s", removedSignature)
		}
		var header, payload map[string]any
		hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
		pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
		if json.Unmarshal(hb, &header) != nil || json.Unmarshal(pb, &payload) != nil {
			t.Fatalf("accepted segments encoding/json does not read as objects")
		}
		if header["alg"] != "RS256" {
			t.Fatalf("accepted alg %v", header["alg"])
		}
		if payload["iss"] != c.issuer || payload["aud"] != c.audience {
			t.Fatalf("claims differ from encoding/json's reading")
		}
		_ = c.check(time.Now(), runAudience, schedulerSA) // must not panic
	})
}
