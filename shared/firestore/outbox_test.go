package firestore

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wxcc/tokenservice/shared/token"
)

// TestPendingForOldestFirst: with more events pending than the limit,
// PendingFor returns the oldest ones, in commit order, although document
// IDs sort otherwise ("a/10/..." before "a/2/..."). The relay publishes a
// token's events from it, in the order it returns them.
func TestPendingForOldestFirst(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := ctxT(t)
	for _, name := range []string{"a", "b"} {
		if _, err := s.Create(ctx, sampleToken(name)); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for range 12 {
		for _, name := range []string{"a", "b"} {
			_, err := s.Update(ctx, name, func(tok *token.Token) ([]token.Event, error) {
				tok.Generation++
				e := token.NewEvent(token.EventRotated, tok, token.TriggerScheduled, ms)
				if name == "a" && len(want) < 3 {
					want = append(want, e.ID)
				}
				return []token.Event{e}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	events, err := s.PendingFor(ctx, "a", 3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		got = append(got, e.ID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PendingFor(a, 3) (-want +got):\n%s", diff)
	}
}
