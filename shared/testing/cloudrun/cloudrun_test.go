package cloudrun_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/api/idtoken"
	"google.golang.org/api/option"

	"github.com/wxcc/tokenservice/shared/testing/cloudrun"
)

const (
	invoker = "scheduler@proj.iam.gserviceaccount.com"
	other   = "someone@proj.iam.gserviceaccount.com"
)

// seen is what the service behind the front end received.
type seen struct {
	method, path, host string
	header             http.Header
	bodyBytes          int64
}

// upstream is a service that records every request it gets.
type upstream struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []seen
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		u.mu.Lock()
		u.got = append(u.got, seen{r.Method, r.URL.Path, r.Host, r.Header.Clone(), n})
		u.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		io.WriteString(w, "from the service")
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) requests() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.got...)
}

func newIssuer(t *testing.T) *cloudrun.Issuer {
	t.Helper()
	iss, err := cloudrun.NewIssuer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iss.Close() })
	return iss
}

// serve puts a front end before up with s (Upstream filled in).
func serve(t *testing.T, iss *cloudrun.Issuer, up *upstream, s cloudrun.Service) *cloudrun.Front {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Upstream = up.srv.URL
	f, err := cloudrun.Serve(ln, iss, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func mint(t *testing.T, iss *cloudrun.Issuer, aud, email string) string {
	t.Helper()
	tok, err := iss.Mint(aud, email)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func sign(t *testing.T, iss *cloudrun.Issuer, c cloudrun.Claims) string {
	t.Helper()
	tok, err := iss.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type response struct {
	code   int
	header http.Header
	body   string
}

func do(t *testing.T, method, u string, body io.Reader, size int64, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.ContentLength = size // -1: chunked
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(b)}
}

var traceHeader = regexp.MustCompile(`^[0-9a-f]{32}/[0-9]+;o=1$`)

func TestFrontDeliversAdmittedRequestsAsCloudRun(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	up := newUpstream(t, nil)
	f := serve(t, iss, up, cloudrun.Service{Invokers: []string{strings.ToUpper(invoker)}, CustomAudiences: []string{"https://worker.example.com"}})

	tok := mint(t, iss, f.URL, invoker)
	r := do(t, http.MethodPost, f.URL+"/run?x=1", nil, 0, map[string]string{
		"Authorization":     "Bearer " + tok,
		"X-Forwarded-For":   "198.51.100.7",
		"X-Forwarded-Proto": "http",
	})
	if r.code != http.StatusOK || r.body != "from the service" {
		t.Fatalf("got %d %q, want 200 from the service", r.code, r.body)
	}
	got := up.requests()
	if len(got) != 1 || f.Forwarded() != 1 {
		t.Fatalf("the service got %d requests (front end counts %d), want 1", len(got), f.Forwarded())
	}
	g := got[0]
	parts := strings.Split(tok, ".")
	if want := "Bearer " + parts[0] + "." + parts[1] + "." + cloudrun.RemovedSignature; g.header.Get("Authorization") != want {
		t.Errorf("service got Authorization %q, want the token with its signature removed", g.header.Get("Authorization"))
	}
	if want := "198.51.100.7, 127.0.0.1"; g.header.Get("X-Forwarded-For") != want {
		t.Errorf("got X-Forwarded-For %q, want %q", g.header.Get("X-Forwarded-For"), want)
	}
	if g.header.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("got X-Forwarded-Proto %q, want https", g.header.Get("X-Forwarded-Proto"))
	}
	if tc := g.header.Get("X-Cloud-Trace-Context"); !traceHeader.MatchString(tc) {
		t.Errorf("got X-Cloud-Trace-Context %q, want TRACE/SPAN;o=1", tc)
	}
	if g.host != strings.TrimPrefix(f.URL, "http://") || g.path != "/run" || g.method != http.MethodPost {
		t.Errorf("service got %s %s for host %s", g.method, g.path, g.host)
	}

	// A custom audience is accepted too, and a caller's trace goes on.
	const trace = "0123456789abcdef0123456789abcdef"
	r = do(t, http.MethodGet, f.URL+"/", nil, 0, map[string]string{
		"Authorization":         "Bearer " + mint(t, iss, "https://worker.example.com", invoker),
		"X-Cloud-Trace-Context": trace + "/42;o=1",
	})
	if r.code != http.StatusOK {
		t.Fatalf("custom audience: got %d, want 200", r.code)
	}
	if tc := up.requests()[1].header.Get("X-Cloud-Trace-Context"); !strings.HasPrefix(tc, trace+"/") {
		t.Errorf("got X-Cloud-Trace-Context %q, want the caller's trace %s", tc, trace)
	}
}

func TestFrontRefusesAsCloudRun(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	stranger := newIssuer(t) // same claims, another key
	up := newUpstream(t, nil)
	f := serve(t, iss, up, cloudrun.Service{Invokers: []string{invoker}})
	now := time.Now()
	claims := func(mod func(c *cloudrun.Claims)) string {
		c := iss.IDClaims(f.URL, invoker)
		mod(&c)
		return sign(t, iss, c)
	}
	valid := mint(t, iss, f.URL, invoker)
	parts := strings.Split(valid, ".")

	for _, tc := range []struct {
		name  string
		authz string
		want  int
	}{
		{"no Authorization", "", http.StatusForbidden},
		{"another account", "Bearer " + mint(t, iss, f.URL, other), http.StatusForbidden},
		{"e-mail not verified", "Bearer " + claims(func(c *cloudrun.Claims) { c.EmailVerified = false }), http.StatusForbidden},
		{"Basic credentials", "Basic dXNlcjpwYXNz", http.StatusUnauthorized},
		{"bearer junk", "Bearer not-a-token", http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"another audience", "Bearer " + mint(t, iss, "https://other.a.run.app", invoker), http.StatusUnauthorized},
		{"audience with a path", "Bearer " + mint(t, iss, f.URL+"/run", invoker), http.StatusUnauthorized},
		{"signed by another key", "Bearer " + mint(t, stranger, f.URL, invoker), http.StatusUnauthorized},
		{"signature already removed", "Bearer " + parts[0] + "." + parts[1] + "." + cloudrun.RemovedSignature, http.StatusUnauthorized},
		{"expired", "Bearer " + claims(func(c *cloudrun.Claims) {
			c.IssuedAt, c.Expires = now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
		}), http.StatusUnauthorized},
		{"issued by someone else", "Bearer " + claims(func(c *cloudrun.Claims) { c.Issuer = "https://evil.example.com" }), http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.authz != "" {
				h["Authorization"] = tc.authz
			}
			r := do(t, http.MethodPost, f.URL+"/run", nil, 0, h)
			if r.code != tc.want {
				t.Fatalf("got %d, want %d", r.code, tc.want)
			}
			wantText := map[int]string{http.StatusForbidden: "Error: Forbidden", http.StatusUnauthorized: "Error: Unauthorized"}[tc.want]
			if !strings.Contains(r.body, wantText) || !strings.Contains(r.body, "<code>/run</code>") {
				t.Errorf("got body %q, want Google's %q page", r.body, wantText)
			}
			if tc.want == http.StatusUnauthorized && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: Bearer")
			}
		})
	}
	if n := len(up.requests()); n != 0 {
		t.Fatalf("the service got %d refused requests", n)
	}
}

func TestFrontReservedPaths(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	up := newUpstream(t, nil)
	f := serve(t, iss, up, cloudrun.Service{Invokers: []string{invoker}})
	auth := map[string]string{"Authorization": "Bearer " + mint(t, iss, f.URL, invoker)}
	for _, p := range []string{"/healthz", "/readyz", "/eventlogz", "/_ah/health", "/_ah/start"} {
		if r := do(t, http.MethodGet, f.URL+p, nil, 0, auth); r.code != http.StatusNotFound || !strings.Contains(r.body, "was not found") {
			t.Errorf("GET %s: got %d %q, want the front end's 404", p, r.code, r.body)
		}
	}
	for _, p := range []string{"/health", "/ready", "/admin/tokens/quiz", "/run"} {
		if r := do(t, http.MethodGet, f.URL+p, nil, 0, auth); r.code != http.StatusOK {
			t.Errorf("GET %s: got %d, want it forwarded", p, r.code)
		}
	}
	if n := len(up.requests()); n != 4 {
		t.Errorf("the service got %d requests, want the 4 unreserved ones", n)
	}
}

// zeros is an endless body of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestFrontRequestSizeLimit(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	up := newUpstream(t, nil)
	f := serve(t, iss, up, cloudrun.Service{Invokers: []string{invoker}})
	auth := map[string]string{"Authorization": "Bearer " + mint(t, iss, f.URL, invoker)}
	const limit = cloudrun.MaxRequestBytes

	if r := do(t, http.MethodPost, f.URL+"/", io.LimitReader(zeros{}, limit), limit, auth); r.code != http.StatusOK {
		t.Fatalf("exactly 32 MiB: got %d, want 200", r.code)
	}
	if got := up.requests(); len(got) != 1 || got[0].bodyBytes != limit {
		t.Fatalf("the service got %v, want one request of %d bytes", got, limit)
	}
	if r := do(t, http.MethodPost, f.URL+"/", io.LimitReader(zeros{}, limit+1), limit+1, auth); r.code != http.StatusRequestEntityTooLarge {
		t.Errorf("declared 32 MiB + 1: got %d, want 413", r.code)
	}
	if n := len(up.requests()); n != 1 {
		t.Errorf("a request declared too large reached the service")
	}
	if r := do(t, http.MethodPost, f.URL+"/", io.LimitReader(zeros{}, limit+1), -1, auth); r.code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked 32 MiB + 1: got %d, want 413", r.code)
	}
}

func TestFrontWithoutInvokerCheck(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	up := newUpstream(t, nil)
	f := serve(t, nil, up, cloudrun.Service{NoInvokerIAMCheck: true})
	if r := do(t, http.MethodGet, f.URL+"/?name=demo", nil, 0, nil); r.code != http.StatusOK {
		t.Fatalf("no token: got %d, want 200", r.code)
	}
	tok := mint(t, iss, f.URL, other)
	do(t, http.MethodGet, f.URL+"/", nil, 0, map[string]string{"Authorization": "Bearer " + tok})
	if got := up.requests()[1].header.Get("Authorization"); got != "Bearer "+tok {
		t.Errorf("a public service got Authorization changed")
	}
	if r := do(t, http.MethodGet, f.URL+"/healthz", nil, 0, nil); r.code != http.StatusNotFound {
		t.Errorf("GET /healthz on a public service: got %d, want 404", r.code)
	}
}

func TestFrontTimeout(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	f := serve(t, nil, up, cloudrun.Service{NoInvokerIAMCheck: true, Timeout: 100 * time.Millisecond})
	if r := do(t, http.MethodGet, f.URL+"/slow", nil, 0, nil); r.code != http.StatusGatewayTimeout {
		t.Fatalf("got %d %q, want 504", r.code, r.body)
	}
}

// TestIssuerTokensPassGoogleValidator: Google's own validator
// (google.golang.org/api/idtoken), reaching the issuer instead of
// www.googleapis.com, accepts what the issuer mints, so the tokens are
// Google-shaped.
func TestIssuerTokensPassGoogleValidator(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	to, err := url.Parse(iss.URL)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: roundTripTo{to}, Timeout: 5 * time.Second}
	v, err := idtoken.NewValidator(context.Background(), option.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	const aud = "https://worker-abc123-ew.a.run.app"
	p, err := v.Validate(context.Background(), mint(t, iss, aud, invoker), aud)
	if err != nil {
		t.Fatalf("Google's validator refused a minted token: %v", err)
	}
	if p.Issuer != cloudrun.GoogleIssuer || p.Claims["email"] != invoker || p.Claims["email_verified"] != true ||
		p.Expires-p.IssuedAt != int64(cloudrun.TokenLifetime/time.Second) || len(p.Subject) != 21 || p.Claims["azp"] != p.Subject {
		t.Errorf("got payload %+v", p)
	}
	resp, err := http.Get(iss.URL + "/.well-known/openid-configuration")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery: %v %v", resp, err)
	}
	resp.Body.Close()
}

// roundTripTo sends every request to one host.
type roundTripTo struct{ to *url.URL }

func (r roundTripTo) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host, out.Host = r.to.Scheme, r.to.Host, ""
	return http.DefaultTransport.RoundTrip(out)
}
