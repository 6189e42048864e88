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
	// PendingFor returns the oldest limit events of one token, in commit
	// order.
	PendingFor(ctx context.Context, name string, limit int) ([]token.Event, error)
	// DeleteEvent removes the event with this ID. Removing one that is
	// already gone is not an error.
	DeleteEvent(ctx context.Context, id string) error
}

// Defaults of Options.
const (
	DefaultPublishTimeout = 10 * time.Second
	DefaultStoreTimeout   = 5 * time.Second
	DefaultBatchSize      = 500
	DefaultConcurrency    = 8
)

// Options configures a Relay. Topic and Source are required; the other
// zero values take the relay's own defaults.
type Options struct {
	// Topic is the topic ID or full name (EVENTS_TOPIC); required.
	Topic string
	// Source is the ce-source of every event, Source(project,
	// TOKENS_COLLECTION); required.
	Source string
	// PublishTimeout bounds one publish including the client's retries.
	PublishTimeout time.Duration
	// StoreTimeout bounds each outbox read and delete.
	StoreTimeout time.Duration
	// BatchSize is how many events are read from the outbox at a time.
	BatchSize int
	// Concurrency is how many tokens' events are published in parallel.
	Concurrency int
	// Logger receives failures to deliver (default: none).
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
	// Delivering is how many deliveries are in progress: Deliver calls
	// and the retry loop's round.
	Delivering int
	// Retrying is how many tokens have events whose delivery failed and
	// that this instance is retrying.
	Retrying int
}

// Relay publishes outbox events to Pub/Sub and removes each from the
// outbox once Pub/Sub accepted it; it retries the deliveries that failed
// in the background until Close. It implements token.Publisher. One per
// process. Safe for concurrent use.
//
// Every delivery takes one path (deliverToken): hold the token's lock,
// read its pending events from the outbox, publish them in commit order,
// delete each once accepted. Deliver (after a commit), the retry loop and
// Drain (the worker's leftovers) only differ in which tokens they flush.
// Delivery is at-least-once (DESIGN 4): an event leaves the outbox only
// after Pub/Sub accepted it, and a publish whose answer was lost, or two
// instances flushing one token, can send an event twice, which
// subscribers drop by ce-id and order by generation.
type Relay struct {
	pub    *gps.Publisher
	outbox Outbox
	o      Options

	locks keyLocks
	retry *retryQueue

	stopRetry context.CancelFunc
	retryDone chan struct{}
	closeOnce sync.Once

	published, failed, deleteFailed atomic.Uint64
	backlog, delivering             atomic.Int64
}

var _ token.Publisher = (*Relay)(nil)

// New returns a Relay publishing to o.Topic through client with message
// ordering on, and starts its retry loop. Close stops it; the client
// stays the caller's.
func New(client *gps.Client, outbox Outbox, o Options) *Relay {
	if o.Topic == "" || o.Source == "" {
		// Their defaults live in the configuration (EVENTS_TOPIC,
		// TOKENS_COLLECTION), not restated here.
		panic("pubsub: Options.Topic and Options.Source are required")
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
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	pub := client.Publisher(o.Topic)
	pub.EnableMessageOrdering = true
	pub.PublishSettings.Timeout = o.PublishTimeout
	ctx, stop := context.WithCancel(context.Background())
	r := &Relay{pub: pub, outbox: outbox, o: o, retry: newRetryQueue(), stopRetry: stop, retryDone: make(chan struct{})}
	r.backlog.Store(-1)
	go r.retryLoop(ctx)
	return r
}

// Topic is the full name of the topic, projects/<project>/topics/<id>.
func (r *Relay) Topic() string { return r.pub.String() }

// closeWait bounds Close: shutdown must fit in Cloud Run's 10 s.
const closeWait = 2 * time.Second

// Close stops the retry loop (cutting off its publish in progress) and
// the publisher, waiting at most closeWait for publishes that were given
// up on but are still in flight. Events not delivered stay in the outbox
// for the worker's next sweep. Call it after the last Deliver and Drain.
func (r *Relay) Close() {
	r.closeOnce.Do(func() {
		r.stopRetry()
		done := make(chan struct{})
		go func() {
			<-r.retryDone
			r.pub.Stop()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(closeWait):
			r.o.Logger.Warn("pub/sub did not answer pending publishes before shutdown; their events stay in the outbox")
		}
	})
}

// Stats returns the counters.
func (r *Relay) Stats() Stats {
	return Stats{
		Published:    r.published.Load(),
		Failed:       r.failed.Load(),
		DeleteFailed: r.deleteFailed.Load(),
		Backlog:      int(r.backlog.Load()),
		Delivering:   int(r.delivering.Load()),
		Retrying:     r.retry.len(),
	}
}

// Deliver flushes the outbox of the tokens of events, just committed:
// their pending events, these and any older ones, in commit order, each
// deleted after Pub/Sub accepted it. When that fails, the events stay in
// the outbox, the failure is logged and the retry loop tries again.
// Every wait is bounded by ctx and PublishTimeout.
func (r *Relay) Deliver(ctx context.Context, events []token.Event) {
	if len(events) == 0 {
		return
	}
	r.delivering.Add(1)
	defer r.delivering.Add(-1)
	var names []string
	seen := map[string]bool{}
	for _, e := range events {
		if !seen[e.Name] {
			seen[e.Name] = true
			names = append(names, e.Name)
		}
	}
	res := r.deliver(ctx, names, false)
	if err := res.err(); err != nil {
		r.o.Logger.Warn("events not published; they wait in the outbox and are retried",
			"topic", r.Topic(), "published", res.published, "pending", res.failed, "error", err.Error())
		r.retryLater(res.failedKeys)
	}
}

// Drain publishes what is in the outbox, oldest first and in order per
// token, deleting each event after Pub/Sub accepted it: the events of
// instances that died before delivering them, and of the failed
// deliveries of live ones. It takes them all, however young: waiting
// until their committer had time to deliver them would spare subscribers
// a duplicate only when a sweep starts within the few milliseconds of a
// delivery, and would keep a dead instance's events from the next sweep.
// A token whose publish fails is skipped for the rest of the call, its
// events left in the outbox. It returns how many events it published and
// an error if any event was left behind; a missing topic reads "topic ...
// not found; events wait in the outbox" and matches ErrTopicNotFound.
// The worker calls it at start and on every sweep.
func (r *Relay) Drain(ctx context.Context) (int, error) {
	tried := map[string]bool{}
	failed := map[string]bool{}
	var (
		total int
		errs  []error
	)
	for {
		page, err := r.pending(ctx)
		if err != nil {
			return total, fmt.Errorf("drain: read outbox: %w", err)
		}
		var names []string
		for _, e := range page {
			if !tried[e.Name] {
				tried[e.Name] = true
				names = append(names, e.Name)
			}
		}
		res := r.deliver(ctx, names, false)
		total += res.published
		for _, k := range res.failedKeys {
			failed[k] = true
		}
		if err := res.err(); err != nil {
			errs = append(errs, err)
		}
		if len(names) == 0 || len(page) < r.o.BatchSize || ctx.Err() != nil {
			left := 0
			for _, e := range page {
				if failed[e.Name] {
					left++
				}
			}
			r.backlog.Store(int64(left))
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

// outcome is what one deliver call achieved.
type outcome struct {
	published  int      // newly accepted by Pub/Sub
	failed     int      // left in the outbox: not published, or not deleted
	failedKeys []string // tokens with events left
	untried    []string // tokens not tried after a failure
	errs       []error  // one per failed token
}

func (o *outcome) add(p outcome) {
	o.published += p.published
	o.failed += p.failed
	o.failedKeys = append(o.failedKeys, p.failedKeys...)
	o.untried = append(o.untried, p.untried...)
	o.errs = append(o.errs, p.errs...)
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

// deliver delivers the pending events of each named token, tokens in
// parallel. With stopAtFailure, it starts no further token once one
// failed and returns the ones it did not start as untried.
func (r *Relay) deliver(ctx context.Context, names []string, stopAtFailure bool) outcome {
	return r.deliverEach(ctx, names, stopAtFailure, func(name string) keyOutcome { return r.deliverToken(ctx, name) })
}

// deliverEach runs one delivery per named token, tokens in parallel (at
// most Concurrency at once), and sums up their outcomes.
func (r *Relay) deliverEach(ctx context.Context, names []string, stopAtFailure bool, one func(name string) keyOutcome) outcome {
	var (
		mu  sync.Mutex
		out outcome
		wg  sync.WaitGroup
		sem = make(chan struct{}, r.o.Concurrency)
	)
	for i, name := range names {
		sem <- struct{}{}
		mu.Lock()
		stop := stopAtFailure && len(out.errs) > 0
		mu.Unlock()
		if stop {
			<-sem
			wg.Wait()
			out.untried = append(out.untried, names[i:]...)
			return out
		}
		wg.Go(func() {
			defer func() { <-sem }()
			k := one(name)
			mu.Lock()
			defer mu.Unlock()
			out.published += k.published
			if k.err != nil {
				out.failed += k.left
				out.failedKeys = append(out.failedKeys, name)
				out.errs = append(out.errs, k.err)
			}
		})
	}
	wg.Wait()
	return out
}

type keyOutcome struct {
	published int // newly accepted by Pub/Sub
	left      int // events seen but left in the outbox
	err       error
}

// deliverToken publishes the pending events of one token in commit
// order, holding its lock, waiting for each to be accepted and deleting
// it before the next. It stops at the first failure, leaving that event
// and the rest in the outbox.
func (r *Relay) deliverToken(ctx context.Context, name string) (out keyOutcome) {
	if err := r.locks.lock(ctx, name); err != nil {
		out.err = fmt.Errorf("publish events of %s: wait for a concurrent publish: %w", name, err)
		return out
	}
	defer r.locks.unlock(name)
	for {
		sctx, cancel := context.WithTimeout(ctx, r.o.StoreTimeout)
		evs, err := r.outbox.PendingFor(sctx, name, r.o.BatchSize)
		cancel()
		if err != nil {
			out.err = fmt.Errorf("read pending events of %s: %w", name, err)
			return out
		}
		k := r.publishInOrder(ctx, evs)
		out.published += k.published
		out.left += k.left
		if k.err != nil || k.left > 0 || len(evs) < r.o.BatchSize {
			out.err = k.err
			return out
		}
	}
}

// publishInOrder publishes one token's events in order. It stops at the
// first failed publish; an event published but not deleted is counted as
// left (it will be published again) and does not stop the rest.
func (r *Relay) publishInOrder(ctx context.Context, evs []token.Event) (out keyOutcome) {
	for i, e := range evs {
		if err := r.publishOne(ctx, e); err != nil {
			r.failed.Add(1)
			// Publishing for this key is paused after an error; resume
			// so that later attempts can use it. Nothing of this key is
			// queued behind the failed message: events go one by one.
			r.pub.ResumePublish(e.Name)
			out.left += len(evs) - i
			out.err = fmt.Errorf("publish %s: %w", e.ID, err)
			return out
		}
		r.published.Add(1)
		out.published++
		if err := r.delete(ctx, e.ID); err != nil {
			r.deleteFailed.Add(1)
			out.left++
			if out.err == nil {
				out.err = fmt.Errorf("delete published event %s from the outbox (it will be published again): %w", e.ID, err)
			}
		}
	}
	return out
}

// verdictGrace is how much longer than PublishTimeout publishOne waits.
// The client's own deadline (PublishSettings.Timeout) starts only when it
// sends the bundle, a little after Publish; waiting past it means we get
// its verdict instead of abandoning a message it may still deliver, which
// would then arrive twice once it is published again.
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
