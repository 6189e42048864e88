package lifecycle_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/testing/memstore"
	"github.com/wxcc/tokenservice/shared/token"
)

// downStore is the in-memory store made to fail, as an unreachable
// Firestore does, while down is set; writes counts the Updates it refused.
type downStore struct {
	*memstore.Store
	down    atomic.Bool
	refused atomic.Int32
}

func (s *downStore) fail(op, name string) error {
	return fmt.Errorf("%s %s: %w", op, name, token.ErrUnavailable)
}

func (s *downStore) Get(ctx context.Context, name string) (*token.Token, error) {
	if s.down.Load() {
		return nil, s.fail("get", name)
	}
	return s.Store.Get(ctx, name)
}

func (s *downStore) TryLease(ctx context.Context, t *token.Token, l token.Lease) (*token.Token, error) {
	if s.down.Load() {
		return nil, s.fail("lease", t.Name)
	}
	return s.Store.TryLease(ctx, t, l)
}

func (s *downStore) Update(ctx context.Context, name string, fn func(t *token.Token) ([]token.Event, error)) (*token.Token, error) {
	if s.down.Load() {
		s.refused.Add(1)
		return nil, s.fail("update", name)
	}
	return s.Store.Update(ctx, name, fn)
}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// outage is a fixture whose refresher ("holder-a") reaches the store
// through a downStore, and whose log is checked for the grant's secrets.
type outage struct {
	*fixture
	down *downStore
	logs *syncBuffer
	r    *lifecycle.Refresher
}

func newOutage(t *testing.T) *outage {
	f := newFixture(t)
	o := &outage{fixture: f, down: &downStore{Store: f.store}, logs: &syncBuffer{}}
	o.r = o.refresher("holder-a", o.down)
	t.Cleanup(func() {
		for _, secret := range []string{"at-new", "rt-new", "rt-old", "secret"} {
			if strings.Contains(o.logs.String(), secret) {
				t.Errorf("the log shows %q:\n%s", secret, o.logs.String())
			}
		}
	})
	return o
}

func (o *outage) refresher(holder string, store token.Store) *lifecycle.Refresher {
	return lifecycle.NewRefresher(lifecycle.RefresherConfig{
		Store: store, Issuer: o.issuer, Now: o.clock.Now, Holder: holder,
		Threshold: 2 * time.Hour, WebexTimeout: 2 * time.Second, PollInterval: 5 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(o.logs, nil)),
	})
}

// cutAfterWebex makes the store unreachable the moment Webex first answers.
func (o *outage) cutAfterWebex() {
	g := o.issuer.grant
	var once sync.Once
	o.issuer.refresh = func(token.Client, string) (token.Grant, error) {
		once.Do(func() { o.down.down.Store(true) })
		return g, nil
	}
}

// awaitRefused waits until the store has refused n writes.
func (o *outage) awaitRefused(t *testing.T, n int32) {
	t.Helper()
	limit := time.Now().Add(20 * time.Second)
	for o.down.refused.Load() < n {
		if time.Now().After(limit) {
			t.Fatalf("the store refused %d writes, want %d: the grant is not being retried", o.down.refused.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// awaitGeneration waits until the stored token reaches generation g.
func (o *outage) awaitGeneration(t *testing.T, name string, g int64) *token.Token {
	t.Helper()
	limit := time.Now().Add(20 * time.Second)
	for {
		if got := o.get(t, name); got.Generation >= g {
			return got
		}
		if time.Now().After(limit) {
			t.Fatalf("generation %d never stored", g)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestGrantKeptThroughAnOutage: a grant whose store write fails is kept,
// served by this instance, written once the store answers however long
// it failed (the clock moves past the lease meanwhile), and no second
// Webex call happens for the token on any instance until it is stored.
func TestGrantKeptThroughAnOutage(t *testing.T) {
	for _, tc := range []struct {
		name string
		// act gets the grant: a scheduled refresh, or an authorization.
		act  func(o *outage) (*token.Token, error)
		gen  int64
		rt   string
		seen string // what Webex was sent
		// leased: the grant was made under the lease, which holds the
		// other instances back (an authorization holds none).
		leased bool
	}{
		{name: "refresh", gen: 1, rt: "rt-new", seen: "rt-old", leased: true, act: func(o *outage) (*token.Token, error) {
			res, err := o.r.Refresh(context.Background(), "due", scheduled)
			if res.Outcome != lifecycle.Pending {
				return nil, fmt.Errorf("outcome %v, want pending", res.Outcome)
			}
			return res.Token, err
		}},
		{name: "authorization", gen: 1, rt: "rt-new", seen: "code:the-code", act: func(o *outage) (*token.Token, error) {
			_, err := o.r.ExchangeCode(context.Background(), "due", "the-code")
			return o.r.Pending("due"), err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOutage(t)
			o.seed(t, "due", time.Hour)
			o.cutAfterWebex()

			answered := o.clock.Now()
			got, err := tc.act(o)
			if !errors.Is(err, lifecycle.ErrGrantPending) || !errors.Is(err, token.ErrUnavailable) {
				t.Fatalf("got %v, want ErrGrantPending (unavailable)", err)
			}
			if got == nil || got.AccessToken != "at-new" || got.Generation != tc.gen {
				t.Fatalf("got %+v, want the new token to serve meanwhile", got)
			}
			if p := o.r.Pending("due"); p == nil || p.AccessToken != "at-new" {
				t.Fatalf("Pending: got %+v, want the new token", p)
			}
			o.awaitRefused(t, 3) // retried in the background

			// Meanwhile this instance makes no other Webex call, forced or not.
			for _, m := range []lifecycle.RefreshOptions{scheduled, {Trigger: token.TriggerManual, Force: true, WaitForOthers: true}} {
				res, err := o.r.Refresh(context.Background(), "due", m)
				if !errors.Is(err, lifecycle.ErrGrantPending) || res.Token == nil || res.Token.AccessToken != "at-new" {
					t.Fatalf("refresh while pending: got %v %v, want the kept token and ErrGrantPending", res.Outcome, err)
				}
			}
			// The outage outlasts the lease; when the store answers, the
			// other instance sees an expired lease and must not call.
			o.clock.Advance(time.Hour)
			o.down.down.Store(false)
			if tc.leased {
				other := o.newRefresher("holder-b")
				t.Cleanup(other.Close)
				if res, err := other.Refresh(context.Background(), "due", scheduled); err != nil || res.Outcome == lifecycle.Refreshed {
					t.Fatalf("other instance: got %v %v, want no refresh of its own", res.Outcome, err)
				}
			}
			stored := o.awaitGeneration(t, "due", tc.gen)
			if stored.AccessToken != "at-new" || stored.RefreshToken != tc.rt || stored.Lease.Holder != "" || stored.Status != token.StatusActive {
				t.Fatalf("stored %+v, want the kept grant, lease cleared, active", stored)
			}
			// Its lifetimes count from Webex's answer, not from the late write.
			if want := answered.Add(12 * time.Hour).Truncate(time.Millisecond); !stored.AccessExpires.Equal(want) || !stored.LastRefresh.Equal(answered.Truncate(time.Millisecond)) {
				t.Fatalf("stored access expiry %v, last refresh %v; want %v and %v", stored.AccessExpires, stored.LastRefresh, want, answered)
			}
			if ev := o.store.Outbox(); len(ev) != 1 || ev[0].Type != token.EventRotated || ev[0].Generation != tc.gen {
				t.Fatalf("outbox %+v, want the grant's token.rotated", ev)
			}
			limit := time.Now().Add(5 * time.Second)
			for o.r.Pending("due") != nil {
				if time.Now().After(limit) {
					t.Fatal("still pending after it was stored")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if seen := o.issuer.seen; len(seen) != 1 || seen[0] != tc.seen {
				t.Fatalf("sent to Webex %v, want %q once", seen, tc.seen)
			}
			o.r.Close()
		})
	}
}

// TestExpiredLeaseTakeover: another holder's expired lease is taken over
// only once this instance has seen it expired and unchanged for the
// grace (a dead holder's token is refreshed then); its own is taken at
// once; a lease that changes starts the grace again.
func TestExpiredLeaseTakeover(t *testing.T) {
	for _, tc := range []struct {
		name   string
		holder string
		// steps: clock advance before each refresh, and whether that
		// refresh calls Webex.
		steps []struct {
			advance time.Duration
			calls   bool
		}
		relet bool // the lease changes after the first refresh
	}{
		{name: "dead holder", holder: "holder-dead", steps: []struct {
			advance time.Duration
			calls   bool
		}{{0, false}, {10 * time.Second, false}, {6 * time.Second, true}}},
		{name: "own lease", holder: "holder-a", steps: []struct {
			advance time.Duration
			calls   bool
		}{{0, true}}},
		{name: "lease written again", holder: "holder-dead", relet: true, steps: []struct {
			advance time.Duration
			calls   bool
		}{{0, false}, {16 * time.Second, false}, {16 * time.Second, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.seed(t, "due", time.Hour)
			lease := func(until time.Time) {
				cur := f.get(t, "due")
				if _, err := f.store.TryLease(context.Background(), cur, token.Lease{Holder: tc.holder, Until: until}); err != nil {
					t.Fatal(err)
				}
			}
			lease(f.clock.Now().Add(-time.Second)) // expired
			for i, s := range tc.steps {
				f.clock.Advance(s.advance)
				if tc.relet && i == 1 {
					lease(f.clock.Now().Add(-time.Second)) // another expired lease: seen anew
				}
				before := f.issuer.Calls()
				res, err := f.r.Refresh(context.Background(), "due", scheduled)
				if called := f.issuer.Calls() > before; called != s.calls {
					t.Fatalf("step %d: webex called %v (%v %v), want %v", i, called, res.Outcome, err, s.calls)
				}
				if s.calls && (err != nil || res.Outcome != lifecycle.Refreshed) {
					t.Fatalf("step %d: got %v %v, want refreshed", i, res.Outcome, err)
				}
			}
		})
	}
}

// TestGrantAtShutdownGetsTheGrace: Close lets a grant in hand be written
// for GrantGrace; a store that answers within it takes the grant, one
// that does not loses it with the process, said in the log (no secret).
func TestGrantAtShutdownGetsTheGrace(t *testing.T) {
	for _, back := range []bool{true, false} {
		t.Run(fmt.Sprintf("store back %v", back), func(t *testing.T) {
			o := newOutage(t)
			o.seed(t, "due", time.Hour)
			o.cutAfterWebex()
			if _, err := o.r.Refresh(context.Background(), "due", scheduled); !errors.Is(err, lifecycle.ErrGrantPending) {
				t.Fatalf("got %v, want pending", err)
			}
			closed := make(chan struct{})
			go func() { o.r.Close(); close(closed) }()
			if back {
				time.Sleep(lifecycle.GrantGrace / 3)
				o.down.down.Store(false)
			}
			select {
			case <-closed:
			case <-time.After(lifecycle.GrantGrace + 10*time.Second):
				t.Fatal("Close did not end after GrantGrace")
			}
			got := o.get(t, "due")
			if back && (got.Generation != 1 || got.RefreshToken != "rt-new") {
				t.Fatalf("stored %+v, want the grant written during the grace", got)
			}
			if !back {
				if got.Generation != 0 || !strings.Contains(o.logs.String(), "new token lost") {
					t.Fatalf("generation %d, log:\n%s\nwant nothing stored and the loss logged", got.Generation, o.logs.String())
				}
			}
		})
	}
}

// TestKeptGrantAfterOthersMovedOn: cut off alone for longer than the
// grace, the holder loses the race to another instance; its grant is
// still not lost when Webex refused the other's refresh (rotation: the
// token is reauth_required without a new generation), and it is dropped
// as superseded when the other stored a new generation.
func TestKeptGrantAfterOthersMovedOn(t *testing.T) {
	for _, tc := range []struct {
		name      string
		othersErr error // what Webex answers the other instance
		wantRT    string
		wantGen   int64
	}{
		{name: "webex refused the spent refresh token", othersErr: token.ErrGrantRejected, wantRT: "rt-new", wantGen: 1},
		{name: "webex accepted it again", wantRT: "rt-other", wantGen: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOutage(t)
			o.seed(t, "due", time.Hour)
			o.cutAfterWebex()
			if _, err := o.r.Refresh(context.Background(), "due", scheduled); !errors.Is(err, lifecycle.ErrGrantPending) {
				t.Fatalf("got %v, want pending", err)
			}
			// holder-b reaches the store directly: it sees holder-a's
			// lease expire, waits the grace, and takes over.
			other := o.newRefresher("holder-b")
			t.Cleanup(other.Close)
			o.issuer.mu.Lock()
			o.issuer.refresh = func(token.Client, string) (token.Grant, error) {
				if tc.othersErr != nil {
					return token.Grant{}, tc.othersErr
				}
				return token.Grant{AccessToken: "at-other", ExpiresIn: 12 * time.Hour, RefreshToken: "rt-other"}, nil
			}
			o.issuer.mu.Unlock()
			o.clock.Advance(time.Hour)
			other.Refresh(context.Background(), "due", scheduled) // first sight of the expired lease
			o.clock.Advance(20 * time.Second)
			other.Refresh(context.Background(), "due", scheduled) // takes over
			o.down.down.Store(false)
			limit := time.Now().Add(20 * time.Second)
			for o.r.Pending("due") != nil {
				if time.Now().After(limit) {
					t.Fatal("the kept grant was never written or dropped")
				}
				time.Sleep(5 * time.Millisecond)
			}
			got := o.get(t, "due")
			if got.RefreshToken != tc.wantRT || got.Generation != tc.wantGen || got.Status != token.StatusActive {
				t.Fatalf("stored refresh %q generation %d status %q, want %q %d active", got.RefreshToken, got.Generation, got.Status, tc.wantRT, tc.wantGen)
			}
			o.r.Close()
		})
	}
}

// lostAnswerUpdates applies an Update and then reports it failed, as a
// commit whose answer is lost in an outage.
type lostAnswerUpdates struct {
	*memstore.Store
	lose atomic.Int32
}

func (s *lostAnswerUpdates) Update(ctx context.Context, name string, fn func(t *token.Token) ([]token.Event, error)) (*token.Token, error) {
	saved, err := s.Store.Update(ctx, name, fn)
	if err == nil && s.lose.Add(-1) >= 0 {
		return nil, fmt.Errorf("update %s: %w", name, token.ErrUnavailable)
	}
	return saved, err
}

// TestKeptGrantWhoseWriteLanded: a write that landed though its answer
// was lost is recognised at the next attempt, not taken for another
// instance's: the grant counts as stored, once.
func TestKeptGrantWhoseWriteLanded(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "due", time.Hour)
	store := &lostAnswerUpdates{Store: f.store}
	store.lose.Store(1)
	logs := &syncBuffer{}
	r := lifecycle.NewRefresher(lifecycle.RefresherConfig{Store: store, Issuer: f.issuer, Now: f.clock.Now, Holder: "holder-a",
		Threshold: 2 * time.Hour, WebexTimeout: 2 * time.Second, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	defer r.Close()
	if _, err := r.Refresh(context.Background(), "due", scheduled); !errors.Is(err, lifecycle.ErrGrantPending) {
		t.Fatalf("got %v, want pending (the answer of the write was lost)", err)
	}
	limit := time.Now().Add(10 * time.Second)
	for r.Pending("due") != nil {
		if time.Now().After(limit) {
			t.Fatal("still pending")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := f.get(t, "due"); got.Generation != 1 || got.AccessToken != "at-new" {
		t.Fatalf("stored generation %d access %q, want the grant once, as generation 1", got.Generation, got.AccessToken)
	}
	if !strings.Contains(logs.String(), "kept token stored") || strings.Contains(logs.String(), "not stored") {
		t.Fatalf("log:\n%s\nwant the grant reported stored", logs.String())
	}
}
