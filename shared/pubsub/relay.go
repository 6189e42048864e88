package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	gps "cloud.google.com/go/pubsub/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wxcc/tokenservice/shared/token"
)

// Outbox is the store's outbox: events committed atomically with the
// change they report, waiting to be published. The Firestore store
// implements it.
type Outbox interface {
	// PendingEvents returns up to limit events, oldest first, each
	// token's events in commit order.
	PendingEvents(ctx context.Context, limit int) ([]token.Event, error)
	// DeleteEvent removes the event with this ID. Removing one that is
	// already gone is not an error.
	DeleteEvent(ctx context.Context, id string) error
}

// Defaults of Options.
const (
	DefaultTopic          = "token-events"
	DefaultPublishTimeout = 10 * time.Second
	DefaultStoreTimeout   = 5 * time.Second
	DefaultBatchSize      = 500
	DefaultConcurrency    = 8
	DefaultSettle         = 30 * time.Second
)

// Options configures a Relay. Zero values take the defaults.
type Options struct {
	// Topic is the topic ID or full name (EVENTS_TOPIC), default
	// "token-events".
	Topic string
	// Source is the ce-source of every event; default
	// Source(client.Project(), "tokens"). Pass Source(project,
	// TOKENS_COLLECTION).
	Source string
	// PublishTimeout bounds one publish including the client's retries.
	PublishTimeout time.Duration
	// StoreTimeout bounds each outbox read and delete.
	StoreTimeout time.Duration
	// BatchSize is how many events Drain reads from the outbox at a time.
	BatchSize int
	// Concurrency is how many tokens' events are published in parallel.
	Concurrency int
	// Settle is how old an event must be before Drain publishes it (by
	// its Time, the commit's): younger ones are being published by the
	// instance that committed them, and publishing them here as well
	// would send subscribers duplicates. Default 30s, well past what a
	// committer's Deliver may take; negative: no wait.
	Settle time.Duration
	// Logger receives Deliver's failures (default: none).
	Logger *slog.Logger
}

// Stats are the Relay's counters since it was made, for metrics.
type Stats struct {
	// Published counts events Pub/Sub accepted.
	Published uint64
	// Failed counts publishes that failed; the events stay in the outbox.
	Failed uint64
	// DeleteFailed counts published events that could not be removed from
	// the outbox; they will be published again (duplicates, not losses).
	DeleteFailed uint64
	// Backlog is how many events the last Drain left in the outbox (a
	// lower bound when more than BatchSize were pending), -1 before the
	// first Drain.
	Backlog int
	// Delivering is how many Deliver calls are in progress.
	Delivering int
}

// Relay publishes outbox events to Pub/Sub and removes each from the
// outbox once Pub/Sub accepted it. It implements token.Publisher. One per
// process: it keeps a token's events from being published by two calls
// at once. Safe for concurrent use.
type Relay struct {
	pub    *gps.Publisher
	outbox Outbox
	o      Options

	locks  keyLocks
	recent recent

	published, failed, deleteFailed atomic.Uint64
	backlog, delivering             atomic.Int64
}

var _ token.Publisher = (*Relay)(nil)

// New returns a Relay publishing to o.Topic through client with message
// ordering on. Close stops it; the client stays the caller's.
func New(client *gps.Client, outbox Outbox, o Options) *Relay {
	if o.Topic == "" {
		o.Topic = DefaultTopic
	}
	if o.Source == "" {
		o.Source = Source(client.Project(), "tokens")
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	if o.StoreTimeout <= 0 {
		o.StoreTimeout = DefaultStoreTimeout
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Settle == 0 {
		o.Settle = DefaultSettle
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	pub := client.Publisher(o.Topic)
	pub.EnableMessageOrdering = true
	pub.PublishSettings.Timeout = o.PublishTimeout
	r := &Relay{pub: pub, outbox: outbox, o: o}
	r.backlog.Store(-1)
	return r
}

// Topic is the full name of the topic, projects/<project>/topics/<id>.
func (r *Relay) Topic() string { return r.pub.String() }

// closeWait bounds Close: shutdown must fit in Cloud Run's 10 s.
const closeWait = 2 * time.Second

// Close stops the publisher, waiting at most closeWait for publishes that
// were given up on but are still in flight (their events stay in the
// outbox). Call it after the last Deliver and Drain.
func (r *Relay) Close() {
	done := make(chan struct{})
	go func() { r.pub.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeWait):
		r.o.Logger.Warn("pub/sub did not answer pending publishes before shutdown; their events stay in the outbox")
	}
}

// Stats returns the counters.
func (r *Relay) Stats() Stats {
	return Stats{
		Published:    r.published.Load(),
		Failed:       r.failed.Load(),
		DeleteFailed: r.deleteFailed.Load(),
		Backlog:      int(r.backlog.Load()),
		Delivering:   int(r.delivering.Load()),
	}
}

// Deliver publishes events, just committed to the outbox, in order per
// token and deletes each from the outbox after Pub/Sub accepted it. When
// a publish fails, that token's remaining events stay in the outbox for
// Drain; the failure is logged. Every wait is bounded by ctx and
// PublishTimeout.
func (r *Relay) Deliver(ctx context.Context, events []token.Event) {
	if len(events) == 0 {
		return
	}
	r.delivering.Add(1)
	defer r.delivering.Add(-1)
	events = r.withPending(ctx, events)
	res := r.publish(ctx, events)
	if err := res.err(); err != nil {
		r.o.Logger.Warn("events not published; they wait in the outbox",
			"topic", r.Topic(), "published", res.published, "pending", len(events)-res.removed, "error", err.Error())
	}
}

// TokenOutbox is an Outbox that can list one token's pending events; with
// it, Deliver publishes events an earlier attempt left behind before the
// new ones, so that a token's events arrive in order after an outage.
type TokenOutbox interface {
	PendingFor(ctx context.Context, name string, limit int) ([]token.Event, error)
}

// withPending replaces events by, per token, every event of that token
// still pending in the outbox, the just-committed ones among them, in
// commit order. If the outbox cannot say, a token with
// possibly older events left behind is not published now: Drain will,
// in order.
func (r *Relay) withPending(ctx context.Context, events []token.Event) []token.Event {
	to, ok := r.outbox.(TokenOutbox)
	if !ok {
		return events
	}
	var out []token.Event
	seen := map[string]bool{}
	for _, e := range events {
		if seen[e.Name] {
			continue
		}
		seen[e.Name] = true
		sctx, cancel := context.WithTimeout(ctx, r.o.StoreTimeout)
		pending, err := to.PendingFor(sctx, e.Name, r.o.BatchSize)
		cancel()
		if err != nil {
			r.o.Logger.Warn("outbox unreadable; events of this token wait for the worker", "token", e.Name, "error", err.Error())
			continue
		}
		out = append(out, pending...)
	}
	return out
}

// Drain publishes what is in the outbox, oldest first and in order per
// token, deleting each event after Pub/Sub accepted it. Events younger
// than Settle, and the ones after them of the same token, are left to the
// instance that committed them. A token whose publish fails is skipped
// for the rest of the call, its events left in the outbox. It returns how many events it published and an error if
// any event was left behind; a missing topic reads "topic ... not found;
// events wait in the outbox" and matches ErrTopicNotFound. The worker
// calls it at start and on every sweep.
func (r *Relay) Drain(ctx context.Context) (int, error) {
	held := map[string]bool{} // tokens whose events wait for a later call
	var (
		total int
		errs  []error
	)
	for {
		page, err := r.pending(ctx)
		if err != nil {
			return total, fmt.Errorf("drain: read outbox: %w", err)
		}
		var todo []token.Event
		settled := time.Now().Add(-r.o.Settle)
		for _, e := range page {
			if e.Time.After(settled) {
				held[e.Name] = true
			}
			if !held[e.Name] {
				todo = append(todo, e)
			}
		}
		var res outcome
		if len(todo) > 0 {
			res = r.publish(ctx, todo)
		}
		total += res.published
		for _, k := range res.failedKeys {
			held[k] = true
		}
		if err := res.err(); err != nil {
			errs = append(errs, err)
		}
		if res.removed == 0 || len(page) < r.o.BatchSize || ctx.Err() != nil {
			r.backlog.Store(int64(len(page) - res.removed))
			break
		}
	}
	if len(errs) > 0 {
		return total, fmt.Errorf("drain: %w", errs[0])
	}
	return total, nil
}

func (r *Relay) pending(ctx context.Context) ([]token.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.StoreTimeout)
	defer cancel()
	return r.outbox.PendingEvents(ctx, r.o.BatchSize)
}

// outcome is what one publish call achieved.
type outcome struct {
	published  int // newly accepted by Pub/Sub
	removed    int // no longer in the outbox because of this call
	failed     int // left in the outbox: not published, or not deleted
	failedKeys []string
	errs       []error // one per failed token
}

// err summarizes the failures, naming the first cause.
func (o outcome) err() error {
	if len(o.errs) == 0 {
		return nil
	}
	first := o.errs[0]
	for _, e := range o.errs { // a missing topic explains everything else
		if errors.Is(e, ErrTopicNotFound) {
			first = e
			break
		}
	}
	return fmt.Errorf("%d events of %d tokens left in the outbox: %w", o.failed, len(o.errs), first)
}

// publish publishes events grouped by token, tokens in parallel, each
// token's events one after the other.
func (r *Relay) publish(ctx context.Context, events []token.Event) outcome {
	var keys []string
	byKey := map[string][]token.Event{}
	for _, e := range events {
		if _, ok := byKey[e.Name]; !ok {
			keys = append(keys, e.Name)
		}
		byKey[e.Name] = append(byKey[e.Name], e)
	}
	var (
		mu  sync.Mutex
		out outcome
		wg  sync.WaitGroup
		sem = make(chan struct{}, r.o.Concurrency)
	)
	for _, key := range keys {
		evs := byKey[key]
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			k := r.publishKey(ctx, key, evs)
			mu.Lock()
			defer mu.Unlock()
			out.published += k.published
			out.removed += k.removed
			if k.err != nil {
				out.failed += len(evs) - k.removed
				out.failedKeys = append(out.failedKeys, key)
				out.errs = append(out.errs, k.err)
			}
		})
	}
	wg.Wait()
	return out
}

type keyOutcome struct {
	published, removed int
	err                error
}

// publishKey publishes one token's events in order, waiting for each to
// be accepted and deleting it before the next. It stops at the first
// failure, leaving that event and the rest in the outbox.
func (r *Relay) publishKey(ctx context.Context, key string, evs []token.Event) (out keyOutcome) {
	if err := r.locks.lock(ctx, key); err != nil {
		out.err = fmt.Errorf("publish events of %s: wait for a concurrent publish: %w", key, err)
		return out
	}
	defer r.locks.unlock(key)
	var delErr error
	for _, e := range evs {
		switch r.recent.take(e.ID) {
		case stateDeleted: // a concurrent call did it all
			out.removed++
			continue
		case statePublished: // published earlier, only the delete is missing
		default:
			if err := r.publishOne(ctx, e); err != nil {
				r.failed.Add(1)
				// Publishing for this key is paused after an error; resume
				// so that later attempts can use it. Nothing of this key
				// is queued behind the failed message: events go one by
				// one.
				r.pub.ResumePublish(key)
				out.err = fmt.Errorf("publish %s: %w", e.ID, err)
				return out
			}
			r.published.Add(1)
			out.published++
			r.recent.set(e.ID, statePublished)
		}
		if err := r.delete(ctx, e.ID); err != nil {
			r.deleteFailed.Add(1)
			if delErr == nil {
				delErr = fmt.Errorf("delete published event %s from the outbox (it will be published again): %w", e.ID, err)
			}
			continue
		}
		r.recent.set(e.ID, stateDeleted)
		out.removed++
	}
	out.err = delErr
	return out
}

// verdictGrace is how much longer than PublishTimeout publishOne waits.
// The client's own deadline (PublishSettings.Timeout) starts only when it
// sends the bundle, a little after Publish; waiting past it means we get
// its verdict instead of abandoning a message it may still deliver, which
// would then arrive twice once Drain publishes it again.
const verdictGrace = time.Second

// publishOne publishes e and waits for Pub/Sub to accept or refuse it.
func (r *Relay) publishOne(ctx context.Context, e token.Event) error {
	ctx, cancel := context.WithTimeout(ctx, r.o.PublishTimeout+verdictGrace)
	defer cancel()
	msg := NewMessage(e, r.o.Source)
	_, err := r.pub.Publish(ctx, msg).Get(ctx)
	var paused gps.ErrPublishingPaused
	if errors.As(err, &paused) {
		// Left paused by an earlier attempt whose result came after it
		// gave up waiting: nothing of ours is queued, resume and retry.
		r.pub.ResumePublish(e.Name)
		_, err = r.pub.Publish(ctx, NewMessage(e, r.o.Source)).Get(ctx)
	}
	switch {
	case err == nil:
		return nil
	case status.Code(err) == codes.NotFound:
		return &TopicNotFoundError{Topic: r.Topic()}
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return fmt.Errorf("no answer from pubsub: %w", err)
	default:
		return err
	}
}

func (r *Relay) delete(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, r.o.StoreTimeout)
	defer cancel()
	if err := r.outbox.DeleteEvent(ctx, id); err != nil && !errors.Is(err, token.ErrNotFound) {
		return err
	}
	return nil
}

// Alert publishes an event that belongs to no token and so to no outbox
// (the worker's sweep brake): once, now, without ordering; a failure is
// returned and logged by the caller, nothing is retried.
func (r *Relay) Alert(ctx context.Context, e token.Event) error {
	ctx, cancel := context.WithTimeout(ctx, r.o.PublishTimeout+verdictGrace)
	defer cancel()
	_, err := r.pub.Publish(ctx, NewMessage(e, r.o.Source)).Get(ctx)
	if err != nil {
		return fmt.Errorf("publish %s: %w", e.ID, err)
	}
	r.published.Add(1)
	return nil
}
