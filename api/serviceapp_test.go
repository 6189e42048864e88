package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/testing/testkit"
	"github.com/wxcc/tokenservice/shared/token"
)

// serviceAppWorld is a harness with admin on, a manager integration
// "mgr" whose grants hold spark:applications_token, and a Service App
// registered with the fake Webex.
type serviceAppWorld struct {
	*harness
	a   *api
	mgr testkit.Seeded
	app testkit.ServiceApp
}

func newServiceAppWorld(t *testing.T, managerAccessLeft time.Duration) *serviceAppWorld {
	t.Helper()
	h := newHarness(t, map[string]string{"ADMIN_PASSPHRASE": adminPass})
	h.Secret(adminPass)
	w := &serviceAppWorld{harness: h, a: h.startAPI(nil)}
	w.mgr = testkit.SeedManager(t, h.Firestore, h.Collection, "mgr", h.Webex.Fake, managerAccessLeft, 60*24*time.Hour)
	h.Secret(w.mgr.Secrets()...)
	w.app = testkit.NewServiceApp(h.Webex.Fake)
	h.Secret(w.app.ClientSecret)
	return w
}

// put sends PUT /admin/tokens/name with body.
func (w *serviceAppWorld) put(name string, body map[string]any) reply {
	w.T.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		w.T.Fatal(err)
	}
	return do(w.T, http.MethodPut, w.a.url+"/admin/tokens/"+name, string(b), admin(nil))
}

// events lists the events published for name as type/trigger, once
// nothing new has arrived for a moment.
func (w *serviceAppWorld) events(name string) []string {
	w.T.Helper()
	var out []string
	seen := map[string]bool{}
	for _, m := range w.harness.events.WaitFor(w.T, 0, time.Second) {
		if m.Attributes["name"] != name || seen[m.Attributes["ce-id"]] {
			continue // another token's, or a duplicate
		}
		seen[m.Attributes["ce-id"]] = true
		var data struct{ Trigger string }
		json.Unmarshal(m.Data, &data)
		out = append(out, m.Attributes["ce-type"]+"/"+data.Trigger)
	}
	return out
}

// TestServiceAppCreated: PUT creates a Service App and mints it once; GET
// serves it like any token, with its orgId; token.rotated has trigger mint.
func TestServiceAppCreated(t *testing.T) {
	t.Parallel()
	w := newServiceAppWorld(t, 10*time.Hour)
	r := w.put("app", w.app.Put("mgr"))
	if r.code != 200 || r.body["created"] != true || r.body["minted"] != true || r.str("tokenStatus") != "active" {
		t.Fatalf("PUT: got %d %s, want created and minted", r.code, r.raw)
	}
	d := w.Doc("app")
	w.Secret(d["accessToken"].(string), d["refreshToken"].(string))
	if d["kind"] != "service_app" || d["appId"] != w.app.AppID || d["targetOrgId"] != w.app.OrgID || d["manager"] != "mgr" ||
		d["orgId"] != w.app.OrgID || d["status"] != "active" || d["generation"] != int64(1) || d["accessToken"] == "" {
		t.Fatalf("document: %v", d)
	}
	if st := w.Webex.MintStats(); st.Calls != 1 || st.Minted != 1 {
		t.Fatalf("got %+v, want one applications call", st)
	}
	if st := w.Webex.Stats(); st.Refreshes != 0 {
		t.Fatalf("got %d refreshes, want none: the manager's token was fresh", st.Refreshes)
	}
	got := w.token(w.a, "app")
	if got.code != 200 || got.str("token") != d["accessToken"] || got.str("orgId") != w.app.OrgID || got.str("expiresAt") == "" {
		t.Fatalf("GET: got %d %s, want the minted token and orgId", got.code, got.raw)
	}
	if ev := w.events("app"); len(ev) != 1 || ev[0] != "token.rotated/mint" {
		t.Fatalf("events %v, want one token.rotated with trigger mint", ev)
	}
	// A second PUT (a passphrase) leaves the tokens alone and mints nothing.
	if r := w.put("app", map[string]any{"passphrase": "only-for-this-service-app"}); r.code != 200 || r.body["minted"] != nil {
		t.Fatalf("second PUT: got %d %s", r.code, r.raw)
	}
	if st := w.Webex.MintStats(); st.Calls != 1 || w.Doc("app")["accessToken"] != d["accessToken"] {
		t.Fatalf("a PUT on a minted Service App minted again (%+v)", st)
	}
}

// TestServiceAppManagerRefreshedFirst: the manager's access token has
// expired but it can be refreshed: one refresh, then one mint.
func TestServiceAppManagerRefreshedFirst(t *testing.T) {
	t.Parallel()
	w := newServiceAppWorld(t, -time.Minute)
	if r := w.put("app", w.app.Put("mgr")); r.code != 200 || r.body["minted"] != true {
		t.Fatalf("PUT: got %d %s, want minted", r.code, r.raw)
	}
	w.Secret(w.Doc("mgr")["accessToken"].(string), w.Doc("app")["accessToken"].(string))
	if st, ms := w.Webex.Stats(), w.Webex.MintStats(); st.Refreshes != 1 || st.ByClient[w.mgr.ClientID] != 1 || ms.Calls != 1 {
		t.Fatalf("got %d refreshes (%v) and %d mints, want 1 of the manager and 1", st.Refreshes, st.ByClient, ms.Calls)
	}
	if ev := w.events("mgr"); len(ev) != 1 || !strings.HasPrefix(ev[0], "token.rotated/") {
		t.Fatalf("manager events %v, want its refresh", ev)
	}
}

// TestServiceAppManagerTokenRefused: Webex refuses the manager's token
// although it has hours left: the manager is refreshed once, the mint
// retried.
func TestServiceAppManagerTokenRefused(t *testing.T) {
	t.Parallel()
	w := newServiceAppWorld(t, 10*time.Hour)
	w.Webex.RevokeAccessToken(w.mgr.AccessToken)
	if r := w.put("app", w.app.Put("mgr")); r.code != 200 || r.body["minted"] != true {
		t.Fatalf("PUT: got %d %s, want minted", r.code, r.raw)
	}
	w.Secret(w.Doc("mgr")["accessToken"].(string), w.Doc("app")["accessToken"].(string))
	if st, ms := w.Webex.Stats(), w.Webex.MintStats(); st.Refreshes != 1 || ms.Calls != 2 || ms.Minted != 1 {
		t.Fatalf("got %d refreshes, %+v, want 1 refresh and 2 applications calls", st.Refreshes, ms)
	}
}

func TestServiceAppPutValidation(t *testing.T) {
	t.Parallel()
	w := newServiceAppWorld(t, 10*time.Hour)
	w.put("other-app", w.app.Put("mgr")) // an existing Service App
	calls := w.Webex.MintStats().Calls
	body := func(mod func(map[string]any)) map[string]any {
		b := w.app.Put("mgr")
		mod(b)
		return b
	}
	tests := []struct {
		name string
		body map[string]any
	}{
		{"no appId", body(func(b map[string]any) { delete(b, "appId") })},
		{"no clientId", body(func(b map[string]any) { delete(b, "clientId") })},
		{"no clientSecret", body(func(b map[string]any) { delete(b, "clientSecret") })},
		{"no targetOrgId", body(func(b map[string]any) { delete(b, "targetOrgId") })},
		{"no manager", body(func(b map[string]any) { delete(b, "manager") })},
		{"manager does not exist", body(func(b map[string]any) { b["manager"] = "nobody" })},
		{"manager is a Service App", body(func(b map[string]any) { b["manager"] = "other-app" })},
		{"manages itself", body(func(b map[string]any) { b["manager"] = "new-app" })},
		{"manager not a name", body(func(b map[string]any) { b["manager"] = "../mgr" })},
		{"empty appId", body(func(b map[string]any) { b["appId"] = "" })},
		{"appId ..", body(func(b map[string]any) { b["appId"] = ".." })},
		{"appId with a slash", body(func(b map[string]any) { b["appId"] = "a/b" })},
		{"unknown kind", body(func(b map[string]any) { b["kind"] = "bot" })},
		{"Service App fields on an integration", body(func(b map[string]any) { delete(b, "kind"); b["redirectUri"] = "https://x.example.com/cb" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := w.put("new-app", tt.body)
			if r.code != 400 || r.str("message") == "" {
				t.Fatalf("got %d %s, want 400 with a message", r.code, r.raw)
			}
			for _, s := range w.Secrets() {
				if strings.Contains(r.raw, s) {
					t.Fatalf("the answer shows a secret: %s", r.raw)
				}
			}
			if _, err := w.Firestore.Collection(w.Collection).Doc("new-app").Get(context.Background()); err == nil {
				t.Fatal("a refused PUT created the document")
			}
		})
	}
	// An integration with tokens cannot become a Service App.
	if r := w.put("mgr", map[string]any{"kind": "service_app"}); r.code != 400 {
		t.Fatalf("turning the manager into a Service App: got %d %s, want 400", r.code, r.raw)
	}
	if st := w.Webex.MintStats(); st.Calls != calls {
		t.Fatalf("refused PUTs called the applications endpoint %d times", st.Calls-calls)
	}
}

// TestServiceAppConcurrentGets: 200 callers on two api instances ask for
// a Service App whose refresh token lapsed and whose access token is
// due: exactly one applications call, and every caller is served.
func TestServiceAppConcurrentGets(t *testing.T) {
	t.Parallel()
	w := newServiceAppWorld(t, 10*time.Hour)
	b := w.startAPI(nil)
	now := time.Now()
	w.app.Seed(t, w.Firestore, w.Collection, "app", "mgr", map[string]any{
		"accessToken": "sa-old-at-" + randomHex(8), "refreshToken": "sa-old-rt-" + randomHex(8), "status": "active",
		"accessExpires": now.Add(20 * time.Minute).UnixMilli(), "refreshExpires": now.Add(-time.Minute).UnixMilli(),
	})
	w.Secret(w.Doc("app")["accessToken"].(string), w.Doc("app")["refreshToken"].(string))
	w.Webex.SetLatency(100 * time.Millisecond)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	tokens := map[string]bool{}
	for i := 0; i < 200; i++ {
		a := w.a
		if i%2 == 1 {
			a = b
		}
		wg.Go(func() {
			r := testkit.Do(t, http.MethodGet, a.url+"/?name=app", "", map[string]string{"x-token-passphrase": w.Env["TOKEN_PASSPHRASE"]})
			var body map[string]any
			_ = json.Unmarshal(r.Body, &body)
			mu.Lock()
			defer mu.Unlock()
			codes[r.Code]++
			if s, _ := body["token"].(string); s != "" {
				tokens[s] = true
			}
		})
	}
	wg.Wait()
	d := w.Doc("app")
	w.Secret(d["accessToken"].(string), d["refreshToken"].(string))
	if st := w.Webex.MintStats(); st.Calls != 1 {
		t.Fatalf("got %d applications calls, want exactly 1", st.Calls)
	}
	if st := w.Webex.Stats(); st.Refreshes != 0 {
		t.Fatalf("got %d refreshes, want none: a lapsed refresh token is not sent", st.Refreshes)
	}
	if codes[200] != 200 {
		t.Fatalf("got codes %v, want 200 OK for every caller", codes)
	}
	if d["generation"] != int64(1) || d["status"] != "active" {
		t.Fatalf("document after the mint: %v", d)
	}
	if ev := w.events("app"); len(ev) != 1 || ev[0] != "token.rotated/mint" {
		t.Fatalf("events %v, want one token.rotated with trigger mint", ev)
	}
}

// TestServiceAppConfigErrors: an unknown app or a wrong client secret is
// config_error, with no retry loop; a PUT fixing it resumes.
func TestServiceAppConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		wrong func(b map[string]any)
		fix   func(w *serviceAppWorld) map[string]any
	}{
		{"unknown app", func(b map[string]any) { b["appId"] = "not-an-app" },
			func(w *serviceAppWorld) map[string]any { return map[string]any{"appId": w.app.AppID} }},
		{"wrong client secret", func(b map[string]any) { b["clientSecret"] = "not-the-secret" },
			func(w *serviceAppWorld) map[string]any { return map[string]any{"clientSecret": w.app.ClientSecret} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newServiceAppWorld(t, 10*time.Hour)
			body := w.app.Put("mgr")
			tt.wrong(body)
			r := w.put("app", body)
			if r.code != 200 || r.body["created"] != true || r.body["minted"] != false || r.str("tokenStatus") != "config_error" {
				t.Fatalf("PUT: got %d %s, want created, not minted, config_error", r.code, r.raw)
			}
			if d := w.Doc("app"); d["status"] != "config_error" {
				t.Fatalf("document status %v, want config_error", d["status"])
			}
			for i := 0; i < 3; i++ {
				if g := w.token(w.a, "app"); g.code != 503 {
					t.Fatalf("GET %d: got %d %s, want 503", i, g.code, g.raw)
				}
			}
			if st := w.Webex.MintStats(); st.Calls != 1 {
				t.Fatalf("got %d applications calls, want 1: no retry loop", st.Calls)
			}
			r = w.put("app", tt.fix(w))
			if r.code != 200 || r.body["minted"] != true || r.str("tokenStatus") != "active" {
				t.Fatalf("fixing PUT: got %d %s, want minted", r.code, r.raw)
			}
			d := w.Doc("app")
			w.Secret(d["accessToken"].(string), d["refreshToken"].(string))
			if g := w.token(w.a, "app"); g.code != 200 || g.str("token") != d["accessToken"] {
				t.Fatalf("GET after the fix: got %d %s", g.code, g.raw)
			}
		})
	}
}

// TestOrgIDInTokenBody: an integration's body carries the org ID its WxCC
// access token holds after the last "_"; one without has no orgId.
func TestOrgIDInTokenBody(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	a := h.startAPI(nil)
	const org = "1eb65fdf-9643-417f-9974-ad72cae0e10f"
	wxcc := "NjFmZjY1YzgtYjQ5" + randomHex(8) + "_PF84_" + org
	h.seed("wxcc", 10*time.Hour, 30*24*time.Hour, map[string]any{"accessToken": wxcc})
	h.Secret(wxcc)
	h.seed("plain", 10*time.Hour, 30*24*time.Hour, nil)
	if r := h.token(a, "wxcc"); r.code != 200 || r.str("orgId") != org || r.str("token") != wxcc {
		t.Fatalf("got %d %s, want orgId %s", r.code, r.raw, org)
	}
	if r := h.token(a, "plain"); r.code != 200 || r.body["orgId"] != nil {
		t.Fatalf("got %d %s, want no orgId", r.code, r.raw)
	}
}

// TestTokenBodyOrgID: the hand-written body is valid JSON with orgId when
// known, and stays one allocation on the hot path.
func TestTokenBodyOrgID(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name string
		tok  tokenT
		org  any
	}{
		{"service app", tokenT{Kind: "service_app", TargetOrgID: "org-1", AccessToken: "at", AccessExpires: now.Add(time.Hour)}, "org-1"},
		{"odd characters escaped", tokenT{Kind: "service_app", TargetOrgID: "org-\"1\"", AccessToken: "at", AccessExpires: now.Add(time.Hour)}, `org-"1"`},
		{"wxcc integration", tokenT{AccessToken: "x_PF84_1eb65fdf-9643-417f-9974-ad72cae0e10f", AccessExpires: now.Add(time.Hour)},
			"1eb65fdf-9643-417f-9974-ad72cae0e10f"},
		{"unknown", tokenT{AccessToken: "at", AccessExpires: now.Add(time.Hour)}, nil},
	}
	for _, tt := range tests {
		var body map[string]any
		if err := json.Unmarshal(tokenBody(&tt.tok, now), &body); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if body["orgId"] != tt.org || body["token"] != tt.tok.AccessToken || body["status"] != "200" {
			t.Errorf("%s: got %v, want orgId %v", tt.name, body, tt.org)
		}
		if n := testing.AllocsPerRun(100, func() { tokenBody(&tt.tok, now) }); n != 1 && tt.name != "odd characters escaped" {
			t.Errorf("%s: tokenBody allocates %v times, want 1", tt.name, n)
		}
	}
}

// TestServiceAppWaitingForManagerSaysSo: a Service App whose manager
// must be authorized again (and has no usable access token left) answers
// 409 naming that, on the JSON Refresh now and on GET, never the
// integration's "its refresh token expired or was revoked".
func TestServiceAppWaitingForManagerSaysSo(t *testing.T) {
	t.Parallel()
	w := newServiceAppWorld(t, -time.Minute)
	if _, err := w.Firestore.Collection(w.Collection).Doc("mgr").Set(context.Background(),
		map[string]any{"status": "reauth_required"}, gfs.MergeAll); err != nil {
		t.Fatal(err)
	}
	r := w.put("app", w.app.Put("mgr"))
	if r.code != 200 || r.body["minted"] == true {
		t.Fatalf("PUT: got %d %s, want created but not minted", r.code, r.raw)
	}
	r = do(t, http.MethodPost, w.a.url+"/admin/tokens/app/refresh", "", admin(nil))
	if r.code != 409 || !strings.Contains(r.str("message"), "manager") {
		t.Fatalf("refresh now: got %d %s, want 409 naming the manager", r.code, r.raw)
	}
	if r := w.token(w.a, "app"); r.code != 409 || !strings.Contains(r.str("message"), "manager") {
		t.Fatalf("GET: got %d %s, want 409 naming the manager", r.code, r.raw)
	}
	if n := w.Webex.MintStats().Calls; n != 0 {
		t.Fatalf("got %d applications calls while the manager needs re-authorization, want 0", n)
	}
}

// tokenBody is the success body of t, in a buffer of its own.
func tokenBody(t *token.Token, now time.Time) []byte {
	return appendTokenBody(make([]byte, 0, 112+len(t.AccessToken)+len(t.Org())), t, now)
}
