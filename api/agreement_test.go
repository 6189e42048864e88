package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/config"
	"github.com/wxcc/tokenservice/shared/token"
)

// eventually polls cond until it holds, failing the test with what after
// 30 s (a bound for a stuck test, not a speed requirement).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	limit := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(limit) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// agreeing is a harness with CACHE_MAX_AGE an hour, which the test's clock
// never reaches: what an instance honours of a change made through
// another, it learned from the change feed.
func agreeing(t *testing.T) *harness {
	h := newHarness(t, map[string]string{"ADMIN_PASSPHRASE": adminPass, "CACHE_MAX_AGE": "1h"})
	h.Secret(adminPass)
	return h
}

// TestChangesReachEveryInstance: a deletion, a token's own passphrase, a
// client config and a rotation made through one of three instances are
// honoured by the two others while their cached copies are still young.
func TestChangesReachEveryInstance(t *testing.T) {
	t.Parallel()
	h := agreeing(t)
	apis := []*api{h.startAPI(nil), h.startAPI(nil), h.startAPI(nil)}
	names := []string{"gone", "locked", "moved", "rotated"}
	served := map[string]string{}
	for _, name := range names {
		served[name], _ = h.seed(name, 6*time.Hour, 30*24*time.Hour, nil)
		for _, a := range apis {
			if r := h.token(a, name); r.code != 200 {
				t.Fatalf("warm-up of %s: got %d %s", name, r.code, r.raw)
			}
		}
	}
	first, others := apis[0], apis[1:]

	if r := do(t, http.MethodDelete, first.url+"/admin/tokens/gone", "", admin(nil)); r.code != 200 {
		t.Fatalf("delete: got %d %s", r.code, r.raw)
	}
	for i, a := range others {
		eventually(t, "instance "+string(rune('2'+i))+" answers 404 for the deleted token", func() bool {
			return h.token(a, "gone").code == http.StatusNotFound
		})
	}

	const own = "a-passphrase-of-its-own-0123"
	h.Secret(own)
	if r := do(t, http.MethodPut, first.url+"/admin/tokens/locked", `{"passphrase":"`+own+`"}`, admin(nil)); r.code != 200 {
		t.Fatalf("set passphrase: got %d %s", r.code, r.raw)
	}
	for _, a := range others {
		eventually(t, "TOKEN_PASSPHRASE refused once the token has its own", func() bool {
			return h.token(a, "locked").code == http.StatusUnauthorized
		})
		r := get(t, a.url+"/?name=locked", map[string]string{"x-token-passphrase": own})
		if r.code != 200 || r.str("token") != served["locked"] {
			t.Fatalf("own passphrase: got %d %s, want 200 with the token", r.code, r.raw)
		}
	}

	body := `{"clientId":"moved-client","clientSecret":"moved-secret","redirectUri":"https://moved.example/callback"}`
	h.Secret("moved-secret")
	if r := do(t, http.MethodPut, first.url+"/admin/tokens/moved", body, admin(nil)); r.code != 200 {
		t.Fatalf("client config: got %d %s", r.code, r.raw)
	}
	for _, a := range others {
		eventually(t, "the cache holds the new client config", func() bool {
			e := a.srv.cache.get("moved")
			return e != nil && e.tok != nil && e.tok.ClientID == "moved-client" && e.tok.ClientSecret == "moved-secret"
		})
	}

	if r := do(t, http.MethodPost, first.url+"/admin/tokens/rotated/refresh", "", admin(nil)); r.code != 200 {
		t.Fatalf("refresh now: got %d %s", r.code, r.raw)
	}
	rotated := h.token(first, "rotated").str("token")
	h.Secret(rotated)
	if rotated == served["rotated"] {
		t.Fatal("the first instance still serves the old token after Refresh now")
	}
	for _, a := range others {
		eventually(t, "the rotated token is served", func() bool {
			return h.token(a, "rotated").str("token") == rotated
		})
	}
}

// TestFeedLostAndBack: an instance cut off from Firestore keeps serving
// what it has cached, past CACHE_MAX_AGE; a token deleted meanwhile
// through another instance is known deleted, or at least unseen (its
// next request reads Firestore), once the feed is back, before any
// request asks Firestore about it.
func TestFeedLostAndBack(t *testing.T) {
	t.Parallel()
	h := agreeing(t)
	client, proxy := partitionableClient(t)
	cut, other := h.startAPI(client), h.startAPI(nil)
	at, _ := h.seed("kept", 6*time.Hour, 30*24*time.Hour, nil)
	h.seed("deleted", 6*time.Hour, 30*24*time.Hour, nil)
	for _, name := range []string{"kept", "deleted"} {
		if r := h.token(cut, name); r.code != 200 {
			t.Fatalf("warm-up of %s: got %d %s", name, r.code, r.raw)
		}
	}

	proxy.Cut()
	h.Clock.Advance(2 * time.Hour) // past CACHE_MAX_AGE: the instance asks Firestore, which does not answer
	if r := h.token(cut, "kept"); r.code != 200 || r.str("token") != at {
		t.Fatalf("cached token with Firestore unreachable: got %d %s, want 200 with it", r.code, r.raw)
	}
	if r := do(t, http.MethodDelete, other.url+"/admin/tokens/deleted", "", admin(nil)); r.code != 200 {
		t.Fatalf("delete: got %d %s", r.code, r.raw)
	}

	proxy.Heal()
	// Watched in the cache itself, with no request: a request past
	// CACHE_MAX_AGE would read Firestore and learn it anyway.
	eventually(t, "the cut-off instance learns of the deletion from the feed", func() bool {
		e := cut.srv.cache.get("deleted")
		return e != nil && (e.tok == nil || e.unseen)
	})
	if r := h.token(cut, "deleted"); r.code != http.StatusNotFound {
		t.Fatalf("deleted token: got %d %s, want 404", r.code, r.raw)
	}
	if r := h.token(cut, "kept"); r.code != 200 || r.str("token") != at {
		t.Fatalf("after the feed is back: got %d %s, want 200 with the kept token", r.code, r.raw)
	}
}

// TestCacheKeepsNewestState: a change the feed reports late never replaces
// a newer state, by update time, across a deletion and a re-creation
// (whose generation starts again); an unknown name that comes to exist
// is forgotten, so that it is read again.
func TestCacheKeepsNewestState(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	tok := func(gen int64, v int, access string) *token.Token {
		return &token.Token{Name: "n", Generation: gen, Version: at(v), AccessToken: access}
	}
	later := base.Add(time.Hour)
	type step struct {
		change token.Change
		at     time.Time // the batch's time
	}
	for _, tc := range []struct {
		name   string
		cached *token.Token // nil: the name is remembered as unknown
		steps  []step
		want   string // the access token served after, "" for unknown, "-" for not cached
		due    bool   // the entry is to be read again at the next request
	}{
		{name: "newer state replaces", cached: tok(3, 10, "old"),
			steps: []step{{token.Change{Name: "n", Token: tok(3, 11, "new")}, at(11)}}, want: "new"},
		{name: "older state reported late is ignored", cached: tok(4, 20, "current"),
			steps: []step{{token.Change{Name: "n", Token: tok(3, 15, "stale")}, at(15)}}, want: "current"},
		{name: "same generation, older update time ignored", cached: tok(4, 20, "current"),
			steps: []step{{token.Change{Name: "n", Token: tok(4, 19, "stale")}, at(19)}}, want: "current"},
		{name: "deletion makes the name unknown", cached: tok(4, 20, "current"),
			steps: []step{{token.Change{Name: "n"}, at(21)}}, want: ""},
		{name: "deletion older than the cached state is ignored", cached: tok(0, 30, "recreated"),
			steps: []step{{token.Change{Name: "n"}, at(25)}}, want: "recreated"},
		{name: "re-created with a lower generation replaces", cached: tok(7, 20, "deleted"),
			steps: []step{{token.Change{Name: "n", Token: tok(0, 40, "recreated")}, at(40)}}, want: "recreated"},
		{name: "deleted then re-created: read again", cached: tok(7, 20, "deleted"),
			steps: []step{{token.Change{Name: "n"}, at(30)}, {token.Change{Name: "n", Token: tok(0, 40, "recreated")}, at(40)}}, want: "-"},
		{name: "unseen: kept, to be read again", cached: tok(4, 20, "current"),
			steps: []step{{token.Change{Name: "n", Unseen: true}, at(21)}}, want: "current", due: true},
		{name: "unseen, then the same state sent again: still read again", cached: tok(4, 20, "current"),
			steps: []step{{token.Change{Name: "n", Unseen: true}, at(21)}, {token.Change{Name: "n", Token: tok(4, 20, "current")}, at(22)}}, want: "current", due: true},
		{name: "unseen, then a newer state: settled", cached: tok(4, 20, "current"),
			steps: []step{{token.Change{Name: "n", Unseen: true}, at(21)}, {token.Change{Name: "n", Token: tok(5, 23, "newer")}, at(23)}}, want: "newer"},
		{name: "unseen before the cached state was stored is ignored", cached: tok(4, 20, "current"),
			steps: []step{{token.Change{Name: "n", Unseen: true}, at(19)}}, want: "current"},
		{name: "unseen unknown name is forgotten", cached: nil,
			steps: []step{{token.Change{Name: "n", Unseen: true}, at(21)}}, want: "-"},
		{name: "unknown name that comes to exist is forgotten", cached: nil,
			steps: []step{{token.Change{Name: "n", Token: tok(0, 40, "new")}, at(40)}}, want: "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTokenCache(10)
			if tc.cached != nil {
				c.put(tc.cached, later)
			} else {
				c.putMissing("n", later)
			}
			for _, s := range tc.steps {
				c.changed(s.change, s.at, later, later)
			}
			got := "-"
			if e := c.get("n"); e != nil {
				got = ""
				if e.tok != nil {
					got = e.tok.AccessToken
				}
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if e := c.get("n"); e != nil && e.checkAfter.Before(later) != tc.due {
				t.Fatalf("read again at the next request: %v, want %v", !tc.due, tc.due)
			}
		})
	}
	// A name the cache does not hold stays out of it.
	c := newTokenCache(10)
	c.changed(token.Change{Name: "n", Token: tok(0, 1, "x")}, at(1), later, later)
	if e := c.get("n"); e != nil {
		t.Fatalf("got %+v, want the cache to fill from requests only", e)
	}
}

// TestCompleteBatchRereadsUnseen: the batch that ends the feed's listing
// after a restart says which tokens it saw; a cached token it did not
// see is read again at its next request (probably deleted while nobody
// listened, but a listing can miss a document), unless the cache holds a
// state stored after the batch.
func TestCompleteBatchRereadsUnseen(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := &server{deps: deps{cfg: &config.Config{CacheMaxAge: time.Hour}, now: time.Now}, cache: newTokenCache(10)}
	later := time.Now().Add(time.Hour)
	for _, tk := range []*token.Token{
		{Name: "listed", Version: at.Add(-time.Minute), AccessToken: "a"},
		{Name: "deleted", Version: at.Add(-time.Minute), AccessToken: "b"},
		{Name: "newer", Version: at.Add(time.Minute), AccessToken: "c"}, // created after the batch's time
	} {
		s.cache.put(tk, later)
	}
	exists := map[string]bool{"listed": true, "other": true}
	s.applyChanges(token.Changes{Complete: true, At: at, Exists: func(name string) bool { return exists[name] }, List: []token.Change{
		{Name: "other", Token: &token.Token{Name: "other", Version: at}},
	}})
	for name, want := range map[string]struct {
		access string
		due    bool // read again at the next request
	}{"listed": {"a", false}, "deleted": {"b", true}, "newer": {"c", false}} {
		e := s.cache.get(name)
		if e == nil || e.tok == nil || e.tok.AccessToken != want.access {
			t.Errorf("%s: got %+v, want the cached token %q kept", name, e, want.access)
			continue
		}
		if due := e.checkAfter.Before(time.Now()); due != want.due {
			t.Errorf("%s: read again at the next request: %v, want %v", name, due, want.due)
		}
	}
	if e := s.cache.get("other"); e != nil {
		t.Errorf("other: got %+v, want a name the cache did not hold left out", e)
	}
}

// TestPostponeAfterFeedReplaced: when the store fails while the change
// feed replaced the entry being re-read, the token now cached is still
// served without a store read until the retry pause ends (it was re-read
// at every request until CACHE_MAX_AGE).
func TestPostponeAfterFeedReplaced(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := newTokenCache(10)
	v := now.Add(-time.Hour)
	c.put(&token.Token{Name: "n", Version: v, AccessToken: "a"}, now.Add(-time.Second))
	stale := c.get("n")
	c.changed(token.Change{Name: "n", Token: &token.Token{Name: "n", Version: v, AccessToken: "a"}}, now, now.Add(time.Millisecond), now)
	c.postpone(stale, now.Add(time.Minute))
	if e := c.get("n"); e == nil || e.tok.AccessToken != "a" || !e.checkAfter.Equal(now.Add(time.Minute)) {
		t.Fatalf("got %+v, want the cached token kept until the retry pause ends", e)
	}
	// An unseen token the store could not be asked about stays unseen: the
	// same state sent again does not settle it.
	c.put(&token.Token{Name: "u", Version: v, AccessToken: "u"}, now.Add(time.Hour))
	c.changed(token.Change{Name: "u", Unseen: true}, now, now.Add(time.Hour), now)
	c.postpone(c.get("u"), now.Add(time.Minute))
	c.changed(token.Change{Name: "u", Token: &token.Token{Name: "u", Version: v, AccessToken: "u"}}, now, now.Add(time.Hour), now)
	if e := c.get("u"); e == nil || !e.unseen || !e.checkAfter.Equal(now.Add(time.Minute)) {
		t.Fatalf("got %+v, want the unseen token still to be read again after the retry pause", e)
	}
	c.putMissing("gone", now.Add(time.Hour))
	c.postpone(&cacheEntry{tok: &token.Token{Name: "gone"}}, now.Add(2*time.Hour))
	if e := c.get("gone"); e == nil || e.tok != nil || !e.checkAfter.Equal(now.Add(time.Hour)) {
		t.Fatalf("got %+v, want a name known missing left alone", e)
	}
}

// TestUnseenTokenIsServedAfterARead: when the change feed lists the
// collection again and misses an existing token (the emulator does, after
// a resumed stream's RESET), the instance reads it again and serves it;
// the second 60-minute soak answered 404 for such a token.
func TestUnseenTokenIsServedAfterARead(t *testing.T) {
	t.Parallel()
	h := agreeing(t)
	a := h.startAPI(nil)
	access, _ := h.seed("kept", 6*time.Hour, 30*24*time.Hour, nil)
	if r := h.token(a, "kept"); r.code != 200 {
		t.Fatalf("warm-up: got %d %s", r.code, r.raw)
	}
	a.srv.applyChanges(token.Changes{At: time.Now(), List: []token.Change{{Name: "kept", Unseen: true}}})
	if e := a.srv.cache.get("kept"); e == nil || !e.checkAfter.IsZero() {
		t.Fatalf("cache entry after the unseen change: %+v, want one due for a read", e)
	}
	if r := h.token(a, "kept"); r.code != 200 || r.str("token") != access {
		t.Fatalf("got %d %s, want the token served", r.code, r.raw)
	}
	if e := a.srv.cache.get("kept"); e == nil || e.checkAfter.IsZero() {
		t.Fatalf("cache entry after the read: %+v, want it cached again", e)
	}
}
