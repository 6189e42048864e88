package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/api/idtoken"
	"google.golang.org/api/option"

	"github.com/wxcc/tokenservice/shared/logging"
	"github.com/wxcc/tokenservice/shared/testing/testkit"
)

// The POST /run guard (DESIGN section 6: RUN_AUTH_SECRET, RUN_OIDC_AUDIENCE,
// RUN_OIDC_SERVICE_ACCOUNT). Every case posts to a worker over the
// emulators whose collection holds one due token, the canary: a request
// that gets through sweeps and refreshes it (one Webex call), a refused
// one must not call Webex at all.

// triggerCase is one POST /run and the status it must get.
type triggerCase struct {
	name   string
	header map[string]string
	want   int
}

const (
	runSecret       = "run-secret-0123456789abcdef-0123456789" // RUN_AUTH_SECRET: at least 32 characters
	runAudience     = "https://worker-abc123-ew.a.run.app"     // the service URL, without path, as the deployment sets it
	schedulerSA     = "scheduler@proj.iam.gserviceaccount.com"
	googleCertsURL  = "https://www.googleapis.com/oauth2/v3/certs" // idtoken's RS256 key set
	googleIssuer    = "https://accounts.google.com"
	canaryTokenName = "canary"
)

func TestTriggerAuthSecret(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"RUN_AUTH_SECRET": runSecret})
	h.Secret(runSecret)
	w := h.startWorker(nil) // the real wiring: newRunAuth from the environment

	checkTrigger(t, h, w.url, []triggerCase{
		{name: "no header", want: http.StatusUnauthorized},
		{name: "empty secret", header: map[string]string{"x-run-secret": ""}, want: http.StatusUnauthorized},
		{name: "wrong secret", header: map[string]string{"x-run-secret": "not-the-secret"}, want: http.StatusUnauthorized},
		{name: "prefix of the secret", header: map[string]string{"x-run-secret": runSecret[:len(runSecret)-1]}, want: http.StatusUnauthorized},
		{name: "secret plus a character", header: map[string]string{"x-run-secret": runSecret + "x"}, want: http.StatusUnauthorized},
		{name: "secret in another case", header: map[string]string{"x-run-secret": strings.ToUpper(runSecret)}, want: http.StatusUnauthorized},
		{name: "secret as a bearer token", header: map[string]string{"Authorization": "Bearer " + runSecret}, want: http.StatusUnauthorized},
		{name: "right secret", header: map[string]string{"x-run-secret": runSecret}, want: http.StatusOK},
		{name: "right secret, header name in another case", header: map[string]string{"X-Run-Secret": runSecret}, want: http.StatusOK},
	})
}

// TestTriggerAuthOIDCFromEnvironment checks the real wiring: with
// RUN_OIDC_AUDIENCE set, /run is closed. (Only requests that are refused
// before any key is fetched: Google cannot be reached from tests.)
func TestTriggerAuthOIDCFromEnvironment(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"RUN_OIDC_AUDIENCE": runAudience, "RUN_OIDC_SERVICE_ACCOUNT": schedulerSA})
	w := h.startWorker(nil)
	checkTrigger(t, h, w.url, []triggerCase{
		{name: "no header", want: http.StatusUnauthorized},
		{name: "malformed bearer", header: map[string]string{"Authorization": "Bearer not-a-jwt"}, want: http.StatusUnauthorized},
		{name: "a secret although none is configured", header: map[string]string{"x-run-secret": "anything"}, want: http.StatusUnauthorized},
	})
}

func TestTriggerAuthOIDC(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	w := h.startWorker(nil)
	g := newFakeGoogle(t)
	u := h.serveRun(w, guardSettings{verify: oidcValidator(g.validator(t), runAudience), audience: runAudience, account: schedulerSA})

	bearer := func(tok string) map[string]string {
		h.Secret(tok)
		return map[string]string{"Authorization": "Bearer " + tok}
	}
	valid := g.sign(t, g.key, g.kid, g.claims(nil))
	with := func(mod func(c map[string]any)) map[string]string {
		return bearer(g.sign(t, g.key, g.kid, g.claims(mod)))
	}
	// tampered keeps valid's header and signature over another payload.
	parts := strings.Split(valid, ".")
	otherPayload, _ := json.Marshal(g.claims(func(c map[string]any) { c["email"] = "intruder@proj.iam.gserviceaccount.com" }))
	tampered := parts[0] + "." + b64(otherPayload) + "." + parts[2]

	checkTrigger(t, h, u, []triggerCase{
		{name: "valid token from the scheduler account", header: bearer(valid), want: http.StatusOK},
		{name: "email in another case", header: with(func(c map[string]any) { c["email"] = strings.ToUpper(schedulerSA) }), want: http.StatusOK},
		{name: "no header", want: http.StatusUnauthorized},
		{name: "wrong audience", header: with(func(c map[string]any) { c["aud"] = "https://other-service.a.run.app" }), want: http.StatusUnauthorized},
		{name: "no audience", header: with(func(c map[string]any) { delete(c, "aud") }), want: http.StatusUnauthorized},
		{name: "wrong email", header: with(func(c map[string]any) { c["email"] = "someone@proj.iam.gserviceaccount.com" }), want: http.StatusUnauthorized},
		{name: "no email", header: with(func(c map[string]any) { delete(c, "email") }), want: http.StatusUnauthorized},
		{name: "email_verified false", header: with(func(c map[string]any) { c["email_verified"] = false }), want: http.StatusUnauthorized},
		{name: "email_verified missing", header: with(func(c map[string]any) { delete(c, "email_verified") }), want: http.StatusUnauthorized},
		{name: "issued by someone else", header: with(func(c map[string]any) { c["iss"] = "https://evil.example.com" }), want: http.StatusUnauthorized},
		{name: "no issuer", header: with(func(c map[string]any) { delete(c, "iss") }), want: http.StatusUnauthorized},
		{name: "issuer without scheme, as Google also writes it", header: with(func(c map[string]any) { c["iss"] = "accounts.google.com" }), want: http.StatusOK},
		{name: "scheme in lower case", header: map[string]string{"Authorization": "bearer " + valid}, want: http.StatusOK},
		{name: "expired", header: with(func(c map[string]any) {
			c["iat"], c["exp"] = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
		}), want: http.StatusUnauthorized},
		{name: "signed by another key under the same kid", header: bearer(g.sign(t, g.other, g.kid, g.claims(nil))), want: http.StatusUnauthorized},
		{name: "signed by another key under an unknown kid", header: bearer(g.sign(t, g.other, "unknown-kid", g.claims(nil))), want: http.StatusUnauthorized},
		{name: "payload swapped under a valid signature", header: bearer(tampered), want: http.StatusUnauthorized},
		{name: "alg none", header: bearer(unsigned(t, "none", g.kid, g.claims(nil))), want: http.StatusUnauthorized},
		{name: "alg HS256", header: bearer(unsigned(t, "HS256", g.kid, g.claims(nil)) + "c2lnbmF0dXJl"), want: http.StatusUnauthorized},
		{name: "malformed bearer: not a JWT", header: bearer("not-a-jwt"), want: http.StatusUnauthorized},
		{name: "malformed bearer: three junk segments", header: bearer("a.b.c"), want: http.StatusUnauthorized},
		{name: "malformed bearer: bad base64", header: bearer("!!!." + parts[1] + "." + parts[2]), want: http.StatusUnauthorized},
		{name: "empty bearer", header: map[string]string{"Authorization": "Bearer "}, want: http.StatusUnauthorized},
		{name: "token without the Bearer scheme", header: map[string]string{"Authorization": valid}, want: http.StatusUnauthorized},
		{name: "token under another scheme", header: map[string]string{"Authorization": "Basic " + valid}, want: http.StatusUnauthorized},
		{name: "token in x-run-secret", header: map[string]string{"x-run-secret": valid}, want: http.StatusUnauthorized},
		{name: "valid token again", header: bearer(valid), want: http.StatusOK},
	})
	if got := g.fetched(); len(got) == 0 {
		t.Errorf("the validator never fetched the key set")
	} else {
		for _, u := range got {
			if u != googleCertsURL {
				t.Errorf("the validator fetched %s, want only %s", u, googleCertsURL)
			}
		}
	}
}

func TestTriggerAuthSecretOrOIDC(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.Secret(runSecret)
	w := h.startWorker(nil)
	g := newFakeGoogle(t)
	u := h.serveRun(w, guardSettings{secret: runSecret,
		verify: oidcValidator(g.validator(t), runAudience), audience: runAudience, account: schedulerSA})

	valid := "Bearer " + g.sign(t, g.key, g.kid, g.claims(nil))
	wrongAccount := "Bearer " + g.sign(t, g.key, g.kid, g.claims(func(c map[string]any) { c["email"] = "someone@proj.iam.gserviceaccount.com" }))
	h.Secret(valid[len("Bearer "):], wrongAccount[len("Bearer "):])

	checkTrigger(t, h, u, []triggerCase{
		{name: "secret only", header: map[string]string{"x-run-secret": runSecret}, want: http.StatusOK},
		{name: "token only", header: map[string]string{"Authorization": valid}, want: http.StatusOK},
		{name: "right secret, token from another account", header: map[string]string{"x-run-secret": runSecret, "Authorization": wrongAccount}, want: http.StatusOK},
		{name: "wrong secret, valid token", header: map[string]string{"x-run-secret": "wrong", "Authorization": valid}, want: http.StatusOK},
		{name: "right secret, malformed token", header: map[string]string{"x-run-secret": runSecret, "Authorization": "Bearer a.b.c"}, want: http.StatusOK},
		{name: "neither", want: http.StatusUnauthorized},
		{name: "wrong secret, token from another account", header: map[string]string{"x-run-secret": "wrong", "Authorization": wrongAccount}, want: http.StatusUnauthorized},
		{name: "wrong secret, malformed token", header: map[string]string{"x-run-secret": "wrong", "Authorization": "Bearer a.b.c"}, want: http.StatusUnauthorized},
	})
}

// checkTrigger runs the cases in order against the worker at u. Before
// each, the canary token is (re)seeded due for refresh, so an accepted
// request must refresh exactly it and a refused one must not call Webex.
func checkTrigger(t *testing.T, h *harness, u string, cases []triggerCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.seed(canaryTokenName, time.Hour, 30*24*time.Hour)
			before := h.Webex.Stats().Refreshes
			code, body := postRun(t, u, tc.header)
			if code != tc.want {
				t.Fatalf("got %d %v, want %d", code, body, tc.want)
			}
			calls := h.Webex.Stats().Refreshes - before
			if code != http.StatusOK {
				if body["status"] != "401" || body["message"] == "" {
					t.Errorf("got body %v, want status \"401\" and a message", body)
				}
				if calls != 0 {
					t.Errorf("a refused trigger made %d Webex calls, want 0", calls)
				}
				return
			}
			for _, k := range []string{"scanned", "refreshed", "failed"} {
				if _, ok := body[k].(float64); !ok {
					t.Errorf("summary %v has no number %q", body, k)
				}
			}
			if body["scanned"] != 1.0 || body["refreshed"] != 1.0 || body["failed"] != 0.0 {
				t.Errorf("got summary %v, want scanned 1, refreshed 1, failed 0", body)
			}
			if calls != 1 {
				t.Errorf("got %d Webex calls, want 1", calls)
			}
			if d := h.Doc(canaryTokenName); d["generation"] != int64(1) {
				t.Errorf("canary generation %v after the sweep, want 1", d["generation"])
			} else {
				h.Secret(d["accessToken"].(string), d["refreshToken"].(string))
			}
		})
	}
}

// postRun posts to u/run and returns the status and the JSON body.
func postRun(t *testing.T, u string, header map[string]string) (int, map[string]any) {
	t.Helper()
	resp := testkit.Do(t, http.MethodPost, u+"/run", "", header)
	var body map[string]any
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		t.Fatalf("status %d, body is not JSON: %q", resp.Code, resp.Body)
	}
	return resp.Code, body
}

// serveRun serves newHandler with w's sweeper behind a guard made of s,
// and returns its URL. Failures are not throttled unless s says so: the
// tables send many wrong credentials from one address.
func (h *harness) serveRun(w *workerUnderTest, s guardSettings) string {
	h.T.Helper()
	log := logging.New(h.Logs, logging.ParseLevel("debug"))
	s.log = log
	if s.failureLimit == 0 {
		s.failureLimit, s.failureWindow = 1_000_000, time.Minute
	}
	srv := httptest.NewServer(newHandler(w.sweeper, newGuard(s), nil, nil, log))
	h.T.Cleanup(srv.Close)
	return srv.URL
}

// fakeGoogle stands in for Google's ID token signer and its key set
// endpoint: every request of the validator's HTTP client goes to a local
// server that serves key's public half, under kid, as a JWK set.
type fakeGoogle struct {
	key, other *rsa.PrivateKey // other is never published
	kid        string
	srv        *httptest.Server

	mu   sync.Mutex
	urls []string // every URL the validator asked for
}

func newFakeGoogle(t *testing.T) *fakeGoogle {
	t.Helper()
	g := &fakeGoogle{key: rsaKey(t), other: rsaKey(t), kid: "test-kid-1"}
	certs, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": g.kid,
		"n": b64(g.key.N.Bytes()),
		"e": b64(big.NewInt(int64(g.key.E)).Bytes()),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	certsPath := mustParse(t, googleCertsURL).Path
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != certsPath {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(certs)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// validator is a real idtoken.Validator whose HTTP client reaches only
// the fake.
func (g *fakeGoogle) validator(t *testing.T) *idtoken.Validator {
	t.Helper()
	hc := &http.Client{Transport: &redirectAll{to: mustParse(t, g.srv.URL), g: g}, Timeout: 5 * time.Second}
	v, err := idtoken.NewValidator(context.Background(), option.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (g *fakeGoogle) fetched() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.urls...)
}

// redirectAll sends every request to the fake's server, remembering the
// URL asked for.
type redirectAll struct {
	to *url.URL
	g  *fakeGoogle
}

func (r *redirectAll) RoundTrip(req *http.Request) (*http.Response, error) {
	r.g.mu.Lock()
	r.g.urls = append(r.g.urls, req.URL.String())
	r.g.mu.Unlock()
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host, out.Host = r.to.Scheme, r.to.Host, ""
	return http.DefaultTransport.RoundTrip(out)
}

// claims are those of a Cloud Scheduler ID token for runAudience from
// schedulerSA, changed by mod if not nil.
func (g *fakeGoogle) claims(mod func(c map[string]any)) map[string]any { return schedulerClaims(mod) }

// schedulerClaims are the claims of a Cloud Scheduler ID token for
// runAudience from schedulerSA, changed by mod if not nil.
func schedulerClaims(mod func(c map[string]any)) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss":            googleIssuer,
		"aud":            runAudience,
		"azp":            "112233445566778899000",
		"sub":            "112233445566778899000",
		"email":          schedulerSA,
		"email_verified": true,
		"iat":            now.Add(-time.Minute).Unix(),
		"exp":            now.Add(time.Hour).Unix(),
	}
	if mod != nil {
		mod(c)
	}
	return c
}

// sign returns an RS256 JWT of claims signed by key, with kid in its header.
func (g *fakeGoogle) sign(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	signing := unsigned(t, "RS256", kid, claims)
	sum := sha256.Sum256([]byte(strings.TrimSuffix(signing, ".")))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + b64(sig)
}

// unsigned returns "header.payload." for alg and kid: a JWT with an empty
// signature.
func unsigned(t *testing.T, alg, kid string, claims map[string]any) string {
	t.Helper()
	header, err := json.Marshal(map[string]string{"alg": alg, "typ": "JWT", "kid": kid})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return b64(header) + "." + b64(payload) + "."
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
