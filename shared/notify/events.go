package notify

import (
	"context"
	"errors"
	"fmt"

	"github.com/wxcc/tokenservice/shared/token"
)

// maxConflicts bounds the retries of a conditional save that lost.
const maxConflicts = 5

// update applies fn to the current state of condition id (a new one with
// Version zero when there is none) and saves it when fn reports a
// change, retrying when another writer came first. fn may run more than
// once. It returns the condition as it now stands and whether this call
// changed it.
func (n *Notifier) update(ctx context.Context, id string, fn func(c *Condition) bool) (*Condition, bool, error) {
	for range maxConflicts {
		got, err := n.store.Conditions(ctx, id)
		if err != nil {
			return nil, false, fmt.Errorf("read condition %s: %w", id, err)
		}
		c := got[id]
		if c == nil {
			c = &Condition{ID: id}
		}
		if !fn(c) {
			return c, false, nil
		}
		now := n.now()
		c.ExpireAt = now.Add(keep)
		if c.Open {
			c.ExpireAt = c.ExpireAt.Add(n.reminder)
		}
		err = n.store.SaveCondition(ctx, c)
		if errors.Is(err, token.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("save condition %s: %w", id, err)
		}
		return c, true, nil
	}
	return nil, false, fmt.Errorf("save condition %s: %w", id, token.ErrConflict)
}

// token reads a token for its non-secret fields; nil when it is gone.
func (n *Notifier) token(ctx context.Context, name string) (*token.Token, error) {
	t, err := n.tokens.Get(ctx, name)
	var sealed *token.SealedError
	switch {
	case errors.As(err, &sealed): // the secrets do not open; the rest does
		return sealed.Token, nil
	case errors.Is(err, token.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read token %s: %w", name, err)
	}
	return t, nil
}

// stillSo reports whether the token is still in the state the opening
// event ev of kind reported: events arrive out of order and late, and
// one about a state that has passed must not alarm anybody.
func stillSo(kind Kind, ev token.Event, t *token.Token) bool {
	switch kind {
	case KindReauthRequired:
		return t.Generation == ev.Generation && t.Status == token.StatusReauthRequired
	case KindRefreshFailed:
		return t.Generation == ev.Generation
	case KindRefreshExpiring:
		return t.RefreshExpires.Equal(ev.RefreshExpires)
	}
	return true
}

// resolves reports whether a token.rotated event ends open condition c.
func resolves(c *Condition, ev token.Event) bool {
	switch c.Kind {
	case KindReauthRequired, KindRefreshFailed:
		return ev.Generation > c.Generation
	case KindRefreshExpiring:
		return ev.RefreshExpires.After(c.RefreshExpires)
	}
	return false
}

// describe fills what a notice says about token t (nil: unknown).
func describe(nt *Notice, t *token.Token) {
	if t == nil {
		return
	}
	nt.Generation = t.Generation
	if !t.AccessExpires.IsZero() {
		nt.AccessExpires = t.AccessExpires
	}
	if !t.RefreshExpires.IsZero() {
		nt.RefreshExpires = t.RefreshExpires
	}
	if p := t.AuthorizedBy; p != nil {
		nt.AuthorizedBy, nt.AuthorizedEmail = cleanText(p.DisplayName, 200), cleanText(p.Email, 200)
	}
	if t.IsServiceApp() {
		nt.Manager = t.Manager
	}
}

// opened handles an event that opens a condition: unless the token has
// moved on or the condition is open already, the condition opens with
// its first message, which is then delivered.
func (n *Notifier) opened(ctx context.Context, ev token.Event) (bool, error) {
	kind := kindOf(ev.Type)
	var t *token.Token
	if kind == KindSweepHalted {
		rec, err := n.sweeps.LastSweep(ctx)
		switch {
		case err == nil && rec.At.After(ev.Time) && !rec.Halted:
			n.log.Info("notify: ignoring a halted sweep that a later sweep ended", "event", ev.ID)
			return true, nil
		case err != nil && !errors.Is(err, token.ErrNotFound):
			return false, fmt.Errorf("read last sweep: %w", err)
		}
	} else {
		var err error
		if t, err = n.token(ctx, ev.Name); err != nil {
			return false, err
		}
		if t == nil || !stillSo(kind, ev, t) {
			n.log.Info("notify: ignoring an event the token has moved past", "event", ev.ID, "token", ev.Name)
			return true, nil
		}
	}
	id := ConditionID(kind, ev.Name)
	msgID := messageID(id, PhaseOpened, ev.ID)
	c, _, err := n.update(ctx, id, func(c *Condition) bool {
		if c.Open {
			return false // at most one message per token and condition
		}
		nt := Notice{Kind: kind, Phase: PhaseOpened, Token: ev.Name, Generation: ev.Generation,
			AccessExpires: ev.AccessExpires, RefreshExpires: ev.RefreshExpires,
			Since: ev.Time, At: ev.Time, Reason: cleanText(ev.Message, maxReason)}
		describe(&nt, t)
		*c = Condition{
			ID: id, Kind: kind, Token: ev.Name, Open: true,
			Generation: ev.Generation, RefreshExpires: ev.RefreshExpires, OpenedAt: ev.Time, Reason: nt.Reason,
			Pending: &Message{ID: msgID, At: ev.Time, To: n.Channels(), Notice: nt},
			Version: c.Version,
		}
		return true
	})
	if err != nil {
		return false, err
	}
	if kind == KindReauthRequired {
		// Re-authorization is what the other two conditions warned of:
		// its messages take over, and its recovery ends them all.
		for _, k := range []Kind{KindRefreshExpiring, KindRefreshFailed} {
			if err := n.closeQuietly(ctx, ConditionID(k, ev.Name), ClosedSuperseded, nil); err != nil {
				return false, err
			}
		}
	}
	if c.Pending == nil || c.Pending.ID != msgID {
		return true, nil // a copy of an event whose message is settled
	}
	return n.deliver(ctx, id, msgID, nil)
}

// rotated handles token.rotated: every open condition of the token that
// the new state ends is closed, with a recovery message to the channels
// that were alarmed.
func (n *Notifier) rotated(ctx context.Context, ev token.Event) (bool, error) {
	ids := make([]string, len(tokenKinds))
	for i, k := range tokenKinds {
		ids[i] = ConditionID(k, ev.Name)
	}
	conds, err := n.store.Conditions(ctx, ids...)
	if err != nil {
		return false, fmt.Errorf("read conditions of %s: %w", ev.Name, err)
	}
	var t *token.Token // read once, for who authorized it now
	done := true
	for _, id := range ids {
		c := conds[id]
		msgID := messageID(id, PhaseResolved, ev.ID)
		if c == nil || !(c.Open && resolves(c, ev)) && (c.Pending == nil || c.Pending.ID != msgID) {
			continue
		}
		if t == nil {
			if t, err = n.token(ctx, ev.Name); err != nil {
				return false, err
			}
		}
		c, _, err := n.update(ctx, id, func(c *Condition) bool {
			if !c.Open || !resolves(c, ev) {
				return false
			}
			nt := Notice{Kind: c.Kind, Phase: PhaseResolved, Token: c.Token, Generation: ev.Generation,
				AccessExpires: ev.AccessExpires, RefreshExpires: ev.RefreshExpires,
				Since: c.OpenedAt, At: ev.Time, Trigger: string(ev.Trigger)}
			if t != nil && t.Generation == ev.Generation {
				describe(&nt, t)
			}
			n.close(c, ClosedResolved, &Message{ID: msgID, At: ev.Time, Notice: nt})
			return true
		})
		if err != nil {
			return false, err
		}
		if c.Pending != nil && c.Pending.ID == msgID {
			d, err := n.deliver(ctx, id, msgID, nil)
			if err != nil {
				return false, err
			}
			done = done && d
		}
	}
	return done, nil
}

// deleted closes the conditions of a deleted token without a word. A
// condition opened after the deletion (the name was created again) stays.
func (n *Notifier) deleted(ctx context.Context, ev token.Event) error {
	for _, k := range tokenKinds {
		if err := n.closeQuietly(ctx, ConditionID(k, ev.Name), ClosedDeleted, &ev); err != nil {
			return err
		}
	}
	return nil
}

// closeQuietly closes condition id, dropping any message pending. With
// ev, only a condition opened before ev closes.
func (n *Notifier) closeQuietly(ctx context.Context, id, why string, ev *token.Event) error {
	_, _, err := n.update(ctx, id, func(c *Condition) bool {
		if !c.Active() || ev != nil && c.OpenedAt.After(ev.Time) {
			return false
		}
		if !c.Open { // only a recovery is pending: the token is gone
			c.Pending = nil
			c.ClosedBy = why
			return true
		}
		n.close(c, why, nil)
		return true
	})
	return err
}

// close closes open condition c. recovery, if not nil, becomes its
// pending message, addressed to the channels that were alarmed; without
// any, or without recovery, nothing more is sent.
func (n *Notifier) close(c *Condition, why string, recovery *Message) {
	c.Open, c.ClosedAt, c.ClosedBy = false, n.now(), why
	c.Pending = nil
	if recovery != nil && len(c.Alarmed) > 0 {
		recovery.To = append([]string(nil), c.Alarmed...)
		c.Pending = recovery
	}
}
