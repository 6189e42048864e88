package activity

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/wxcc/tokenservice/shared/logging"
)

// Defaults of Options.
const (
	DefaultQueue        = 1024
	DefaultWriters      = 2
	DefaultWriteTimeout = 5 * time.Second
	DefaultFlushTimeout = 3 * time.Second
)

// closeGrace is how long Close waits, after cancelling the writes still
// running at its deadline, for them to return.
const closeGrace = 500 * time.Millisecond

// Field limits: an entry is a short record, never a dump.
const (
	maxActorLen  = 320
	maxTokenLen  = 160
	maxAddrLen   = 64
	maxDetailLen = 500
)

// Options configure an Async recorder; zero fields take the defaults.
type Options struct {
	// Logger receives one structured entry per record, and what went
	// wrong storing them (default: discard).
	Logger *slog.Logger
	// Queue is how many entries may wait for the store (DefaultQueue).
	Queue int
	// Writers is how many entries are written at once (DefaultWriters).
	Writers int
	// WriteTimeout bounds one Add (DefaultWriteTimeout).
	WriteTimeout time.Duration
	// FlushTimeout bounds Close (DefaultFlushTimeout): Cloud Run gives a
	// process 10 s after SIGTERM, shared with everything else it closes.
	FlushTimeout time.Duration
	// Now stamps entries recorded without a time (time.Now).
	Now func() time.Time
}

// Stats counts what happened to recorded entries since the start.
type Stats struct {
	// Recorded entries, all of which were logged.
	Recorded int64
	// Stored entries, written to the store.
	Stored int64
	// Dropped entries: the queue was full or the recorder closed.
	Dropped int64
	// Failed entries: the store refused or timed out.
	Failed int64
	// Redacted entries held something that looked like a secret.
	Redacted int64
}

// Async is the Recorder of the binaries: Record logs the entry at once as
// one structured log line and queues it; background writers store it.
// When the queue is full the entry is dropped, counted and logged (it
// stays in the log line). Close flushes the queue within FlushTimeout.
type Async struct {
	store Adder
	o     Options
	log   *slog.Logger
	// queue holds pointers: the buffer of a channel of entries (strings
	// inside) is scanned by every garbage collection even when empty,
	// about 600 KB at DefaultQueue, most of the api's live heap.
	queue  chan *Entry
	ctx    context.Context // of the writes; cancelled past Close's deadline
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.RWMutex // guards closed and sends on queue
	closed bool
	once   sync.Once

	recorded, stored, dropped, failed, redacted atomic.Int64
}

var _ Recorder = (*Async)(nil)

// NewAsync starts a recorder storing into store (nil: log only).
func NewAsync(store Adder, o Options) *Async {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.Writers <= 0 {
		o.Writers = DefaultWriters
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.FlushTimeout <= 0 {
		o.FlushTimeout = DefaultFlushTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Async{store: store, o: o, log: o.Logger, queue: make(chan *Entry, o.Queue)}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if store != nil {
		for range o.Writers {
			r.wg.Go(r.write)
		}
	}
	return r
}

// Record logs e and queues it for the store. It returns at once and never
// fails: an entry that cannot be queued is dropped, counted and logged.
// Fields that look like a secret are redacted first (see LooksSecret),
// and a warning says which; fields are cut to a few hundred bytes.
func (r *Async) Record(ctx context.Context, e Entry) {
	if e.At.IsZero() {
		e.At = r.o.Now()
	}
	e.ID = ""
	e = bound(e)
	log := logging.From(ctx, r.log)
	e, fields := scrub(e)
	if len(fields) > 0 {
		r.redacted.Add(1)
		// Something tried to record a secret: a bug to find, so loud.
		log.Error("activity entry held what looks like a secret: redacted",
			"action", string(e.Action), "fields", fields)
	}
	r.recorded.Add(1)
	logEntry(ctx, log, e)

	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed || r.store == nil {
		if r.store != nil {
			r.dropped.Add(1)
			log.Error("activity record closed: entry not stored", "action", string(e.Action), "token", e.Token)
		}
		return
	}
	select {
	case r.queue <- &e:
	default:
		r.dropped.Add(1)
		log.Error("activity queue full: entry not stored (it is in the log)",
			"action", string(e.Action), "token", e.Token, "queue", cap(r.queue))
	}
}

// logEntry writes e as one structured log line. Cloud Logging keeps the
// JSON keys in jsonPayload (route on jsonPayload.activity=true) and turns
// "logging.googleapis.com/labels" into the entry's labels.
func logEntry(ctx context.Context, log *slog.Logger, e Entry) {
	level := slog.LevelInfo
	if e.Outcome != OK {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.Bool("activity", true),
		slog.String("actorKind", string(e.ActorKind)),
		slog.String("actor", e.Actor),
		slog.String("action", string(e.Action)),
		slog.String("token", e.Token),
		slog.String("addr", e.Addr),
		slog.String("outcome", string(e.Outcome)),
		slog.String("detail", e.Detail),
		slog.Time("at", e.At),
	}
	if e.Generation != 0 {
		attrs = append(attrs, slog.Int64("generation", e.Generation))
	}
	if !e.AccessExpires.IsZero() {
		attrs = append(attrs, slog.Time("accessExpires", e.AccessExpires))
	}
	attrs = append(attrs, slog.Group("logging.googleapis.com/labels",
		slog.String("activity", "true"), slog.String("action", string(e.Action))))
	log.LogAttrs(ctx, level, "activity: "+string(e.Action), attrs...)
}

// write is one background writer: it stores queued entries until the
// queue is closed and empty, or Close's deadline passed.
func (r *Async) write() {
	for e := range r.queue {
		if r.ctx.Err() != nil {
			r.dropped.Add(1) // past Close's deadline: counted there
			continue
		}
		ctx, cancel := context.WithTimeout(r.ctx, r.o.WriteTimeout)
		err := r.store.Add(ctx, *e)
		cancel()
		if err != nil {
			r.failed.Add(1)
			r.log.Error("activity entry not stored (it is in the log)",
				"action", string(e.Action), "token", e.Token, "error", err.Error())
			continue
		}
		r.stored.Add(1)
	}
}

// Close stops accepting entries and waits, up to FlushTimeout, for the
// queued ones to be stored; past it, the writes still running are
// cancelled and what was not stored is counted and logged. Close returns
// within about FlushTimeout even if the store hangs. Safe to call twice.
func (r *Async) Close() {
	r.once.Do(func() {
		r.mu.Lock()
		r.closed = true
		close(r.queue)
		r.mu.Unlock()
		done := make(chan struct{})
		go func() { r.wg.Wait(); close(done) }()
		deadline := time.NewTimer(r.o.FlushTimeout)
		defer deadline.Stop()
		select {
		case <-done:
			r.cancel()
			return
		case <-deadline.C:
		}
		left := len(r.queue)
		r.cancel()
		select {
		case <-done:
		case <-time.After(closeGrace):
		}
		r.log.Error("activity record closed before the queue was stored (the entries are in the log)",
			"queued", left, "flush_timeout", r.o.FlushTimeout.String())
	})
}

// Stats returns the counts so far.
func (r *Async) Stats() Stats {
	return Stats{
		Recorded: r.recorded.Load(), Stored: r.stored.Load(), Dropped: r.dropped.Load(),
		Failed: r.failed.Load(), Redacted: r.redacted.Load(),
	}
}

// bound cuts every field to its limit, on a character boundary, and
// replaces invalid UTF-8.
func bound(e Entry) Entry {
	e.Actor = cut(e.Actor, maxActorLen)
	e.Token = cut(e.Token, maxTokenLen)
	e.Addr = cut(e.Addr, maxAddrLen)
	e.Detail = cut(e.Detail, maxDetailLen)
	return e
}

func cut(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
