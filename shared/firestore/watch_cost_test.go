package firestore

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/token"
)

// TestWatchCostAtStart measures what the change feed costs an api
// instance at start with FEED_COST_TOKENS token documents (10 000 in
// `make bench-agreement`): the reads of its listing, how long that
// takes, and the Go heap the open listen stream keeps. A
// measurement, not a check; it runs only when FEED_COST_TOKENS is set.
func TestWatchCostAtStart(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("FEED_COST_TOKENS"))
	if n <= 0 {
		t.Skip("a measurement: set FEED_COST_TOKENS (make bench-agreement)")
	}
	spec := "k1:" + "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	opt, _, err := WithKeys(spec)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newStore(t, opt)
	ctx := context.Background()
	now := time.Now()
	bw := s.client.BulkWriter(ctx)
	for i := range n {
		tok := &token.Token{Name: fmt.Sprintf("tok-%05d", i), ClientID: "client-" + strconv.Itoa(i), ClientSecret: "secret-0123456789abcdef",
			RedirectURI: "https://example.com/cb", AccessToken: "at-0123456789abcdef0123456789abcdef0123456789abcdef",
			RefreshToken: "rt-0123456789abcdef0123456789abcdef", AccessExpires: now.Add(10 * time.Hour),
			RefreshExpires: now.Add(60 * 24 * time.Hour), LastRefresh: now, Generation: 3, Status: token.StatusActive}
		data := encode(tok)
		if err := seal(s.sealer, data, s.docPath(tok.Name)); err != nil {
			t.Fatal(err)
		}
		if _, err := bw.Set(s.coll.Doc(tok.Name), data); err != nil {
			t.Fatal(err)
		}
		if i%500 == 499 {
			bw.Flush()
		}
	}
	bw.End()

	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	before := heap()
	reads := s.Reads()
	wctx, cancel := context.WithCancel(ctx)
	listed := make(chan int, 1)
	done := make(chan struct{})
	began := time.Now()
	go func() {
		defer close(done)
		docs := 0
		s.WatchTokens(wctx, func(b token.Changes) {
			docs += len(b.List)
			if b.Complete {
				listed <- docs
			}
		})
	}()
	docs := <-listed
	took := time.Since(began)
	time.Sleep(time.Second) // the batches handed to fn are garbage by now
	during := heap()
	cancel()
	<-done
	fmt.Printf("\nchange feed at start, %d encrypted token documents: listing of %d documents in %v; reads %d; Go heap in use %.1f MiB before, %.1f MiB with the stream open (+%.0f bytes per document)\n",
		n, docs, took.Round(time.Millisecond), s.Reads()-reads, mib(before), mib(during), float64(int64(during)-int64(before))/float64(n))
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
