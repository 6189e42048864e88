package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wxcc/tokenservice/shared/token"
)

// Run runs the contract suite. newStore must return an empty store of its
// own (for Firestore: its own collection); subtests run in parallel.
func Run(t *testing.T, newStore func(t *testing.T) token.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s token.Store)
	}{
		{"GetNotFound", testGetNotFound},
		{"CreateOnlyIfAbsent", testCreateOnlyIfAbsent},
		{"RoundTrip", testRoundTrip},
		{"UpdateRoundTrip", testUpdateRoundTrip},
		{"UpdateNotFound", testUpdateNotFound},
		{"UpdateFnError", testUpdateFnError},
		{"UpdateIgnoresNameAndVersion", testUpdateIgnoresNameAndVersion},
		{"UpdateNoChange", testUpdateNoChange},
		{"UpdateThenLease", testUpdateThenLease},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"TryLease", testTryLease},
		{"TryLeaseStale", testTryLeaseStale},
		{"TryLeaseMissing", testTryLeaseMissing},
		{"ConcurrentTryLease", testConcurrentTryLease},
		{"Events", testEvents},
		{"EventOrder", testEventOrder},
		{"EventSameID", testEventSameID},
		{"Due", testDue},
		{"RefreshExpiring", testRefreshExpiring},
		{"ServiceApps", testServiceApps},
		{"Deadline", testDeadline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

// base is a time at millisecond resolution, which is what stores keep.
var base = time.UnixMilli(1_800_000_000_123)

// full returns a token with every field set.
func full(name string) *token.Token {
	reported := int64(6)
	return &token.Token{
		Name:              name,
		ClientID:          "client-id",
		ClientSecret:      "client-secret",
		RedirectURI:       "https://example.com/callback",
		Scopes:            []string{"cjp:config_read", "spark:people_read"},
		AccessToken:       "access-token",
		RefreshToken:      "refresh-token",
		AccessExpires:     base.Add(12 * time.Hour),
		RefreshExpires:    base.Add(60 * 24 * time.Hour),
		LastRefresh:       base,
		Generation:        7,
		Lease:             token.Lease{Holder: "worker-1", Until: base.Add(30 * time.Second)},
		Status:            token.StatusActive,
		LastError:         &token.LastError{At: base.Add(-time.Hour), Message: "webex said 503", Permanent: true},
		PassphraseHash:    "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
		NextAttempt:       base.Add(time.Minute),
		Failures:          3,
		ConfigFingerprint: (&token.Token{ClientID: "client-id", ClientSecret: "client-secret"}).ClientFingerprint(),
		FailureReported:   &reported,
		ExpiryWarned:      base.Add(60 * 24 * time.Hour),
		OrgID:             "org-of-the-tokens",
		Kind:              token.KindIntegration,
	}
}

// serviceApp returns a Service App with every field of one set.
func serviceApp(name string) *token.Token {
	t := full(name)
	t.Kind = token.KindServiceApp
	t.RedirectURI, t.Scopes, t.PassphraseHash = "", nil, ""
	t.AppID, t.TargetOrgID, t.Manager, t.OrgID = "app-id", "target-org", "manager", "target-org"
	g := int64(3)
	t.ManagerGeneration = &g
	return t
}

// ignoreVersion compares tokens without the store's Version. Empty and
// nil Scopes are the same: token.Clone does not keep them apart.
var ignoreVersion = cmp.Options{cmpopts.IgnoreFields(token.Token{}, "Version"), cmpopts.EquateEmpty()}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustCreate(t *testing.T, s token.Store, tok *token.Token) *token.Token {
	t.Helper()
	ctx := ctxT(t)
	created, err := s.Create(ctx, tok)
	if err != nil || !created {
		t.Fatalf("Create(%s) = %v, %v; want true, nil", tok.Name, created, err)
	}
	got, err := s.Get(ctx, tok.Name)
	if err != nil {
		t.Fatalf("Get(%s) after Create: %v", tok.Name, err)
	}
	return got
}

func testGetNotFound(t *testing.T, s token.Store) {
	_, err := s.Get(ctxT(t), "missing")
	if !errors.Is(err, token.ErrNotFound) {
		t.Errorf("Get(missing) error = %v, want ErrNotFound", err)
	}
}

func testCreateOnlyIfAbsent(t *testing.T, s token.Store) {
	ctx := ctxT(t)
	first := &token.Token{Name: "a", ClientID: "first"}
	before := mustCreate(t, s, first)
	if before.Version.IsZero() {
		t.Error("Version after Create is zero")
	}
	created, err := s.Create(ctx, full("a"))
	if err != nil || created {
		t.Errorf("second Create = %v, %v; want false, nil", created, err)
	}
	got, err := s.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, got); diff != "" {
		t.Errorf("second Create changed the document (-before +after):\n%s", diff)
	}
}

// roundTrips are tokens that must come back exactly as stored, absent
// and zero values included.
func roundTrips() []*token.Token {
	zero := int64(0)
	pending := &token.Token{Name: "init", ClientID: "", ClientSecret: "", RedirectURI: ""}
	emptyScopes := full("empty-scopes")
	emptyScopes.Scopes = []string{}
	reportedZero := full("reported-zero")
	reportedZero.FailureReported = &zero
	zeroError := full("zero-error")
	zeroError.LastError = &token.LastError{}
	holderOnly := full("holder-only")
	holderOnly.Lease = token.Lease{Holder: "h"}
	untilOnly := full("until-only")
	untilOnly.Lease = token.Lease{Until: base}
	unicode := full("unicode")
	unicode.LastError.Message = "Grüße \x00 \"quoted\" ✓"
	sampleKind := full("sample-kind") // the sample's documents have no kind
	sampleKind.Kind, sampleKind.OrgID = "", ""
	managerZero := serviceApp("manager-zero")
	zero2 := int64(0)
	managerZero.ManagerGeneration = &zero2
	unminted := &token.Token{Name: "unminted", Kind: token.KindServiceApp, ClientID: "c", ClientSecret: "s",
		AppID: "a", TargetOrgID: "o", Manager: "m", Status: token.StatusPending}
	return []*token.Token{full("full"), pending, emptyScopes, reportedZero, zeroError, holderOnly, untilOnly, unicode,
		sampleKind, serviceApp("service-app"), managerZero, unminted}
}

func testRoundTrip(t *testing.T, s token.Store) {
	for _, want := range roundTrips() {
		got := mustCreate(t, s, want)
		if diff := cmp.Diff(want, got, ignoreVersion); diff != "" {
			t.Errorf("Create then Get of %s (-want +got):\n%s", want.Name, diff)
		}
	}
}

// testUpdateRoundTrip writes every round-trip token over a full one and a
// full one over each, so setting and clearing every field is covered.
func testUpdateRoundTrip(t *testing.T, s token.Store) {
	ctx := ctxT(t)
	for _, want := range roundTrips() {
		for _, from := range []*token.Token{full(want.Name), {Name: want.Name}} {
			name := want.Name + "-from-" + fmt.Sprint(from.ClientID != "")
			start := from.Clone()
			start.Name = name
			mustCreate(t, s, start)
			target := want.Clone()
			target.Name = name
			returned, err := s.Update(ctx, name, func(tok *token.Token) ([]token.Event, error) {
				v := tok.Version
				*tok = *target.Clone()
				tok.Version = v
				return nil, nil
			})
			if err != nil {
				t.Fatalf("Update(%s): %v", name, err)
			}
			got, err := s.Get(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(target, got, ignoreVersion); diff != "" {
				t.Errorf("Update then Get of %s (-want +got):\n%s", name, diff)
			}
			if diff := cmp.Diff(got, returned); diff != "" {
				t.Errorf("Update of %s returned a token other than the stored one (-stored +returned):\n%s", name, diff)
			}
		}
	}
}

func testUpdateNotFound(t *testing.T, s token.Store) {
	called := false
	_, err := s.Update(ctxT(t), "missing", func(*token.Token) ([]token.Event, error) {
		called = true
		return nil, nil
	})
	if !errors.Is(err, token.ErrNotFound) {
		t.Errorf("Update(missing) error = %v, want ErrNotFound", err)
	}
	if called {
		t.Error("Update(missing) called fn")
	}
}

func testUpdateFnError(t *testing.T, s token.Store) {
	ctx := ctxT(t)
	before := mustCreate(t, s, full("a"))
	errStop := errors.New("stop")
	_, err := s.Update(ctx, "a", func(tok *token.Token) ([]token.Event, error) {
		tok.AccessToken = "changed"
		tok.Generation++
		return []token.Event{token.NewEvent(token.EventRotated, tok, token.TriggerInline, base)}, errStop
	})
	if !errors.Is(err, errStop) {
		t.Errorf("Update error = %v, want fn's error", err)
	}
	got, err := s.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, got); diff != "" {
		t.Errorf("Update whose fn failed changed the document (-before +after):\n%s", diff)
	}
	if events := pending(t, s); len(events) != 0 {
		t.Errorf("Update whose fn failed stored events %v", events)
	}
}

func testUpdateIgnoresNameAndVersion(t *testing.T, s token.Store) {
	ctx := ctxT(t)
	mustCreate(t, s, full("a"))
	got, err := s.Update(ctx, "a", func(tok *token.Token) ([]token.Event, error) {
		tok.Name = "b"
		tok.Version = base
		tok.Generation++
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "a" || got.Version.Equal(base) {
		t.Errorf("Update returned name %q version %v; fn's name and version must be ignored", got.Name, got.Version)
	}
	if _, err := s.Get(ctx, "b"); !errors.Is(err, token.ErrNotFound) {
		t.Errorf("Get(b) error = %v, want ErrNotFound", err)
	}
}

func testUpdateNoChange(t *testing.T, s token.Store) {
	ctx := ctxT(t)
	before := mustCreate(t, s, full("a"))
	got, err := s.Update(ctx, "a", func(*token.Token) ([]token.Event, error) { return nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	if !got.Version.Equal(before.Version) {
		t.Errorf("Update that changed nothing moved Version from %v to %v", before.Version, got.Version)
	}
}

// testUpdateThenLease checks that the Version Update returns is the one
// stored: a lease taken with it must succeed.
func testUpdateThenLease(t *testing.T, s token.Store) {
	ctx := ctxT(t)
	before := mustCreate(t, s, full("a"))
	updated, err := s.Update(ctx, "a", func(tok *token.Token) ([]token.Event, error) {
		tok.Generation++
		return []token.Event{token.NewEvent(token.EventRotated, tok, token.TriggerInline, base)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !updated.Version.After(before.Version) {
		t.Errorf("Version after Update = %v, want after %v", updated.Version, before.Version)
	}
	if _, err := s.TryLease(ctx, updated, token.Lease{Holder: "me", Until: base}); err != nil {
		t.Errorf("TryLease with the token Update returned: %v", err)
	}
}

// testConcurrentUpdates checks atomicity: every Update that succeeds adds
// one, none is lost. A store may give up under contention (ErrConflict).
func testConcurrentUpdates(t *testing.T, s token.Store) {
	ctx := ctxT(t)
	mustCreate(t, s, &token.Token{Name: "a"})
	const n = 4
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		ok int64
	)
	start := time.Now()
	for range n {
		wg.Go(func() {
			_, err := s.Update(ctx, "a", func(tok *token.Token) ([]token.Event, error) {
				tok.Generation++
				return nil, nil
			})
			switch {
			case err == nil:
				mu.Lock()
				ok++
				mu.Unlock()
			case !errors.Is(err, token.ErrConflict):
				t.Errorf("concurrent Update: %v", err)
			}
		})
	}
	wg.Wait()
	t.Logf("%d concurrent Updates of one token: %d succeeded in %v", n, ok, time.Since(start))
	got, err := s.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Generation != ok || ok == 0 {
		t.Errorf("generation after %d successful concurrent increments = %d", ok, got.Generation)
	}
}

func testTryLease(t *testing.T, s token.Store) {
	ctx := ctxT(t)
	before := mustCreate(t, s, full("a"))
	lease := token.Lease{Holder: "api-7", Until: base.Add(15 * time.Second)}
	leased, err := s.TryLease(ctx, before, lease)
	if err != nil {
		t.Fatalf("TryLease: %v", err)
	}
	want := before.Clone()
	want.Lease = lease
	if diff := cmp.Diff(want, leased, ignoreVersion); diff != "" {
		t.Errorf("TryLease returned (-want +got):\n%s", diff)
	}
	if !leased.Version.After(before.Version) {
		t.Errorf("Version after TryLease = %v, want after %v", leased.Version, before.Version)
	}
	got, err := s.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(leased, got); diff != "" {
		t.Errorf("Get after TryLease (-returned +stored):\n%s", diff)
	}
	// Releasing works the same way, from the new version.
	released, err := s.TryLease(ctx, got, token.Lease{})
	if err != nil {
		t.Fatalf("TryLease(release): %v", err)
	}
	if released.Lease != (token.Lease{}) {
		t.Errorf("lease after release = %+v, want none", released.Lease)
	}
	if got, _ := s.Get(ctx, "a"); got == nil || got.Lease != (token.Lease{}) {
		t.Errorf("stored lease after release = %+v, want none", got)
	}
}

func testTryLeaseStale(t *testing.T, s token.Store) {
	ctx := ctxT(t)
	stale := mustCreate(t, s, full("a"))
	if _, err := s.Update(ctx, "a", func(tok *token.Token) ([]token.Event, error) {
		tok.Failures++
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	_, err := s.TryLease(ctx, stale, token.Lease{Holder: "late", Until: base})
	if !errors.Is(err, token.ErrConflict) {
		t.Errorf("TryLease with a stale version: error = %v, want ErrConflict", err)
	}
	got, err := s.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Lease.Holder == "late" {
		t.Error("TryLease with a stale version wrote the lease")
	}
}

func testTryLeaseMissing(t *testing.T, s token.Store) {
	ctx := ctxT(t)
	tok := mustCreate(t, s, full("a"))
	tok.Name = "missing"
	_, err := s.TryLease(ctx, tok, token.Lease{Holder: "x", Until: base})
	if !errors.Is(err, token.ErrConflict) {
		t.Errorf("TryLease(missing) error = %v, want ErrConflict (the document is not at that version)", err)
	}
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, token.ErrNotFound) {
		t.Errorf("TryLease(missing) created the document: Get error = %v", err)
	}
}

func testConcurrentTryLease(t *testing.T, s token.Store) {
	ctx := ctxT(t)
	read := mustCreate(t, s, full("a"))
	const n = 10
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
	)
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			holder := fmt.Sprintf("holder-%d", i)
			_, err := s.TryLease(ctx, read.Clone(), token.Lease{Holder: holder, Until: base})
			switch {
			case err == nil:
				mu.Lock()
				winners = append(winners, holder)
				mu.Unlock()
			case !errors.Is(err, token.ErrConflict):
				t.Errorf("TryLease: %v, want nil or ErrConflict", err)
			}
		})
	}
	wg.Wait()
	t.Logf("%d concurrent TryLease calls on one version took %v", n, time.Since(start))
	if len(winners) != 1 {
		t.Fatalf("%d of %d concurrent TryLease calls won (%v), want exactly 1", len(winners), n, winners)
	}
	got, err := s.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Lease.Holder != winners[0] {
		t.Errorf("stored holder = %q, want the winner %q", got.Lease.Holder, winners[0])
	}
}

func outbox(t *testing.T, s token.Store) Outbox {
	t.Helper()
	o, ok := s.(Outbox)
	if !ok {
		t.Fatalf("%T does not implement storetest.Outbox: its events cannot be checked", s)
	}
	return o
}

func pending(t *testing.T, s token.Store) []token.Event {
	t.Helper()
	events, err := outbox(t, s).PendingEvents(ctxT(t), 100)
	if err != nil {
		t.Fatalf("PendingEvents: %v", err)
	}
	return events
}

func testEvents(t *testing.T, s token.Store) {
	ctx := ctxT(t)
	mustCreate(t, s, full("a"))
	var want []token.Event
	_, err := s.Update(ctx, "a", func(tok *token.Token) ([]token.Event, error) {
		tok.Generation++
		rotated := token.NewEvent(token.EventRotated, tok, token.TriggerScheduled, base)
		expiring := token.NewEvent(token.EventRefreshExpiring, tok, token.TriggerScheduled, base.Add(time.Millisecond))
		failed := token.NewEvent(token.EventRefreshFailed, tok, token.TriggerInline, base)
		failed.Message = "webex answered 503"
		failed.AccessExpires, failed.RefreshExpires = time.Time{}, time.Time{}
		want = []token.Event{rotated, expiring, failed}
		return want, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := pending(t, s)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pending events (-want +got):\n%s", diff)
	}
	o := outbox(t, s)
	if err := o.DeleteEvent(ctx, want[0].ID); err != nil {
		t.Fatalf("DeleteEvent: %v", err)
	}
	if err := o.DeleteEvent(ctx, "no/such/event"); err != nil {
		t.Errorf("DeleteEvent(unknown) = %v, want nil", err)
	}
	if diff := cmp.Diff(want[1:], pending(t, s)); diff != "" {
		t.Errorf("pending events after DeleteEvent (-want +got):\n%s", diff)
	}
	if got, err := o.PendingEvents(ctx, 1); err != nil || len(got) != 1 || got[0].ID != want[1].ID {
		t.Errorf("PendingEvents(1) = %v, %v; want [%s]", got, err, want[1].ID)
	}
}

// testEventOrder commits events of two tokens in turns and checks that
// they come out oldest first.
func testEventOrder(t *testing.T, s token.Store) {
	ctx := ctxT(t)
	mustCreate(t, s, full("a"))
	mustCreate(t, s, full("b"))
	var want []string
	for i := range 3 {
		for _, name := range []string{"b", "a"} {
			_, err := s.Update(ctx, name, func(tok *token.Token) ([]token.Event, error) {
				tok.Generation++
				e := token.NewEvent(token.EventRotated, tok, token.TriggerScheduled, base.Add(-time.Duration(i)*time.Hour))
				return []token.Event{e}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, fmt.Sprintf("%s/%d/%s", name, 8+i, token.EventRotated))
		}
	}
	var got []string
	for _, e := range pending(t, s) {
		got = append(got, e.ID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("event order (-want +got):\n%s", diff)
	}
}

// testEventSameID checks that an event committed twice (same ID) is
// pending once.
func testEventSameID(t *testing.T, s token.Store) {
	ctx := ctxT(t)
	mustCreate(t, s, full("a"))
	for range 2 {
		_, err := s.Update(ctx, "a", func(tok *token.Token) ([]token.Event, error) {
			tok.Failures++
			return []token.Event{token.NewEvent(token.EventRefreshFailed, tok, token.TriggerScheduled, base)}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := pending(t, s); len(got) != 1 {
		t.Errorf("pending events = %v, want one", got)
	}
}

func testDue(t *testing.T, s token.Store) {
	sw, ok := s.(Sweeper)
	if !ok {
		t.Skipf("%T does not implement storetest.Sweeper", s)
	}
	checkWalk(t, s, sw.Due, func(tok *token.Token, at time.Time) { tok.AccessExpires = at })
}

func testRefreshExpiring(t *testing.T, s token.Store) {
	sw, ok := s.(Sweeper)
	if !ok {
		t.Skipf("%T does not implement storetest.Sweeper", s)
	}
	checkWalk(t, s, sw.RefreshExpiring, func(tok *token.Token, at time.Time) { tok.RefreshExpires = at })
}

// testServiceApps checks the walk over the Service Apps: all of them,
// with or without tokens, in name order, page by page, and nothing else.
func testServiceApps(t *testing.T, s token.Store) {
	sw, ok := s.(ServiceAppWalker)
	if !ok {
		t.Skipf("%T does not implement storetest.ServiceAppWalker", s)
	}
	ctx := ctxT(t)
	for _, tok := range []*token.Token{serviceApp("b-app"), full("integration"), {Name: "pending"},
		{Name: "a-app", Kind: token.KindServiceApp, AppID: "x"}, serviceApp("c-app")} {
		mustCreate(t, s, tok)
	}
	want := []string{"a-app", "b-app", "c-app"}
	for _, pageSize := range []int{1, 2, 3, 100} {
		var got []string
		err := sw.ServiceApps(ctx, pageSize, func(tok *token.Token) error {
			got = append(got, tok.Name)
			if !tok.IsServiceApp() || tok.Version.IsZero() {
				t.Errorf("walk passed %+v", tok)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("ServiceApps(pageSize %d): %v", pageSize, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ServiceApps(pageSize %d) (-want +got):\n%s", pageSize, diff)
		}
	}
	errStop := errors.New("stop")
	calls := 0
	err := sw.ServiceApps(ctx, 2, func(*token.Token) error { calls++; return errStop })
	if !errors.Is(err, errStop) || calls != 1 {
		t.Errorf("walk with failing fn: %d calls, error %v; want 1 call and fn's error", calls, err)
	}
}

// checkWalk checks a range walk over the time field that set sets: it
// finds exactly the tokens before the bound, in order, page by page,
// reading only those.
func checkWalk(t *testing.T, s token.Store, walk func(context.Context, time.Time, int, func(*token.Token) error) error, set func(*token.Token, time.Time)) {
	ctx := ctxT(t)
	now := base
	// name → time relative to now; the ones before now+2h are found.
	times := []struct {
		name string
		in   time.Duration
	}{
		{"expired", -time.Hour},
		{"soon", time.Hour},
		{"same-ms-b", 90 * time.Minute},
		{"same-ms-a", 90 * time.Minute},
		{"edge", 2 * time.Hour}, // not before
		{"later", 5 * time.Hour},
		{"much-later", 11 * time.Hour},
	}
	for _, e := range times {
		tok := full(e.name)
		set(tok, now.Add(e.in))
		mustCreate(t, s, tok)
	}
	mustCreate(t, s, &token.Token{Name: "pending"}) // no times: never found
	want := []string{"expired", "soon", "same-ms-a", "same-ms-b"}

	for _, pageSize := range []int{1, 3, 4, 100} {
		rc, counting := s.(ReadCounter)
		var readsBefore int
		if counting {
			readsBefore = rc.Reads()
		}
		var got []string
		err := walk(ctx, now.Add(2*time.Hour), pageSize, func(tok *token.Token) error {
			got = append(got, tok.Name)
			if tok.ClientSecret != "client-secret" || tok.Version.IsZero() {
				t.Errorf("walk passed an incomplete token: %+v", tok)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walk(pageSize %d): %v", pageSize, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("walk(pageSize %d) (-want +got):\n%s", pageSize, diff)
		}
		if counting {
			// Full pages cost a query more, which reads nothing and is
			// billed as one read.
			wantReads := len(want)
			if len(want)%pageSize == 0 {
				wantReads++
			}
			if reads := rc.Reads() - readsBefore; reads != wantReads {
				t.Errorf("walk(pageSize %d) read %d documents, want %d", pageSize, reads, wantReads)
			}
		}
	}

	// An error from fn stops the walk.
	errStop := errors.New("stop")
	calls := 0
	err := walk(ctx, now.Add(2*time.Hour), 2, func(*token.Token) error { calls++; return errStop })
	if !errors.Is(err, errStop) || calls != 1 {
		t.Errorf("walk with failing fn: %d calls, error %v; want 1 call and fn's error", calls, err)
	}
}

// testDeadline checks that an expired deadline fails fast with
// ErrUnavailable instead of hanging.
func testDeadline(t *testing.T, s token.Store) {
	mustCreate(t, s, full("a"))
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	start := time.Now()
	calls := map[string]func() error{
		"Get": func() error { _, err := s.Get(ctx, "a"); return err },
		"Update": func() error {
			_, err := s.Update(ctx, "a", func(*token.Token) ([]token.Event, error) { return nil, nil })
			return err
		},
		"TryLease": func() error {
			_, err := s.TryLease(ctx, &token.Token{Name: "a", Version: base}, token.Lease{})
			return err
		},
		"Create": func() error { _, err := s.Create(ctx, &token.Token{Name: "b"}); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, token.ErrUnavailable) {
			t.Errorf("%s with an expired deadline: error = %v, want ErrUnavailable", name, err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("calls with an expired deadline took %v", d)
	}
}
