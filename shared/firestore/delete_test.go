package firestore

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/token"
)

func TestDeleteWritesItsEvent(t *testing.T) {
	t.Parallel()
	s, raw := newStore(t, WithSealer(fakeSealer{}))
	ctx := ctxT(t)
	if _, err := s.Create(ctx, sampleToken("gone")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, "gone", func(tok *token.Token) ([]token.Event, error) {
		tok.Generation = 4
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	e, err := s.Delete(ctx, "gone", func(tok *token.Token) token.Event {
		return token.NewEvent(token.EventDeleted, tok, token.TriggerManual, now)
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.Generation != 4 || e.Name != "gone" || !strings.HasPrefix(e.ID, "gone/4/token.deleted/") {
		t.Errorf("event %+v, want gone at generation 4", e)
	}
	if snap, err := raw.Doc("gone").Get(ctx); err == nil && snap.Exists() {
		t.Error("the document is still there")
	}
	pending, err := s.PendingFor(ctx, "gone", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].ID != e.ID || pending[0].Type != token.EventDeleted || pending[0].Trigger != token.TriggerManual {
		t.Errorf("outbox holds %+v, want the one token.deleted event", pending)
	}
	if _, err := s.Delete(ctx, "gone", func(tok *token.Token) token.Event { return token.Event{ID: "x"} }); !errors.Is(err, token.ErrNotFound) {
		t.Errorf("deleting it again: got %v, want ErrNotFound", err)
	}
	if _, err := s.Delete(ctx, "__bad__", nil); !errors.Is(err, token.ErrInvalidName) {
		t.Errorf("invalid name: got %v, want ErrInvalidName", err)
	}
}

func TestDeleteAndListTokenThatDoesNotOpen(t *testing.T) {
	t.Parallel()
	s, raw := newStore(t, WithSealer(fakeSealer{}))
	ctx := ctxT(t)
	doc := sampleDoc()
	doc["refreshToken"] = "enc:v1:lost:AAAA"
	doc["status"] = "active"
	if _, err := raw.Doc("locked").Set(ctx, doc); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, sampleToken("fine")); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	if err := s.ListChecked(ctx, 1, func(tok *token.Token, unreadable []string) error {
		got[tok.Name] = unreadable
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !slices.Equal(got["locked"], []string{"refreshToken"}) || got["fine"] != nil {
		t.Errorf("ListChecked: got %v, want locked with refreshToken unreadable, fine with none", got)
	}
	if _, err := s.Delete(ctx, "locked", func(tok *token.Token) token.Event {
		return token.NewEvent(token.EventDeleted, tok, token.TriggerManual, time.Now())
	}); err != nil {
		t.Fatalf("deleting a token that does not open: %v", err)
	}
}
