package main

import (
	"context"
	"net/http"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/firestore"
	"github.com/wxcc/tokenservice/shared/testing/testkit"
	"github.com/wxcc/tokenservice/shared/testing/webexfake"
	"github.com/wxcc/tokenservice/shared/token"
)

func TestRefreshNow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"ADMIN_PASSPHRASE": adminPass})
	h.Secret(adminPass)
	a := h.startAPI(nil)
	at, _ := h.seed("fresh", 10*time.Hour, 30*24*time.Hour, nil)
	h.seed("revoked", 10*time.Hour, 30*24*time.Hour, nil)
	h.Webex.RevokeRefreshToken(h.Doc("revoked")["refreshToken"].(string))
	h.raw("unauthorized", map[string]any{"clientId": "c", "clientSecret": "s", "redirectUri": "https://x.example/callback"})

	if r := do(t, http.MethodPost, a.url+"/admin/tokens/fresh/refresh", "", nil); r.code != 401 {
		t.Fatalf("without a passphrase: got %d, want 401", r.code)
	}
	start := time.Now()
	r := do(t, http.MethodPost, a.url+"/admin/tokens/fresh/refresh", "", admin(nil))
	if r.code != 200 {
		t.Fatalf("refresh of a fresh token: got %d %s, want 200", r.code, r.raw)
	}
	exp, _ := time.Parse(time.RFC3339, r.str("expiresAt"))
	if d := exp.Sub(start); d < 11*time.Hour || d > 13*time.Hour {
		t.Errorf("new expiry %s, want about 12 h from now", r.str("expiresAt"))
	}
	if g, _ := r.body["generation"].(float64); g != 1 {
		t.Errorf("generation %v, want 1", r.body["generation"])
	}
	if calls := h.Webex.Stats().Refreshes; calls != 1 {
		t.Errorf("Webex refresh calls %d, want 1", calls)
	}
	served := h.token(a, "fresh")
	if served.str("token") == at || !strings.HasPrefix(served.str("token"), "fake-at-") {
		t.Errorf("after Refresh now the api serves %q, want the new token", served.str("token"))
	}
	h.Secret(served.str("token"))

	for _, tc := range []struct {
		name string
		want int
	}{
		{"revoked", 409}, {"unauthorized", 409}, {"missing", 404}, {"__bad__", 400},
	} {
		if r := do(t, http.MethodPost, a.url+"/admin/tokens/"+tc.name+"/refresh", "", admin(nil)); r.code != tc.want {
			t.Errorf("%s: got %d %s, want %d", tc.name, r.code, r.raw, tc.want)
		}
	}
	if got := h.Doc("revoked")["status"]; got != "reauth_required" {
		t.Errorf("revoked token's status %v after a refused refresh, want reauth_required", got)
	}
	// Webex down: the failure's own status (503 with Retry-After).
	h.Webex.FailNext(1, webexUnavailable())
	r = do(t, http.MethodPost, a.url+"/admin/tokens/fresh/refresh", "", admin(nil))
	if r.code != 503 || r.header.Get("Retry-After") == "" {
		t.Errorf("with Webex failing: got %d (Retry-After %q), want 503 with Retry-After", r.code, r.header.Get("Retry-After"))
	}
}

// TestRefreshNowOneCallAcrossInstances: two instances asked at once make
// one Webex call; both answer 200.
func TestRefreshNowOneCallAcrossInstances(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"ADMIN_PASSPHRASE": adminPass})
	h.Secret(adminPass)
	a, b := h.startAPI(nil), h.startAPI(nil)
	h.seed("shared", 10*time.Hour, 30*24*time.Hour, nil)
	h.Webex.SetLatency(300 * time.Millisecond)
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i, inst := range []*api{a, b} {
		wg.Go(func() {
			codes[i] = do(t, http.MethodPost, inst.url+"/admin/tokens/shared/refresh", "", admin(nil)).code
		})
	}
	wg.Wait()
	if codes[0] != 200 || codes[1] != 200 {
		t.Errorf("got %v, want 200 from both", codes)
	}
	if calls := h.Webex.Stats().Refreshes; calls != 1 {
		t.Errorf("Webex refresh calls %d, want 1", calls)
	}
}

func TestDeleteToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"ADMIN_PASSPHRASE": adminPass})
	h.Secret(adminPass)
	a := h.startAPI(nil)
	h.seed("doomed", 10*time.Hour, 30*24*time.Hour, nil)
	if r := h.token(a, "doomed"); r.code != 200 {
		t.Fatalf("before: got %d", r.code)
	}
	if r := do(t, http.MethodDelete, a.url+"/admin/tokens/doomed", "", nil); r.code != 401 {
		t.Fatalf("without a passphrase: got %d, want 401", r.code)
	}
	r := do(t, http.MethodDelete, a.url+"/admin/tokens/doomed", "", admin(nil))
	if r.code != 200 {
		t.Fatalf("delete: got %d %s", r.code, r.raw)
	}
	if snap, err := h.Firestore.Collection(h.Collection).Doc("doomed").Get(context.Background()); err == nil && snap.Exists() {
		t.Error("the document is still there")
	}
	if r := h.token(a, "doomed"); r.code != 404 {
		t.Errorf("the deleted token is still served by the instance that deleted it: %d", r.code)
	}
	// The event reaches Pub/Sub (the harness's topic). Reading the outbox
	// instead raced with the api's own delivery, which empties it.
	waitEvent(t, h.events, "doomed", string(token.EventDeleted), string(token.TriggerManual))
	if r := do(t, http.MethodDelete, a.url+"/admin/tokens/doomed", "", admin(nil)); r.code != 404 {
		t.Errorf("second delete: got %d, want 404", r.code)
	}
}

// TestDeletePublishes runs the real api: token.deleted reaches Pub/Sub.
func TestDeletePublishes(t *testing.T) {
	t.Parallel()
	w := newConsoleWorld(t, nil)
	w.seed("published", 10*time.Hour, 30*24*time.Hour, nil)
	if r := do(t, http.MethodDelete, w.base+"/admin/tokens/published", "", admin(nil)); r.code != 200 {
		t.Fatalf("delete: got %d %s", r.code, r.raw)
	}
	waitEvent(t, w.events, "published", "token.deleted", "manual")
}

func TestAdminStatus(t *testing.T) {
	t.Parallel()
	// A configuration without weaknesses: no start-up warnings.
	h := newHarness(t, map[string]string{"ADMIN_PASSPHRASE": adminPass,
		"CORS_ALLOW_ORIGINS": "https://desktop.example.com", "ALLOWED_CIDRS": "127.0.0.0/8"})
	h.Secret(adminPass)
	a := h.startAPI(nil)
	url := a.url + "/admin/status"
	if r := get(t, url, nil); r.code != 401 {
		t.Fatalf("without a passphrase: got %d, want 401", r.code)
	}
	r := get(t, url, admin(nil))
	if r.code != 200 || r.body["lastSweep"] != nil {
		t.Fatalf("empty: got %d %s, want 200 with lastSweep null", r.code, r.raw)
	}
	if w, ok := r.body["warnings"].([]any); !ok || len(w) != 0 {
		t.Errorf("warnings %v, want []", r.body["warnings"])
	}
	h.seed("one", 10*time.Hour, 30*24*time.Hour, nil)
	h.seed("two", 10*time.Hour, 30*24*time.Hour, map[string]any{"status": "reauth_required"})
	h.raw("three", map[string]any{"clientId": "c"})
	store := firestore.New(h.Firestore, h.Collection, firestore.WithMetaCollection(h.Env["META_COLLECTION"]))
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	if err := store.RecordSweep(context.Background(), token.SweepRecord{At: at, Instance: "worker-1", Scanned: 3, Due: 1, Refreshed: 1, Halted: true, Error: "brake"}); err != nil {
		t.Fatal(err)
	}
	// A fresh instance: the first one keeps its listing for overviewTTL.
	r = get(t, h.startAPI(nil).url+"/admin/status", admin(nil))
	counts, _ := r.body["counts"].(map[string]any)
	for st, want := range map[string]float64{"active": 1, "reauth_required": 1, "pending": 1, "config_error": 0} {
		if counts[st] != want {
			t.Errorf("counts[%s] = %v, want %v (%s)", st, counts[st], want, r.raw)
		}
	}
	sweep, _ := r.body["lastSweep"].(map[string]any)
	if sweep["at"] != float64(at.UnixMilli()) || sweep["instance"] != "worker-1" || sweep["refreshed"] != float64(1) || sweep["halted"] != true {
		t.Errorf("lastSweep %v", sweep)
	}
}

// raw writes a document's fields as another writer would.
func (h *harness) raw(name string, fields map[string]any) {
	h.T.Helper()
	if _, err := h.Firestore.Collection(h.Collection).Doc(name).Set(context.Background(), fields); err != nil {
		h.T.Fatal(err)
	}
}

// TestFailedAuthorizationIsRecorded: every way /callback can fail for a
// known token is stored in its lastError, with the status the caller gets.
func TestFailedAuthorizationIsRecorded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"ADMIN_PASSPHRASE": adminPass})
	h.Secret(adminPass)
	a := h.startAPI(nil)
	s := testkit.Seed(t, h.Firestore, h.Collection, "onboard", h.Webex.Fake, 0, 0)
	h.Secret(s.Secrets()...)
	h.raw("onboard", map[string]any{"clientId": s.ClientID, "clientSecret": s.ClientSecret,
		"redirectUri": "https://flows.example.com/callback", "scopes": []any{"spark:kms"}})
	h.raw("incomplete", map[string]any{"clientId": "c", "scopes": []any{"spark:kms"}})
	link := func(name string) string {
		t.Helper()
		r := get(t, a.url+"/authorize?name="+name, admin(nil))
		if r.code != 200 {
			t.Fatalf("authorize %s: %d %s", name, r.code, r.raw)
		}
		return stateOf(t, r.str("url"))
	}
	lastError := func(name string) string {
		le, _ := h.Doc(name)["lastError"].(map[string]any)
		m, _ := le["message"].(string)
		return m
	}
	callback := func(q string) reply { return get(t, a.url+"/callback?"+q, nil) }

	// The client secret is wrong at Webex: 502.
	h.Webex.AddClient(s.ClientID, "changed-"+randomHex(4))
	code := h.Webex.IssueCode(s.ClientID, "https://flows.example.com/callback")
	if r := callback("code=" + code + "&state=" + link("onboard")); r.code != 502 {
		t.Fatalf("wrong secret: got %d %s, want 502", r.code, r.raw)
	}
	if m := lastError("onboard"); !strings.Contains(m, "rejected the client credentials") || !strings.Contains(m, "invalid_client") {
		t.Errorf("wrong secret recorded as %q", m)
	}
	h.Webex.AddClient(s.ClientID, s.ClientSecret)

	// Webex unreachable: 503.
	h.Webex.FailNext(1, webexUnavailable())
	code = h.Webex.IssueCode(s.ClientID, "https://flows.example.com/callback")
	if r := callback("code=" + code + "&state=" + link("onboard")); r.code != 503 {
		t.Fatalf("webex down: got %d, want 503", r.code)
	}
	if m := lastError("onboard"); !strings.Contains(m, "webex is unavailable") {
		t.Errorf("webex down recorded as %q", m)
	}
	if le := h.Doc("onboard")["lastError"].(map[string]any); le["permanent"] != false {
		t.Errorf("an outage was recorded as permanent: %v", le)
	}

	// The code rejected: 400.
	if r := callback("code=fake-code-bogus&state=" + link("onboard")); r.code != 400 {
		t.Fatalf("bad code: got %d, want 400", r.code)
	}
	if m := lastError("onboard"); !strings.Contains(m, "rejected the authorization code") {
		t.Errorf("bad code recorded as %q", m)
	}

	// The state used twice: 400.
	state := link("onboard")
	code = h.Webex.IssueCode(s.ClientID, "https://flows.example.com/callback")
	if r := callback("code=" + code + "&state=" + state); r.code != 200 {
		t.Fatalf("authorize: got %d %s", r.code, r.raw)
	}
	if le := h.Doc("onboard")["lastError"]; le != nil {
		t.Errorf("a successful authorization left lastError %v", le)
	}
	if r := callback("code=" + code + "&state=" + state); r.code != 400 || !strings.Contains(r.str("message"), "already used") {
		t.Fatalf("reused state: got %d %s, want 400 saying it was used", r.code, r.raw)
	}
	// A used state proves nothing: nothing is recorded (issue 20, finding 1).
	if le := h.Doc("onboard")["lastError"]; le != nil {
		t.Errorf("a reused state was recorded as %v", le)
	}
	// Nor is an error redirect with a used state, however often it comes.
	for range 3 {
		if r := callback("error=access_denied&error_description=forged&state=" + state); r.code != 400 {
			t.Fatalf("error redirect with a used state: got %d, want 400", r.code)
		}
	}
	if le := h.Doc("onboard")["lastError"]; le != nil {
		t.Errorf("an error redirect with a used state was recorded as %v", le)
	}
	if st := h.Doc("onboard")["status"]; st != "active" {
		t.Errorf("a replayed callback changed the status to %v", st)
	}

	// The person declined at Webex: 400.
	if r := callback("error=access_denied&error_description=The+user+denied+access.&state=" + link("onboard")); r.code != 400 {
		t.Fatalf("declined: got %d, want 400", r.code)
	}
	if m := lastError("onboard"); !strings.Contains(m, "access_denied") {
		t.Errorf("declined recorded as %q", m)
	}

	// Client config incomplete: 409.
	state = link2(t, a, "incomplete")
	if r := callback("code=fake-code-x&state=" + state); r.code != 409 {
		t.Fatalf("incomplete config: got %d, want 409", r.code)
	}
	if m := lastError("incomplete"); !strings.Contains(m, "no complete client config") {
		t.Errorf("incomplete config recorded as %q", m)
	}
}

// link2 issues a state for a token /authorize refuses (incomplete config),
// with the signer the api uses.
func link2(t *testing.T, a *api, name string) string {
	t.Helper()
	state, _, _, err := a.srv.signer.Issue(name)
	if err != nil {
		t.Fatal(err)
	}
	return state
}

// TestExpiredStateIsNotRecorded: a link used after 15 minutes is refused,
// and nothing is recorded on its token, an error redirect included: an
// old state proves nothing (issue 20, finding 1).
func TestExpiredStateIsNotRecorded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"ADMIN_PASSPHRASE": adminPass})
	h.Secret(adminPass)
	a := h.startAPI(nil)
	h.seed("late", 10*time.Hour, 30*24*time.Hour, nil)
	signer := a.srv.signer
	signer.Now = func() time.Time { return time.Now().Add(-20 * time.Minute) }
	state, _, _, err := signer.Issue("late")
	if err != nil {
		t.Fatal(err)
	}
	if r := get(t, a.url+"/callback?code=fake-code-x&state="+state, nil); r.code != 400 || !strings.Contains(r.str("message"), "expired") {
		t.Fatalf("expired state: got %d %s", r.code, r.raw)
	}
	if r := get(t, a.url+"/callback?error=access_denied&error_description=attacker+text&state="+state, nil); r.code != 400 {
		t.Fatalf("error redirect with an expired state: got %d %s", r.code, r.raw)
	}
	if le := h.Doc("late")["lastError"]; le != nil {
		t.Errorf("an expired state was recorded as %v", le)
	}
}

// stateOf is the state parameter of an authorize URL.
func stateOf(t *testing.T, authorizeURL string) string {
	t.Helper()
	u, err := neturl.Parse(authorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	return neturl.QueryEscape(u.Query().Get("state"))
}

func webexUnavailable() webexfake.Fault { return webexfake.ServerError(503) }
