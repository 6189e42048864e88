package main

import (
	"fmt"
	"testing"
	"time"
)

// The attack: wrong guesses of TOKEN_PASSPHRASE spread over many
// names from one address. The per-(address, name) throttle alone never
// fired; the per-address budget stops it after AUTH_FAILURE_LIMIT names,
// for every name from that address, the right passphrase included.
func TestGuessingAcrossNamesIsThrottledPerAddress(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"AUTH_FAILURE_LIMIT": "3", "TRUSTED_PROXY_HOPS": "1"})
	a := h.startAPI(nil)
	h.seed("kept", 6*time.Hour, 30*24*time.Hour, nil)
	pass := h.Env["TOKEN_PASSPHRASE"]
	from := func(ip, name, p string) reply {
		return get(t, a.url+"/?name="+name, map[string]string{"x-token-passphrase": p, "X-Forwarded-For": ip})
	}
	const guesser, neighbour = "198.51.100.20", "198.51.100.21"
	for i := range 3 {
		if r := from(guesser, fmt.Sprintf("name%d", i), "guess-"+randomHex(4)); r.code != 401 {
			t.Fatalf("guess %d: got %d, want 401", i+1, r.code)
		}
	}
	for _, name := range []string{"name99", "kept"} {
		r := from(guesser, name, pass)
		if r.code != 429 || r.header.Get("Retry-After") == "" {
			t.Fatalf("%s after guesses on 3 names: got %d Retry-After %q, want 429 with Retry-After", name, r.code, r.header.Get("Retry-After"))
		}
	}
	if r := from(neighbour, "kept", pass); r.code != 200 {
		t.Fatalf("another address: got %d, want 200", r.code)
	}
}

// A flow that keeps sending a wrong passphrase for its one name locks out
// that name from its address, never the other flows behind the same
// egress address: repeats of one name use one unit of the budget.
func TestOneFailingFlowDoesNotLockItsAddress(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"AUTH_FAILURE_LIMIT": "3", "TRUSTED_PROXY_HOPS": "1"})
	a := h.startAPI(nil)
	h.seed("broken-flow", 6*time.Hour, 30*24*time.Hour, nil)
	h.seed("good-flow", 6*time.Hour, 30*24*time.Hour, nil)
	const egress = "198.51.100.30"
	hdr := func(p string) map[string]string {
		return map[string]string{"x-token-passphrase": p, "X-Forwarded-For": egress}
	}
	for range 20 {
		get(t, a.url+"/?name=broken-flow", hdr("outdated-passphrase"))
	}
	if r := get(t, a.url+"/?name=broken-flow", hdr(h.Env["TOKEN_PASSPHRASE"])); r.code != 429 {
		t.Fatalf("the failing flow's name: got %d, want 429", r.code)
	}
	if r := get(t, a.url+"/?name=good-flow", hdr(h.Env["TOKEN_PASSPHRASE"])); r.code != 200 {
		t.Fatalf("another flow behind the same address: got %d, want 200", r.code)
	}
}

// Requests for names that do not exist (with the right passphrase: they
// answer 404) count against the per-address budget: each new one costs a
// Firestore read.
func TestUnknownNamesCountAgainstTheAddress(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"AUTH_FAILURE_LIMIT": "3", "TRUSTED_PROXY_HOPS": "1"})
	a := h.startAPI(nil)
	counting := &countingStore{Store: a.srv.store}
	a.srv.store = counting
	h.seed("real", 6*time.Hour, 30*24*time.Hour, nil)
	hdr := map[string]string{"x-token-passphrase": h.Env["TOKEN_PASSPHRASE"], "X-Forwarded-For": "198.51.100.40"}
	// One unknown name asked for again and again is one unit.
	for range 5 {
		if r := get(t, a.url+"/?name=typo", hdr); r.code != 404 {
			t.Fatalf("unknown name: got %d, want 404", r.code)
		}
	}
	for i := range 2 {
		if r := get(t, a.url+fmt.Sprintf("/?name=made-up-%d", i), hdr); r.code != 404 {
			t.Fatalf("unknown name %d: got %d, want 404", i, r.code)
		}
	}
	reads := counting.reads.Load()
	for _, name := range []string{"made-up-3", "real"} {
		if r := get(t, a.url+"/?name="+name, hdr); r.code != 429 || r.header.Get("Retry-After") == "" {
			t.Fatalf("%s after 3 unknown names: got %d, want 429 with Retry-After", name, r.code)
		}
	}
	if got := counting.reads.Load() - reads; got != 0 {
		t.Fatalf("a blocked address cost %d Firestore reads, want 0", got)
	}
}

// Unknown names are remembered (so that asking again costs no Firestore
// read) only up to a cap: the oldest is forgotten first.
func TestUnknownNameMemoryIsCapped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"TRUSTED_PROXY_HOPS": "1"})
	a := h.startAPI(nil)
	const capacity = 8
	a.srv.cache = newTokenCache(capacity)
	counting := &countingStore{Store: a.srv.store}
	a.srv.store = counting
	ask := func(i int) {
		t.Helper()
		// One address per name keeps the per-address budget out of the way.
		hdr := map[string]string{"x-token-passphrase": h.Env["TOKEN_PASSPHRASE"], "X-Forwarded-For": fmt.Sprintf("10.9.%d.%d", i/250, i%250)}
		if r := get(t, a.url+fmt.Sprintf("/?name=unknown-%d", i), hdr); r.code != 404 {
			t.Fatalf("unknown-%d: got %d, want 404", i, r.code)
		}
	}
	const names = 50
	for i := range names {
		ask(i)
	}
	if got := a.srv.cache.missingLen(); got != capacity {
		t.Fatalf("got %d unknown names remembered, want %d", got, capacity)
	}
	before := counting.reads.Load()
	ask(names - 1)
	if got := counting.reads.Load() - before; got != 0 {
		t.Fatalf("the latest unknown name again: got %d reads, want 0 (remembered)", got)
	}
	ask(0)
	if got := counting.reads.Load() - before; got != 1 {
		t.Fatalf("the oldest unknown name again: got %d reads, want 1 (forgotten)", got)
	}
}

// missingLen returns how many unknown names are remembered.
func (c *tokenCache) missingLen() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for _, e := range c.missing {
		if e != nil && c.m[e.name] == e {
			n++
		}
	}
	return n
}
