package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/passphrase"
)

// Checks of a token's own passphrase (argon2id) go through a bounded queue:
// what cannot wait gets 429 with Retry-After, and an address that recently
// presented a right passphrase goes first, so guesses, however many, cannot
// keep a flow from its token.
func TestPassphraseChecksQueueFairly(t *testing.T) {
	t.Parallel()
	w := newGuardedQueue(t)
	h, ask, own := w.h, w.ask, w.own
	h.seed("plain", 6*time.Hour, 30*24*time.Hour, nil)
	const flows, guesser, otherGuesser, newcomer = "198.51.100.60", "198.51.100.61", "198.51.100.62", "198.51.100.63"
	// Warm the cache, vouch for the flows' address, and give the guessers a failure each.
	if r := ask(flows, "plain", h.Env["TOKEN_PASSPHRASE"]); r.code != 200 {
		t.Fatalf("plain: got %d", r.code)
	}
	for _, g := range []string{guesser, otherGuesser} {
		if r := ask(g, "guarded", "guess-"+randomHex(6)); r.code != 401 {
			t.Fatalf("first guess from %s: got %d, want 401", g, r.code)
		}
	}

	release := w.holdWorker()
	var wg sync.WaitGroup
	answers := map[string]int{}
	var mu sync.Mutex
	waiting := func(who, ip, pass string) {
		w.queued(&wg, who, func() {
			r := ask(ip, "guarded", pass)
			mu.Lock()
			answers[who] = r.code
			mu.Unlock()
		})
	}
	waiting("guesser", guesser, "guess-"+randomHex(6))
	r := ask(otherGuesser, "guarded", "guess-"+randomHex(6))
	if r.code != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("a guess while the suspects' place is taken: got %d Retry-After %q, want 429 with Retry-After", r.code, r.header.Get("Retry-After"))
	}
	// The flows' address and a newcomer without failures each have their
	// own place (the newcomer's passphrase is wrong: the same right one
	// would share the flows' computation).
	waiting("flows", flows, own)
	waiting("newcomer", newcomer, "newcomer-"+randomHex(6))
	release()
	wg.Wait()
	want := map[string]int{"guesser": 401, "flows": 200, "newcomer": 401}
	for who, code := range want {
		if answers[who] != code {
			t.Errorf("%s: got %d, want %d", who, answers[who], code)
		}
	}
	// A refused check is not a failure: the other guesser is not blocked
	// by it (one failure so far, limit 10).
	if r := ask(otherGuesser, "guarded", own); r.code != 200 {
		t.Errorf("the right passphrase from the refused address: got %d, want 200", r.code)
	}
}

// oneEachQueue is an argon2id queue with one worker and one waiting place
// per priority.
func oneEachQueue() *passphrase.Queue {
	var limits [len(passphrase.DefaultLaneLimits)]passphrase.LaneLimits
	for p := range limits {
		limits[p] = passphrase.LaneLimits{Waiting: 1, PerKey: 1}
	}
	return passphrase.NewQueue(passphrase.QueueConfig{Workers: 1, MaxWait: time.Minute, Limits: limits})
}

// An address refused a place in the queue (429) keeps a place of its own
// for its next try, but after addresses that have not been refused: a
// crowd of first guesses, retrying at full speed, cannot keep a newcomer
// out. The guessers here have no failure yet, like each attacking
// address at the start of an attack.
func TestRefusedAddressWaitsBehindNewcomers(t *testing.T) {
	t.Parallel()
	w := newGuardedQueue(t)
	const first, refused, newcomer = "198.51.100.70", "198.51.100.71", "198.51.100.72"
	release := w.holdWorker()
	var answers []int
	var mu sync.Mutex
	var wg sync.WaitGroup
	guess := func(who, ip string) {
		w.queued(&wg, who, func() {
			r := w.ask(ip, "guarded", "guess-"+randomHex(6))
			mu.Lock()
			answers = append(answers, r.code)
			mu.Unlock()
		})
	}

	// A first guess takes the newcomers' one place; the next address's
	// first guess finds no room.
	guess("the first guess", first)
	if r := w.ask(refused, "guarded", "guess-"+randomHex(6)); r.code != 429 {
		t.Fatalf("a first guess while the newcomers' place is taken: got %d, want 429", r.code)
	}
	// Its next try waits in a place of its own (the queue runs those after
	// the newcomers', TestQueueOrder), though the first guess still holds
	// the newcomers' place; a newcomer is still one.
	if p := w.a.srv.checkPriority(refused, "guarded"); p != passphrase.Retrying {
		t.Fatalf("the refused address: got priority %d, want Retrying (%d)", p, passphrase.Retrying)
	}
	if p := w.a.srv.checkPriority(newcomer, "guarded"); p != passphrase.Unknown {
		t.Fatalf("a newcomer: got priority %d, want Unknown (%d)", p, passphrase.Unknown)
	}
	guess("the refused address's retry", refused)
	release()
	wg.Wait()
	if fmt.Sprint(answers) != "[401 401]" {
		t.Fatalf("got answers %v, want two 401s", answers)
	}
}

// guardedQueue is an api whose token "guarded" has a passphrase of its
// own, checked through a queue with one worker and one waiting place per
// priority (oneEachQueue), for tests of what waits and what is refused.
type guardedQueue struct {
	t   *testing.T
	h   *harness
	a   *api
	q   *passphrase.Queue
	own string // guarded's passphrase
}

func newGuardedQueue(t *testing.T) *guardedQueue {
	t.Helper()
	h := newHarness(t, map[string]string{"TRUSTED_PROXY_HOPS": "1"})
	a := h.startAPI(nil)
	own := "own-passphrase-" + randomHex(8)
	h.Secret(own)
	hash, err := passphrase.HashWith(own, passphrase.Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		t.Fatal(err)
	}
	h.seed("guarded", 6*time.Hour, 30*24*time.Hour, map[string]any{"passphraseHash": hash})
	q := oneEachQueue()
	a.srv.verifier = passphrase.NewVerifier(0, q)
	return &guardedQueue{t: t, h: h, a: a, q: q, own: own}
}

// ask asks for name's token with pass, from ip (through X-Forwarded-For).
func (w *guardedQueue) ask(ip, name, pass string) reply {
	return get(w.t, w.a.url+"/?name="+name, map[string]string{"x-token-passphrase": pass, "X-Forwarded-For": ip})
}

// holdWorker occupies the queue's worker until release is called (at the
// latest when the test ends), so that what waits and what is refused is
// certain.
func (w *guardedQueue) holdWorker() (release func()) {
	started, hold := make(chan struct{}), make(chan struct{})
	release = sync.OnceFunc(func() { close(hold) })
	w.t.Cleanup(release)
	go w.q.Run(context.Background(), passphrase.Caller{Key: "test"}, func() { close(started); <-hold })
	<-started
	return release
}

// queued runs request in wg and waits until it holds a place in the queue.
func (w *guardedQueue) queued(wg *sync.WaitGroup, who string, request func()) {
	w.t.Helper()
	before := w.q.Waiting()
	wg.Go(request)
	deadline := time.Now().Add(10 * time.Second)
	for w.q.Waiting() == before {
		if time.Now().After(deadline) {
			w.t.Fatalf("%s's check never queued", who)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Past perSecond refusals in a second, refusals are held (here until
// their request ends), at most maxHeld at once; the next second starts
// afresh.
func TestRefusalPacer(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix())
	p := &refusalPacer{perSecond: 3, holdFor: time.Hour, maxHeld: 2, now: func() time.Time { return time.Unix(clock.Load(), 0) }}
	ctx, cancel := context.WithCancel(context.Background())
	for i := range 3 {
		p.hold(ctx) // returns at once, or the test hangs
		if h := p.held.Load(); h != 0 {
			t.Fatalf("refusal %d: got %d held, want 0", i+1, h)
		}
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { p.hold(ctx) })
	}
	for p.held.Load() != 2 {
		time.Sleep(time.Millisecond)
	}
	p.hold(ctx) // a third over the limit is not held: maxHeld is 2
	clock.Add(1)
	p.hold(ctx) // a new second
	if h := p.held.Load(); h != 2 {
		t.Fatalf("got %d held, want 2", h)
	}
	cancel()
	wg.Wait()
	if h := p.held.Load(); h != 0 {
		t.Fatalf("after the requests ended: got %d held, want 0", h)
	}
}
