package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	gps "cloud.google.com/go/pubsub/v2"

	"github.com/wxcc/tokenservice/shared/testing/testkit"
)

// saHarness is a worker harness with a manager integration "mgr" (its
// grants hold spark:applications_token) and a Service App registered
// with the fake Webex.
type saHarness struct {
	*harness
	w   *workerUnderTest
	mgr testkit.Seeded
	app testkit.ServiceApp
}

func newSAHarness(t *testing.T, managerAccessLeft, managerRefreshLeft time.Duration) *saHarness {
	t.Helper()
	h := &saHarness{harness: newHarness(t, nil)}
	h.w = h.startWorker(nil)
	h.mgr = testkit.SeedManager(t, h.Firestore, h.Collection, "mgr", h.Webex.Fake, managerAccessLeft, managerRefreshLeft)
	h.Secret(h.mgr.Secrets()...)
	h.app = testkit.NewServiceApp(h.Webex.Fake)
	h.Secret(h.app.ClientSecret)
	return h
}

// seedPair gives the Service App "app" a pair minted by the fake Webex,
// with accessLeft and refreshLeft as the document says; it returns the
// refresh token.
func (h *saHarness) seedPair(accessLeft, refreshLeft time.Duration) string {
	h.T.Helper()
	now := time.Now()
	at, rt := "sa-at-"+testkit.RandomHex(8), h.Webex.IssueRefreshToken(h.app.ClientID, refreshLeft)
	h.Secret(at, rt)
	h.app.Seed(h.T, h.Firestore, h.Collection, "app", "mgr", map[string]any{
		"accessToken": at, "refreshToken": rt, "status": "active", "generation": int64(3),
		"accessExpires": now.Add(accessLeft).UnixMilli(), "refreshExpires": now.Add(refreshLeft).UnixMilli(),
		"lastRefresh": now.Add(-time.Hour).UnixMilli(),
	})
	return rt
}

// appEvents waits for n events of the Service App and returns their
// type/trigger after a quiet second.
func (h *saHarness) appEvents(n int) []string {
	h.T.Helper()
	var out []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		out = nil
		for _, m := range testkit.Distinct(h.events.Messages()) {
			if m.Attributes["name"] == "app" {
				out = append(out, m.Attributes["ce-type"]+"/"+trigger(h.T, m))
			}
		}
		if len(out) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	time.Sleep(time.Second)
	return out
}

func trigger(t testing.TB, m *gps.Message) string {
	var d map[string]any
	if err := json.Unmarshal(m.Data, &d); err != nil {
		t.Fatalf("data is not JSON: %q", m.Data)
	}
	s, _ := d["trigger"].(string)
	return s
}

// TestServiceAppMintedInsteadOfReauthorized: the refresh token lapses,
// is rejected, or nears its expiry: the next sweep mints a new pair with
// exactly one applications call, no person involved, no
// reauthorization_required and no refresh_expiring event.
func TestServiceAppMintedInsteadOfReauthorized(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		accessLeft    time.Duration
		refreshLeft   time.Duration
		revoke        bool // Webex rejects the refresh token (invalid_grant)
		wantRefreshes int
	}{
		{name: "refresh token lapsed, access token not due", accessLeft: 10 * time.Hour, refreshLeft: -time.Minute},
		{name: "refresh token lapsed, access token due", accessLeft: time.Hour, refreshLeft: -time.Minute},
		{name: "refresh token rejected", accessLeft: time.Hour, refreshLeft: 30 * 24 * time.Hour, revoke: true, wantRefreshes: 1},
		{name: "refresh token inside REFRESH_EXPIRY_WARNING", accessLeft: 10 * time.Hour, refreshLeft: 3 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newSAHarness(t, 10*time.Hour, 60*24*time.Hour)
			rt := h.seedPair(tt.accessLeft, tt.refreshLeft)
			if tt.revoke {
				h.Webex.RevokeRefreshToken(rt)
			}
			sum := h.w.mustRun(t)
			d := h.Doc("app")
			h.Secret(d["accessToken"].(string), d["refreshToken"].(string))
			if sum.Refreshed != 1 || sum.Failed != 0 || sum.Halted {
				t.Fatalf("summary %+v, want 1 refreshed (minted), none failed", sum)
			}
			if st := h.Webex.MintStats(); st.Calls != 1 || st.Minted != 1 {
				t.Fatalf("got %+v, want exactly one applications call", st)
			}
			if n := h.Webex.Stats().Refreshes; n != tt.wantRefreshes {
				t.Fatalf("got %d refresh calls, want %d", n, tt.wantRefreshes)
			}
			if d["status"] != "active" || d["generation"] != int64(4) || d["refreshToken"] == rt || d["lastError"] != nil {
				t.Fatalf("document %v, want a new pair as generation 4, active, no lastError", d)
			}
			if !h.Webex.RefreshTokenValid(d["refreshToken"].(string)) {
				t.Fatal("the stored refresh token is not the minted one")
			}
			if ev := h.appEvents(1); len(ev) != 1 || ev[0] != "token.rotated/mint" {
				t.Fatalf("events %v, want only token.rotated with trigger mint", ev)
			}
			// The next sweep has nothing to do for it.
			h.w.mustRun(t)
			if st := h.Webex.MintStats(); st.Calls != 1 {
				t.Fatalf("a second sweep minted again: %+v", st)
			}
		})
	}
}

// TestServiceAppWaitsForManager: the manager needs re-authorization: the
// Service App shows reauth_required naming the manager, sweeps make no
// Webex call for it, and once the manager is authorized again the next
// sweep mints it with no other action.
func TestServiceAppWaitsForManager(t *testing.T) {
	t.Parallel()
	h := newSAHarness(t, -time.Hour, -time.Minute) // the manager's tokens have both lapsed
	h.app.Seed(t, h.Firestore, h.Collection, "app", "mgr", nil)

	sum := h.w.mustRun(t)
	if sum.Halted {
		t.Fatalf("summary %+v", sum)
	}
	d := h.Doc("app")
	le, _ := d["lastError"].(map[string]any)
	if d["status"] != "reauth_required" || le == nil || !strings.Contains(le["message"].(string), `manager "mgr"`) {
		t.Fatalf("document %v, want reauth_required with a lastError naming the manager", d)
	}
	if h.Doc("mgr")["status"] != "reauth_required" {
		t.Fatalf("manager status %v, want reauth_required", h.Doc("mgr")["status"])
	}
	ev := h.appEvents(1)
	if len(ev) != 1 || !strings.HasPrefix(ev[0], "token.reauthorization_required/") {
		t.Fatalf("events %v, want one token.reauthorization_required", ev)
	}
	for _, m := range h.events.Messages() {
		if m.Attributes["name"] == "app" && !strings.Contains(string(m.Data), `manager \"mgr\"`) {
			t.Fatalf("event data %s does not name the manager", m.Data)
		}
	}
	for i := 0; i < 2; i++ {
		h.w.mustRun(t)
	}
	if st, ms := h.Webex.Stats(), h.Webex.MintStats(); st.Calls != 0 || ms.Calls != 0 {
		t.Fatalf("sweeps called Webex while the manager needs re-authorization: %d token, %d applications calls", st.Calls, ms.Calls)
	}

	// A person authorizes the manager again (what /callback does).
	code := h.Webex.IssueCode(h.mgr.ClientID, "https://flows.example.com/callback")
	if _, err := h.w.refresher.ExchangeCode(context.Background(), "mgr", code); err != nil {
		t.Fatal(err)
	}
	h.Secret(h.Doc("mgr")["accessToken"].(string), h.Doc("mgr")["refreshToken"].(string))
	sum = h.w.mustRun(t)
	d = h.Doc("app")
	h.Secret(d["accessToken"].(string), d["refreshToken"].(string))
	if d["status"] != "active" || d["accessToken"] == "" || d["lastError"] != nil || d["managerGeneration"] != nil {
		t.Fatalf("document %v, want minted and active", d)
	}
	if ms := h.Webex.MintStats(); ms.Calls != 1 || ms.Minted != 1 || sum.Refreshed != 1 {
		t.Fatalf("got %+v, summary %+v: want one mint", ms, sum)
	}
	if ev := h.appEvents(2); len(ev) != 2 || ev[1] != "token.rotated/mint" {
		t.Fatalf("events %v, want token.rotated with trigger mint after the reauthorization_required", ev)
	}
}

// TestServiceAppManagerExpiredRefreshable: a Service App without tokens
// whose manager's access token expired: one manager refresh, one mint.
func TestServiceAppManagerExpiredRefreshable(t *testing.T) {
	t.Parallel()
	h := newSAHarness(t, -time.Minute, 60*24*time.Hour)
	h.app.Seed(t, h.Firestore, h.Collection, "app", "mgr", nil)
	sum := h.w.mustRun(t)
	h.Secret(h.Doc("mgr")["accessToken"].(string), h.Doc("app")["accessToken"].(string), h.Doc("app")["refreshToken"].(string))
	if st, ms := h.Webex.Stats(), h.Webex.MintStats(); st.Refreshes != 1 || st.ByClient[h.mgr.ClientID] != 1 || ms.Calls != 1 {
		t.Fatalf("got %d refreshes (%v) and %+v, want one of the manager and one mint", st.Refreshes, st.ByClient, ms)
	}
	if sum.Refreshed != 2 || h.Doc("app")["status"] != "active" {
		t.Fatalf("summary %+v, app %v: want the manager refreshed and the app minted", sum, h.Doc("app")["status"])
	}
}

// TestServiceAppConfigErrorNoLoop: a Service App Webex does not know is
// config_error after one call, and later sweeps leave it alone.
func TestServiceAppConfigErrorNoLoop(t *testing.T) {
	t.Parallel()
	h := newSAHarness(t, 10*time.Hour, 60*24*time.Hour)
	h.Webex.RemoveApp(h.app.AppID)
	h.app.Seed(t, h.Firestore, h.Collection, "app", "mgr", nil)
	sum := h.w.mustRun(t)
	if sum.Failed != 1 || h.Doc("app")["status"] != "config_error" {
		t.Fatalf("summary %+v, status %v: want one failure, config_error", sum, h.Doc("app")["status"])
	}
	for i := 0; i < 3; i++ {
		h.w.mustRun(t)
	}
	if ms := h.Webex.MintStats(); ms.Calls != 1 {
		t.Fatalf("got %d applications calls over 4 sweeps, want 1", ms.Calls)
	}
}
