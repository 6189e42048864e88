package pubsub

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestKeyLocks(t *testing.T) {
	t.Parallel()
	var k keyLocks
	ctx := context.Background()
	if err := k.lock(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := k.lock(ctx, "b"); err != nil {
		t.Fatalf("lock of another key: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := k.lock(short, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second lock of a held key = %v, want DeadlineExceeded", err)
	}
	done := make(chan error)
	go func() { done <- k.lock(ctx, "a") }()
	k.unlock("a")
	if err := <-done; err != nil {
		t.Errorf("lock after unlock = %v", err)
	}
	k.unlock("a")
	k.unlock("b")
	if n := len(k.locks); n != 0 {
		t.Errorf("%d locks left after all were released", n)
	}
}
