package main

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/webexfake"
)

// TestGrantServedWhileTheStoreIsDown: Firestore becomes unreachable the
// moment Webex answers an inline refresh. The api serves the new access
// token while the grant waits (the old one is below MIN_TOKEN_VALIDITY),
// and stores the grant once Firestore answers again.
func TestGrantServedWhileTheStoreIsDown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"CACHE_MAX_AGE": "1h"})
	h.Webex.SetRotation(true)
	client, proxy := partitionableClient(t)
	a := h.startAPI(client)
	old, _ := h.seed("fading", 2*time.Minute, 30*24*time.Hour, nil)

	var once sync.Once
	var granted webexfake.Granted
	h.Webex.OnGrant(func(g webexfake.Granted) {
		once.Do(func() { granted = g; proxy.Cut() })
	})
	h.token(a, "fading") // starts the inline refresh; its answer may come too late for this request
	eventually(t, "the refresh holds the grant", func() bool { return a.srv.service.Pending("fading") != nil })

	// Past CACHE_MAX_AGE: the api asks Firestore, which does not answer.
	h.Clock.Advance(2 * time.Hour)
	r := h.token(a, "fading")
	served := r.str("token")
	if r.code != 200 || served == old || !strings.HasPrefix(served, webexfake.AccessTokenPrefix) {
		t.Fatalf("got %d %s, want 200 with the new access token while Firestore is unreachable", r.code, r.raw)
	}
	h.Secret(served, granted.RefreshToken)
	proxy.Heal()
	eventually(t, "the kept grant is stored once Firestore answers", func() bool {
		d := h.Doc("fading")
		return d["refreshToken"] == granted.RefreshToken && d["accessToken"] == served
	})
	if n := h.Webex.Stats().Refreshes; n != 1 {
		t.Fatalf("got %d Webex refreshes, want 1", n)
	}
}
