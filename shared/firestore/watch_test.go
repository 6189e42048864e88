package firestore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/token"
)

// watcher runs WatchTokens on s until the test ends and hands its
// batches over one by one.
func watcher(t *testing.T, s *Store) <-chan token.Changes {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	batches := make(chan token.Changes, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.WatchTokens(ctx, func(b token.Changes) { batches <- b })
	}()
	t.Cleanup(func() { cancel(); <-done })
	return batches
}

// next waits for the next batch that mentions name and returns that change.
func next(t *testing.T, batches <-chan token.Changes, name string) (token.Change, token.Changes) {
	t.Helper()
	limit := time.After(30 * time.Second)
	for {
		select {
		case b := <-batches:
			for _, c := range b.List {
				if c.Name == name {
					return c, b
				}
			}
		case <-limit:
			t.Fatalf("no change of %s reported", name)
		}
	}
}

// TestWatchTokens: the feed starts with the whole collection, decoded and
// opened as Get does, then reports each change and deletion, with a
// deletion's time after the deleted state's version and before a
// re-creation's.
func TestWatchTokens(t *testing.T) {
	t.Parallel()
	s, raw := newStore(t, WithSealer(fakeSealer{}))
	ctx := ctxT(t)
	for _, name := range []string{"a", "b"} {
		if _, err := s.Create(ctx, sampleToken(name)); err != nil {
			t.Fatal(err)
		}
	}
	// Sealed under a key this store does not have.
	if _, err := raw.Doc("locked").Set(ctx, map[string]any{"accessToken": "enc:v1:k9:elsewhere"}); err != nil {
		t.Fatal(err)
	}
	batches := watcher(t, s)

	first := <-batches
	if !first.Complete || len(first.List) != 3 {
		t.Fatalf("first batch: complete %v with %d changes, want the whole collection (3)", first.Complete, len(first.List))
	}
	for _, c := range first.List {
		switch c.Name {
		case "a", "b":
			if c.Token == nil || c.Token.AccessToken != "AT" || c.Token.ClientSecret != "S1" || c.Token.Version.IsZero() {
				t.Errorf("%s: got %+v, want the token opened, with its version", c.Name, c.Token)
			}
		case "locked":
			var sealed *token.SealedError
			if !errors.As(c.Err, &sealed) || c.Deleted() {
				t.Errorf("locked: got err %v, want a *token.SealedError", c.Err)
			}
		}
	}

	saved, err := s.Update(ctx, "a", func(cur *token.Token) ([]token.Event, error) {
		cur.PassphraseHash = "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA"
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c, b := next(t, batches, "a")
	if b.Complete || c.Token == nil || c.Token.PassphraseHash != saved.PassphraseHash || !c.Token.Version.Equal(saved.Version) {
		t.Fatalf("change of a: got %+v (complete %v), want the new passphrase hash at version %v", c.Token, b.Complete, saved.Version)
	}

	before, err := s.Get(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Doc("b").Delete(ctx); err != nil {
		t.Fatal(err)
	}
	c, b = next(t, batches, "b")
	if !c.Deleted() || b.At.Before(before.Version) {
		t.Fatalf("deletion of b: got deleted %v at %v, want deleted at or after %v", c.Deleted(), b.At, before.Version)
	}
	if _, err := s.Create(ctx, sampleToken("b")); err != nil {
		t.Fatal(err)
	}
	c, _ = next(t, batches, "b")
	if c.Token == nil || !c.Token.Version.After(b.At) {
		t.Fatalf("re-creation of b: got %+v, want a token newer than the deletion (%v)", c.Token, b.At)
	}
}

// TestWatchTokensEnds: WatchTokens returns when its context ends.
func TestWatchTokensEnds(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	started := make(chan struct{}, 1)
	go func() {
		defer close(done)
		s.WatchTokens(ctx, func(token.Changes) {
			select {
			case started <- struct{}{}:
			default:
			}
		})
	}()
	<-started
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("WatchTokens still running after its context ended")
	}
}
