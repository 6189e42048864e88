package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/token"
)

// A grant in hand is never dropped while the process lives.
//
// Once Webex has answered, the refresh token just sent may be spent (a
// rotating authorization server retires it; the fake Webex does): the
// grant is the only way back to the token without a person authorizing
// again. storeGrant tries to commit
// it at once; if the store does not answer, the grant is kept in memory
// (one per token name and write, never logged) and written in the
// background as soon as the store answers, retried at least every
// grantRetryMax for as long as the process lives, and for GrantGrace
// after Close (SIGTERM) begins. Meanwhile this instance serves it
// (Pending) and starts no other Webex call for the token.
//
// No other instance sends the old refresh token meanwhile, because of the
// lease. The lease written before the Webex call outlives the call by
// 15 s (LeaseTTL), so a commit that is merely slow is covered by it. A
// store outage can outlast it: then the lease expires while nobody can
// read or write, and when the store answers again, every instance sees
// an expired lease at once. So an expired lease of another holder is
// not taken over at first sight: an instance takes it over only after it
// has seen that same lease, expired and unchanged, for TakeoverGrace
// while the store answered it (heldElsewhere). The holder of a pending
// grant, retrying every second or so, lands its write within that grace
// once the store answers it too; its commit clears the lease and moves
// the generation on, and the others then find the token refreshed. If
// the holder died, nobody writes: the others take over after the grace,
// and send the refresh token as after any lost answer. If the holder
// alone stays cut off from the store for longer than the grace while the
// others reach it, they take over; should Webex then refuse the old
// refresh token (rotated), the token is marked reauth_required without
// a new generation, and the holder's write, conditional on the
// generation only, still lands when it gets through and makes the token
// active again: the grant is not lost either way. (A Webex that accepts
// the old refresh token again gives the others a new generation; the
// holder's write is then refused as superseded.)

// TakeoverGrace is how long an instance must have seen another holder's
// lease expired, and unchanged, before it takes over.
const TakeoverGrace = 15 * time.Second

// grantRetryMax is the longest pause between two writes of a grant in
// hand (each bounded by commitTimeout).
const grantRetryMax = time.Second

// GrantGrace is how long Close lets grants in hand be written: after it,
// a grant the store never took is lost with the process (logged, without
// the grant). It fits in Cloud Run's 10 s after SIGTERM with the HTTP
// server's own shutdown grace before it.
const GrantGrace = 3 * time.Second

// ErrGrantPending: Webex answered, the store did not take the grant yet;
// it is kept and written as soon as the store answers. Result.Token is
// the token with the grant applied, which may be served meanwhile.
var ErrGrantPending = fmt.Errorf("new token kept until the store answers: %w", token.ErrUnavailable)

// grantWrite is one grant in hand and how to commit it.
type grantWrite struct {
	name    string
	trigger token.Trigger
	// apply turns the stored token into its next generation (and says
	// no with check's error); events holds what its last run produced.
	apply  func(cur *token.Token) ([]token.Event, error)
	events []token.Event
	// served is the token with the grant applied, as it will be stored:
	// what Pending hands out meanwhile. It has no Version (not stored).
	served *token.Token
	since  time.Time
}

// storeGrant stores g as the next generation of base's token with its
// token.rotated event, if check (nil: none) accepts the current token,
// then hands the event to the publisher. check's error is returned as
// it is. then, if not nil, edits the token once the grant is applied
// (who an authorization acts as). If the store does not answer, the grant
// is kept and written in the background (see above): storeGrant returns
// the token with the grant applied and ErrGrantPending.
func (r *Refresher) storeGrant(ctx context.Context, base *token.Token, g token.Grant, trigger token.Trigger, check func(cur *token.Token) error, then func(cur *token.Token)) (*token.Token, error) {
	// Expiries count from when Webex answered, however late the write.
	received := r.o.Now()
	w := &grantWrite{name: base.Name, trigger: trigger, since: received}
	w.apply = func(cur *token.Token) ([]token.Event, error) {
		if cur.Generation == base.Generation+1 && cur.AccessToken == g.AccessToken {
			return nil, errAlreadyStored // an earlier attempt landed, its answer lost
		}
		if check != nil {
			if err := check(cur); err != nil {
				return nil, err
			}
		}
		applyGrant(cur, g, received)
		if then != nil {
			then(cur)
		}
		cur.NextAttempt = r.shortLivedBackoff(g, received)
		w.events = []token.Event{token.NewEvent(token.EventRotated, cur, trigger, r.o.Now())}
		return w.events, nil
	}
	w.served = base.Clone()
	if _, err := w.apply(w.served); err != nil {
		return nil, err // check refuses what the caller holds: a programming error, not the store's
	}
	w.served.Version = time.Time{}
	r.keep(w)

	saved, err := r.writeGrant(w)
	switch {
	case err == nil:
		r.forget(w)
		r.stored(ctx, w, saved)
		return saved, nil
	case errors.Is(err, token.ErrConflict), errors.Is(err, token.ErrNotFound):
		r.forget(w)
		return nil, fmt.Errorf("store %s: %w", w.name, err)
	}
	r.o.Logger.Warn("the store did not take the new token; keeping it and retrying until it does",
		"token", w.name, "generation", w.served.Generation, "error", err.Error())
	if r.track() {
		go func() {
			defer r.work.Done()
			r.keepWriting(w)
		}()
	} else {
		r.keepWriting(w) // Close has begun: what is left of GrantGrace, here
	}
	return w.served.Clone(), fmt.Errorf("store %s: %w", w.name, ErrGrantPending)
}

// errAlreadyStored: the store holds the grant already (an attempt whose
// answer was lost had landed).
var errAlreadyStored = errors.New("grant already stored")

// writeGrant makes one attempt to commit w, bounded by commitTimeout and
// by GrantGrace after Close.
func (r *Refresher) writeGrant(w *grantWrite) (*token.Token, error) {
	// Not the caller's context: its end (a caller who gave up, a
	// shutdown) is no reason to stop writing a grant in hand.
	wctx, cancel := context.WithTimeout(r.grants, commitTimeout)
	defer cancel()
	saved, err := r.o.Store.Update(wctx, w.name, w.apply)
	if errors.Is(err, errAlreadyStored) {
		return r.o.Store.Get(wctx, w.name)
	}
	return saved, err
}

// keepWriting writes w until the store takes it, refuses it (the token
// moved on or is gone), or GrantGrace after Close ends.
func (r *Refresher) keepWriting(w *grantWrite) {
	defer r.forget(w)
	for attempt := 1; ; attempt++ {
		pause := time.NewTimer(min(time.Duration(attempt)*200*time.Millisecond, grantRetryMax))
		select {
		case <-r.grants.Done():
		case <-pause.C:
		}
		pause.Stop()
		if r.grants.Err() != nil {
			r.o.Logger.Error("new token lost: the process stopped before the store took it; the next refresh may need a new authorization",
				"token", w.name, "generation", w.served.Generation, "held_for", r.o.Now().Sub(w.since).Round(time.Millisecond).String())
			return
		}
		saved, err := r.writeGrant(w)
		switch {
		case err == nil:
			r.o.Logger.Info("kept token stored", "token", w.name, "generation", saved.Generation,
				"held_for", r.o.Now().Sub(w.since).Round(time.Millisecond).String(), "attempts", attempt+1)
			r.stored(context.Background(), w, saved)
			return
		case errors.Is(err, token.ErrConflict), errors.Is(err, token.ErrNotFound):
			r.o.Logger.Warn("kept token not stored: the token moved on or is gone meanwhile", "token", w.name, "error", err.Error())
			return
		}
	}
}

// stored does what follows a committed grant: the log line, the activity
// record and the event's delivery.
func (r *Refresher) stored(ctx context.Context, w *grantWrite, saved *token.Token) {
	r.o.Logger.Info("token rotated", "token", w.name, "generation", saved.Generation, "trigger", string(w.trigger), "access_expires", saved.AccessExpires.UTC().Format(time.RFC3339))
	action := activity.Rotated
	if w.trigger == token.TriggerMint {
		action = activity.Minted
	}
	// The generation and expiry also go in fields of their own: the
	// console draws a token's life from them.
	recordActivity(ctx, r.o.Activity, activity.Entry{At: r.o.Now(), ActorKind: activity.ByService, Actor: r.o.Holder,
		Action: action, Token: w.name, Outcome: activity.OK, Generation: saved.Generation, AccessExpires: saved.AccessExpires,
		Detail: fmt.Sprintf("generation %d, trigger %s, access token valid until %s",
			saved.Generation, w.trigger, saved.AccessExpires.UTC().Format(time.RFC3339))})
	r.deliver(w.events)
}

// keep registers w as name's grant in hand.
func (r *Refresher) keep(w *grantWrite) {
	r.heldMu.Lock()
	defer r.heldMu.Unlock()
	r.held[w.name] = w
}

// forget unregisters w, unless a later grant of its name replaced it.
func (r *Refresher) forget(w *grantWrite) {
	r.heldMu.Lock()
	defer r.heldMu.Unlock()
	if r.held[w.name] == w {
		delete(r.held, w.name)
	}
}

// Pending returns name's token with the grant this instance holds and
// the store has not taken yet, or nil if there is none: a valid token,
// which the api may serve meanwhile.
func (r *Refresher) Pending(name string) *token.Token {
	r.heldMu.Lock()
	defer r.heldMu.Unlock()
	if w := r.held[name]; w != nil {
		return w.served.Clone()
	}
	return nil
}

// staleLease is another holder's lease seen expired, and when first.
type staleLease struct {
	lease token.Lease
	seen  time.Time
}

// heldElsewhere reports whether t's lease keeps this instance from
// taking it: another holder's unexpired lease, or one that has expired
// but that this instance has not yet seen expired, unchanged, for
// TakeoverGrace (see above).
func (r *Refresher) heldElsewhere(t *token.Token, now time.Time) bool {
	l := t.Lease
	if l.HeldByOther(r.o.Holder, now) {
		return true
	}
	r.staleMu.Lock()
	defer r.staleMu.Unlock()
	if l.Holder == "" || l.Holder == r.o.Holder {
		delete(r.stale, t.Name)
		return false
	}
	s, ok := r.stale[t.Name]
	if !ok || s.lease != l {
		r.stale[t.Name] = staleLease{lease: l, seen: now}
		return true
	}
	return now.Sub(s.seen) < TakeoverGrace
}
