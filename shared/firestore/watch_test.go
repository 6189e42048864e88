package firestore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	gfs "cloud.google.com/go/firestore"

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

// absent reports whether c says the document is no longer there: deleted
// (the store's notice) or unseen (missing from a listing, which is how the
// emulator, listing again at every change, reports deletions).
func absent(c token.Change) bool { return c.Token == nil && c.Err == nil }

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
	for name, want := range map[string]bool{"a": true, "b": true, "locked": true, "c": false} {
		if got := first.Exists(name); got != want {
			t.Errorf("Exists(%s) = %v, want %v", name, got, want)
		}
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
	if b.Complete || len(b.List) != 1 || c.Token == nil || c.Token.PassphraseHash != saved.PassphraseHash || !c.Token.Version.Equal(saved.Version) {
		t.Fatalf("change of a: got %+v (complete %v, %d changes), want the new passphrase hash at version %v, alone", c.Token, b.Complete, len(b.List), saved.Version)
	}

	before, err := s.Get(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Doc("b").Delete(ctx); err != nil {
		t.Fatal(err)
	}
	c, b = next(t, batches, "b")
	if !absent(c) || b.At.Before(before.Version) {
		t.Fatalf("deletion of b: got absent %v at %v, want absent at or after %v", absent(c), b.At, before.Version)
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

// TestWatchTokensLongListing: a collection larger than the feed holds at
// once is listed in several batches, each document once, the last one
// Complete and consistent, knowing every name; a change after it comes
// in a batch of its own.
func TestWatchTokensLongListing(t *testing.T) {
	t.Parallel()
	s, raw := newStore(t)
	ctx := ctxT(t)
	const n = 3*watchEager + 17
	bw := s.client.BulkWriter(ctx)
	var jobs []*gfs.BulkWriterJob
	for i := range n {
		j, err := bw.Set(raw.Doc(fmt.Sprintf("t%04d", i)), encode(sampleToken("x")))
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	bw.End()
	for _, j := range jobs {
		if _, err := j.Results(); err != nil {
			t.Fatal(err)
		}
	}
	batches := watcher(t, s)
	seen := map[string]int{}
	count := 0
	for {
		b := <-batches
		count++
		for _, c := range b.List {
			seen[c.Name]++
			if c.Token == nil || c.Token.AccessToken != "AT" {
				t.Fatalf("%s: got %+v, want the token", c.Name, c)
			}
		}
		if b.Complete {
			if b.At.IsZero() || !b.Exists("t0000") || !b.Exists(fmt.Sprintf("t%04d", n-1)) || b.Exists("t9999") {
				t.Fatalf("complete batch: at %v, want a consistent time and Exists true for the listed names only", b.At)
			}
			break
		}
	}
	if len(seen) != n || count < 2 {
		t.Fatalf("listing: %d names in %d batches, want %d names in several batches", len(seen), count, n)
	}
	for name, k := range seen {
		if k != 1 {
			t.Fatalf("%s listed %d times, want once", name, k)
		}
	}
	if _, err := raw.Doc("t0005").Delete(ctx); err != nil {
		t.Fatal(err)
	}
	c, b := next(t, batches, "t0005")
	if !absent(c) || b.Complete || len(b.List) != 1 {
		t.Fatalf("after the listing: got %+v in a batch of %d (complete %v), want the deletion alone", c, len(b.List), b.Complete)
	}
}

// TestWatchTokensDecodesAsGet: a document read from the feed is the token
// Get returns, every field included.
func TestWatchTokensDecodesAsGet(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, WithSealer(fakeSealer{}))
	ctx := ctxT(t)
	tok := sampleToken("full")
	reported, manager := int64(4), int64(2)
	tok.Scopes = []string{"spark:people_read", "cjp:config_read"}
	tok.PassphraseHash = "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA"
	tok.OrgID, tok.Kind, tok.AppID, tok.TargetOrgID = "org-1", token.KindServiceApp, "app-1", "org-2"
	tok.Manager, tok.ManagerGeneration, tok.FailureReported = "manager", &manager, &reported
	tok.Generation, tok.Failures, tok.Status = 7, 2, token.StatusActive
	tok.NextAttempt, tok.ExpiryWarned = ms.Add(time.Minute), ms.Add(-time.Hour)
	tok.Lease = token.Lease{Holder: "worker-1", Until: ms.Add(30 * time.Second)}
	tok.LastError = &token.LastError{At: ms, Message: "invalid_grant", Permanent: true}
	tok.AuthorizedBy = &token.Person{ID: "p1", Email: "olivia@example.com", DisplayName: "Olivia", OrgID: "org-1"}
	tok.ConfigFingerprint = "fp"
	if _, err := s.Create(ctx, tok); err != nil {
		t.Fatal(err)
	}
	want, err := s.Get(ctx, "full")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := next(t, watcher(t, s), "full")
	if c.Token == nil {
		t.Fatalf("got %+v, want the token", c)
	}
	if !reflect.DeepEqual(c.Token, want) {
		t.Fatalf("feed:\n%+v\nGet:\n%+v", c.Token, want)
	}
}
