package peopletest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wxcc/tokenservice/shared/people"
	"github.com/wxcc/tokenservice/shared/token"
)

// Clock is a settable clock for the suites, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at Base.
func NewClock() *Clock { return &Clock{t: Base} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Base is a time at millisecond resolution, which every store keeps.
var Base = time.UnixMilli(1_800_000_000_123).UTC()

// Settings of the sessions the suite makes.
const (
	TTL  = 8 * time.Hour
	Idle = time.Hour
)

// NewSessionStores returns two handles on one empty store of its own (for
// Firestore: two clients on one collection, as two api instances see
// it), both on the clock now.
type NewSessionStores func(t *testing.T, now func() time.Time) (a, b people.SessionStore)

// RunSessions runs the contract suite of people.SessionStore; subtests
// run in parallel.
func RunSessions(t *testing.T, newStores NewSessionStores) {
	tests := []struct {
		name string
		fn   func(t *testing.T, c *Clock, a, b people.SessionStore)
	}{
		{"RoundTrip", testSessionRoundTrip},
		{"Unknown", testSessionUnknown},
		{"Expires", testSessionExpires},
		{"Idle", testSessionIdle},
		{"EndEverywhere", testSessionEndEverywhere},
		{"List", testSessionList},
		{"EndAllOf", testSessionEndAllOf},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := NewClock()
			a, b := newStores(t, c.Now)
			tt.fn(t, c, a, b)
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var ann = token.Person{ID: "p-ann", Email: "Ann@Example.com", DisplayName: "Ann Lee", OrgID: "org-1"}

// start creates a session of p at the clock's time and returns its ID.
func start(t *testing.T, c *Clock, s people.SessionStore, p token.Person, role people.Role, via people.Via) (string, *people.Session) {
	t.Helper()
	id, sess, err := people.NewSession(p, role, via, "192.0.2.1", c.Now(), TTL, Idle)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctxT(t), sess); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return id, sess
}

func mustGet(t *testing.T, s people.SessionStore, id string) *people.Session {
	t.Helper()
	got, err := s.Get(ctxT(t), id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return got
}

func wantNoSession(t *testing.T, s people.SessionStore, id, why string) {
	t.Helper()
	if got, err := s.Get(ctxT(t), id); !errors.Is(err, people.ErrNoSession) {
		t.Errorf("%s: Get = %+v, %v; want ErrNoSession", why, got, err)
	}
}

func testSessionRoundTrip(t *testing.T, c *Clock, a, b people.SessionStore) {
	for _, tt := range []struct {
		p    token.Person
		role people.Role
		via  people.Via
	}{{ann, people.Viewer, people.ViaWebex}, {token.Person{}, people.Operator, people.ViaPassphrase}} {
		id, want := start(t, c, a, tt.p, tt.role, tt.via)
		got := mustGet(t, b, id)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("read back (-want +got):\n%s", diff)
		}
		if got.Person.Email != people.NormalizeEmail(tt.p.Email) {
			t.Errorf("email %q, want it normalized", got.Person.Email)
		}
	}
}

func testSessionUnknown(t *testing.T, c *Clock, a, b people.SessionStore) {
	id, sess := start(t, c, a, ann, people.Viewer, people.ViaWebex)
	other, _ := people.NewSecret()
	wantNoSession(t, a, other, "an ID never issued")
	wantNoSession(t, a, "", "an empty ID")
	wantNoSession(t, a, sess.Key, "the key instead of the ID")
	wantNoSession(t, a, id[:42]+"!", "an ID of the wrong shape")
	if err := a.Touch(ctxT(t), people.KeyOf(other), "192.0.2.9"); !errors.Is(err, people.ErrNoSession) {
		t.Errorf("Touch of an unknown session = %v, want ErrNoSession", err)
	}
}

func testSessionExpires(t *testing.T, c *Clock, a, b people.SessionStore) {
	id, sess := start(t, c, a, ann, people.Operator, people.ViaWebex)
	// Active all along: touched every half hour, yet the absolute end holds.
	for c.Now().Add(30 * time.Minute).Before(sess.Expires) {
		c.Advance(30 * time.Minute)
		if err := a.Touch(ctxT(t), sess.Key, "192.0.2.2"); err != nil {
			t.Fatalf("Touch: %v", err)
		}
		mustGet(t, b, id)
	}
	c.Advance(sess.Expires.Sub(c.Now()))
	wantNoSession(t, b, id, "at the absolute expiry")
	if l, _ := a.List(ctxT(t)); len(l) != 0 {
		t.Errorf("List after expiry: %d sessions, want none", len(l))
	}
}

func testSessionIdle(t *testing.T, c *Clock, a, b people.SessionStore) {
	id, sess := start(t, c, a, ann, people.Viewer, people.ViaWebex)
	c.Advance(Idle - time.Minute)
	if err := b.Touch(ctxT(t), sess.Key, "198.51.100.4"); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	got := mustGet(t, a, id)
	if !got.LastSeen.Equal(c.Now()) || got.Addr != "198.51.100.4" {
		t.Errorf("after Touch: last seen %v from %q, want %v from 198.51.100.4", got.LastSeen, got.Addr, c.Now())
	}
	c.Advance(Idle - time.Second)
	mustGet(t, a, id) // the touch moved the idle expiry
	c.Advance(time.Second)
	wantNoSession(t, a, id, "idle for ADMIN_SESSION_IDLE")
}

func testSessionEndEverywhere(t *testing.T, c *Clock, a, b people.SessionStore) {
	id, sess := start(t, c, a, ann, people.Operator, people.ViaWebex)
	mustGet(t, b, id)
	if err := b.End(ctxT(t), sess.Key); err != nil {
		t.Fatalf("End: %v", err)
	}
	wantNoSession(t, a, id, "ended on the other instance")
	if err := a.Touch(ctxT(t), sess.Key, "192.0.2.1"); !errors.Is(err, people.ErrNoSession) {
		t.Errorf("Touch after End = %v, want ErrNoSession (no resurrection)", err)
	}
	wantNoSession(t, b, id, "touched after End")
	if err := a.End(ctxT(t), sess.Key); err != nil {
		t.Errorf("End twice = %v, want nil", err)
	}
}

func testSessionList(t *testing.T, c *Clock, a, b people.SessionStore) {
	_, s1 := start(t, c, a, ann, people.Viewer, people.ViaWebex)
	c.Advance(time.Minute)
	_, s2 := start(t, c, b, token.Person{}, people.Operator, people.ViaPassphrase)
	c.Advance(time.Minute)
	_, s3 := start(t, c, a, token.Person{Email: "bob@example.com"}, people.Operator, people.ViaWebex)
	_, gone := start(t, c, a, token.Person{Email: "eve@example.com"}, people.Viewer, people.ViaWebex)
	if err := a.End(ctxT(t), gone.Key); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	if err := b.Touch(ctxT(t), s1.Key, "192.0.2.7"); err != nil {
		t.Fatal(err)
	}
	got, err := b.List(ctxT(t))
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var keys []string
	for _, s := range got {
		keys = append(keys, s.Key)
	}
	if diff := cmp.Diff([]string{s1.Key, s3.Key, s2.Key}, keys); diff != "" {
		t.Errorf("List keys, most recently seen first (-want +got):\n%s", diff)
	}
	// s2 idles out; s1 and s3 were seen later.
	c.Advance(Idle - 2*time.Minute)
	if got, _ := a.List(ctxT(t)); len(got) != 2 {
		t.Errorf("List after s2 idled out: %d sessions, want 2", len(got))
	}
}

func testSessionEndAllOf(t *testing.T, c *Clock, a, b people.SessionStore) {
	id1, _ := start(t, c, a, ann, people.Viewer, people.ViaWebex)
	id2, _ := start(t, c, b, ann, people.Viewer, people.ViaWebex)
	bob, _ := start(t, c, a, token.Person{Email: "bob@example.com"}, people.Operator, people.ViaWebex)
	n, err := b.EndAllOf(ctxT(t), "ANN@example.com")
	if err != nil || n != 2 {
		t.Errorf("EndAllOf = %d, %v; want 2 sessions ended", n, err)
	}
	wantNoSession(t, a, id1, "ended by EndAllOf")
	wantNoSession(t, a, id2, "ended by EndAllOf")
	mustGet(t, a, bob)
	if _, err := a.EndAllOf(ctxT(t), ""); err == nil {
		t.Errorf("EndAllOf(\"\") accepted it (it would end every passphrase session)")
	}
}
