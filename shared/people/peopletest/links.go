package peopletest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wxcc/tokenservice/shared/people"
)

// LinkTTL is AUTHORIZE_LINK_TTL's default.
const LinkTTL = 72 * time.Hour

// NewLinkStores returns two handles on one empty store of its own (for
// Firestore: two clients on one collection), both on the clock now.
type NewLinkStores func(t *testing.T, now func() time.Time) (a, b people.LinkStore)

// RunLinks runs the contract suite of people.LinkStore; subtests run in
// parallel.
func RunLinks(t *testing.T, newStores NewLinkStores) {
	tests := []struct {
		name string
		fn   func(t *testing.T, c *Clock, a, b people.LinkStore)
	}{
		{"RoundTrip", testLinkRoundTrip},
		{"Unknown", testLinkUnknown},
		{"Use", testLinkUse},
		{"UseWrongPerson", testLinkUseWrongPerson},
		{"UseExpired", testLinkUseExpired},
		{"Revoke", testLinkRevoke},
		{"Pending", testLinkPending},
		{"UseRace", testLinkUseRace},
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

// newLink creates a link at the clock's time and returns its URL ID.
func newLink(t *testing.T, c *Clock, s people.LinkStore, name, email string) (string, *people.Link) {
	t.Helper()
	id, l, err := people.NewLink(name, email, "ann@example.com", c.Now(), LinkTTL)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctxT(t), l); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return id, l
}

func mustGetLink(t *testing.T, s people.LinkStore, id string) *people.Link {
	t.Helper()
	l, err := s.Get(ctxT(t), id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return l
}

func testLinkRoundTrip(t *testing.T, c *Clock, a, b people.LinkStore) {
	for _, email := range []string{"Bob@Example.com", ""} {
		id, want := newLink(t, c, a, "flow-1", email)
		got := mustGetLink(t, b, id)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("read back (-want +got):\n%s", diff)
		}
		if got.Verifier == "" || got.Challenge() != want.Challenge() {
			t.Errorf("the verifier did not come back")
		}
	}
}

func testLinkUnknown(t *testing.T, c *Clock, a, b people.LinkStore) {
	id, l := newLink(t, c, a, "flow-1", "")
	other, otherKey := people.NewSecret()
	for _, bad := range []string{other, "", l.Key, id[:42] + "*"} {
		if got, err := a.Get(ctxT(t), bad); !errors.Is(err, people.ErrLinkNotFound) {
			t.Errorf("Get(%.8q…) = %+v, %v; want ErrLinkNotFound", bad, got, err)
		}
	}
	if _, err := a.Use(ctxT(t), otherKey, "bob@example.com"); !errors.Is(err, people.ErrLinkNotFound) {
		t.Errorf("Use of an unknown link = %v, want ErrLinkNotFound", err)
	}
	if err := a.Revoke(ctxT(t), otherKey, "ann@example.com"); !errors.Is(err, people.ErrLinkNotFound) {
		t.Errorf("Revoke of an unknown link = %v, want ErrLinkNotFound", err)
	}
}

func testLinkUse(t *testing.T, c *Clock, a, b people.LinkStore) {
	id, l := newLink(t, c, a, "flow-1", "")
	c.Advance(time.Hour)
	used, err := b.Use(ctxT(t), l.Key, "bob@example.com")
	if err != nil {
		t.Fatalf("Use: %v", err)
	}
	if used.Verifier != l.Verifier || !used.UsedAt.Equal(c.Now()) || used.UsedBy != "bob@example.com" || used.Token != "flow-1" {
		t.Errorf("Use returned %+v, want the link, its verifier, used now by bob", used)
	}
	got := mustGetLink(t, a, id)
	if got.State(c.Now()) != people.LinkUsed || got.UsedBy != "bob@example.com" || !got.UsedAt.Equal(c.Now()) {
		t.Errorf("after Use: state %q, used by %q at %v", got.State(c.Now()), got.UsedBy, got.UsedAt)
	}
	if got.Verifier != "" {
		t.Errorf("a used link still holds its verifier")
	}
	if _, err := a.Use(ctxT(t), l.Key, "bob@example.com"); !errors.Is(err, people.ErrLinkUsed) {
		t.Errorf("second Use = %v, want ErrLinkUsed", err)
	}
	if err := a.Revoke(ctxT(t), l.Key, "ann@example.com"); !errors.Is(err, people.ErrLinkUsed) {
		t.Errorf("Revoke of a used link = %v, want ErrLinkUsed", err)
	}
}

func testLinkUseWrongPerson(t *testing.T, c *Clock, a, b people.LinkStore) {
	_, l := newLink(t, c, a, "flow-1", "bob@example.com")
	for _, who := range []string{"eve@example.com", ""} {
		if _, err := b.Use(ctxT(t), l.Key, who); !errors.Is(err, people.ErrLinkWrongPerson) {
			t.Errorf("Use by %q = %v, want ErrLinkWrongPerson", who, err)
		}
	}
	if _, err := a.Use(ctxT(t), l.Key, "BOB@example.com"); err != nil {
		t.Errorf("Use by the right person after wrong ones = %v, want success", err)
	}
}

func testLinkUseExpired(t *testing.T, c *Clock, a, b people.LinkStore) {
	id, l := newLink(t, c, a, "flow-1", "")
	c.Advance(LinkTTL)
	if _, err := b.Use(ctxT(t), l.Key, "bob@example.com"); !errors.Is(err, people.ErrLinkExpired) {
		t.Errorf("Use at expiry = %v, want ErrLinkExpired", err)
	}
	if err := b.Revoke(ctxT(t), l.Key, "ann@example.com"); !errors.Is(err, people.ErrLinkExpired) {
		t.Errorf("Revoke at expiry = %v, want ErrLinkExpired", err)
	}
	if got := mustGetLink(t, a, id); got.State(c.Now()) != people.LinkExpired {
		t.Errorf("state %q, want expired", got.State(c.Now()))
	}
}

func testLinkRevoke(t *testing.T, c *Clock, a, b people.LinkStore) {
	id, l := newLink(t, c, a, "flow-1", "")
	c.Advance(time.Minute)
	if err := b.Revoke(ctxT(t), l.Key, "carol@example.com"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	got := mustGetLink(t, a, id)
	if got.State(c.Now()) != people.LinkRevoked || got.RevokedBy != "carol@example.com" || !got.RevokedAt.Equal(c.Now()) || got.Verifier != "" {
		t.Errorf("after Revoke: %q by %q at %v, verifier kept %v", got.State(c.Now()), got.RevokedBy, got.RevokedAt, got.Verifier != "")
	}
	if _, err := a.Use(ctxT(t), l.Key, "bob@example.com"); !errors.Is(err, people.ErrLinkRevoked) {
		t.Errorf("Use of a revoked link = %v, want ErrLinkRevoked", err)
	}
	if err := a.Revoke(ctxT(t), l.Key, "ann@example.com"); !errors.Is(err, people.ErrLinkRevoked) {
		t.Errorf("Revoke twice = %v, want ErrLinkRevoked", err)
	}
}

func testLinkPending(t *testing.T, c *Clock, a, b people.LinkStore) {
	_, l1 := newLink(t, c, a, "flow-1", "bob@example.com")
	c.Advance(time.Minute)
	_, l2 := newLink(t, c, b, "flow-2", "")
	c.Advance(time.Minute)
	_, l3 := newLink(t, c, a, "flow-1", "")
	_, used := newLink(t, c, a, "flow-1", "")
	_, revoked := newLink(t, c, a, "flow-2", "")
	if _, err := a.Use(ctxT(t), used.Key, "x@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := a.Revoke(ctxT(t), revoked.Key, "ann@example.com"); err != nil {
		t.Fatal(err)
	}
	keys := func(name string) []string {
		t.Helper()
		ls, err := b.Pending(ctxT(t), name)
		if err != nil {
			t.Fatalf("Pending(%q): %v", name, err)
		}
		var out []string
		for _, l := range ls {
			if l.Verifier != "" {
				t.Errorf("Pending(%q) returned a verifier", name)
			}
			out = append(out, l.Key)
		}
		return out
	}
	if diff := cmp.Diff([]string{l1.Key, l3.Key}, keys("flow-1")); diff != "" {
		t.Errorf("Pending(flow-1), oldest first (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{l1.Key, l2.Key, l3.Key}, keys("")); diff != "" {
		t.Errorf("Pending(all), oldest first (-want +got):\n%s", diff)
	}
	if got := keys("flow-3"); len(got) != 0 {
		t.Errorf("Pending(flow-3) = %v, want none", got)
	}
	c.Advance(LinkTTL - 90*time.Second) // l1 expired 30 s ago; l2 and l3 are younger
	if diff := cmp.Diff([]string{l2.Key, l3.Key}, keys("")); diff != "" {
		t.Errorf("Pending(all) after l1 expired (-want +got):\n%s", diff)
	}
}

// testLinkUseRace: many uses of one link at once, on both handles (two
// instances): exactly one wins, every other gets ErrLinkUsed.
func testLinkUseRace(t *testing.T, c *Clock, a, b people.LinkStore) {
	_, l := newLink(t, c, a, "flow-1", "")
	const n = 16
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		wins  int
		other []error
	)
	ready := make(chan struct{})
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			<-ready
			_, err := s.Use(ctxT(t), l.Key, "bob@example.com")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, people.ErrLinkUsed):
				other = append(other, err)
			}
		})
	}
	close(ready)
	wg.Wait()
	if wins != 1 || len(other) != 0 {
		t.Errorf("%d concurrent uses: %d won, other errors %v; want exactly 1 win and ErrLinkUsed for the rest", n, wins, other)
	}
}
