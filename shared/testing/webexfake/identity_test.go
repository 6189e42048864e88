package webexfake

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// authorizeQuery is a sign-in's authorize request.
func authorizeQuery(scope, nonce string) url.Values {
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect}, "scope": {scope}, "state": {"st"}}
	if nonce != "" {
		q.Set("nonce", nonce)
	}
	return q
}

// redirected returns where the answer to a GET (form nil) or POST of u
// sends the browser, which must be the redirect_uri.
func redirected(t *testing.T, u string, form url.Values) url.Values {
	t.Helper()
	var resp *http.Response
	var err error
	if form == nil {
		resp, err = noFollow.Get(u)
	} else {
		resp, err = noFollow.PostForm(u, form)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), redirect+"?") {
		t.Fatalf("got %d to %q, want a redirect to the redirect_uri", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query()
}

func TestDiscoveryAndKeys(t *testing.T) {
	s := start(t)
	var d discovery
	getJSON(t, s.IssuerURL+"/.well-known/openid-configuration", &d)
	if d.Issuer != s.IssuerURL || d.AuthorizationEndpoint != s.AuthorizeURL || d.TokenEndpoint != s.TokenURL || d.JWKSURI != s.URL+JWKSPath {
		t.Errorf("discovery names %+v, want the fake's issuer and endpoints", d)
	}
	var set jwks
	getJSON(t, d.JWKSURI, &set)
	if len(set.Keys) != 1 || set.Keys[0].Kty != "RSA" || set.Keys[0].Use != "sig" || set.Keys[0].Kid == "" {
		t.Errorf("JWKS %+v, want one RSA signing key with a kid", set)
	}
	if st := s.IdentityStats(); st.Discoveries != 1 || st.KeyFetches != 1 {
		t.Errorf("counted %+v", st)
	}

	// Served without NewServer, the issuer is the request's host's.
	f := New()
	srv := httptest.NewServer(f)
	defer srv.Close()
	getJSON(t, srv.URL+DiscoveryPath, &d)
	if d.Issuer != srv.URL+IssuerPath || d.TokenEndpoint != srv.URL+TokenPath {
		t.Errorf("without SetIssuer: got %q and %q, want the request's host", d.Issuer, d.TokenEndpoint)
	}
}

// idTokenClaims checks the ID token's RS256 signature with the JWKS and
// returns its claims.
func idTokenClaims(t *testing.T, s *Server, idToken string) map[string]any {
	t.Helper()
	var set jwks
	getJSON(t, s.URL+JWKSPath, &set)
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		t.Fatalf("ID token %q is not a compact JWS", idToken)
	}
	dec := base64.RawURLEncoding.DecodeString
	n, _ := dec(set.Keys[0].N)
	e, _ := dec(set.Keys[0].E)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	sig, _ := dec(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Fatalf("ID token signature: %v", err)
	}
	raw, _ := dec(parts[1])
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func TestIDToken(t *testing.T) {
	s := start(t)
	ada := s.AddPerson(Person{Email: "Ada@Example.com", DisplayName: "Ada Lovelace"})
	if err := s.SignInAs("ada@example.com"); err != nil {
		t.Fatal(err)
	}
	sub := strings.TrimPrefix(mustDecode(t, ada.ID), "ciscospark://us/PEOPLE/")

	tests := []struct {
		name, scope string
		want        map[string]any // besides iss, aud, sub, nonce and the times
	}{
		{"openid only", "openid", map[string]any{}},
		{"email and profile", "openid email profile spark:people_read", map[string]any{
			"email": "Ada@Example.com", "email_verified": true, "name": "Ada Lovelace"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := redirected(t, s.AuthorizeURL+"?"+authorizeQuery(tt.scope, "n-1").Encode(), nil)
			r := mustPost(t, s.TokenURL, exchangeForm(q.Get("code")))
			claims := idTokenClaims(t, s, str(r.json, "id_token"))
			exp, iat := claims["exp"].(float64), claims["iat"].(float64)
			if exp-iat != IDTokenTTL.Seconds() || claims["auth_time"] != iat {
				t.Errorf("times: exp %v, iat %v, auth_time %v", exp, iat, claims["auth_time"])
			}
			for _, k := range []string{"exp", "iat", "auth_time"} {
				delete(claims, k)
			}
			want := map[string]any{"iss": s.IssuerURL, "aud": clientID, "sub": sub, "nonce": "n-1"}
			for k, v := range tt.want {
				want[k] = v
			}
			if diff := cmp.Diff(want, claims); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}

	// Without openid there is no ID token; with it, a nonce is required.
	q := redirected(t, s.AuthorizeURL+"?"+authorizeQuery("spark:all", "").Encode(), nil)
	if r := mustPost(t, s.TokenURL, exchangeForm(q.Get("code"))); r.status != 200 || str(r.json, "id_token") != "" {
		t.Errorf("integration grant: got %d %s, want 200 without id_token", r.status, r.raw)
	}
	q = redirected(t, s.AuthorizeURL+"?"+authorizeQuery("openid", "").Encode(), nil)
	if q.Get("error") != "invalid_request" || q.Get("code") != "" {
		t.Errorf("openid without nonce: got %v, want error=invalid_request", q)
	}
}

func mustDecode(t *testing.T, id string) string {
	t.Helper()
	b, err := base64.RawStdEncoding.DecodeString(id)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSignInAs(t *testing.T) {
	s := start(t)
	if err := s.SignInAs("nobody@example.com"); err == nil {
		t.Error("an unknown person: got no error")
	}
	bob := s.AddPerson(Person{Email: "bob@example.com", OrgID: "org-b"})
	if bob.DisplayName != "bob@example.com" || !strings.HasPrefix(mustDecode(t, bob.ID), "ciscospark://us/PEOPLE/") {
		t.Errorf("AddPerson filled in %+v", bob)
	}
	at := s.IssueAccessToken(clientID, 0)
	if p, ok := s.AccessTokenPerson(at); !ok || p != DefaultPerson {
		t.Errorf("before SignInAs: got %+v, want the default person", p)
	}
	_ = s.SignInAs("BOB@example.com")
	code := s.IssueCode(clientID, redirect)
	r := mustPost(t, s.TokenURL, exchangeForm(code))
	if p, _ := s.AccessTokenPerson(str(r.json, "access_token")); p != bob {
		t.Errorf("after SignInAs: got %+v, want Bob", p)
	}
	// Refreshing keeps the person.
	r = mustPost(t, s.TokenURL, refreshForm(str(r.json, "refresh_token")))
	if p, _ := s.AccessTokenPerson(str(r.json, "access_token")); p != bob {
		t.Errorf("after a refresh: got %+v, want Bob", p)
	}
	_ = s.SignInAs("")
	r = mustPost(t, s.TokenURL, exchangeForm(s.IssueCode(clientID, redirect)))
	if p, _ := s.AccessTokenPerson(str(r.json, "access_token")); p != DefaultPerson {
		t.Errorf("SignInAs(\"\"): got %+v, want the default person", p)
	}
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// pageForm reads the page at u and returns it and its first form's
// hidden fields.
func pageForm(t *testing.T, u string) (string, url.Values) {
	t.Helper()
	resp, err := noFollow.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("got %d, want a page", resp.StatusCode)
	}
	page := string(b)
	form := url.Values{}
	first := page[:strings.Index(page, "</form>")]
	for _, m := range hiddenInput.FindAllStringSubmatch(first, -1) {
		form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return page, form
}

func TestPersonPicker(t *testing.T) {
	s := start(t)
	s.SetPersonPicker(true)
	bob := s.AddPerson(Person{Email: "bob@example.com", DisplayName: "Bob <the builder>"})
	page, form := pageForm(t, s.AuthorizeURL+"?"+authorizeQuery("openid email", "n&2").Encode())
	for _, want := range []string{
		`id="` + PersonButtonID(DefaultPerson.Email) + `"`, `id="` + PersonButtonID(bob.Email) + `"`,
		`value="bob@example.com"`, "Bob &lt;the builder&gt;", `id="deny"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the picker lacks %s", want)
		}
	}
	if form.Get("nonce") != "n&2" || form.Get("decision") != "approve" {
		t.Errorf("the picker's form carries %v, want the nonce and an approval", form)
	}

	form.Set("person", bob.Email) // the click on Bob's button
	q := redirected(t, s.URL+ConsentPath, form)
	r := mustPost(t, s.TokenURL, exchangeForm(q.Get("code")))
	if p, _ := s.AccessTokenPerson(str(r.json, "access_token")); p != bob {
		t.Errorf("picked Bob: the token acts as %+v", p)
	}
	if c := idTokenClaims(t, s, str(r.json, "id_token")); c["email"] != bob.Email || c["nonce"] != "n&2" {
		t.Errorf("picked Bob: ID token claims %v", c)
	}

	form.Set("person", "nobody@example.com")
	resp, err := noFollow.PostForm(s.URL+ConsentPath, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("unknown person: got %d, want 400", resp.StatusCode)
	}
	form.Del("person")
	form.Set("decision", "deny")
	if q := redirected(t, s.URL+ConsentPath, form); q.Get("error") != "access_denied" {
		t.Errorf("deny: got %v, want access_denied", q)
	}
}

func TestConsentPageNamesThePerson(t *testing.T) {
	s := start(t)
	s.SetConsentPage(true)
	carol := s.AddPerson(Person{Email: "carol@example.com", DisplayName: "Carol"})
	_ = s.SignInAs(carol.Email)
	page, form := pageForm(t, s.AuthorizeURL+"?"+authorizeQuery("spark:all", "").Encode())
	if !strings.Contains(page, `id="signed-in-as"`) || !strings.Contains(page, "carol@example.com") {
		t.Error("the consent page does not say who is signed in")
	}
	form.Set("decision", "approve")
	q := redirected(t, s.URL+ConsentPath, form)
	r := mustPost(t, s.TokenURL, exchangeForm(q.Get("code")))
	if p, _ := s.AccessTokenPerson(str(r.json, "access_token")); p != carol {
		t.Errorf("got %+v, want Carol", p)
	}
}

func TestPersonButtonID(t *testing.T) {
	if got := PersonButtonID("Ada.L+ops@Example.com"); got != "signin-as-ada-l-ops-example-com" {
		t.Errorf("got %q", got)
	}
}

func TestAuthorizeAs(t *testing.T) {
	s := start(t)
	s.SetConsentPage(true) // a page the Go test does not have to read
	dan := s.AddPerson(Person{Email: "dan@example.com"})
	to, err := s.AuthorizeAs(context.Background(), s.AuthorizeURL+"?"+authorizeQuery("openid", "n-3").Encode(), dan.Email)
	if err != nil {
		t.Fatal(err)
	}
	if to.Query().Get("state") != "st" || to.Query().Get("code") == "" {
		t.Fatalf("got %s, want the redirect URI with a code and the state", to)
	}
	r := mustPost(t, s.TokenURL, exchangeForm(to.Query().Get("code")))
	if p, _ := s.AccessTokenPerson(str(r.json, "access_token")); p != dan {
		t.Errorf("got %+v, want Dan", p)
	}
	if c := idTokenClaims(t, s, str(r.json, "id_token")); c["nonce"] != "n-3" {
		t.Errorf("nonce: got %v, want n-3", c["nonce"])
	}
	if _, err := s.AuthorizeAs(context.Background(), s.AuthorizeURL+"?"+authorizeQuery("openid", "n").Encode(), "nobody@example.com"); err == nil {
		t.Error("an unknown person: got no error")
	}
}
