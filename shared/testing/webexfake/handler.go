package webexfake

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// tokenAnswer is the JSON of a successful grant, as Webex sends it.
type tokenAnswer struct {
	AccessToken           string `json:"access_token"`
	ExpiresIn             int64  `json:"expires_in"`
	RefreshToken          string `json:"refresh_token,omitempty"`
	RefreshTokenExpiresIn *int64 `json:"refresh_token_expires_in,omitempty"`
	TokenType             string `json:"token_type"`
	// IDToken is there when the authorization asked for openid.
	IDToken string `json:"id_token,omitempty"`
}

// errorAnswer is an error body. It carries the OAuth fields (error,
// error_description) and, as Webex's API gateway does, message, errors
// and trackingId.
type errorAnswer struct {
	Error       string        `json:"error"`
	Description string        `json:"error_description,omitempty"`
	Message     string        `json:"message"`
	Errors      []errorDetail `json:"errors"`
	TrackingID  string        `json:"trackingId"`
}

type errorDetail struct {
	Description string `json:"description"`
}

// answer is the outcome of a grant, written or (on a lost answer) dropped.
type answer struct {
	status int
	body   any
}

// ServeHTTP serves the token endpoint at TokenPath and an authorize
// endpoint at AuthorizePath that consents at once: it redirects to the
// redirect_uri with a new code (or error=access_denied, see
// SetDenyAuthorize). With SetConsentPage it shows a page instead, whose
// Approve and Deny buttons post to ConsentPath. PKCE (S256) is honoured:
// a code issued with a code_challenge is exchanged only with its
// code_verifier. Login with Webex is served too (oidc.go: discovery, JWKS
// and ID tokens), and GET /v1/people/me (people.go).
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case DiscoveryPath, JWKSPath:
		f.serveOIDC(w, r)
	case PeopleMePath:
		f.serveMe(w, r)
	case TokenPath:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "invalid_request", "The token endpoint accepts POST only.")
			return
		}
		f.serveToken(w, r)
	case AuthorizePath:
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		f.serveAuthorize(w, r)
	case ConsentPath:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		f.serveConsent(w, r)
	case MessagesPath:
		f.serveMessages(w, r)
	default:
		if appID, ok := applicationsPath(r.URL.Path); ok {
			f.serveApplications(w, r, appID)
			return
		}
		http.NotFound(w, r)
	}
}

func (f *Fake) serveToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "The request body cannot be parsed.")
		return
	}
	form := r.PostForm // client credentials in the body only, never the query

	f.mu.Lock()
	issuer := f.issuerLocked(r)
	f.countLocked(form)
	fault, faulted := f.faults.next()
	latency, stop := f.latency, f.stop
	f.mu.Unlock()

	if latency > 0 && !wait(r, latency, stop) {
		f.noteUnanswered(form)
		return // the client gave up
	}
	if faulted && fault.Kind != FaultLostAnswer {
		f.noteUnanswered(form)
		answerFault(w, r, fault, stop)
		return
	}

	f.mu.Lock()
	a := f.grantLocked(form, issuer)
	f.noteGrantLocked(form, a, faulted)
	hook, granted := f.grantedLocked(form.Get("grant_type"), form.Get("client_id"), form.Get("refresh_token"), a)
	f.mu.Unlock()

	if faulted { // lost answer: the grant is made, the client never hears of it
		answerFault(w, r, fault, stop)
		return
	}
	if hook != nil {
		hook(granted)
	}
	writeJSON(w, a.status, a.body)
}

func (f *Fake) countLocked(form url.Values) {
	f.stats.Calls++
	f.stats.ByClient[form.Get("client_id")]++
	switch form.Get("grant_type") {
	case "refresh_token":
		f.stats.Refreshes++
		f.stats.ByRefreshToken[form.Get("refresh_token")]++
		f.notePresentedLocked(form.Get("refresh_token"))
	case "authorization_code":
		f.stats.Exchanges++
	}
}

// wait sleeps d and reports whether the request is still worth answering.
func wait(r *http.Request, d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return true
	case <-r.Context().Done():
		return false
	}
}

// grantLocked checks the request as Webex does and makes the grant;
// issuer is the one ID tokens name.
func (f *Fake) grantLocked(form url.Values, issuer string) answer {
	grantType := form.Get("grant_type")
	var required []string
	switch grantType {
	case "":
		return errAnswer(http.StatusBadRequest, "invalid_request", "The grant_type parameter is missing.")
	case "refresh_token":
		required = []string{"client_id", "client_secret", "refresh_token"}
	case "authorization_code":
		required = []string{"client_id", "client_secret", "code", "redirect_uri"}
	default:
		return errAnswer(http.StatusBadRequest, "unsupported_grant_type", "The grant_type is not supported.")
	}
	for _, p := range required {
		if form.Get(p) == "" {
			return errAnswer(http.StatusBadRequest, "invalid_request", fmt.Sprintf("The %s parameter is missing.", p))
		}
	}
	clientID := form.Get("client_id")
	if secret, ok := f.clients[clientID]; !ok || secret != form.Get("client_secret") {
		return errAnswer(http.StatusUnauthorized, "invalid_client", "The client authentication failed.")
	}
	if grantType == "refresh_token" {
		return f.refreshLocked(clientID, form.Get("refresh_token"))
	}
	return f.exchangeLocked(clientID, form.Get("code"), form.Get("redirect_uri"), form.Get("code_verifier"), issuer)
}

func (f *Fake) refreshLocked(clientID, rt string) answer {
	now := f.now()
	g, ok := f.refresh[rt]
	if !ok || g.clientID != clientID {
		return errAnswer(http.StatusBadRequest, "invalid_grant", "The refresh token provided is expired, revoked, malformed, or invalid.")
	}
	if !now.Before(g.expires) {
		delete(f.refresh, rt)
		return errAnswer(http.StatusBadRequest, "invalid_grant", "The refresh token provided is expired.")
	}
	a := f.issueAccessLocked(clientID, g.person, now)
	switch {
	case f.omitRefreshToken:
		return answer{http.StatusOK, a}
	case f.rotate:
		f.retireLocked(rt, RetiredByRotation)
		delete(f.refresh, rt)
		rt = random(RefreshTokenPrefix)
		f.refresh[rt] = g
		f.issuedRefreshLocked(rt, g)
	}
	a.RefreshToken = rt
	a.RefreshTokenExpiresIn = seconds(g.expires.Sub(now))
	return answer{http.StatusOK, a}
}

func (f *Fake) exchangeLocked(clientID, code, redirectURI, verifier, issuer string) answer {
	now := f.now()
	c, ok := f.codes[code]
	if !ok || c.clientID != clientID {
		return errAnswer(http.StatusBadRequest, "invalid_grant", "The authorization code is invalid or was already used.")
	}
	if !now.Before(c.expires) {
		delete(f.codes, code)
		return errAnswer(http.StatusBadRequest, "invalid_grant", "The authorization code is expired.")
	}
	if c.redirectURI != redirectURI {
		return errAnswer(http.StatusBadRequest, "invalid_grant", "The redirect_uri does not match the one of the authorization request.")
	}
	if c.challenge != "" && s256(verifier) != c.challenge {
		return errAnswer(http.StatusBadRequest, "invalid_grant", "The code_verifier does not match the code_challenge.")
	}
	delete(f.codes, code)
	a := f.issueAccessLocked(clientID, c.person, now)
	rt := random(RefreshTokenPrefix)
	f.refresh[rt] = refreshGrant{clientID: clientID, expires: now.Add(f.refreshExpiresIn), person: c.person}
	f.issuedRefreshLocked(rt, f.refresh[rt])
	a.RefreshToken = rt
	a.RefreshTokenExpiresIn = seconds(f.refreshExpiresIn)
	if slices.Contains(strings.Fields(c.scope), "openid") {
		a.IDToken = f.idTokenLocked(issuer, clientID, c, now)
	}
	return answer{http.StatusOK, a}
}

// issueAccessLocked issues an access token for clientID that acts as
// person (a key of identity.people; "" for the default person).
func (f *Fake) issueAccessLocked(clientID, person string, now time.Time) tokenAnswer {
	at := random(AccessTokenPrefix)
	expiresIn := f.expiresIn
	if d, ok := f.clientExpiresIn[clientID]; ok {
		expiresIn = d
	}
	f.access[at] = accessGrant{clientID: clientID, expires: now.Add(expiresIn), scopes: f.apps.scopes[clientID], person: person}
	f.issued = append(f.issued, at)
	return tokenAnswer{AccessToken: at, ExpiresIn: *seconds(expiresIn), TokenType: "Bearer"}
}

// s256 is PKCE's S256 transform of a code verifier.
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func seconds(d time.Duration) *int64 {
	s := int64(d / time.Second)
	return &s
}

func (f *Fake) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	f.stats.Authorizations++
	page, picker := f.consentPage, f.idp.picker
	if !f.validAuthorizeLocked(q) {
		f.mu.Unlock()
		// Webex shows an error page rather than redirect to an unverified URI.
		http.Error(w, "unknown client_id or invalid redirect_uri", http.StatusBadRequest)
		return
	}
	switch {
	case picker:
		people := make([]Person, 0, len(f.idp.order))
		for _, k := range f.idp.order {
			people = append(people, *f.idp.people[k])
		}
		f.mu.Unlock()
		showPicker(w, q, people)
	case page:
		p := f.personLocked(f.idp.signInAs)
		f.mu.Unlock()
		showConsent(w, q, p)
	default:
		to := f.decideLocked(q, !f.denyAuthorize, f.idp.signInAs)
		f.mu.Unlock()
		http.Redirect(w, r, to, http.StatusFound)
	}
}

// serveConsent takes the decision posted from the consent page.
func (f *Fake) serveConsent(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form cannot be parsed", http.StatusBadRequest)
		return
	}
	q := r.PostForm
	f.mu.Lock()
	if !f.validAuthorizeLocked(q) {
		f.mu.Unlock()
		http.Error(w, "unknown client_id or invalid redirect_uri", http.StatusBadRequest)
		return
	}
	person := f.idp.signInAs
	if e := q.Get("person"); e != "" { // chosen on the picker
		person = strings.ToLower(e)
		if _, ok := f.idp.people[person]; !ok {
			f.mu.Unlock()
			http.Error(w, "unknown person", http.StatusBadRequest)
			return
		}
	}
	to := f.decideLocked(q, q.Get("decision") == "approve" && !f.denyAuthorize, person)
	f.mu.Unlock()
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// validAuthorizeLocked reports whether q names a known client and an
// absolute redirect URI, the only case in which Webex redirects at all.
func (f *Fake) validAuthorizeLocked(q url.Values) bool {
	_, known := f.clients[q.Get("client_id")]
	to, err := url.Parse(q.Get("redirect_uri"))
	return known && q.Get("redirect_uri") != "" && err == nil && to.IsAbs()
}

// decideLocked returns where the browser goes after person decided: the
// redirect URI with a new code (PKCE's challenge, the scope, the nonce and
// the person recorded with it) or an OAuth error, and the state. As on
// Webex, the openid scope needs a nonce.
func (f *Fake) decideLocked(q url.Values, approve bool, person string) string {
	clientID, redirectURI, state := q.Get("client_id"), q.Get("redirect_uri"), q.Get("state")
	to, _ := url.Parse(redirectURI)
	v := to.Query()
	method := q.Get("code_challenge_method")
	switch {
	case q.Get("response_type") != "code":
		v.Set("error", "unsupported_response_type")
	case q.Get("code_challenge") != "" && method != "S256":
		v.Set("error", "invalid_request")
		v.Set("error_description", "code_challenge_method must be S256.")
	case slices.Contains(strings.Fields(q.Get("scope")), "openid") && q.Get("nonce") == "":
		v.Set("error", "invalid_request")
		v.Set("error_description", "The nonce parameter is required with the openid scope.")
	case !approve:
		v.Set("error", "access_denied")
		v.Set("error_description", "The user denied access.")
	default:
		v.Set("code", f.issueCodeLocked(codeGrant{clientID: clientID, redirectURI: redirectURI, challenge: q.Get("code_challenge"),
			scope: q.Get("scope"), nonce: q.Get("nonce"), person: person}))
	}
	if state != "" {
		v.Set("state", state)
	}
	to.RawQuery = v.Encode()
	return to.String()
}

// consentFields are the authorize parameters the consent page carries
// over to its decision.
var consentFields = []string{"response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge", "code_challenge_method"}

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fake Webex: authorize an integration</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:16px/1.5 system-ui,sans-serif;background:#f2f4f7;color:#1d2330;margin:0}
main{max-width:34rem;margin:4rem auto;background:#fff;border-radius:10px;padding:2rem;box-shadow:0 2px 10px #0002}
h1{font-size:1.4rem;margin-top:0} code{background:#eef;padding:0 .3em;border-radius:3px}
.note{color:#5b6472;font-size:.9rem} ul{padding-left:1.2rem}
button{font:inherit;padding:.6rem 1.2rem;border-radius:6px;border:1px solid #1d6bd1;margin-right:.6rem;cursor:pointer}
#approve{background:#1d6bd1;color:#fff} #deny{background:#fff;color:#1d6bd1}
</style></head>
<body><main>
<p class="note">Fake Webex (local stack and tests): no account, no password.</p>
<h1>Allow <code>{{.ClientID}}</code> to act on your behalf?</h1>
<p>It asks for these scopes:</p>
<ul id="scopes">{{range .Scopes}}<li><code>{{.}}</code></li>{{else}}<li>(none)</li>{{end}}</ul>
<p>You will be sent back to <code>{{.Redirect}}</code>.</p>
<p class="note" id="signed-in-as">Signed in as {{.Person.DisplayName}} &lt;{{.Person.Email}}&gt;.</p>
<form method="post" action="` + ConsentPath + `">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<button id="approve" type="submit" name="decision" value="approve">Approve</button>
<button id="deny" type="submit" name="decision" value="deny">Deny</button>
</form>
</main></body></html>
`))

func showConsent(w http.ResponseWriter, q url.Values, p Person) {
	data := struct {
		ClientID, Redirect string
		Scopes             []string
		Hidden             []field
		Person             Person
	}{ClientID: q.Get("client_id"), Redirect: q.Get("redirect_uri"), Scopes: strings.Fields(q.Get("scope")), Hidden: hiddenFields(q), Person: p}
	writePage(w, consentPage, data)
}

// field is a hidden form field of a page.
type field struct{ Name, Value string }

// hiddenFields are the authorize parameters of q that a page carries over
// to the decision it posts.
func hiddenFields(q url.Values) []field {
	var out []field
	for _, k := range consentFields {
		if v := q.Get(k); v != "" {
			out = append(out, field{k, v})
		}
	}
	return out
}

func writePage(w http.ResponseWriter, t *template.Template, data any) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action *; frame-ancestors 'none'")
	_ = t.Execute(w, data)
}

func errAnswer(status int, code, description string) answer {
	return answer{status, errorAnswer{
		Error:       code,
		Description: description,
		Message:     fmt.Sprintf("POST failed: %d %s, error = '(%s) %s'", status, http.StatusText(status), code, description),
		Errors:      []errorDetail{{Description: description}},
		TrackingID:  random("FAKE_"),
	}}
}

func writeError(w http.ResponseWriter, status int, code, description string) {
	a := errAnswer(status, code, description)
	writeJSON(w, a.status, a.body)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if e, ok := body.(errorAnswer); ok {
		h.Set("Trackingid", e.TrackingID)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
