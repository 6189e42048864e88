package webexlogin

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wxcc/tokenservice/shared/testing/webexfake"
	"github.com/wxcc/tokenservice/shared/token"
	"github.com/wxcc/tokenservice/shared/webex"
)

const (
	loginClientID = "Csignin0123456789abcdef"
	loginSecret   = "signin-s3cret+/="
	redirectURL   = "https://console.example.test/admin/signin/webex/callback"
)

// world is a fake Webex with a sign-in integration and a person, and a
// relying party configured for it.
type world struct {
	fake   *webexfake.Server
	client *Client
	ada    webexfake.Person
}

func newWorld(t *testing.T, mutate ...func(*Options)) world {
	t.Helper()
	s := webexfake.Start(t)
	s.AddClient(loginClientID, loginSecret)
	ada := s.AddPerson(webexfake.Person{Email: "ada@example.com", DisplayName: "Ada Lovelace"})
	if err := s.SignInAs(ada.Email); err != nil {
		t.Fatal(err)
	}
	people, err := webex.New(webex.Options{TokenURL: s.URL + "/v1/access_token", AuthorizeURL: s.URL + "/v1/authorize", APIURL: s.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Issuer: s.IssuerURL, ClientID: loginClientID, ClientSecret: loginSecret, RedirectURL: redirectURL,
		People: people, Timeout: 5 * time.Second}
	for _, m := range mutate {
		m(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return world{fake: s, client: c, ada: ada}
}

// signIn is one sign-in through the fake's authorize endpoint, as a
// browser makes it: it returns the callback's query and the sign-in's
// secrets.
type signIn struct {
	state, nonce, verifier string
	callback               url.Values
}

func (w world) authorize(t *testing.T) signIn {
	t.Helper()
	si, err := w.tryAuthorize()
	if err != nil {
		t.Fatal(err)
	}
	return si
}

func (w world) tryAuthorize() (signIn, error) {
	si := signIn{state: "state-" + GenerateNonce(), nonce: GenerateNonce(), verifier: GenerateVerifier()}
	u, err := w.client.AuthCodeURL(context.Background(), si.state, si.nonce, si.verifier)
	if err != nil {
		return si, fmt.Errorf("AuthCodeURL: %w", err)
	}
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Get(u)
	if err != nil {
		return si, err
	}
	resp.Body.Close()
	to, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(to.String(), redirectURL+"?") {
		return si, fmt.Errorf("authorize answered %d to %q, want a redirect to the callback", resp.StatusCode, resp.Header.Get("Location"))
	}
	si.callback = to.Query()
	if got := si.callback.Get("state"); got != si.state {
		return si, fmt.Errorf("state: got %q, want %q", got, si.state)
	}
	return si, nil
}

func (w world) exchange(si signIn) (token.Person, error) {
	return w.client.Exchange(context.Background(), si.callback.Get("code"), si.verifier, si.nonce)
}

// class names an error's class, for got/want messages.
func class(err error) string {
	for _, c := range []struct {
		err  error
		name string
	}{{ErrRefused, "refused"}, {ErrCodeRejected, "code"}, {ErrBadIDToken, "id token"}, {ErrUnavailable, "unavailable"}, {ErrMisconfigured, "misconfigured"}} {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	if err == nil {
		return "ok"
	}
	return "unclassified"
}

func TestSignIn(t *testing.T) {
	w := newWorld(t)
	si := w.authorize(t)
	got, err := w.exchange(si)
	if err != nil {
		t.Fatal(err)
	}
	want := token.Person{ID: w.ada.ID, Email: "ada@example.com", DisplayName: "Ada Lovelace", OrgID: webexfake.DefaultOrgID}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("person (-want +got):\n%s", diff)
	}
	if st := w.fake.IdentityStats(); st.Discoveries != 1 || st.KeyFetches != 1 || st.IDTokens != 1 || st.Me != 1 {
		t.Errorf("fake counted %+v, want one discovery, key fetch, ID token and people/me", st)
	}

	// Another person signs in with the same client; discovery and keys
	// are not read again.
	bob := w.fake.AddPerson(webexfake.Person{Email: "bob@example.com", DisplayName: "Bob", OrgID: "org-b"})
	if err := w.fake.SignInAs(bob.Email); err != nil {
		t.Fatal(err)
	}
	got, err = w.exchange(w.authorize(t))
	if err != nil || got.ID != bob.ID || got.OrgID != "org-b" {
		t.Errorf("second sign-in: got %+v, %v; want Bob", got, err)
	}
	if st := w.fake.IdentityStats(); st.Discoveries != 1 || st.KeyFetches != 1 {
		t.Errorf("fake counted %+v, want discovery and keys read once", st)
	}
}

func TestAuthCodeURL(t *testing.T) {
	w := newWorld(t)
	verifier := GenerateVerifier()
	u, err := w.client.AuthCodeURL(context.Background(), "st-1", "nonce-1", verifier)
	if err != nil {
		t.Fatal(err)
	}
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Scheme + "://" + p.Host + p.Path; got != w.fake.AuthorizeURL {
		t.Errorf("endpoint: got %s, want %s (from discovery)", got, w.fake.AuthorizeURL)
	}
	sum := sha256.Sum256([]byte(verifier))
	want := url.Values{
		"response_type": {"code"}, "client_id": {loginClientID}, "redirect_uri": {redirectURL},
		"scope": {"openid email profile spark:people_read"}, "state": {"st-1"}, "nonce": {"nonce-1"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	if diff := cmp.Diff(want, p.Query()); diff != "" {
		t.Errorf("parameters (-want +got):\n%s", diff)
	}

	for _, tt := range []struct{ name, state, nonce, verifier string }{
		{"no state", "", "n", verifier},
		{"no nonce", "s", "", verifier},
		{"short verifier", "s", "n", "abc"},
		{"verifier with a space", "s", "n", strings.Repeat("a", 42) + " "},
	} {
		if _, err := w.client.AuthCodeURL(context.Background(), tt.state, tt.nonce, tt.verifier); class(err) != "misconfigured" {
			t.Errorf("%s: got %v, want misconfigured", tt.name, err)
		}
	}
}

// TestRefusedIDTokens: every way an ID token can be wrong ends the
// sign-in, before Webex is asked who it is.
func TestRefusedIDTokens(t *testing.T) {
	tests := []struct {
		name  string
		fault webexfake.IDTokenFault
	}{
		{"wrong audience", webexfake.IDTokenWrongAudience},
		{"wrong issuer", webexfake.IDTokenWrongIssuer},
		{"wrong nonce", webexfake.IDTokenWrongNonce},
		{"expired", webexfake.IDTokenExpired},
		{"signed by another key", webexfake.IDTokenOtherKey},
		{"no ID token", webexfake.IDTokenMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			// A good sign-in first, so that the keys are cached: a bad
			// signature must not pass for a key rotation either.
			if _, err := w.exchange(w.authorize(t)); err != nil {
				t.Fatal(err)
			}
			w.fake.SetIDTokenFault(tt.fault)
			p, err := w.exchange(w.authorize(t))
			if class(err) != "id token" || p != (token.Person{}) {
				t.Fatalf("got %+v, %v; want an ID token error and no person", p, err)
			}
			if got := w.fake.IdentityStats().Me; got != 1 {
				t.Errorf("people/me calls: got %d, want 1 (none for the refused sign-in)", got)
			}
		})
	}
}

func TestNonceOfAnotherSignIn(t *testing.T) {
	w := newWorld(t)
	first, second := w.authorize(t), w.authorize(t)
	// The first sign-in's code and verifier, with the second's nonce: an
	// ID token replayed into another sign-in.
	_, err := w.client.Exchange(context.Background(), first.callback.Get("code"), first.verifier, second.nonce)
	if class(err) != "id token" {
		t.Fatalf("got %v, want an ID token error", err)
	}
}

func TestCodeAndCallbackErrors(t *testing.T) {
	t.Run("code used twice", func(t *testing.T) {
		w := newWorld(t)
		si := w.authorize(t)
		if _, err := w.exchange(si); err != nil {
			t.Fatal(err)
		}
		if _, err := w.exchange(si); class(err) != "code" {
			t.Errorf("got %v, want code rejected", err)
		}
	})
	t.Run("wrong verifier", func(t *testing.T) {
		w := newWorld(t)
		si := w.authorize(t)
		si.verifier = GenerateVerifier()
		if _, err := w.exchange(si); class(err) != "code" {
			t.Errorf("got %v, want code rejected", err)
		}
	})
	t.Run("no code", func(t *testing.T) {
		w := newWorld(t)
		if _, err := w.client.Exchange(context.Background(), "", GenerateVerifier(), "n"); class(err) != "code" {
			t.Errorf("got %v, want code rejected", err)
		}
		if n := w.fake.Stats().Exchanges; n != 0 {
			t.Errorf("exchanges: got %d, want 0", n)
		}
	})
	t.Run("person declines", func(t *testing.T) {
		w := newWorld(t)
		w.fake.SetDenyAuthorize(true)
		si := w.authorize(t)
		if err := CallbackError(si.callback); class(err) != "refused" {
			t.Errorf("got %v, want refused", err)
		}
	})
	t.Run("other error redirect", func(t *testing.T) {
		if err := CallbackError(url.Values{"error": {"invalid_request"}}); class(err) != "misconfigured" {
			t.Errorf("got %v, want misconfigured", err)
		}
		if err := CallbackError(url.Values{"code": {"c"}}); err != nil {
			t.Errorf("no error parameter: got %v, want nil", err)
		}
	})
}

func TestMisconfigured(t *testing.T) {
	t.Run("client secret rotated", func(t *testing.T) {
		w := newWorld(t)
		si := w.authorize(t)
		w.fake.AddClient(loginClientID, "rotated")
		if _, err := w.exchange(si); class(err) != "misconfigured" {
			t.Errorf("got %v, want misconfigured", err)
		}
	})
	t.Run("integration without spark:people_read", func(t *testing.T) {
		w := newWorld(t)
		w.fake.SetClientScopes(loginClientID, "openid", "email", "profile")
		_, err := w.exchange(w.authorize(t))
		if class(err) != "misconfigured" || !strings.Contains(err.Error(), "spark:people_read") {
			t.Errorf("got %v, want misconfigured naming spark:people_read", err)
		}
	})
	t.Run("discovery names another issuer", func(t *testing.T) {
		w := newWorld(t)
		w.fake.SetIssuer("https://idbroker-b-us.example.test/idb")
		_, err := w.client.AuthCodeURL(context.Background(), "s", "n", GenerateVerifier())
		if class(err) != "misconfigured" || !strings.Contains(err.Error(), `"https://idbroker-b-us.example.test/idb"`) {
			t.Errorf("got %v, want misconfigured naming the discovered issuer", err)
		}
	})
}

func TestUnavailable(t *testing.T) {
	t.Run("starts while the issuer is down, signs in once it is back", func(t *testing.T) {
		w := newWorld(t)
		w.fake.FailDiscoveryNext(1, webexfake.ServerError(503))
		if _, err := w.client.AuthCodeURL(context.Background(), "s", "n", GenerateVerifier()); class(err) != "unavailable" {
			t.Fatalf("got %v, want unavailable", err)
		}
		if _, err := w.exchange(w.authorize(t)); err != nil {
			t.Fatalf("after the issuer came back: %v", err)
		}
		if n := w.fake.IdentityStats().Discoveries; n != 2 {
			t.Errorf("discoveries: got %d, want 2 (the failed one, then the kept one)", n)
		}
	})
	t.Run("issuer unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		issuer := srv.URL + "/idb"
		srv.Close()
		people, _ := webex.New(webex.Options{TokenURL: "https://webexapis.com/v1/access_token", AuthorizeURL: "https://webexapis.com/v1/authorize", APIURL: "https://webexapis.com", Timeout: time.Second})
		c, err := New(Options{Issuer: issuer, ClientID: "c", ClientSecret: "s", RedirectURL: redirectURL, People: people})
		if err != nil {
			t.Fatalf("New must not call Webex: %v", err)
		}
		_, err = c.AuthCodeURL(context.Background(), "s", "n", GenerateVerifier())
		if class(err) != "unavailable" {
			t.Errorf("got %v, want unavailable", err)
		}
	})
	t.Run("keys unreadable", func(t *testing.T) {
		w := newWorld(t)
		si := w.authorize(t)
		w.fake.FailKeysNext(1, webexfake.ServerError(502))
		if _, err := w.exchange(si); class(err) != "unavailable" {
			t.Fatalf("got %v, want unavailable", err)
		}
		if _, err := w.exchange(w.authorize(t)); err != nil {
			t.Errorf("once the keys are back: %v", err)
		}
	})
	t.Run("token endpoint 503", func(t *testing.T) {
		w := newWorld(t)
		si := w.authorize(t)
		w.fake.FailNext(1, webexfake.ServerError(503))
		if _, err := w.exchange(si); class(err) != "unavailable" {
			t.Errorf("got %v, want unavailable", err)
		}
	})
	t.Run("token endpoint hangs past the timeout", func(t *testing.T) {
		w := newWorld(t, func(o *Options) { o.Timeout = 200 * time.Millisecond })
		si := w.authorize(t)
		w.fake.FailNext(1, webexfake.Fault{Kind: webexfake.FaultHang})
		if _, err := w.exchange(si); class(err) != "unavailable" {
			t.Errorf("got %v, want unavailable", err)
		}
	})
	t.Run("people/me 500", func(t *testing.T) {
		w := newWorld(t)
		w.fake.FailMeNext(1, webexfake.ServerError(500))
		if _, err := w.exchange(w.authorize(t)); class(err) != "unavailable" {
			t.Errorf("got %v, want unavailable", err)
		}
	})
}

// TestNoSecretInErrors: no error of a failed sign-in holds the client
// secret, the code, the verifier or the nonce.
func TestNoSecretInErrors(t *testing.T) {
	arrange := []func(w world){
		func(w world) { w.fake.SetIDTokenFault(webexfake.IDTokenWrongAudience) },
		func(w world) { w.fake.SetIDTokenFault(webexfake.IDTokenWrongNonce) },
		func(w world) { w.fake.SetIDTokenFault(webexfake.IDTokenOtherKey) },
		func(w world) { w.fake.AddClient(loginClientID, "rotated") },
		func(w world) { w.fake.FailNext(1, webexfake.Fault{Kind: webexfake.FaultInvalidGrant}) },
		func(w world) { w.fake.FailNext(1, webexfake.Fault{Kind: webexfake.FaultMalformed}) },
		func(w world) { w.fake.FailMeNext(1, webexfake.ServerError(500)) },
	}
	for i, a := range arrange {
		w := newWorld(t)
		si := w.authorize(t)
		a(w)
		_, err := w.exchange(si)
		if err == nil {
			t.Fatalf("case %d: got no error", i)
		}
		for _, secret := range []string{loginSecret, si.callback.Get("code"), si.verifier, si.nonce} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("case %d: error %q holds a secret", i, err)
			}
		}
	}
}

// TestConcurrentSignIns: many first sign-ins at once read discovery and
// the keys once.
func TestConcurrentSignIns(t *testing.T) {
	w := newWorld(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			si, err := w.tryAuthorize()
			if err == nil {
				_, err = w.exchange(si)
			}
			if err != nil {
				t.Errorf("sign-in: %v", err)
			}
		})
	}
	wg.Wait()
	if st := w.fake.IdentityStats(); st.Discoveries != 1 || st.KeyFetches != 1 || st.Me != 8 {
		t.Errorf("fake counted %+v, want one discovery and one key fetch for 8 sign-ins", st)
	}
}

func TestNew(t *testing.T) {
	people, _ := webex.New(webex.Options{TokenURL: "https://webexapis.com/v1/access_token", AuthorizeURL: "https://webexapis.com/v1/authorize", APIURL: "https://webexapis.com", Timeout: time.Second})
	good := Options{Issuer: "https://idbroker.webex.com/idb", ClientID: "c", ClientSecret: "s", RedirectURL: redirectURL, People: people}
	if _, err := New(good); err != nil {
		t.Fatalf("good options: %v", err)
	}
	for name, mutate := range map[string]func(*Options){
		"no issuer":       func(o *Options) { o.Issuer = "" },
		"relative issuer": func(o *Options) { o.Issuer = "idbroker.webex.com/idb" },
		"no client ID":    func(o *Options) { o.ClientID = "" },
		"no secret":       func(o *Options) { o.ClientSecret = "" },
		"no redirect":     func(o *Options) { o.RedirectURL = "/admin/signin/webex/callback" },
		"no people":       func(o *Options) { o.People = nil },
	} {
		o := good
		mutate(&o)
		if _, err := New(o); err == nil {
			t.Errorf("%s: got no error", name)
		}
	}
}
