package webexfake

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// ApplicationsPathPrefix starts the Service Apps endpoint's path:
// POST /v1/applications/{appId}/token mints a Service App's token pair.
const ApplicationsPathPrefix = "/v1/applications/"

// ApplicationsTokenScope is the scope the bearer token of a mint must
// hold.
const ApplicationsTokenScope = "spark:applications_token"

// applications is the state of the Service Apps endpoint: the apps, the
// scopes each client's grants carry, its faults and counters.
type applications struct {
	apps map[string]*serviceApp // by app ID
	// scopes: client ID → scopes of the tokens it is issued. A client
	// not in it is unrestricted: its tokens hold every scope.
	scopes map[string][]string
	faults faultQueue
	stats  MintStats
}

type serviceApp struct {
	clientID, clientSecret string
	orgs                   map[string]bool // orgs whose Full Admin authorized it
}

// MintStats counts the calls of the Service Apps endpoint.
type MintStats struct {
	// Calls counts every POST, faulted and refused ones too.
	Calls int
	// Minted counts the pairs issued.
	Minted int
	// ByApp counts calls by the app ID in the path.
	ByApp map[string]int
}

// applicationsPath returns the app ID of a Service Apps endpoint path.
func applicationsPath(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, ApplicationsPathPrefix)
	if !ok {
		return "", false
	}
	appID, ok := strings.CutSuffix(rest, "/token")
	return appID, ok && appID != "" && !strings.Contains(appID, "/")
}

// AddApp registers a Service App with its OAuth client (which refresh
// grants then accept, as AddClient) and authorizes it for orgs, as a
// Full Admin does in Control Hub.
func (f *Fake) AddApp(appID, clientID, clientSecret string, orgs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.apps.apps == nil {
		f.apps.apps = map[string]*serviceApp{}
	}
	a := &serviceApp{clientID: clientID, clientSecret: clientSecret, orgs: map[string]bool{}}
	for _, o := range orgs {
		a.orgs[o] = true
	}
	f.apps.apps[appID] = a
	f.clients[clientID] = clientSecret
}

// RemoveApp unregisters a Service App: mints answer 404. Its client stays.
func (f *Fake) RemoveApp(appID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.apps.apps, appID)
}

// AuthorizeApp authorizes a known Service App for org; DeauthorizeApp
// withdraws it (mints for org then answer 403).
func (f *Fake) AuthorizeApp(appID, org string) { f.setAuthorized(appID, org, true) }

// DeauthorizeApp withdraws a Service App's authorization for org.
func (f *Fake) DeauthorizeApp(appID, org string) { f.setAuthorized(appID, org, false) }

func (f *Fake) setAuthorized(appID, org string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.apps.apps[appID]; a != nil {
		if on {
			a.orgs[org] = true
		} else {
			delete(a.orgs, org)
		}
	}
}

// SetClientScopes sets the scopes that the access tokens issued to
// clientID from now on carry (codes and refresh grants alike), as the
// integration's scopes in the developer portal and a person's consent do.
// Until it is called for a client, the client's tokens hold every scope.
func (f *Fake) SetClientScopes(clientID string, scopes ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.apps.scopes == nil {
		f.apps.scopes = map[string][]string{}
	}
	f.apps.scopes[clientID] = append([]string{}, scopes...) // not nil: restricted
}

// IssueAccessToken makes a new valid access token for clientID, with the
// client's current scopes, that expires after ttl (the access lifetime if
// 0), and returns it. Use it to seed a manager whose token Webex knows.
func (f *Fake) IssueAccessToken(clientID string, ttl time.Duration) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ttl == 0 {
		ttl = f.expiresIn
	}
	at := random(AccessTokenPrefix)
	f.access[at] = accessGrant{clientID: clientID, expires: f.now().Add(ttl), scopes: f.apps.scopes[clientID], person: f.idp.signInAs}
	f.issued = append(f.issued, at)
	return at
}

// AddAccessToken makes accessToken valid for clientID until expires, with
// the client's current scopes. Use it to seed a value stored elsewhere.
func (f *Fake) AddAccessToken(clientID, accessToken string, expires time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.access[accessToken] = accessGrant{clientID: clientID, expires: expires, scopes: f.apps.scopes[clientID]}
	f.issued = append(f.issued, accessToken)
}

// RevokeAccessToken invalidates an access token: a mint with it as the
// bearer answers 401.
func (f *Fake) RevokeAccessToken(accessToken string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.access, accessToken)
}

// FailMintNext makes the next n calls of the Service Apps endpoint show
// fault (any kind but FaultInvalidGrant makes sense), after those
// already queued; FailMintAlways makes every later call show it, until
// ClearMintFaults. They are apart from the token endpoint's faults.
func (f *Fake) FailMintNext(n int, fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apps.faults.queue(n, fault)
}

// FailMintAlways makes every call of the Service Apps endpoint show fault
// once the queued ones are used up.
func (f *Fake) FailMintAlways(fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apps.faults.always = &fault
}

// ClearMintFaults removes the Service Apps endpoint's faults.
func (f *Fake) ClearMintFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apps.faults = faultQueue{}
}

// MintStats returns a copy of the Service Apps endpoint's counters
// (ResetStats resets them too).
func (f *Fake) MintStats() MintStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.apps.stats
	s.ByApp = make(map[string]int, len(f.apps.stats.ByApp))
	for k, v := range f.apps.stats.ByApp {
		s.ByApp[k] = v
	}
	return s
}

// restError is an error body of Webex's REST APIs (not OAuth's).
type restError struct {
	Message    string        `json:"message"`
	Errors     []errorDetail `json:"errors"`
	TrackingID string        `json:"trackingId"`
}

func restAnswer(status int, message string) answer {
	return answer{status, restError{Message: message, Errors: []errorDetail{{Description: message}}, TrackingID: random("FAKE_")}}
}

// serveApplications serves POST /v1/applications/{appID}/token with the
// checks Webex makes, in its order: a valid bearer token (401) holding
// spark:applications_token (403; a client whose scopes were never set
// holds every scope), a well-formed body (400), a known app
// (404), the app's own client ID and secret (400), an org that authorized
// the app (403). Faults and latency apply as on the token endpoint.
func (f *Fake) serveApplications(w http.ResponseWriter, r *http.Request, appID string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeREST(w, restAnswer(http.StatusMethodNotAllowed, "The applications token endpoint accepts POST only."))
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		writeREST(w, restAnswer(http.StatusBadRequest, "The request body cannot be read."))
		return
	}

	f.mu.Lock()
	f.apps.stats.Calls++
	if f.apps.stats.ByApp == nil {
		f.apps.stats.ByApp = map[string]int{}
	}
	f.apps.stats.ByApp[appID]++
	fault, faulted := f.apps.faults.next()
	latency, stop := f.latency, f.stop
	f.mu.Unlock()

	if latency > 0 && !wait(r, latency, stop) {
		return
	}
	if faulted && fault.Kind != FaultLostAnswer {
		answerFault(w, r, fault, stop)
		return
	}
	f.mu.Lock()
	a := f.mintLocked(r.Header.Get("Authorization"), appID, raw)
	f.mu.Unlock()
	if faulted {
		answerFault(w, r, fault, stop)
		return
	}
	if a.status == http.StatusOK {
		writeJSON(w, a.status, a.body)
		return
	}
	writeREST(w, a)
}

// mintLocked checks a mint as Webex does and issues the pair.
func (f *Fake) mintLocked(authorization, appID string, raw []byte) answer {
	now := f.now()
	bearer, ok := strings.CutPrefix(authorization, "Bearer ")
	g, known := f.access[bearer]
	if !ok || !known || !now.Before(g.expires) {
		return restAnswer(http.StatusUnauthorized, "The request requires a valid access token set in the Authorization request header.")
	}
	if g.scopes != nil && !slices.Contains(g.scopes, ApplicationsTokenScope) {
		return restAnswer(http.StatusForbidden, "The access token is missing required scopes: "+ApplicationsTokenScope+".")
	}
	var body struct {
		ClientID     string `json:"clientId"`
		ClientSecret string `json:"clientSecret"`
		TargetOrgID  string `json:"targetOrgId"`
	}
	if json.Unmarshal(raw, &body) != nil || body.ClientID == "" || body.ClientSecret == "" || body.TargetOrgID == "" {
		return restAnswer(http.StatusBadRequest, "clientId, clientSecret and targetOrgId are required.")
	}
	app := f.apps.apps[appID]
	if app == nil {
		return restAnswer(http.StatusNotFound, "The requested application was not found.")
	}
	if body.ClientID != app.clientID || body.ClientSecret != app.clientSecret {
		return restAnswer(http.StatusBadRequest, "The clientId or clientSecret does not match the application.")
	}
	if !app.orgs[body.TargetOrgID] {
		return restAnswer(http.StatusForbidden, "The application is not authorized for the target organization.")
	}
	f.apps.stats.Minted++
	a := f.issueAccessLocked(app.clientID, "", now)
	rt := random(RefreshTokenPrefix)
	f.refresh[rt] = refreshGrant{clientID: app.clientID, expires: now.Add(f.refreshExpiresIn)}
	f.issuedRefreshLocked(rt, f.refresh[rt])
	a.RefreshToken = rt
	a.RefreshTokenExpiresIn = seconds(f.refreshExpiresIn)
	return answer{http.StatusOK, a}
}

func writeREST(w http.ResponseWriter, a answer) {
	if e, ok := a.body.(restError); ok {
		w.Header().Set("Trackingid", e.TrackingID)
	}
	writeJSON(w, a.status, a.body)
}
