package memstore_test

import (
	"context"
	"testing"

	"github.com/wxcc/tokenservice/shared/testing/memstore"
	"github.com/wxcc/tokenservice/shared/testing/storetest"
	"github.com/wxcc/tokenservice/shared/token"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) token.Store { return memstore.New() })
}

func TestReadsAndOutbox(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	if _, err := s.Create(ctx, &token.Token{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	if got := s.Reads(); got != 0 {
		t.Errorf("Reads after Create = %d, want 0", got)
	}
	tok, err := s.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TryLease(ctx, tok, token.Lease{Holder: "h"}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Update(ctx, "a", func(tok *token.Token) ([]token.Event, error) {
		tok.Generation++
		return []token.Event{token.NewEvent(token.EventRotated, tok, token.TriggerInline, tok.LastRefresh)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = s.Get(ctx, "missing")
	if got := s.Reads(); got != 3 {
		t.Errorf("Reads after Get, TryLease, Update, Get(missing) = %d, want 3", got)
	}
	if got := s.Outbox(); len(got) != 1 || got[0].ID != "a/1/token.rotated" {
		t.Errorf("Outbox() = %v, want the one rotated event", got)
	}
}
