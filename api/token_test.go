package main

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/testkit"
	"github.com/wxcc/tokenservice/shared/testing/webexfake"
)

func TestSampleDocumentIsServedUnchanged(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	a := h.startAPI(nil)
	at, _ := h.seed("ints", 6*time.Hour, 30*24*time.Hour, nil)
	// Older writers stored the times as doubles.
	atD, _ := h.seed("doubles", 6*time.Hour, 30*24*time.Hour, nil)
	d := h.Doc("doubles")
	for _, f := range []string{"accessExpires", "refreshExpires", "lastRefresh"} {
		d[f] = float64(testkit.Millis(d[f]))
	}
	if _, err := h.Firestore.Collection(h.Collection).Doc("doubles").Set(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	before := map[string]map[string]any{"ints": h.Doc("ints"), "doubles": h.Doc("doubles")}

	for name, want := range map[string]string{"ints": at, "doubles": atD} {
		r := h.token(a, name)
		if r.code != http.StatusOK || r.str("token") != want {
			t.Fatalf("%s: got %d %q, want 200 with the stored token", name, r.code, r.raw)
		}
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Fatalf("Cache-Control %q, want no-store", cc)
		}
		if in, _ := r.body["expiresIn"].(float64); in < 5*3600 || in > 6*3600 {
			t.Fatalf("%s: expiresIn %v, want about 6h", name, r.body["expiresIn"])
		}
		if _, err := time.Parse(time.RFC3339, r.str("expiresAt")); err != nil {
			t.Fatalf("expiresAt %q is not RFC 3339", r.str("expiresAt"))
		}
	}
	if n := h.Webex.Stats().Calls; n != 0 {
		t.Fatalf("got %d webex calls, want 0", n)
	}
	for name, b := range before {
		after := h.Doc(name)
		if len(after) != len(b) {
			t.Fatalf("%s: serving changed the document: %v -> %v", name, keys(b), keys(after))
		}
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestRequestErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	a := h.startAPI(nil)
	h.seed("known", 6*time.Hour, 30*24*time.Hour, nil)
	if _, err := h.Firestore.Collection(h.Collection).Doc("pending").Set(context.Background(), map[string]any{
		"clientId": "c", "clientSecret": "s", "redirectUri": "https://x/cb"}); err != nil {
		t.Fatal(err)
	}
	pass := h.Env["TOKEN_PASSPHRASE"]
	tests := []struct {
		name   string
		query  string
		header map[string]string
		want   int
	}{
		{"missing name", "/", map[string]string{"x-token-passphrase": pass}, 400},
		{"empty name", "/?name=", map[string]string{"x-token-passphrase": pass}, 400},
		{"traversal", "/?name=..%2Fx", map[string]string{"x-token-passphrase": pass}, 400},
		{"slash", "/?name=a%2Fb", map[string]string{"x-token-passphrase": pass}, 400},
		{"reserved", "/?name=__x__", map[string]string{"x-token-passphrase": pass}, 400},
		{"too long", "/?name=" + strings.Repeat("a", 129), map[string]string{"x-token-passphrase": pass}, 400},
		{"missing passphrase", "/?name=known", nil, 401},
		{"wrong passphrase", "/?name=known", map[string]string{"x-token-passphrase": pass + "x"}, 401},
		{"unknown name", "/?name=nobody", map[string]string{"x-token-passphrase": pass}, 404},
		{"not authorized yet", "/?name=pending", map[string]string{"x-token-passphrase": pass}, 409},
		{"known", "/?name=known", map[string]string{"x-token-passphrase": pass}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, a.url+tc.query, tc.header)
			if r.code != tc.want {
				t.Fatalf("got %d %s, want %d", r.code, r.raw, tc.want)
			}
		})
	}
}

func TestInlineRefreshStoresNewGeneration(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	a := h.startAPI(nil)
	old, _ := h.seed("due", time.Hour, 30*24*time.Hour, nil)
	start := time.Now()
	r := h.token(a, "due")
	if r.code != 200 || r.str("token") == old || r.str("token") == "" {
		t.Fatalf("got %d %s, want 200 with a new token", r.code, r.raw)
	}
	h.Secret(r.str("token"))
	if n := h.Webex.Stats().Refreshes; n != 1 {
		t.Fatalf("got %d refresh calls, want 1", n)
	}
	d := h.Doc("due")
	if d["accessToken"] != r.str("token") {
		t.Fatalf("stored accessToken differs from the served one")
	}
	wantExp := start.Add(webexfake.DefaultExpiresIn).UnixMilli()
	if got := testkit.Millis(d["accessExpires"]); got < wantExp-5000 || got > wantExp+5000 {
		t.Fatalf("accessExpires %d, want about %d", got, wantExp)
	}
	if got := testkit.Millis(d["lastRefresh"]); got < start.UnixMilli()-1000 || got > time.Now().UnixMilli()+1000 {
		t.Fatalf("lastRefresh %d, want about now", got)
	}
	// Refreshing does not extend the refresh token's life: still about 30 days.
	if got, want := testkit.Millis(d["refreshExpires"]), start.Add(30*24*time.Hour).UnixMilli(); got < want-60_000 || got > want+60_000 {
		t.Fatalf("refreshExpires %d, want about %d", got, want)
	}
	if g, ok := d["generation"].(int64); !ok || g != 1 {
		t.Fatalf("generation %v, want 1", d["generation"])
	}
	// Served from the cache afterwards: no further Webex call.
	for i := 0; i < 5; i++ {
		if r := h.token(a, "due"); r.code != 200 {
			t.Fatalf("got %d", r.code)
		}
	}
	if n := h.Webex.Stats().Refreshes; n != 1 {
		t.Fatalf("got %d refresh calls, want 1", n)
	}
}

func TestConcurrentRequestsMakeOneWebexCall(t *testing.T) {
	t.Parallel()
	for _, instances := range []int{1, 2} {
		t.Run(strconv.Itoa(instances)+" instances", func(t *testing.T) {
			h := newHarness(t, nil)
			h.Webex.SetLatency(300 * time.Millisecond)
			var apis []*api
			for i := 0; i < instances; i++ {
				apis = append(apis, h.startAPI(nil))
			}
			old, _ := h.seed("hot", time.Hour, 30*24*time.Hour, nil)
			var wg sync.WaitGroup
			var mu sync.Mutex
			tokens := map[string]int{}
			for i := 0; i < 200; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := h.token(apis[i%instances], "hot")
					if r.code != 200 {
						t.Errorf("got %d %s", r.code, r.raw)
						return
					}
					mu.Lock()
					tokens[r.str("token")]++
					mu.Unlock()
				}()
			}
			wg.Wait()
			if n := h.Webex.Stats().Refreshes; n != 1 {
				t.Fatalf("got %d webex refresh calls, want exactly 1", n)
			}
			for tok := range tokens {
				h.Secret(tok)
				if tok != old && tok != h.Doc("hot")["accessToken"] {
					t.Fatalf("served a token that is neither the old nor the stored one")
				}
			}
		})
	}
}

func TestWebexFailures(t *testing.T) {
	t.Parallel()
	faults := []struct {
		name  string
		fault webexfake.Fault
	}{
		{"500", webexfake.ServerError(500)},
		{"429", webexfake.RateLimited("120")},
		{"timeout", webexfake.Fault{Kind: webexfake.FaultHang}},
	}
	for _, f := range faults {
		for _, left := range []time.Duration{time.Hour, 3 * time.Minute} {
			t.Run(f.name+"/"+left.String(), func(t *testing.T) {
				t.Parallel()
				h := newHarness(t, map[string]string{"WEBEX_TIMEOUT": "2s"})
				a := h.startAPI(nil)
				old, _ := h.seed("x", left, 30*24*time.Hour, nil)
				h.Webex.FailAlways(f.fault)
				start := time.Now()
				r := h.token(a, "x")
				took := time.Since(start)
				if took > 3*time.Second {
					t.Fatalf("answer took %s, want within INLINE_REFRESH_TIMEOUT plus a little", took)
				}
				if left > 5*time.Minute {
					if r.code != 200 || r.str("token") != old {
						t.Fatalf("got %d %s, want 200 with the current token", r.code, r.raw)
					}
					return
				}
				if r.code != 503 || r.header.Get("Retry-After") == "" {
					t.Fatalf("got %d Retry-After %q: %s, want 503 with Retry-After", r.code, r.header.Get("Retry-After"), r.raw)
				}
				if f.name == "429" {
					if ra, _ := strconv.Atoi(r.header.Get("Retry-After")); ra < 100 {
						t.Fatalf("Retry-After %d, want Webex's 120 honoured", ra)
					}
				}
			})
		}
	}
}

func TestGrantRejectedNeedsReauthorization(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	a := h.startAPI(nil)
	old, rt := h.seed("revoked", time.Hour, 30*24*time.Hour, nil)
	h.Webex.RevokeRefreshToken(rt)
	r := h.token(a, "revoked")
	if r.code != 200 || r.str("token") != old {
		t.Fatalf("got %d %s, want 200 with the still-valid token", r.code, r.raw)
	}
	d := h.Doc("revoked")
	le, _ := d["lastError"].(map[string]any)
	if d["status"] != "reauth_required" || le == nil || le["permanent"] != true {
		t.Fatalf("status %v lastError %v, want reauth_required with a permanent lastError", d["status"], d["lastError"])
	}
	for i := 0; i < 3; i++ {
		h.token(a, "revoked")
	}
	if n := h.Webex.Stats().Refreshes; n != 1 {
		t.Fatalf("got %d webex calls, want 1: no retries after a rejected grant", n)
	}
	// Once the token is below MIN_TOKEN_VALIDITY: 409, still without Webex.
	b := h.startAPI(nil)
	if _, err := h.Firestore.Collection(h.Collection).Doc("revoked").Update(context.Background(), []gfsUpdate{{Path: "accessExpires", Value: time.Now().Add(2 * time.Minute).UnixMilli()}}); err != nil {
		t.Fatal(err)
	}
	if r := h.token(b, "revoked"); r.code != 409 {
		t.Fatalf("got %d %s, want 409", r.code, r.raw)
	}
	if n := h.Webex.Stats().Refreshes; n != 1 {
		t.Fatalf("got %d webex calls, want 1", n)
	}
}

func TestClientRejectedResumesAfterConfigFix(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"CACHE_MAX_AGE": "100ms"})
	a := h.startAPI(nil)
	old, _ := h.seed("badclient", time.Hour, 30*24*time.Hour, nil)
	good := h.Doc("badclient")["clientSecret"].(string)
	ctx := context.Background()
	ref := h.Firestore.Collection(h.Collection).Doc("badclient")
	if _, err := ref.Update(ctx, []gfsUpdate{{Path: "clientSecret", Value: "wrong-secret"}}); err != nil {
		t.Fatal(err)
	}
	if r := h.token(a, "badclient"); r.code != 200 || r.str("token") != old {
		t.Fatalf("got %d %s, want 200 with the current token", r.code, r.raw)
	}
	if st := h.Doc("badclient")["status"]; st != "config_error" {
		t.Fatalf("status %v, want config_error", st)
	}
	h.Clock.Advance(150 * time.Millisecond) // past CACHE_MAX_AGE
	h.token(a, "badclient")
	if n := h.Webex.Stats().Refreshes; n != 1 {
		t.Fatalf("got %d webex calls, want 1 while the client is unchanged", n)
	}
	if _, err := ref.Update(ctx, []gfsUpdate{{Path: "clientSecret", Value: good}}); err != nil {
		t.Fatal(err)
	}
	h.Clock.Advance(150 * time.Millisecond)
	r := h.token(a, "badclient")
	if r.code != 200 || r.str("token") == old {
		t.Fatalf("got %d %s, want a new token once the client config is fixed", r.code, r.raw)
	}
	h.Secret(r.str("token"))
	if st := h.Doc("badclient")["status"]; st != "active" {
		t.Fatalf("status %v, want active", st)
	}
}

func TestExpiredRefreshTokenIsNotSent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	a := h.startAPI(nil)
	h.seed("stale", 2*time.Minute, -time.Hour, nil)
	if r := h.token(a, "stale"); r.code != 409 {
		t.Fatalf("got %d %s, want 409", r.code, r.raw)
	}
	if n := h.Webex.Stats().Calls; n != 0 {
		t.Fatalf("got %d webex calls, want 0", n)
	}
	if st := h.Doc("stale")["status"]; st != "reauth_required" {
		t.Fatalf("status %v, want reauth_required", st)
	}
}

func TestShortLivedGrantDoesNotRefreshEveryRequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"CACHE_MAX_AGE": "50ms"})
	a := h.startAPI(nil)
	h.seed("short", time.Hour, 30*24*time.Hour, nil)
	h.Webex.SetExpiresIn(time.Hour) // inside the 2h threshold
	for i := 0; i < 10; i++ {
		r := h.token(a, "short")
		if r.code != 200 {
			t.Fatalf("got %d %s", r.code, r.raw)
		}
		h.Secret(r.str("token"))
		h.Clock.Advance(20 * time.Millisecond) // 10 requests span 4 CACHE_MAX_AGEs
	}
	if n := h.Webex.Stats().Refreshes; n != 1 {
		t.Fatalf("got %d webex calls for 10 requests, want 1", n)
	}
}

func TestSlowWebexDoesNotHoldTheCaller(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"WEBEX_TIMEOUT": "10s"})
	a := h.startAPI(nil)
	old, _ := h.seed("slow", time.Hour, 30*24*time.Hour, nil)
	h.Webex.SetLatency(5 * time.Second)
	start := time.Now()
	r := h.token(a, "slow")
	took := time.Since(start)
	if r.code != 200 || r.str("token") != old {
		t.Fatalf("got %d %s, want 200 with the current token", r.code, r.raw)
	}
	if took > 2*time.Second {
		t.Fatalf("took %s, want within INLINE_REFRESH_TIMEOUT (1.5s) plus a little", took)
	}
	testkit.Eventually(t, 10*time.Second, "the new token is stored", func() bool {
		return h.Doc("slow")["accessToken"] != old
	})
	h.Secret(h.Doc("slow")["accessToken"].(string))
	if n := h.Webex.Stats().Refreshes; n != 1 {
		t.Fatalf("got %d webex calls, want 1", n)
	}
}

func TestUnknownNamesAreRememberedBriefly(t *testing.T) {
	t.Parallel()
	// Not a test of the store's timeout: a loaded emulator may take longer
	// than the default 1.5 s for a collection's first read.
	h := newHarness(t, map[string]string{"INLINE_REFRESH_TIMEOUT": "10s"})
	a := h.startAPI(nil)
	counting := &countingStore{Store: a.srv.store}
	a.srv.store = counting
	for i := 0; i < 5; i++ {
		if r := h.token(a, "ghost"); r.code != 404 {
			t.Fatalf("got %d, want 404", r.code)
		}
	}
	if n := counting.reads.Load(); n != 1 {
		t.Fatalf("5 requests for an unknown name read the store %d times, want 1", n)
	}
	// Created through this instance: seen at once.
	if r := get(t, a.url+"/init?name=ghost", map[string]string{"x-token-passphrase": h.Env["TOKEN_PASSPHRASE"]}); r.code != 200 {
		t.Fatalf("init: %d", r.code)
	}
	if r := h.token(a, "ghost"); r.code != 409 {
		t.Fatalf("after /init got %d, want 409 (not authorized yet)", r.code)
	}
}

// TestRefreshNowElsewhereIsServedAtOnce: a token this instance holds in
// its cache as backing off and no longer servable is re-read before a
// failure is answered, so that another instance's Refresh now is served
// at once, not after CACHE_MAX_AGE (found by the soak campaign).
func TestRefreshNowElsewhereIsServedAtOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"ADMIN_PASSPHRASE": adminPass})
	h.Secret(adminPass)
	a, b := h.startAPI(nil), h.startAPI(nil)
	h.seed("fading", 2*time.Minute, 30*24*time.Hour, map[string]any{
		"nextAttempt": time.Now().Add(10 * time.Minute).UnixMilli(),
		"lastError":   map[string]any{"at": time.Now().UnixMilli(), "message": "webex answered 503", "permanent": false},
	})
	if r := h.token(b, "fading"); r.code != 503 {
		t.Fatalf("before: got %d %s, want 503 (backing off, 2 min left)", r.code, r.raw)
	}
	if r := do(t, http.MethodPost, a.url+"/admin/tokens/fading/refresh", "", admin(nil)); r.code != 200 {
		t.Fatalf("refresh now on the other instance: got %d %s", r.code, r.raw)
	}
	h.Clock.Advance(time.Second) // the flow retries after Retry-After (1 s); CACHE_MAX_AGE is 60 s
	r := h.token(b, "fading")
	if r.code != 200 {
		t.Fatalf("after Refresh now elsewhere: got %d %s, want 200 at once", r.code, r.raw)
	}
	h.Secret(r.str("token"))
}
