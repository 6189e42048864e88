package firestore

import (
	"context"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/emulator"
	"github.com/wxcc/tokenservice/shared/token"
)

// The benchmarks measure the cost of the store's operations on the
// emulator: go test -run '^$' -bench . ./shared/firestore

func benchStore(b *testing.B) (*Store, *token.Token) {
	b.Helper()
	s := New(emulator.FirestoreClient(b), emulator.Collection(b))
	ctx := context.Background()
	if _, err := s.Create(ctx, sampleToken("a")); err != nil {
		b.Fatal(err)
	}
	tok, err := s.Get(ctx, "a")
	if err != nil {
		b.Fatal(err)
	}
	return s, tok
}

func BenchmarkGet(b *testing.B) {
	s, _ := benchStore(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.Get(ctx, "a"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTryLease(b *testing.B) {
	s, tok := benchStore(b)
	ctx := context.Background()
	for b.Loop() {
		next, err := s.TryLease(ctx, tok, token.Lease{Holder: "h", Until: time.Now().Add(time.Minute)})
		if err != nil {
			b.Fatal(err)
		}
		tok = next
	}
}

// BenchmarkUpdate commits a rotation with one outbox event.
func BenchmarkUpdate(b *testing.B) {
	s, _ := benchStore(b)
	ctx := context.Background()
	for b.Loop() {
		_, err := s.Update(ctx, "a", func(t *token.Token) ([]token.Event, error) {
			t.Generation++
			t.AccessExpires = time.Now().Add(12 * time.Hour)
			return []token.Event{token.NewEvent(token.EventRotated, t, token.TriggerScheduled, time.Now())}, nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
