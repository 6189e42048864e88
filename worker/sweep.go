package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/metrics"
	"github.com/wxcc/tokenservice/shared/pubsub"
	"github.com/wxcc/tokenservice/shared/token"
)

// sweepStore is what a sweep reads beyond the refresh protocol's Store:
// paged range queries, so that a sweep never reads the whole collection
// (except to cover every token in the expiry metrics while it is small).
type sweepStore interface {
	token.Store
	// Due calls fn for each token whose access token expires before before.
	Due(ctx context.Context, before time.Time, pageSize int, fn func(*token.Token) error) error
	// RefreshExpiring calls fn for each token whose refresh token expires before before.
	RefreshExpiring(ctx context.Context, before time.Time, pageSize int, fn func(*token.Token) error) error
	// Count is the number of tokens (an aggregation query: no document read).
	Count(ctx context.Context) (int64, error)
	// List calls fn for every token.
	List(ctx context.Context, pageSize int, fn func(*token.Token) error) error
	// ServiceApps calls fn for every Service App.
	ServiceApps(ctx context.Context, pageSize int, fn func(*token.Token) error) error
	// RecordSweep keeps the summary of the last sweep for the api.
	RecordSweep(ctx context.Context, rec token.SweepRecord) error
}

// eventRelay publishes what earlier attempts left in the outbox.
type eventRelay interface {
	Drain(ctx context.Context) (int, error)
}

// Summary is what one sweep did; POST /run answers it as JSON.
type Summary struct {
	// Scanned is how many tokens the collection holds (counted, not read).
	Scanned int `json:"scanned"`
	// Due is how many the due query returned; Skipped those of them that
	// got no Webex call (not authorized, reauth_required, config_error,
	// backing off, refresh token lapsed, leased elsewhere, refreshed
	// meanwhile).
	Due       int  `json:"due"`
	Refreshed int  `json:"refreshed"`
	Failed    int  `json:"failed"`
	Skipped   int  `json:"skipped"`
	Warned    int  `json:"warned"`
	Published int  `json:"published"`
	Halted    bool `json:"halted"`
	// Error says why the sweep failed or halted.
	Error string `json:"error,omitempty"`
	// DurationMS is how long the sweep took.
	DurationMS int64 `json:"durationMs"`
}

// sweeper refreshes every token nearing its threshold. One sweep runs at a
// time per process; a trigger that arrives during a sweep joins it.
type sweeper struct {
	store   sweepStore
	service *lifecycle.Service
	relay   eventRelay // may be nil
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics.Metrics

	lead          time.Duration
	concurrency   int
	timeout       time.Duration
	expiryWarning time.Duration
	// brakeAfter Webex rejections of one kind in one sweep stop it.
	brakeAfter int
	pageSize   int
	jitter     time.Duration

	group singleflight.Group
	// reminders, if set, sends the notifications' reminders after each sweep.
	reminders *reminders
}

// The sweep's own settings (not configuration: nothing an operator needs
// to tune): Webex rejections of one kind that halt a sweep, documents read
// per page, and the spread of the refreshes' start so that a sweep does
// not hit Webex with REFRESH_CONCURRENCY calls in the same millisecond.
const (
	brakeAfter    = 5
	sweepPageSize = 1000
	sweepJitter   = 100 * time.Millisecond
)

// expiryScanLimit is the largest collection whose every token the expiry
// metrics cover, at the cost of reading each once per sweep. Above it they
// cover the tokens the alerts are about: those inside the refresh window
// (threshold + lead) and the refresh-token warning window.
const expiryScanLimit = 1000

// Run performs a sweep or joins the one in progress.
func (s *sweeper) Run(ctx context.Context) (Summary, error) {
	ch := s.group.DoChan("sweep", func() (any, error) {
		// The sweep belongs to no single caller: a /run client that hangs
		// up must not abort it for the others.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		defer cancel()
		sum, err := s.sweep(sctx)
		s.reminders.after(ctx)
		return sum, err
	})
	select {
	case <-ctx.Done():
		return Summary{}, ctx.Err()
	case r := <-ch:
		sum, _ := r.Val.(Summary)
		return sum, r.Err
	}
}

// sweep is one sweep, job by job: publish outbox leftovers, refresh what is
// due, mint the Service Apps that need it, count the collection, report a
// halt, warn about expiring refresh tokens, then export, log and record
// the summary.
func (s *sweeper) sweep(ctx context.Context) (Summary, error) {
	start := time.Now()
	run := &sweepRun{brake: brake{limit: s.brakeAfter, counts: map[string]int{}}}
	run.sum.Published = s.drain(ctx)
	queryErr := s.refreshDue(ctx, run)
	if ctx.Err() == nil && run.brake.kind == "" {
		s.mintServiceApps(ctx, run)
	}
	sum := run.sum
	s.countTokens(ctx, &sum)
	if kind := run.brake.kind; kind != "" {
		s.reportHalt(ctx, &sum, kind, run.brake.counts[kind])
	}
	if ctx.Err() == nil && !sum.Halted {
		sum.Warned = s.warnExpiring(ctx, run)
	}
	s.exportExpiries(ctx, sum.Scanned, run)
	return sum, s.finish(ctx, start, &sum, queryErr)
}

// sweepRun is the state of one sweep that its refreshing goroutines share.
type sweepRun struct {
	mu    sync.Mutex
	sum   Summary
	brake brake
	// seen is every token the sweep read, last version first, for the
	// expiry metrics.
	seen map[string]*token.Token
	// handed is every token the sweep gave to the refresh protocol.
	handed map[string]bool
}

// hand records that the sweep gives name to the refresh protocol, and
// reports whether it had not yet.
func (r *sweepRun) hand(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.handed[name] {
		return false
	}
	if r.handed == nil {
		r.handed = map[string]bool{}
	}
	r.handed[name] = true
	return true
}

func (r *sweepRun) count(f func(*Summary)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.sum)
}

func (r *sweepRun) saw(t *token.Token) {
	if t == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]*token.Token{}
	}
	r.seen[t.Name] = t
}

// brake counts Webex rejections by kind across one sweep's refreshes.
// Only rejections count: a token that was never sent to Webex (its
// refresh token lapsed, say) says nothing about Webex or our client.
type brake struct {
	mu     sync.Mutex
	limit  int
	counts map[string]int
	kind   string
}

// record counts err and reports whether this made the brake trip.
func (b *brake) record(err error) (tripped bool) {
	var kind string
	switch {
	case !token.RejectedByWebex(err):
		return false
	case errors.Is(err, token.ErrClientRejected):
		kind = "client rejected"
	default:
		kind = "grant rejected"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.counts[kind]++
	if b.counts[kind] >= b.limit && b.kind == "" {
		b.kind = kind
		return true
	}
	return false
}

// refreshDue hands every due token that may be sent to Webex to the
// refresh protocol, REFRESH_CONCURRENCY at a time, until the brake trips.
// It returns the due query's error.
func (s *sweeper) refreshDue(ctx context.Context, run *sweepRun) error {
	now := s.now()
	ctx, halt := context.WithCancel(ctx)
	defer halt()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.concurrency)
	err := s.store.Due(gctx, now.Add(s.service.Threshold()+s.lead), s.pageSize, func(t *token.Token) error {
		run.count(func(sum *Summary) { sum.Due++ })
		run.saw(t)
		// A lapsed refresh token goes to the protocol, which records it as
		// reauth_required without calling Webex.
		if err := t.HeldBack(now); err != nil && !errors.Is(err, token.ErrRefreshTokenLapsed) {
			run.count(func(sum *Summary) { sum.Skipped++ })
			return nil
		}
		run.hand(t.Name)
		g.Go(func() error {
			s.refresh(gctx, run, t, halt, func(sum *Summary) { sum.Skipped++ })
			return nil
		})
		return nil
	})
	_ = g.Wait()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // halted by the brake, or the sweep's deadline: said elsewhere
	}
	return err
}

// refresh hands t to the refresh protocol after a jitter and counts the
// outcome: refreshed (or minted), failed (counted by the brake, which
// halts the sweep when it trips), or else by notDone.
func (s *sweeper) refresh(ctx context.Context, run *sweepRun, t *token.Token, halt func(), notDone func(*Summary)) {
	if !s.wait(ctx, rand.N(s.jitter+1)) {
		return
	}
	res, err := s.service.RefreshFrom(ctx, t, lifecycle.RefreshOptions{Lead: s.lead, Trigger: token.TriggerScheduled, MintWithin: s.expiryWarning})
	run.saw(res.Token)
	switch {
	case err == nil && res.Outcome == lifecycle.Refreshed:
		run.count(func(sum *Summary) { sum.Refreshed++ })
	case err == nil, errors.Is(err, token.ErrRefreshTokenLapsed), errors.Is(err, token.ErrWaitingForManager):
		run.count(notDone)
	default:
		run.count(func(sum *Summary) { sum.Failed++ })
		if run.brake.record(err) {
			halt()
		}
	}
}

// mintServiceApps hands to the refresh protocol every Service App that
// the due query cannot find or that must not wait until its access token
// is due: without tokens, with a refresh token missing, expired or inside
// REFRESH_EXPIRY_WARNING (minted again, never warned about), or waiting
// for its manager (the protocol reads the manager: while it still needs
// re-authorization that is a store read, no Webex call). The Service
// Apps are found by one query on kind, so each costs a read per sweep.
func (s *sweeper) mintServiceApps(ctx context.Context, run *sweepRun) {
	now := s.now()
	var todo []*token.Token
	err := s.store.ServiceApps(ctx, s.pageSize, func(t *token.Token) error {
		run.saw(t)
		if t.ShouldMint(now, s.expiryWarning) && run.hand(t.Name) {
			todo = append(todo, t)
		}
		return nil
	})
	if err != nil {
		s.log.Warn("query service apps", "error", err.Error())
	}
	ctx, halt := context.WithCancel(ctx)
	defer halt()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.concurrency)
	for _, t := range todo {
		g.Go(func() error {
			s.refresh(gctx, run, t, halt, func(*Summary) {})
			return nil
		})
	}
	_ = g.Wait()
}

// wait sleeps d unless ctx ends first, and reports whether ctx is still live.
func (s *sweeper) wait(ctx context.Context, d time.Duration) bool {
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return ctx.Err() == nil
}

// countTokens sets the summary's scanned count from an aggregation query;
// without one it stays the number of due tokens.
func (s *sweeper) countTokens(ctx context.Context, sum *Summary) {
	sum.Scanned = sum.Due
	if ctx.Err() != nil {
		return
	}
	n, err := s.store.Count(ctx)
	if err != nil {
		s.log.Warn("count tokens", "error", err.Error())
		return
	}
	sum.Scanned = int(n)
}

// reportHalt says loudly that the brake stopped the sweep: the summary,
// and the use case's ERROR line, activity entry and token.sweep_halted.
func (s *sweeper) reportHalt(ctx context.Context, sum *Summary, kind string, n int) {
	sum.Halted = true
	sum.Error = fmt.Sprintf("sweep halted: %d tokens failed the same permanent way (%s); this is a bug or an outage, not many dead tokens", n, kind)
	if err := s.service.HaltSweep(ctx, sum.Error); err != nil {
		s.log.Error("sweep halt not published", "error", err.Error())
	}
}

// finish completes the summary, exports and logs it, records it for the
// api, and returns the sweep's own error.
func (s *sweeper) finish(ctx context.Context, start time.Time, sum *Summary, queryErr error) error {
	took := time.Since(start)
	sum.DurationMS = took.Milliseconds()
	var err error
	switch {
	case queryErr != nil:
		err = fmt.Errorf("query due tokens: %w", queryErr)
	case ctx.Err() != nil:
		s.log.Warn("sweep deadline reached; the next sweep picks up the rest", "timeout", s.timeout.String())
	}
	if err != nil && sum.Error == "" {
		sum.Error = err.Error()
	}
	result := "ok"
	switch {
	case sum.Halted:
		result = "halted"
	case err != nil:
		result = "error"
	}
	s.metrics.Sweep(result, took)
	s.log.Info("sweep done", "scanned", sum.Scanned, "due", sum.Due, "refreshed", sum.Refreshed,
		"failed", sum.Failed, "skipped", sum.Skipped, "warned", sum.Warned, "published", sum.Published,
		"halted", sum.Halted, "duration_ms", sum.DurationMS)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	rec := token.SweepRecord{
		At: s.now(), Instance: s.service.Holder(), Scanned: sum.Scanned, Due: sum.Due, Refreshed: sum.Refreshed,
		Failed: sum.Failed, Skipped: sum.Skipped, Warned: sum.Warned, Published: sum.Published,
		Halted: sum.Halted, Error: sum.Error, Duration: took,
	}
	if rerr := s.store.RecordSweep(rctx, rec); rerr != nil {
		s.log.Warn("sweep summary not recorded", "error", rerr.Error())
	}
	return err
}

// drain publishes what earlier attempts left in the outbox, within a
// bounded time, and says so when the topic is missing.
func (s *sweeper) drain(ctx context.Context) int {
	if s.relay == nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, max(s.timeout/4, 5*time.Second))
	defer cancel()
	n, err := s.relay.Drain(ctx)
	s.metrics.TopicMissing(errors.Is(err, pubsub.ErrTopicNotFound))
	if err != nil {
		s.log.Warn("outbox not drained; events wait for the next sweep", "error", err.Error())
	}
	return n
}

// warnExpiring publishes token.refresh_expiring once per refresh token for
// every token whose refresh token expires within the warning period.
func (s *sweeper) warnExpiring(ctx context.Context, run *sweepRun) int {
	if s.expiryWarning <= 0 {
		return 0
	}
	now := s.now()
	var names []string
	err := s.store.RefreshExpiring(ctx, now.Add(s.expiryWarning), s.pageSize, func(t *token.Token) error {
		run.saw(t)
		// Service Apps are minted again instead (mintServiceApps).
		if t.HasAccessToken() && !t.IsServiceApp() && t.Status != token.StatusReauthRequired && !t.ExpiryWarned.Equal(t.RefreshExpires) {
			names = append(names, t.Name)
		}
		return nil
	})
	if err != nil {
		s.log.Warn("query expiring refresh tokens", "error", err.Error())
	}
	warned := 0
	for _, name := range names {
		ok, err := s.service.WarnExpiring(ctx, name)
		if err != nil {
			s.log.Warn("record refresh-token expiry warning", "token", name, "error", err.Error())
		}
		if ok {
			warned++
		}
	}
	return warned
}

// exportExpiries replaces the per-token expiry metrics: every token while
// the collection has at most expiryScanLimit, else the tokens this sweep
// read (all of them inside the alerts' windows).
func (s *sweeper) exportExpiries(ctx context.Context, scanned int, run *sweepRun) {
	if ctx.Err() == nil && scanned <= expiryScanLimit {
		var all []*token.Token
		err := s.store.List(ctx, s.pageSize, func(t *token.Token) error {
			all = append(all, t)
			return nil
		})
		if err == nil {
			s.metrics.SetExpiries(all)
			return
		}
		s.log.Warn("list tokens for the expiry metrics", "error", err.Error())
	}
	run.mu.Lock()
	defer run.mu.Unlock()
	seen := make([]*token.Token, 0, len(run.seen))
	for _, t := range run.seen {
		seen = append(seen, t)
	}
	s.metrics.SetExpiries(seen)
}
