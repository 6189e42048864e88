package firestore

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/testing/netfault"
	"github.com/wxcc/tokenservice/shared/token"
)

// Cuts of the listen stream, with writes while it is down and right
// after it is back, never make the feed hand on an existing token as
// deleted. Not parallel: the feed dials FIRESTORE_EMULATOR_HOST, which
// this test points at a fault proxy.
func TestWatchTokensAcrossCuts(t *testing.T) {
	s, raw := newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const n = 40
	for i := range n {
		if _, err := s.Create(ctx, sampleToken(fmt.Sprintf("t%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	proxy, err := netfault.Start(os.Getenv("FIRESTORE_EMULATOR_HOST"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	t.Setenv("FIRESTORE_EMULATOR_HOST", proxy.Addr())

	wctx, wcancel := context.WithCancel(ctx)
	batches := make(chan token.Changes, 1000)
	done := make(chan struct{})
	go func() { defer close(done); s.WatchTokens(wctx, func(b token.Changes) { batches <- b }) }()
	defer func() { wcancel(); <-done }()
	if first := <-batches; !first.Complete {
		t.Fatal("first batch not complete")
	}
	check := func(b token.Changes) {
		for _, c := range b.List {
			if c.Deleted() {
				t.Errorf("%s handed on as deleted, but it exists", c.Name)
			}
		}
	}
	for round := range 3 {
		proxy.Cut()
		name := fmt.Sprintf("t%02d", round)
		if _, err := raw.Doc(name).Update(ctx, []gfs.Update{{Path: "lastError", Value: fmt.Sprintf("round %d", round)}}); err != nil {
			t.Fatal(err)
		}
		for j := range 8 {
			other := fmt.Sprintf("t%02d", 20+(round*8+j)%20)
			if _, err := raw.Doc(other).Update(ctx, []gfs.Update{{Path: "lastError", Value: fmt.Sprintf("cut %d/%d", round, j)}}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
		}
		proxy.Heal()
		// Writes right after the stream is back, while it relists.
		for j := range 5 {
			other := fmt.Sprintf("t%02d", 10+(round*5+j)%30)
			if _, err := raw.Doc(other).Update(ctx, []gfs.Update{{Path: "lastError", Value: fmt.Sprintf("round %d/%d", round, j)}}); err != nil {
				t.Fatal(err)
			}
		}
		seen := false
		limit := time.After(40 * time.Second)
		for !seen {
			select {
			case b := <-batches:
				check(b)
				for _, c := range b.List {
					if c.Name == name && !c.Deleted() {
						seen = true
					}
				}
			case <-limit:
				t.Fatalf("round %d: the change of %s never came", round, name)
			}
		}
	}
	// Drain what is left.
	time.Sleep(2 * time.Second)
	for len(batches) > 0 {
		check(<-batches)
	}
}
