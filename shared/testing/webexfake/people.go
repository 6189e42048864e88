package webexfake

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// PeopleMePath is Webex's "Get My Own Details": who the bearer token acts as.
const PeopleMePath = "/v1/people/me"

// PeopleReadScope is the scope Webex's People API asks of a token that
// views people, /v1/people/me included.
const PeopleReadScope = "spark:people_read"

// The default person: who signs in and consents while no test chose
// anyone (SignInAs), and who tokens seeded without a person act as.
var DefaultPerson = Person{
	ID:          webexID("PEOPLE", "5b1d4f1e-2c3a-4e5f-8a9b-0c1d2e3f4a5b"),
	Email:       "operator@example.com",
	DisplayName: "Fake Operator",
	OrgID:       DefaultOrgID,
}

// DefaultOrgID is the organization of DefaultPerson and of every person
// added without one.
var DefaultOrgID = webexID("ORGANIZATION", "1eb65fdf-9643-417f-9974-ad72cae0e10f")

// Person is a Webex user of the fake, as GET /v1/people/me describes
// them.
type Person struct {
	// ID is the People API's id: base64 of ciscospark://us/PEOPLE/<uuid>,
	// where <uuid> is the ID token's sub.
	ID          string
	Email       string
	DisplayName string
	// OrgID is the People API's orgId (base64 of
	// ciscospark://us/ORGANIZATION/<uuid>).
	OrgID string
}

// webexID builds an ID the way Webex's REST APIs spell them.
func webexID(kind, uuid string) string {
	return base64.RawStdEncoding.EncodeToString([]byte("ciscospark://us/" + kind + "/" + uuid))
}

// subject is the ID token's sub for a person: the UUID inside the People
// API's ID, as Webex's two IDs relate; the ID itself if it is not one.
func (p Person) subject() string {
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(p.ID, "="))
	if err != nil {
		return p.ID
	}
	rest, ok := strings.CutPrefix(string(raw), "ciscospark://")
	if i := strings.LastIndexByte(rest, '/'); ok && i >= 0 && i < len(rest)-1 {
		return rest[i+1:]
	}
	return p.ID
}

// identity is the state of OpenID Connect (oidc.go) and of people.
type identity struct {
	issuer   string             // "" until SetIssuer: derived from each request
	people   map[string]*Person // by lower-case e-mail
	order    []string           // keys of people, as added (the picker lists them so)
	signInAs string             // key of who the next authorizations act as
	picker   bool

	idTokenFault    IDTokenFault
	discoveryFaults faultQueue
	keysFaults      faultQueue
	meFaults        faultQueue

	stats IdentityStats
}

// IdentityStats counts the calls of the identity endpoints.
type IdentityStats struct {
	Discoveries int // GETs of the discovery document, faulted ones too
	KeyFetches  int // GETs of the JWKS
	IDTokens    int // ID tokens issued (bad ones too)
	Me          int // calls of /v1/people/me, faulted and refused ones too
}

func newIdentity() identity {
	d := DefaultPerson
	key := strings.ToLower(d.Email)
	return identity{people: map[string]*Person{key: &d}, order: []string{key}, signInAs: key}
}

// AddPerson adds a Webex user (or replaces the one with the same e-mail)
// and returns them as stored: an empty ID is made up as Webex spells
// them, an empty OrgID is DefaultOrgID. It panics without an e-mail.
func (f *Fake) AddPerson(p Person) Person {
	if p.Email == "" {
		panic("webexfake: AddPerson needs an e-mail")
	}
	if p.ID == "" {
		p.ID = webexID("PEOPLE", newUUID())
	}
	if p.OrgID == "" {
		p.OrgID = DefaultOrgID
	}
	if p.DisplayName == "" {
		p.DisplayName = p.Email
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	key := strings.ToLower(p.Email)
	if _, ok := f.idp.people[key]; !ok {
		f.idp.order = append(f.idp.order, key)
	}
	f.idp.people[key] = &p
	return p
}

// People returns every person, in the order they were added (the default
// person first).
func (f *Fake) People() []Person {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Person, 0, len(f.idp.order))
	for _, k := range f.idp.order {
		out = append(out, *f.idp.people[k])
	}
	return out
}

// SignInAs makes every later authorization (the consent of an
// integration, or a sign-in) act as the person with this e-mail, until it
// is called again; "" goes back to DefaultPerson. The person picker
// (SetPersonPicker), when shown, lets the browser choose instead.
func (f *Fake) SignInAs(email string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := strings.ToLower(email)
	if email == "" {
		key = strings.ToLower(DefaultPerson.Email)
	}
	if _, ok := f.idp.people[key]; !ok {
		return fmt.Errorf("webexfake: no person %q (AddPerson first)", email)
	}
	f.idp.signInAs = key
	return nil
}

// SetPersonPicker makes the authorize endpoint show a page listing every
// person, on which a click signs in as that person and consents (or
// denies), as choosing an account on Webex's sign-in page does. Each
// person's button has the id PersonButtonID(email); the deny button's id
// is "deny". Off (the default), authorizations consent at once as the
// SignInAs person, or show the consent page (SetConsentPage).
func (f *Fake) SetPersonPicker(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.idp.picker = on
}

// PersonButtonID is the element id of a person's button on the picker:
// "signin-as-" followed by the e-mail in lower case, every character
// other than a-z and 0-9 replaced by "-".
func PersonButtonID(email string) string {
	var b strings.Builder
	b.WriteString("signin-as-")
	for _, r := range strings.ToLower(email) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// personLocked returns the person a grant names ("" or unknown: the
// default person).
func (f *Fake) personLocked(key string) Person {
	if p, ok := f.idp.people[key]; ok {
		return *p
	}
	return DefaultPerson
}

// AccessTokenPerson returns the person an access token acts as, and
// whether the fake knows the token.
func (f *Fake) AccessTokenPerson(accessToken string) (Person, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.access[accessToken]
	if !ok {
		return Person{}, false
	}
	return f.personLocked(g.person), true
}

// FailMeNext makes the next n calls of /v1/people/me show fault, after
// those already queued; FailMeAlways makes every later call show it, until
// ClearMeFaults. They are apart from the other endpoints' faults.
func (f *Fake) FailMeNext(n int, fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.idp.meFaults.queue(n, fault)
}

// FailMeAlways makes every call of /v1/people/me show fault once the
// queued ones are used up.
func (f *Fake) FailMeAlways(fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.idp.meFaults.always = &fault
}

// ClearMeFaults removes the faults of /v1/people/me.
func (f *Fake) ClearMeFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.idp.meFaults = faultQueue{}
}

// IdentityStats returns the identity endpoints' counters (ResetStats
// resets them too).
func (f *Fake) IdentityStats() IdentityStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.idp.stats
}

// meAnswer is the JSON of GET /v1/people/me, the fields Webex documents
// that the fake knows.
type meAnswer struct {
	ID          string   `json:"id"`
	Emails      []string `json:"emails"`
	DisplayName string   `json:"displayName"`
	OrgID       string   `json:"orgId"`
	Type        string   `json:"type"`
	Created     string   `json:"created"`
}

// serveMe answers GET /v1/people/me as Webex does: 401 without a valid
// bearer token, 403 when the token's scopes are known and lack
// spark:people_read, else the person the token acts as. Faults and
// latency apply as on the token endpoint.
func (f *Fake) serveMe(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeREST(w, restAnswer(http.StatusMethodNotAllowed, "The people endpoint accepts GET only."))
		return
	}
	f.mu.Lock()
	f.idp.stats.Me++
	fault, faulted := f.idp.meFaults.next()
	latency, stop := f.latency, f.stop
	f.mu.Unlock()

	if latency > 0 && !wait(r, latency, stop) {
		return
	}
	if faulted {
		answerFault(w, r, fault, stop)
		return
	}
	f.mu.Lock()
	a := f.meLocked(r.Header.Get("Authorization"))
	f.mu.Unlock()
	if a.status == http.StatusOK {
		writeJSON(w, a.status, a.body)
		return
	}
	writeREST(w, a)
}

func (f *Fake) meLocked(authorization string) answer {
	bearer, ok := strings.CutPrefix(authorization, "Bearer ")
	g, known := f.access[bearer]
	if !ok || !known || !f.now().Before(g.expires) {
		return restAnswer(http.StatusUnauthorized, "The request requires a valid access token set in the Authorization request header.")
	}
	if g.scopes != nil && !slices.Contains(g.scopes, PeopleReadScope) {
		return restAnswer(http.StatusForbidden, "The access token is missing required scopes: "+PeopleReadScope+".")
	}
	p := f.personLocked(g.person)
	return answer{http.StatusOK, meAnswer{ID: p.ID, Emails: []string{p.Email}, DisplayName: p.DisplayName, OrgID: p.OrgID,
		Type: "person", Created: "2020-01-01T00:00:00.000Z"}}
}

// newUUID returns a random version 4 UUID.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails, see crypto/rand
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

var pickerPage = template.Must(template.New("picker").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fake Webex: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:16px/1.5 system-ui,sans-serif;background:#f2f4f7;color:#1d2330;margin:0}
main{max-width:34rem;margin:4rem auto;background:#fff;border-radius:10px;padding:2rem;box-shadow:0 2px 10px #0002}
h1{font-size:1.4rem;margin-top:0} code{background:#eef;padding:0 .3em;border-radius:3px}
.note{color:#5b6472;font-size:.9rem} ul{list-style:none;padding:0}
li{margin:.5rem 0} .person{width:100%;text-align:left;background:#1d6bd1;color:#fff}
button{font:inherit;padding:.6rem 1.2rem;border-radius:6px;border:1px solid #1d6bd1;cursor:pointer}
#deny{background:#fff;color:#1d6bd1}
</style></head>
<body><main>
<p class="note">Fake Webex (local stack and tests): pick a person, no password.</p>
<h1>Sign in to <code>{{.ClientID}}</code> as</h1>
{{if .Scopes}}<p>It asks for: {{range $i, $s := .Scopes}}{{if $i}}, {{end}}<code>{{$s}}</code>{{end}}.</p>{{end}}
<form method="post" action="` + ConsentPath + `">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<input type="hidden" name="decision" value="approve">
<ul id="people">{{range .People}}
<li><button class="person" id="{{.ButtonID}}" type="submit" name="person" value="{{.Email}}">{{.DisplayName}} &lt;{{.Email}}&gt;</button></li>{{end}}
</ul>
</form>
<form method="post" action="` + ConsentPath + `">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<button id="deny" type="submit" name="decision" value="deny">Deny</button>
</form>
</main></body></html>
`))

func showPicker(w http.ResponseWriter, q url.Values, people []Person) {
	type entry struct{ ButtonID, Email, DisplayName string }
	data := struct {
		ClientID string
		Scopes   []string
		Hidden   []field
		People   []entry
	}{ClientID: q.Get("client_id"), Scopes: strings.Fields(q.Get("scope")), Hidden: hiddenFields(q)}
	for _, p := range people {
		data.People = append(data.People, entry{PersonButtonID(p.Email), p.Email, p.DisplayName})
	}
	writePage(w, pickerPage, data)
}
