package firestore

import (
	"context"
	"time"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/token"
)

// Backoff of WatchTokens between listen streams that ended. The client
// library retries a stream that breaks on a transient error by itself
// (and resumes it where it was); what it gives up on ends a stream here.
const (
	watchBackoffMin = time.Second
	watchBackoffMax = time.Minute
	// watchHealthy: a stream that lasted this long resets the backoff.
	watchHealthy = time.Minute
)

// WatchTokens calls fn with the changes of the tokens collection until
// ctx ends: first the whole collection (a Complete batch), then each
// batch of changes as Firestore reports them, deletions included. A
// listen stream that ends is opened again after a log line, with
// backoff, and starts with a Complete batch again, so that what was
// deleted meanwhile is known too. fn runs on the calling goroutine, one
// batch at a time; Token values are decoded and opened as Get does.
//
// Cost, as Firestore bills a listener: one read per document in the
// first batch (the whole collection, at every start and restart), then
// one read per document added or changed; deletions are free. Reads
// counts them. The client library keeps the last state of every document
// in memory while the stream is open (its diffing needs it).
func (s *Store) WatchTokens(ctx context.Context, fn func(token.Changes)) {
	backoff := watchBackoffMin
	for {
		began := time.Now()
		err := s.watchOnce(ctx, fn)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) >= watchHealthy {
			backoff = watchBackoffMin
		}
		s.log.Warn("token change listener lost; changes made elsewhere are seen after CACHE_MAX_AGE until it is back",
			"collection", s.name, "error", errText(err), "retry_in", backoff.String())
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, watchBackoffMax)
	}
}

// watchOnce runs one listen stream until it ends, and returns why.
func (s *Store) watchOnce(ctx context.Context, fn func(token.Changes)) error {
	it := s.coll.Snapshots(ctx)
	defer it.Stop()
	began := time.Now()
	for first := true; ; first = false {
		snap, err := it.Next()
		if err != nil {
			return err
		}
		batch := token.Changes{Complete: first, At: snap.ReadTime, List: make([]token.Change, 0, len(snap.Changes))}
		for _, dc := range snap.Changes {
			batch.List = append(batch.List, s.change(dc))
		}
		if first {
			s.log.Info("listening to token changes", "collection", s.name, "documents", snap.Size,
				"first_batch_ms", time.Since(began).Milliseconds())
		}
		fn(batch)
	}
}

// change converts one document change of a listen stream.
func (s *Store) change(dc gfs.DocumentChange) token.Change {
	c := token.Change{Name: dc.Doc.Ref.ID}
	if dc.Kind == gfs.DocumentRemoved {
		return c
	}
	s.reads.Add(1)
	t, err := s.fromSnapshot(dc.Doc)
	if err != nil {
		c.Err = err
		return c
	}
	c.Token = t
	return c
}

func errText(err error) string {
	if err == nil {
		return "stream ended"
	}
	return err.Error()
}
