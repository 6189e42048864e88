package pubsub

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// A live instance retries its own failed deliveries: when Deliver cannot
// publish a token's events (Pub/Sub unreachable, the topic missing, the
// outbox unreadable), the events are safe in the outbox, and the Relay
// remembers the token's name (not the events) and delivers that token's
// pending events again from a background loop, with backoff, until they
// are out. They then reach Pub/Sub seconds after it is back, not at the
// worker's next sweep. Events left by an instance that died are Drain's.

// Backoff of the retry loop. The first retry comes soon after the failed
// Deliver, later ones at most retryMax apart, so that events go out
// within seconds of the end of an outage; a missing topic is a
// deployment's mistake, not an outage, and is tried again only every
// retryTopicMissing (each round costs an outbox read).
const (
	retryFirst        = 500 * time.Millisecond
	retryMax          = 4 * time.Second
	retryTopicMissing = time.Minute
)

// maxRetrying bounds how many token names an instance remembers for
// retrying (128 bytes each at most). Past it, the events of further
// tokens wait in the outbox for the worker's sweep, as they would if this
// instance died.
const maxRetrying = 10000

// retryQueue holds the names of the tokens whose deliveries failed, each
// once, oldest first, and the names of the retry round in progress.
type retryQueue struct {
	mu      sync.Mutex
	names   []string
	queued  map[string]bool
	inRound map[string]bool
	wake    chan struct{} // holds a signal after add
}

func newRetryQueue() *retryQueue {
	return &retryQueue{queued: map[string]bool{}, inRound: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// add queues the names not queued yet and returns how many of them it
// left out because the queue (with the round in progress) was full.
func (q *retryQueue) add(names ...string) (dropped int) {
	if len(names) == 0 {
		return 0
	}
	q.mu.Lock()
	dropped = q.addLocked(names)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return dropped
}

func (q *retryQueue) addLocked(names []string) (dropped int) {
	for _, n := range names {
		switch {
		case q.queued[n]:
		case len(q.names)+len(q.inRound) >= maxRetrying:
			dropped++
		default:
			q.queued[n] = true
			q.names = append(q.names, n)
		}
	}
	return dropped
}

// take starts a round: it empties the queue and returns what it held.
func (q *retryQueue) take() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	names := q.names
	q.names = nil
	clear(q.queued)
	for _, n := range names {
		q.inRound[n] = true
	}
	return names
}

// finish ends the round, queuing again the names that still have events
// to deliver.
func (q *retryQueue) finish(again []string) (dropped int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	clear(q.inRound)
	return q.addLocked(again)
}

// len is how many tokens are queued or in the round.
func (q *retryQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.names)
	for name := range q.inRound {
		if !q.queued[name] {
			n++
		}
	}
	return n
}

// waiting is how many tokens wait for the next round.
func (q *retryQueue) waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.names)
}

// retryLater queues names for the retry loop.
func (r *Relay) retryLater(names []string) { r.logDropped(r.retry.add(names...)) }

func (r *Relay) logDropped(dropped int) {
	if dropped > 0 {
		r.o.Logger.Warn("too many tokens with undelivered events; these wait in the outbox for the worker's sweep",
			"tokens", dropped, "limit", maxRetrying)
	}
}

// retryLoop redelivers the queued tokens' events until Close: a round
// after each backoff, the backoff reset by a round that went through.
func (r *Relay) retryLoop(ctx context.Context) {
	defer close(r.retryDone)
	delay := retryFirst
	for {
		if r.retry.waiting() == 0 {
			delay = retryFirst
			select {
			case <-ctx.Done():
				return
			case <-r.retry.wake:
				continue
			}
		}
		wait := time.NewTimer(delay/2 + rand.N(delay/2))
		select {
		case <-ctx.Done():
			wait.Stop()
			return
		case <-wait.C:
		}
		switch err := r.redeliver(ctx); {
		case err == nil:
			delay = retryFirst
		case errors.Is(err, ErrTopicNotFound):
			delay = retryTopicMissing
		default:
			delay = min(2*delay, retryMax)
		}
	}
}

// redeliver makes one round over the queued tokens. The first goes
// alone: while Pub/Sub is down, a round costs one outbox read and one
// publish however many tokens wait. If it went through, the others follow
// in parallel, and no new one is started after a failure. Tokens that
// failed, or were not tried, stay queued. It returns the round's error.
func (r *Relay) redeliver(ctx context.Context) error {
	names := r.retry.take()
	if len(names) == 0 {
		return nil
	}
	r.delivering.Add(1)
	defer r.delivering.Add(-1)

	res := r.deliver(ctx, names[:1], false)
	if res.err() == nil {
		res.add(r.deliver(ctx, names[1:], true))
	} else {
		res.untried = names[1:]
	}
	r.logDropped(r.retry.finish(append(res.untried, res.failedKeys...)))
	if res.published > 0 {
		r.o.Logger.Info("published events whose delivery had failed", "published", res.published, "left", res.failed)
	}
	return res.err()
}
