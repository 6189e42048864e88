package main

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestAdminTokensShowKind: GET /admin/tokens says each token's kind; a
// Service App's row has its app ID, target org and manager; orgId is
// there when it is known (a Service App's target org, the org a WxCC
// access token carries), and absent otherwise.
func TestAdminTokensShowKind(t *testing.T) {
	t.Parallel()
	w := newServiceAppWorld(t, 10*time.Hour)
	if r := w.put("app", w.app.Put("mgr")); r.code != 200 || r.body["minted"] != true {
		t.Fatalf("PUT: got %d %s, want minted", r.code, r.raw)
	}
	d := w.Doc("app")
	w.Secret(d["accessToken"].(string), d["refreshToken"].(string))
	const org = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	wxccToken := "wxcc-at-" + randomHex(8) + "_PF84_" + org
	w.Secret(wxccToken)
	w.seed("wxcc", 10*time.Hour, 60*24*time.Hour, map[string]any{"accessToken": wxccToken})

	r := get(t, w.a.url+"/admin/tokens", admin(nil))
	if r.code != 200 {
		t.Fatalf("GET /admin/tokens: got %d %s", r.code, r.raw)
	}
	rows := map[string]map[string]any{}
	for _, v := range r.body["tokens"].([]any) {
		row := v.(map[string]any)
		rows[row["name"].(string)] = row
	}
	app, mgr, wxcc := rows["app"], rows["mgr"], rows["wxcc"]
	if app == nil || mgr == nil || wxcc == nil {
		t.Fatalf("rows %v, want app, mgr and wxcc", r.raw)
	}
	if app["kind"] != "service_app" || app["appId"] != w.app.AppID || app["targetOrgId"] != w.app.OrgID ||
		app["manager"] != "mgr" || app["orgId"] != w.app.OrgID || app["status"] != "active" {
		t.Errorf("Service App row %v, want kind service_app, its appId, targetOrgId, manager mgr, orgId", app)
	}
	if wxcc["kind"] != "integration" || wxcc["orgId"] != org {
		t.Errorf("integration row %v, want kind integration and the org its access token carries", wxcc)
	}
	for _, field := range []string{"appId", "targetOrgId", "manager", "orgId"} {
		if _, ok := mgr[field]; ok {
			t.Errorf("integration mgr (no org in its token) has %s: %v", field, mgr)
		}
	}
	if mgr["kind"] != "integration" {
		t.Errorf("mgr's kind %v, want integration", mgr["kind"])
	}
}

// TestAuthorizeRefusesServiceApp: a Service App is minted, never
// authorized: GET /authorize and the console's Authorize with Webex both
// answer 409 saying so, and nothing goes to Webex.
func TestAuthorizeRefusesServiceApp(t *testing.T) {
	t.Parallel()
	w := newServiceAppWorld(t, 10*time.Hour)
	w.app.Seed(t, w.Firestore, w.Collection, "app", "mgr", nil)

	r := get(t, w.a.url+"/authorize?name=app", admin(nil))
	if r.code != http.StatusConflict || !strings.Contains(r.str("message"), "Service Apps are minted") || r.str("url") != "" {
		t.Errorf("GET /authorize?name=app: got %d %s, want 409 saying Service Apps are minted, not authorized", r.code, r.raw)
	}
	// The manager, an integration, still gets its link.
	if r := get(t, w.a.url+"/authorize?name=mgr", admin(nil)); r.code != 200 || r.str("url") == "" {
		t.Errorf("GET /authorize?name=mgr: got %d %s, want the link", r.code, r.raw)
	}

	c := (&consoleWorld{harness: w.harness, base: w.a.url}).client()
	c.signIn()
	resp, body := c.send(http.MethodPost, "/admin/token/app/authorize", url.Values{"csrf": {c.csrf()}}, map[string]string{"Origin": "same"})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "Service Apps are minted") {
		t.Errorf("console Authorize with Webex on a Service App: got %d, want 409 saying it is minted: %.400s", resp.StatusCode, body)
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		t.Errorf("console Authorize with Webex on a Service App redirected to %s", loc)
	}
	if st := w.Webex.MintStats(); st.Calls != 0 {
		t.Errorf("%d applications calls, want none", st.Calls)
	}
}

// TestConsoleServiceAppForms: the console's forms take a Service App as
// PUT does. One created with a client secret that is not the app's is
// created but not minted, and the page says why; saving the right
// secret resumes it and mints it; a Service App is refused as manager.
func TestConsoleServiceAppForms(t *testing.T) {
	t.Parallel()
	w := newServiceAppWorld(t, 10*time.Hour)
	c := (&consoleWorld{harness: w.harness, base: w.a.url}).client()
	c.signIn()
	csrf := c.csrf()
	form := func(name, secret, manager string) url.Values {
		return url.Values{"csrf": {csrf}, "kind": {"service_app"}, "name": {name}, "appId": {w.app.AppID}, "clientId": {w.app.ClientID},
			"clientSecret": {secret}, "targetOrgId": {w.app.OrgID}, "manager": {manager}}
	}
	same := map[string]string{"Origin": "same"}
	wrong := "not-the-app-secret-" + randomHex(6)
	w.Secret(wrong)

	resp, body := c.send(http.MethodPost, "/admin/new", form("app", wrong, "mgr"), same)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Service App created, but not minted: ") ||
		!strings.Contains(body, "does not match the application") {
		t.Fatalf("create with a wrong client secret: got %d, want the page saying it was not minted and why: %.600s", resp.StatusCode, flashOf(body))
	}
	if d := w.Doc("app"); d["status"] != "config_error" || d["kind"] != "service_app" {
		t.Fatalf("document after a refused mint: status %v kind %v, want config_error, service_app", d["status"], d["kind"])
	}

	f := form("app", w.app.ClientSecret, "mgr")
	f.Del("name")
	resp, _ = c.send(http.MethodPost, "/admin/token/app/config", f, same)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/admin/token/app?done=saved_minted" {
		t.Fatalf("saving the right client secret: got %d to %q, want a redirect saying it was minted", resp.StatusCode, loc)
	}
	if _, body := c.send(http.MethodGet, "/admin/token/app?done=saved_minted", nil, nil); !strings.Contains(flashOf(body), "Service App config saved and minted") {
		t.Errorf("after saving: the page says %q", flashOf(body))
	}
	d := w.Doc("app")
	w.Secret(d["accessToken"].(string), d["refreshToken"].(string))
	if d["status"] != "active" {
		t.Errorf("after saving the right secret: status %v, want active", d["status"])
	}
	if st := w.Webex.MintStats(); st.Calls != 2 || st.Minted != 1 {
		t.Errorf("applications calls %+v, want the refused one and one mint", st)
	}

	resp, body = c.send(http.MethodPost, "/admin/new", form("app2", w.app.ClientSecret, "app"), same)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(flashOf(body), "itself a Service App") {
		t.Errorf("a Service App as manager: got %d %q, want 400 saying it is itself a Service App", resp.StatusCode, flashOf(body))
	}
	if r := get(t, w.a.url+"/?name=app2", map[string]string{"x-token-passphrase": w.Env["TOKEN_PASSPHRASE"]}); r.code != 404 {
		t.Errorf("the refused Service App exists: %d", r.code)
	}
}

// flashOf is the text of a console page's message, or the whole page.
func flashOf(body string) string {
	i := strings.Index(body, `id="flash"`)
	if i < 0 {
		return body
	}
	rest := body[i:]
	if j := strings.Index(rest, "</p>"); j >= 0 {
		rest = rest[:j]
	}
	return html.UnescapeString(rest[strings.IndexByte(rest, '>')+1:])
}
