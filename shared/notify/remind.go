package notify

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/wxcc/tokenservice/shared/token"
)

// Remind does what is due without an event; the worker calls it after
// each sweep. For every active condition it
//
//   - delivers a message still pending (a channel was down; Pub/Sub may
//     still be retrying the event too, and claims keep the two from
//     sending twice);
//   - for an open condition whose reminder is due (NOTIFY_REMINDER after
//     the last alarm), reads the token's current state: a token that is
//     gone closes the condition quietly, one that is fine (the event
//     that said so was lost, or came before the subscription) closes it
//     with a recovery message, and otherwise a reminder goes out.
//
// A channel that fails is not tried again in the same call, so one call
// takes about one timeout per channel at most, plus the store's reads.
// Errors are joined; every condition is tried.
func (n *Notifier) Remind(ctx context.Context) error {
	var active []*Condition
	if err := n.store.ActiveConditions(ctx, func(c *Condition) error {
		active = append(active, c)
		return nil
	}); err != nil {
		return fmt.Errorf("list active conditions: %w", err)
	}
	down := map[string]error{}
	var errs []error
	for _, c := range active {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		if err := n.remind(ctx, c, down); err != nil {
			n.log.Warn("notify: reminder not done", "condition", c.ID, "error", err.Error())
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// state is what Remind finds a condition's subject in.
type state int

const (
	stillOpen state = iota
	resolved
	gone
)

func (n *Notifier) remind(ctx context.Context, c *Condition, down map[string]error) error {
	if c.Pending != nil {
		_, err := n.deliver(ctx, c.ID, c.Pending.ID, down)
		return err
	}
	now := n.now()
	if !c.Open || now.Before(c.LastAlarm.Add(n.reminder)) {
		return nil
	}
	st, t, err := n.check(ctx, c)
	if err != nil {
		return err
	}
	c, _, err = n.update(ctx, c.ID, func(c *Condition) bool {
		if !c.Open || c.Pending != nil || now.Before(c.LastAlarm.Add(n.reminder)) {
			return false // another instance got here first
		}
		switch st {
		case gone:
			n.close(c, ClosedDeleted, nil)
		case resolved:
			nt := Notice{Kind: c.Kind, Phase: PhaseResolved, Token: c.Token, Since: c.OpenedAt, At: now}
			describe(&nt, t)
			id := messageID(c.ID, PhaseResolved, "check/"+strconv.FormatInt(now.UnixNano(), 10))
			n.close(c, ClosedChecked, &Message{ID: id, At: now, Notice: nt})
		default:
			c.Reminders++
			nt := Notice{Kind: c.Kind, Phase: PhaseReminder, Token: c.Token, Generation: c.Generation,
				RefreshExpires: c.RefreshExpires, Since: c.OpenedAt, At: now, Reminder: c.Reminders, Reason: c.Reason}
			describe(&nt, t)
			id := messageID(c.ID, PhaseReminder, strconv.FormatInt(c.OpenedAt.UnixNano(), 10)+"/"+strconv.Itoa(c.Reminders))
			c.Pending = &Message{ID: id, At: now, To: n.Channels(), Notice: nt}
		}
		return true
	})
	if err != nil || c.Pending == nil {
		return err
	}
	_, err = n.deliver(ctx, c.ID, c.Pending.ID, down)
	return err
}

// check reads the current state of c's subject: the token, or for a
// halted sweep the last sweep.
func (n *Notifier) check(ctx context.Context, c *Condition) (state, *token.Token, error) {
	if c.Kind == KindSweepHalted {
		rec, err := n.sweeps.LastSweep(ctx)
		switch {
		case errors.Is(err, token.ErrNotFound):
			return stillOpen, nil, nil
		case err != nil:
			return stillOpen, nil, fmt.Errorf("read last sweep: %w", err)
		case rec.At.After(c.OpenedAt) && !rec.Halted:
			return resolved, nil, nil
		}
		return stillOpen, nil, nil
	}
	t, err := n.token(ctx, c.Token)
	switch {
	case err != nil:
		return stillOpen, nil, err
	case t == nil:
		return gone, nil, nil
	}
	ok := false
	switch c.Kind {
	case KindReauthRequired:
		ok = t.Generation > c.Generation && t.Status != token.StatusReauthRequired
	case KindRefreshFailed:
		ok = t.Generation > c.Generation
	case KindRefreshExpiring:
		ok = t.RefreshExpires.After(c.RefreshExpires)
	}
	if ok {
		return resolved, t, nil
	}
	return stillOpen, t, nil
}
