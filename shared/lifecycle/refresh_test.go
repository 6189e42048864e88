package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/testing/memstore"
	"github.com/wxcc/tokenservice/shared/token"
)

// stubIssuer answers Refresh with a scripted grant or error and counts
// calls. After hold, every call signals started and waits for release
// (or its context), so that a test knows a Webex call is in flight.
type stubIssuer struct {
	mu      sync.Mutex
	calls   int
	gate    chan struct{} // nil: answer at once
	started chan struct{}
	grant   token.Grant
	err     error
	seen    []string // refresh tokens sent
	// refresh, if set, answers Refresh instead of grant and err.
	refresh func(c token.Client, rt string) (token.Grant, error)
	// mint answers Mint; nil: a mint is a test failure's error.
	mint   func(req token.MintRequest) (token.Grant, error)
	mints  int
	minted []token.MintRequest
}

func (s *stubIssuer) Mint(ctx context.Context, req token.MintRequest) (token.Grant, error) {
	s.mu.Lock()
	s.mints++
	s.minted = append(s.minted, req)
	mint := s.mint
	s.mu.Unlock()
	if mint == nil {
		return token.Grant{}, errors.New("unexpected mint")
	}
	return mint(req)
}

func (s *stubIssuer) Mints() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mints
}

// hold makes the following calls wait until release.
func (s *stubIssuer) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate, s.started = make(chan struct{}), make(chan struct{}, 100)
}

// release lets every waiting and later call answer.
func (s *stubIssuer) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.gate)
}

// awaitCall waits until a held call has started.
func (s *stubIssuer) awaitCall(t *testing.T) {
	t.Helper()
	select {
	case <-s.started:
	case <-time.After(10 * time.Second):
		t.Fatal("no webex call started")
	}
}

func (s *stubIssuer) Refresh(ctx context.Context, c token.Client, rt string) (token.Grant, error) {
	s.mu.Lock()
	s.calls++
	s.seen = append(s.seen, rt)
	gate, started, g, err := s.gate, s.started, s.grant, s.err
	if s.refresh != nil {
		g, err = s.refresh(c, rt)
	}
	s.mu.Unlock()
	if gate != nil {
		started <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return token.Grant{}, &token.TransientError{Err: ctx.Err()}
		}
	}
	return g, err
}

func (s *stubIssuer) Exchange(ctx context.Context, c token.Client, code string) (token.Grant, error) {
	return s.Refresh(ctx, c, "code:"+code)
}

func (s *stubIssuer) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// clock is a settable time source.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

type fixture struct {
	store  *memstore.Store
	issuer *stubIssuer
	clock  *clock
	r      *lifecycle.Refresher
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{store: memstore.New(), clock: newClock(), issuer: &stubIssuer{
		grant: token.Grant{AccessToken: "at-new", ExpiresIn: 12 * time.Hour, RefreshToken: "rt-new", RefreshExpiresIn: 60 * 24 * time.Hour},
	}}
	f.r = f.newRefresher("holder-a")
	return f
}

func (f *fixture) newRefresher(holder string) *lifecycle.Refresher {
	r := lifecycle.NewRefresher(lifecycle.RefresherConfig{
		Store: f.store, Issuer: f.issuer, Now: f.clock.Now, Holder: holder,
		Threshold: 2 * time.Hour, WebexTimeout: 2 * time.Second, PollInterval: 5 * time.Millisecond,
	})
	return r
}

// seed stores a token with remaining access time left.
func (f *fixture) seed(t *testing.T, name string, remaining time.Duration, mod ...func(*token.Token)) {
	t.Helper()
	now := f.clock.Now()
	tok := &token.Token{
		Name: name, ClientID: "cid", ClientSecret: "secret", RedirectURI: "https://example.com/cb",
		AccessToken: "at-old", RefreshToken: "rt-old",
		AccessExpires: now.Add(remaining), RefreshExpires: now.Add(30 * 24 * time.Hour), LastRefresh: now.Add(-10 * time.Hour),
	}
	for _, m := range mod {
		m(tok)
	}
	if _, err := f.store.Create(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) get(t *testing.T, name string) *token.Token {
	t.Helper()
	tok, err := f.store.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

var scheduled = lifecycle.RefreshOptions{Trigger: token.TriggerScheduled, Lead: 30 * time.Minute}

func TestRefreshSkipsFreshToken(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "fresh", 5*time.Hour)
	res, err := f.r.Refresh(context.Background(), "fresh", scheduled)
	if err != nil || res.Outcome != lifecycle.Fresh {
		t.Fatalf("got %v, %v; want fresh, nil", res.Outcome, err)
	}
	if n := f.issuer.Calls(); n != 0 {
		t.Fatalf("got %d webex calls, want 0", n)
	}
}

func TestRefreshStoresNewGeneration(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "due", time.Hour)
	res, err := f.r.Refresh(context.Background(), "due", scheduled)
	if err != nil || res.Outcome != lifecycle.Refreshed {
		t.Fatalf("got %v, %v; want refreshed, nil", res.Outcome, err)
	}
	got := f.get(t, "due")
	now := f.clock.Now()
	if got.AccessToken != "at-new" || got.RefreshToken != "rt-new" || got.Generation != 1 {
		t.Fatalf("got access %q refresh %q generation %d, want at-new rt-new 1", got.AccessToken, got.RefreshToken, got.Generation)
	}
	if !got.AccessExpires.Equal(now.Add(12*time.Hour)) || !got.LastRefresh.Equal(now) || !got.RefreshExpires.Equal(now.Add(60*24*time.Hour)) {
		t.Fatalf("got expiries %v %v last %v", got.AccessExpires, got.RefreshExpires, got.LastRefresh)
	}
	if got.Lease.Holder != "" || got.Status != token.StatusActive || got.LastError != nil {
		t.Fatalf("got lease %+v status %q lastError %+v, want all cleared", got.Lease, got.Status, got.LastError)
	}
	ev := f.store.Outbox()
	if len(ev) != 1 || ev[0].Type != token.EventRotated || ev[0].Generation != 1 || ev[0].ID != "due/1/token.rotated" {
		t.Fatalf("got events %+v, want one token.rotated for generation 1", ev)
	}
}

func TestRefreshWithoutNewRefreshTokenKeepsOld(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "keep", time.Hour)
	oldExp := f.get(t, "keep").RefreshExpires
	f.issuer.grant = token.Grant{AccessToken: "at-new", ExpiresIn: 12 * time.Hour}
	if _, err := f.r.Refresh(context.Background(), "keep", scheduled); err != nil {
		t.Fatal(err)
	}
	got := f.get(t, "keep")
	if got.RefreshToken != "rt-old" || !got.RefreshExpires.Equal(oldExp) || got.AccessToken != "at-new" {
		t.Fatalf("got refresh %q expires %v access %q, want rt-old, %v, at-new", got.RefreshToken, got.RefreshExpires, got.AccessToken, oldExp)
	}
}

// An answer without expires_in cannot be served, but the refresh token it
// carries may be the only one Webex still accepts.
func TestUnusableAnswerKeepsRotatedRefreshToken(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "odd", time.Hour)
	f.issuer.grant = token.Grant{AccessToken: "at-new", RefreshToken: "rt-rotated", RefreshExpiresIn: 60 * 24 * time.Hour}
	_, err := f.r.Refresh(context.Background(), "odd", scheduled)
	var be *token.BackoffError
	if !errors.As(err, &be) {
		t.Fatalf("got %v, want a backoff (transient)", err)
	}
	got := f.get(t, "odd")
	if got.RefreshToken != "rt-rotated" || !got.RefreshExpires.Equal(f.clock.Now().Add(60*24*time.Hour)) {
		t.Fatalf("got refresh %q expires %v, want the rotated one kept", got.RefreshToken, got.RefreshExpires)
	}
	if got.AccessToken != "at-old" || got.Generation != 0 || got.Lease.Holder != "" {
		t.Fatalf("got access %q generation %d lease %+v, want the old token, no new generation, lease released", got.AccessToken, got.Generation, got.Lease)
	}
	// The next attempt sends the rotated refresh token.
	f.issuer.grant = token.Grant{AccessToken: "at-new", ExpiresIn: 12 * time.Hour}
	f.clock.Advance(be.Until.Sub(f.clock.Now()) + time.Second)
	if _, err := f.r.Refresh(context.Background(), "odd", scheduled); err != nil {
		t.Fatal(err)
	}
	if seen := f.issuer.seen; len(seen) != 2 || seen[1] != "rt-rotated" {
		t.Fatalf("refresh tokens sent %v, want rt-old then rt-rotated", seen)
	}
}

func TestRefreshFailureClasses(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		remaining  time.Duration
		wantErr    error
		wantStatus token.Status
		wantEvents []token.EventType
		permanent  bool
	}{
		{name: "grant rejected", err: token.ErrGrantRejected, remaining: time.Hour, wantErr: token.ErrReauthRequired,
			wantStatus: token.StatusReauthRequired, wantEvents: []token.EventType{token.EventReauthorizationRequired}, permanent: true},
		{name: "client rejected", err: token.ErrClientRejected, remaining: time.Hour, wantErr: token.ErrConfigError,
			wantStatus: token.StatusConfigError, wantEvents: []token.EventType{token.EventRefreshFailed}, permanent: true},
		{name: "transient below threshold", err: &token.TransientError{Err: errors.New("503")}, remaining: time.Hour,
			wantEvents: []token.EventType{token.EventRefreshFailed}},
		{name: "transient within lead", err: &token.TransientError{Err: errors.New("503")}, remaining: 2*time.Hour + 10*time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.seed(t, "x", tc.remaining)
			f.issuer.err = tc.err
			_, err := f.r.Refresh(context.Background(), "x", scheduled)
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			var be *token.BackoffError
			if tc.wantErr == nil && !errors.As(err, &be) {
				t.Fatalf("got error %v, want a backoff", err)
			}
			got := f.get(t, "x")
			if got.Status != tc.wantStatus {
				t.Fatalf("got status %q, want %q", got.Status, tc.wantStatus)
			}
			if got.LastError == nil || got.LastError.Permanent != tc.permanent || !got.LastError.At.Equal(f.clock.Now()) {
				t.Fatalf("got lastError %+v, want permanent=%v at now", got.LastError, tc.permanent)
			}
			if got.Lease.Holder != "" {
				t.Fatalf("lease not released: %+v", got.Lease)
			}
			var types []token.EventType
			for _, e := range f.store.Outbox() {
				types = append(types, e.Type)
			}
			if len(types) != len(tc.wantEvents) || (len(types) > 0 && types[0] != tc.wantEvents[0]) {
				t.Fatalf("got events %v, want %v", types, tc.wantEvents)
			}
			// A second attempt right away must not call Webex again.
			f.r.Refresh(context.Background(), "x", scheduled)
			if n := f.issuer.Calls(); n != 1 {
				t.Fatalf("got %d webex calls after a second attempt, want 1", n)
			}
			if len(f.store.Outbox()) != len(tc.wantEvents) {
				t.Fatalf("second attempt published again: %+v", f.store.Outbox())
			}
		})
	}
}

func TestConfigErrorResumesWhenClientChanges(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "cfg", time.Hour)
	f.issuer.err = token.ErrClientRejected
	f.r.Refresh(context.Background(), "cfg", scheduled)
	f.issuer.err = nil
	if _, err := f.r.Refresh(context.Background(), "cfg", scheduled); !errors.Is(err, token.ErrConfigError) {
		t.Fatalf("got %v, want config error while the client is unchanged", err)
	}
	if _, err := f.store.Update(context.Background(), "cfg", func(t *token.Token) ([]token.Event, error) {
		t.ClientSecret = "fixed"
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	res, err := f.r.Refresh(context.Background(), "cfg", scheduled)
	if err != nil || res.Outcome != lifecycle.Refreshed || res.Token.Status != token.StatusActive {
		t.Fatalf("got %v %v, want refreshed and active after the client changed", res.Outcome, err)
	}
	if n := f.issuer.Calls(); n != 2 {
		t.Fatalf("got %d webex calls, want 2", n)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "rl", time.Hour)
	f.issuer.err = &token.TransientError{RetryAfter: 3 * time.Minute, Err: errors.New("429")}
	f.r.Refresh(context.Background(), "rl", scheduled)
	got := f.get(t, "rl")
	if want := f.clock.Now().Add(3 * time.Minute); got.NextAttempt.Before(want) {
		t.Fatalf("got next attempt %v, want not before %v", got.NextAttempt, want)
	}
	f.issuer.err = nil
	f.clock.Advance(2 * time.Minute)
	f.r.Refresh(context.Background(), "rl", scheduled)
	if n := f.issuer.Calls(); n != 1 {
		t.Fatalf("got %d calls inside Retry-After, want 1", n)
	}
	f.clock.Advance(2 * time.Minute)
	if res, err := f.r.Refresh(context.Background(), "rl", scheduled); err != nil || res.Outcome != lifecycle.Refreshed {
		t.Fatalf("got %v %v after Retry-After, want refreshed", res.Outcome, err)
	}
}

func TestRefreshFailedOncePerGeneration(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "tf", time.Hour)
	f.issuer.err = &token.TransientError{Err: errors.New("503")}
	for i := 0; i < 4; i++ {
		f.r.Refresh(context.Background(), "tf", scheduled)
		f.clock.Advance(10 * time.Minute)
	}
	if n := f.issuer.Calls(); n < 2 {
		t.Fatalf("got %d calls, want retries after backoff", n)
	}
	if n := len(f.store.Outbox()); n != 1 {
		t.Fatalf("got %d events, want one token.refresh_failed for the generation", n)
	}
}

func TestExpiredRefreshTokenIsNotSent(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "old", time.Hour, func(tok *token.Token) { tok.RefreshExpires = tok.AccessExpires.Add(-2 * time.Hour) })
	_, err := f.r.Refresh(context.Background(), "old", scheduled)
	if !errors.Is(err, token.ErrReauthRequired) {
		t.Fatalf("got %v, want reauth required", err)
	}
	if n := f.issuer.Calls(); n != 0 {
		t.Fatalf("got %d webex calls, want 0", n)
	}
	if got := f.get(t, "old"); got.Status != token.StatusReauthRequired {
		t.Fatalf("got status %q, want reauth_required", got.Status)
	}
	if ev := f.store.Outbox(); len(ev) != 1 || ev[0].Type != token.EventReauthorizationRequired {
		t.Fatalf("got events %+v, want one reauthorization_required", ev)
	}
}

func TestShortLivedGrantDoesNotLoop(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "short", time.Hour)
	f.issuer.grant = token.Grant{AccessToken: "at-short", ExpiresIn: time.Hour}
	for i := 0; i < 5; i++ {
		f.r.Refresh(context.Background(), "short", lifecycle.RefreshOptions{Trigger: token.TriggerInline})
		f.clock.Advance(time.Minute)
	}
	if n := f.issuer.Calls(); n != 1 {
		t.Fatalf("got %d webex calls, want 1: a short-lived grant must back off", n)
	}
}

func TestLeaseHeldElsewhere(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "leased", time.Hour)
	cur := f.get(t, "leased")
	if _, err := f.store.TryLease(context.Background(), cur, token.Lease{Holder: "other", Until: f.clock.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	res, err := f.r.Refresh(context.Background(), "leased", scheduled)
	if err != nil || res.Outcome != lifecycle.Skipped || f.issuer.Calls() != 0 {
		t.Fatalf("got %v %v with %d calls, want skipped without a call", res.Outcome, err, f.issuer.Calls())
	}
	// A waiting caller sees the other holder's generation, once it has
	// started waiting (its first poll reads the store).
	reads := f.store.Reads()
	go func() {
		for f.store.Reads() < reads+2 { // the first read, then a poll
			runtime.Gosched()
		}
		f.store.Update(context.Background(), "leased", func(tok *token.Token) ([]token.Event, error) {
			tok.AccessToken, tok.AccessExpires, tok.Generation, tok.Lease = "at-other", f.clock.Now().Add(12*time.Hour), tok.Generation+1, token.Lease{}
			return nil, nil
		})
	}()
	res, err = f.r.Refresh(context.Background(), "leased", lifecycle.RefreshOptions{Trigger: token.TriggerInline, WaitForOthers: true})
	if err != nil || res.Outcome != lifecycle.RefreshedElsewhere || res.Token.AccessToken != "at-other" {
		t.Fatalf("got %v %v, want the other holder's token", res.Outcome, err)
	}
	if f.issuer.Calls() != 0 {
		t.Fatalf("a loser called webex")
	}
}

func TestConcurrentCallersShareOneRefresh(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "hot", time.Hour)
	f.issuer.hold()
	other := f.newRefresher("holder-b")
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		r := f.r
		if i%2 == 1 {
			r = other
		}
		wg.Go(func() {
			res, err := r.Refresh(context.Background(), "hot", lifecycle.RefreshOptions{Trigger: token.TriggerInline, WaitForOthers: true})
			if err != nil || res.Token.AccessToken != "at-new" {
				t.Errorf("got %v %v, want the new token", res.Outcome, err)
			}
		})
	}
	f.issuer.awaitCall(t) // one caller holds the lease and is calling Webex
	f.issuer.release()
	wg.Wait()
	if n := f.issuer.Calls(); n != 1 {
		t.Fatalf("got %d webex calls from two refreshers, want 1", n)
	}
}

func TestCallerTimeoutDoesNotAbortRefresh(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "slow", time.Hour)
	f.issuer.hold()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		f.issuer.awaitCall(t)
		cancel() // the caller gives up while Webex is being called
	}()
	if _, err := f.r.Refresh(ctx, "slow", scheduled); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want the caller's cancellation", err)
	}
	f.issuer.release()
	deadline := time.Now().Add(2 * time.Second)
	for f.get(t, "slow").Generation != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the refresh did not complete in the background")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A Webex call that does not answer within CallGrace of Close is cut
// off, and its lease released with nothing recorded.
func TestCloseReleasesLease(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "bye", time.Hour)
	f.issuer.hold()
	go f.r.Refresh(context.Background(), "bye", scheduled)
	f.issuer.awaitCall(t) // under the lease
	start := time.Now()
	f.r.Close()
	if took := time.Since(start); took < lifecycle.CallGrace/2 || took > lifecycle.GrantGrace+3*time.Second {
		t.Fatalf("Close took %s, want about CallGrace (%s)", took, lifecycle.CallGrace)
	}
	got := f.get(t, "bye")
	if got.Lease.Holder != "" || got.LastError != nil || got.Generation != 0 {
		t.Fatalf("got lease %+v lastError %+v generation %d, want the lease released and nothing recorded", got.Lease, got.LastError, got.Generation)
	}
}

// hungPublisher's Deliver waits until its context ends, as a publish to an
// unresponsive Pub/Sub would without its own bounds.
type hungPublisher struct{ started chan struct{} }

func (p hungPublisher) Deliver(ctx context.Context, _ []token.Event) {
	close(p.started)
	<-ctx.Done()
}

// Shutdown must fit Cloud Run's 10 s: Close cuts off a delivery that does
// not end by itself (its events stay in the outbox) after DeliveryGrace.
func TestCloseCutsOffHungDelivery(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "due", time.Hour)
	pub := hungPublisher{started: make(chan struct{})}
	r := lifecycle.NewRefresher(lifecycle.RefresherConfig{Store: f.store, Issuer: f.issuer, Publisher: pub, Now: f.clock.Now,
		Holder: "holder-b", Threshold: 2 * time.Hour, WebexTimeout: 2 * time.Second})
	if _, err := r.Refresh(context.Background(), "due", scheduled); err != nil {
		t.Fatal(err)
	}
	<-pub.started
	start := time.Now()
	r.Close()
	if took := time.Since(start); took < lifecycle.DeliveryGrace/2 || took > lifecycle.DeliveryGrace+3*time.Second {
		t.Fatalf("Close took %s, want about DeliveryGrace (%s)", took, lifecycle.DeliveryGrace)
	}
}

// lostAnswerStore commits a lease but reports the call as cancelled, as a
// shutdown that cancels the write in flight after Firestore applied it.
type lostAnswerStore struct{ *memstore.Store }

func (s lostAnswerStore) TryLease(ctx context.Context, t *token.Token, l token.Lease) (*token.Token, error) {
	if _, err := s.Store.TryLease(ctx, t, l); err != nil {
		return nil, err
	}
	return nil, context.Canceled
}

// A lease whose write landed but whose answer was lost is released, not
// left to expire: otherwise every instance waits out its TTL.
func TestLeaseWithLostAnswerIsReleased(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "lost", time.Hour)
	r := lifecycle.NewRefresher(lifecycle.RefresherConfig{Store: lostAnswerStore{f.store}, Issuer: f.issuer, Now: f.clock.Now,
		Holder: "holder-c", Threshold: 2 * time.Hour, WebexTimeout: 2 * time.Second})
	defer r.Close()
	if _, err := r.Refresh(context.Background(), "lost", scheduled); err == nil {
		t.Fatal("Refresh succeeded, want the lease error")
	}
	if got := f.get(t, "lost"); got.Lease.Holder != "" || got.LastError != nil {
		t.Fatalf("got lease %+v lastError %+v, want the lease released and nothing recorded", got.Lease, got.LastError)
	}
	if n := f.issuer.Calls(); n != 0 {
		t.Fatalf("got %d webex calls, want 0", n)
	}
}

// lateIssuer answers only once its context ended, with a grant: Webex's
// answer arriving just as a shutdown cancels the call.
type lateIssuer struct {
	stubIssuer
	called chan struct{}
}

func (s *lateIssuer) Refresh(ctx context.Context, c token.Client, rt string) (token.Grant, error) {
	close(s.called)
	<-ctx.Done()
	return token.Grant{AccessToken: "at-late", ExpiresIn: 12 * time.Hour, RefreshToken: "rt-rotated"}, nil
}

// A grant in hand when shutdown begins is still stored: Webex may have
// retired the old refresh token, and dropping the new one would force a
// re-authorization.
func TestGrantAtShutdownIsStored(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "late", time.Hour)
	iss := &lateIssuer{called: make(chan struct{})}
	r := lifecycle.NewRefresher(lifecycle.RefresherConfig{Store: f.store, Issuer: iss, Now: f.clock.Now,
		Holder: "holder-d", Threshold: 2 * time.Hour, WebexTimeout: 10 * time.Second})
	go r.Refresh(context.Background(), "late", scheduled)
	<-iss.called
	r.Close()
	got := f.get(t, "late")
	if got.AccessToken != "at-late" || got.RefreshToken != "rt-rotated" || got.Generation != 1 || got.Lease.Holder != "" {
		t.Fatalf("got access %q refresh %q generation %d lease %+v, want the late grant stored as generation 1",
			got.AccessToken, got.RefreshToken, got.Generation, got.Lease)
	}
}

// A Webex call in flight when Close begins is allowed to answer: Webex
// may have spent the refresh token already, and cutting the call off
// would throw the only new one away (found by the 60-minute soak: a
// worker stopped with SIGTERM as Webex rotated a token, which then
// needed a new authorization).
func TestCallInFlightAtCloseIsAnswered(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "stopping", time.Hour)
	f.issuer.hold()
	go f.r.Refresh(context.Background(), "stopping", scheduled)
	f.issuer.awaitCall(t)
	closed := make(chan struct{})
	go func() { f.r.Close(); close(closed) }()
	time.Sleep(lifecycle.CallGrace / 4) // Close has begun and waits
	f.issuer.release()                  // Webex answers within the grace
	select {
	case <-closed:
	case <-time.After(lifecycle.GrantGrace + 5*time.Second):
		t.Fatal("Close did not return")
	}
	got := f.get(t, "stopping")
	if got.Generation != 1 || got.RefreshToken != "rt-new" || got.Lease.Holder != "" {
		t.Fatalf("got generation %d refresh %q lease %+v, want the answer stored as generation 1", got.Generation, got.RefreshToken, got.Lease)
	}
}

// Two runs of one process for one token, under different singleflight
// keys (an operator's forced refresh and a flow's inline refresh), make
// one Webex call: the lease names the process, so it cannot tell them
// apart (found by the 60-minute soak: the second run sent a refresh
// token the first had just spent).
func TestRunsOfOneProcessShareTheLease(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "busy", time.Minute) // due
	f.issuer.hold()
	manual := lifecycle.RefreshOptions{Trigger: token.TriggerManual, Force: true, WaitForOthers: true}
	forced := make(chan lifecycle.Result, 1)
	go func() {
		res, err := f.r.Refresh(context.Background(), "busy", manual)
		if err != nil {
			t.Errorf("forced: %v", err)
		}
		forced <- res
	}()
	f.issuer.awaitCall(t) // the forced run holds the lease and calls Webex
	flow := make(chan lifecycle.Result, 1)
	go func() {
		res, err := f.r.Refresh(context.Background(), "busy", lifecycle.RefreshOptions{Trigger: token.TriggerInline, WaitForOthers: true})
		if err != nil {
			t.Errorf("inline: %v", err)
		}
		flow <- res
	}()
	select {
	case <-f.issuer.started:
		t.Fatal("a second Webex call started while the first held the lease")
	case <-time.After(300 * time.Millisecond):
	}
	f.issuer.release()
	if res := <-forced; res.Outcome != lifecycle.Refreshed || res.Token.Generation != 1 {
		t.Fatalf("forced: got %v generation %d, want refreshed to 1", res.Outcome, res.Token.Generation)
	}
	if res := <-flow; res.Token == nil || res.Token.Generation != 1 {
		t.Fatalf("inline: got %+v, want generation 1 (refreshed by the other run)", res)
	}
	if n := f.issuer.Calls(); n != 1 {
		t.Fatalf("got %d webex calls, want 1", n)
	}
}

// TestCloseWhileRefreshing closes refreshers while refreshes start: Close
// must wait for every refresh it let start and refuse the rest, without
// a WaitGroup Add racing its Wait (the race detector reports that).
func TestCloseWhileRefreshing(t *testing.T) {
	for i := 0; i < 50; i++ {
		f := newFixture(t)
		f.seed(t, "due", time.Hour)
		var wg sync.WaitGroup
		for j := 0; j < 4; j++ {
			wg.Go(func() {
				_, err := f.r.Refresh(context.Background(), "due", scheduled)
				if err != nil && !errors.Is(err, token.ErrUnavailable) {
					t.Errorf("got %v, want success or unavailable while shutting down", err)
				}
			})
		}
		f.r.Close()
		wg.Wait()
		if got := f.get(t, "due"); got.Lease.Holder != "" {
			t.Fatalf("lease %+v left behind by Close", got.Lease)
		}
	}
}

// TestBrakeCountsOnlyWebexRejections: the worker's brake counts what
// RejectedByWebex says, so a rejection from Webex must be recognisable
// through the protocol's error, and a lapsed refresh token must not be.
func TestBrakeCountsOnlyWebexRejections(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "lapsed", time.Hour, func(tok *token.Token) { tok.RefreshExpires = f.clock.Now().Add(-time.Minute) })
	f.seed(t, "revoked", time.Hour)
	f.seed(t, "bad-client", time.Hour)
	_, err := f.r.Refresh(context.Background(), "lapsed", scheduled)
	if !errors.Is(err, token.ErrReauthRequired) || token.RejectedByWebex(err) {
		t.Fatalf("lapsed: got %v, want reauth required that Webex did not reject", err)
	}
	f.issuer.err = token.ErrGrantRejected
	_, err = f.r.Refresh(context.Background(), "revoked", scheduled)
	if !errors.Is(err, token.ErrReauthRequired) || !token.RejectedByWebex(err) {
		t.Fatalf("revoked: got %v, want reauth required rejected by Webex", err)
	}
	f.issuer.err = token.ErrClientRejected
	_, err = f.r.Refresh(context.Background(), "bad-client", scheduled)
	if !errors.Is(err, token.ErrConfigError) || !token.RejectedByWebex(err) {
		t.Fatalf("bad client: got %v, want config error rejected by Webex", err)
	}
	if n := f.issuer.Calls(); n != 2 {
		t.Fatalf("got %d webex calls, want 2: the lapsed refresh token is never sent", n)
	}
}

// TestForcedRefresh: an operator's Refresh now refreshes a token that is
// not due, once across instances: a second forced refresh that waited
// for the first one's lease finds the generation moved on.
func TestForcedRefresh(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "fresh", 10*time.Hour, func(tok *token.Token) { tok.NextAttempt = f.clock.Now().Add(time.Minute) })
	manual := lifecycle.RefreshOptions{Trigger: token.TriggerManual, Force: true, WaitForOthers: true}
	res, err := f.r.Refresh(context.Background(), "fresh", manual)
	if err != nil || res.Outcome != lifecycle.Refreshed || res.Token.Generation != 1 {
		t.Fatalf("got %v %v, want refreshed to generation 1 despite 10h left and a backoff", res.Outcome, err)
	}
	if ev := f.store.Outbox(); len(ev) != 1 || ev[0].Trigger != token.TriggerManual {
		t.Fatalf("got events %+v, want one with trigger manual", ev)
	}

	// Asked on a second instance while the first one's forced refresh
	// holds the lease: one Webex call for both.
	f.issuer.hold()
	other := f.newRefresher("holder-b")
	first := make(chan lifecycle.Outcome, 1)
	go func() {
		res, err := f.r.Refresh(context.Background(), "fresh", manual)
		if err != nil {
			t.Errorf("first: %v", err)
		}
		first <- res.Outcome
	}()
	f.issuer.awaitCall(t) // holder-a holds the lease and calls Webex
	reads := f.store.Reads()
	second := make(chan lifecycle.Result, 1)
	go func() {
		res, err := other.Refresh(context.Background(), "fresh", manual)
		if err != nil {
			t.Errorf("second: %v", err)
		}
		second <- res
	}()
	for f.store.Reads() == reads { // holder-b has read the leased token
		runtime.Gosched()
	}
	f.issuer.release()
	res = <-second
	if err != nil || res.Outcome != lifecycle.RefreshedElsewhere || res.Token.Generation != 2 {
		t.Fatalf("second: got %v %v, want refreshed elsewhere to generation 2", res.Outcome, err)
	}
	if o := <-first; o != lifecycle.Refreshed {
		t.Fatalf("first: got %v, want refreshed", o)
	}
	if n := f.issuer.Calls(); n != 2 {
		t.Fatalf("got %d webex calls in all, want 2: one per Refresh now", n)
	}
}

// outageStore fails the first fails Updates as an unreachable store would.
type outageStore struct {
	*memstore.Store
	mu    sync.Mutex
	fails int
}

func (s *outageStore) Update(ctx context.Context, name string, fn func(t *token.Token) ([]token.Event, error)) (*token.Token, error) {
	s.mu.Lock()
	failing := s.fails > 0
	s.fails--
	s.mu.Unlock()
	if failing {
		return nil, fmt.Errorf("update %s: %w", name, token.ErrUnavailable)
	}
	return s.Store.Update(ctx, name, fn)
}

// TestGrantSurvivesAStoreOutage: a grant in hand is stored once the store
// answers, not tried three times: with a rotating Webex the refresh token
// just spent is worthless, and dropping the new one would force a
// re-authorization (found by the soak campaign). Longer outages:
// grants_test.go.
func TestGrantSurvivesAStoreOutage(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "due", time.Hour)
	store := &outageStore{Store: f.store, fails: 5}
	r := lifecycle.NewRefresher(lifecycle.RefresherConfig{
		Store: store, Issuer: f.issuer, Now: f.clock.Now, Holder: "holder-x",
		Threshold: 2 * time.Hour, WebexTimeout: 2 * time.Second, PollInterval: 5 * time.Millisecond,
	})
	t.Cleanup(r.Close)
	res, err := r.Refresh(context.Background(), "due", scheduled)
	if !errors.Is(err, lifecycle.ErrGrantPending) || res.Outcome != lifecycle.Pending || res.Token.AccessToken != "at-new" {
		t.Fatalf("got %v %v, want the grant kept (pending) with its token", res.Outcome, err)
	}
	limit := time.Now().Add(10 * time.Second)
	for f.get(t, "due").Generation != 1 {
		if time.Now().After(limit) {
			t.Fatal("the grant was never stored")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := f.get(t, "due"); got.RefreshToken != "rt-new" {
		t.Fatalf("stored refresh token %q, want rt-new", got.RefreshToken)
	}
}
