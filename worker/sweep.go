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

	"github.com/wxcc/tokenservice/shared/metrics"
	"github.com/wxcc/tokenservice/shared/pubsub"
	"github.com/wxcc/tokenservice/shared/token"
)

// sweepStore is what a sweep reads beyond the refresh protocol's Store:
// paged range queries, so that a sweep never reads the whole collection.
type sweepStore interface {
	token.Store
	// Due calls fn for each token whose access token expires before before.
	Due(ctx context.Context, before time.Time, pageSize int, fn func(*token.Token) error) error
	// RefreshExpiring calls fn for each token whose refresh token expires before before.
	RefreshExpiring(ctx context.Context, before time.Time, pageSize int, fn func(*token.Token) error) error
}

// counter counts the tokens without reading them (an aggregation query).
type counter interface {
	Count(ctx context.Context) (int64, error)
}

// eventRelay publishes events: those just committed (Deliver), those that
// earlier attempts left in the outbox (Drain), and alerts.
type eventRelay interface {
	token.Publisher
	Drain(ctx context.Context) (int, error)
	// Alert publishes an event that belongs to no token.
	Alert(ctx context.Context, e token.Event) error
}

// Summary is what one sweep did; POST /run answers it as JSON.
type Summary struct {
	// Scanned is how many tokens the collection holds (counted, not read).
	Scanned int `json:"scanned"`
	// Due is how many the due query returned; Skipped those of them that
	// got no Webex call (reauth_required, config_error, backing off,
	// leased elsewhere, refreshed meanwhile).
	Due       int    `json:"due"`
	Refreshed int    `json:"refreshed"`
	Failed    int    `json:"failed"`
	Skipped   int    `json:"skipped"`
	Warned    int    `json:"warned"`
	Published int    `json:"published"`
	Halted    bool   `json:"halted,omitempty"`
	Error     string `json:"error,omitempty"`
	// DurationMS is how long the sweep took.
	DurationMS int64 `json:"durationMs"`
}

// sweeper refreshes every token nearing its threshold. One sweep runs at a
// time per process; a trigger that arrives during a sweep joins it.
type sweeper struct {
	store     sweepStore
	refresher *token.Refresher
	relay     eventRelay // may be nil
	log       *slog.Logger
	now       func() time.Time
	metrics   *metrics.Metrics

	lead          time.Duration
	concurrency   int
	timeout       time.Duration
	expiryWarning time.Duration
	// brakeAfter permanent failures of one kind in one sweep stop it.
	brakeAfter int
	pageSize   int
	jitter     time.Duration

	group singleflight.Group
}

// Run performs a sweep or joins the one in progress.
func (s *sweeper) Run(ctx context.Context) (Summary, error) {
	ch := s.group.DoChan("sweep", func() (any, error) {
		// The sweep belongs to no single caller: a /run client that hangs
		// up must not abort it for the others.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		defer cancel()
		return s.sweep(sctx)
	})
	select {
	case <-ctx.Done():
		return Summary{}, ctx.Err()
	case r := <-ch:
		sum, _ := r.Val.(Summary)
		return sum, r.Err
	}
}

// brake counts permanent failures by kind across one sweep's workers.
type brake struct {
	mu     sync.Mutex
	limit  int
	counts map[string]int
	kind   string
}

func (b *brake) record(err error) (tripped bool) {
	var kind string
	switch {
	case errors.Is(err, token.ErrConfigError):
		kind = "client rejected"
	case errors.Is(err, token.ErrReauthRequired):
		kind = "grant rejected"
	default:
		return false
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

func (s *sweeper) sweep(ctx context.Context) (Summary, error) {
	start := time.Now()
	var sum Summary
	var mu sync.Mutex
	count := func(f func(*Summary)) { mu.Lock(); f(&sum); mu.Unlock() }

	sum.Published += s.drain(ctx)

	now := s.now()
	threshold := s.refresher.Threshold()
	runCtx, halt := context.WithCancel(ctx)
	defer halt()
	g, gctx := errgroup.WithContext(runCtx)
	g.SetLimit(s.concurrency)
	br := &brake{limit: s.brakeAfter, counts: map[string]int{}}

	queryErr := s.store.Due(gctx, now.Add(threshold+s.lead), s.pageSize, func(t *token.Token) error {
		count(func(s *Summary) { s.Due++ })
		s.metrics.TokenExpiry(t)
		if skipReason(t, now) != "" {
			count(func(s *Summary) { s.Skipped++ })
			return nil
		}
		g.Go(func() error {
			if s.jitter > 0 {
				select {
				case <-time.After(rand.N(s.jitter)):
				case <-gctx.Done():
					return nil
				}
			}
			if gctx.Err() != nil {
				return nil
			}
			res, err := s.refresher.RefreshFrom(gctx, t, token.RefreshOptions{Lead: s.lead, Trigger: token.TriggerScheduled})
			switch {
			case err == nil && res.Outcome == token.Refreshed:
				count(func(s *Summary) { s.Refreshed++ })
			case err == nil:
				count(func(s *Summary) { s.Skipped++ })
			default:
				count(func(s *Summary) { s.Failed++ })
				if br.record(err) {
					halt()
				}
			}
			return nil
		})
		return nil
	})
	_ = g.Wait()
	sum.Scanned = sum.Due
	if c, ok := s.store.(counter); ok && ctx.Err() == nil {
		if n, err := c.Count(ctx); err == nil {
			sum.Scanned = int(n)
		} else {
			s.log.Warn("count tokens", "error", err.Error())
		}
	}

	if br.kind != "" {
		sum.Halted = true
		sum.Error = fmt.Sprintf("sweep halted: %d tokens failed the same permanent way (%s); this is a bug or an outage, not many dead tokens", br.counts[br.kind], br.kind)
		s.log.Error(sum.Error, "kind", br.kind)
		if s.relay != nil {
			now := s.now()
			e := token.Event{
				ID:      fmt.Sprintf("sweep/%d/%s", now.UnixMilli(), token.EventSweepHalted),
				Type:    token.EventSweepHalted,
				Trigger: token.TriggerScheduled,
				Time:    now,
				Message: sum.Error,
			}
			if err := s.relay.Alert(ctx, e); err != nil {
				s.log.Error("sweep halt not published", "error", err.Error())
			}
		}
	}
	if ctx.Err() == nil && !sum.Halted {
		sum.Warned = s.warnExpiring(ctx)
	}
	sum.DurationMS = time.Since(start).Milliseconds()

	var err error
	switch {
	case queryErr != nil && !errors.Is(queryErr, context.Canceled):
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
	s.metrics.Sweep(result, time.Since(start))
	s.log.Info("sweep done", "scanned", sum.Scanned, "due", sum.Due, "refreshed", sum.Refreshed,
		"failed", sum.Failed, "skipped", sum.Skipped, "warned", sum.Warned, "published", sum.Published,
		"halted", sum.Halted, "duration_ms", sum.DurationMS)
	return sum, err
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

// skipReason says why a due token gets no Webex call in this sweep, or "".
func skipReason(t *token.Token, now time.Time) string {
	switch {
	case !t.HasAccessToken():
		return "not authorized"
	case t.Status == token.StatusReauthRequired:
		return "reauth required"
	case t.Status == token.StatusConfigError && !t.ConfigErrorResolved():
		return "config error"
	case t.NextAttempt.After(now):
		return "backing off"
	case t.Lease.HeldByOther("", now):
		return "leased"
	}
	return ""
}

// warnExpiring publishes token.refresh_expiring once per refresh token for
// every token whose refresh token expires within the warning period.
func (s *sweeper) warnExpiring(ctx context.Context) int {
	if s.expiryWarning <= 0 {
		return 0
	}
	now := s.now()
	var names []string
	err := s.store.RefreshExpiring(ctx, now.Add(s.expiryWarning), s.pageSize, func(t *token.Token) error {
		if t.HasAccessToken() && t.Status != token.StatusReauthRequired && !t.ExpiryWarned.Equal(t.RefreshExpires) {
			names = append(names, t.Name)
		}
		return nil
	})
	if err != nil {
		s.log.Warn("query expiring refresh tokens", "error", err.Error())
	}
	warned := 0
	for _, name := range names {
		var events []token.Event
		_, err := s.store.Update(ctx, name, func(cur *token.Token) ([]token.Event, error) {
			if cur.ExpiryWarned.Equal(cur.RefreshExpires) || cur.RefreshExpires.IsZero() {
				return nil, token.ErrConflict
			}
			cur.ExpiryWarned = cur.RefreshExpires
			events = []token.Event{token.NewEvent(token.EventRefreshExpiring, cur, token.TriggerScheduled, s.now())}
			return events, nil
		})
		if err != nil {
			if !errors.Is(err, token.ErrConflict) {
				s.log.Warn("record refresh-token expiry warning", "token", name, "error", err.Error())
			}
			continue
		}
		warned++
		s.log.Warn("refresh token expires soon; authorize again before it does", "token", name)
		if s.relay != nil {
			s.relay.Deliver(ctx, events)
		}
	}
	return warned
}
