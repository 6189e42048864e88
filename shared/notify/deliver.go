package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/token"
)

// deliver sends message msgID of condition id to the channels that do
// not have it yet and records the outcome. It reports whether the
// message is settled: with every channel, given up on, or no longer the
// condition's pending message. Channels named in down (Remind's, for
// one round) are not tried.
//
// A channel is claimed in the store before it is sent to, so that two
// instances handling the same event do not both send. A claim lapses
// after twice the longest channel timeout (30 s at least), so that an
// instance that died mid-send does not hold the message back; the
// channel may then get it twice, the one case in which it can.
func (n *Notifier) deliver(ctx context.Context, id, msgID string, down map[string]error) (bool, error) {
	for range maxConflicts {
		got, err := n.store.Conditions(ctx, id)
		if err != nil {
			return false, fmt.Errorf("read condition %s: %w", id, err)
		}
		c := got[id]
		if c == nil || c.Pending == nil || c.Pending.ID != msgID {
			return true, nil
		}
		now := n.now()
		p := c.Pending
		remaining := p.remaining(n.names)
		var mine []channel
		for _, ch := range n.channels {
			name := ch.name()
			if !slices.Contains(remaining, name) || down[name] != nil {
				continue
			}
			if until, held := p.Claims[name]; held && now.Before(until) {
				continue // another instance is sending it
			}
			mine = append(mine, ch)
		}
		if len(mine) > 0 {
			if p.Claims == nil {
				p.Claims = map[string]time.Time{}
			}
			for _, ch := range mine {
				p.Claims[ch.name()] = now.Add(n.claim)
			}
			if err := n.store.SaveCondition(ctx, c); errors.Is(err, token.ErrConflict) {
				continue // someone else moved it on: look again
			} else if err != nil {
				return false, fmt.Errorf("claim %s: %w", id, err)
			}
		}
		results := n.send(ctx, c, mine)
		for name, err := range results {
			if err != nil && down != nil {
				down[name] = err
			}
		}
		if !now.Before(p.At.Add(n.giveUp)) {
			// Past the give-up time, a channel that failed earlier in
			// this round counts as failed now: without it, a message
			// behind another one on a dead channel would never be tried,
			// and so never given up.
			for _, name := range remaining {
				until, held := p.Claims[name]
				if _, tried := results[name]; !tried && down[name] != nil && !(held && now.Before(until)) {
					results[name] = down[name]
				}
			}
		}
		if len(remaining) > 0 && len(results) == 0 {
			return false, nil // others are sending, or the channels are down
		}
		// What was sent is recorded even if the request ended meanwhile:
		// unrecorded, it would be sent again.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer cancel()
		return n.record(rctx, id, msgID, results)
	}
	return false, nil // contended: the next delivery looks again
}

// recordTimeout bounds recording what an attempt achieved.
const recordTimeout = 10 * time.Second

// send sends c's pending message to chs at once and returns each
// channel's outcome. Each channel bounds its own call.
func (n *Notifier) send(ctx context.Context, c *Condition, chs []channel) map[string]error {
	results := make(map[string]error, len(chs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, ch := range chs {
		wg.Go(func() {
			err := ch.send(ctx, c.Pending)
			mu.Lock()
			results[ch.name()] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	for name, err := range results {
		if err != nil {
			n.log.Warn("notify: channel failed, will try again", "channel", name, "condition", c.ID,
				"token", c.Token, "message", c.Pending.ID, "error", err.Error())
		}
	}
	return results
}

// record stores what send achieved and settles the message when every
// channel has it, or, past NOTIFY_GIVE_UP, when the channels still
// without it all failed just now. A settled message is logged and
// recorded in the activity record once.
func (n *Notifier) record(ctx context.Context, id, msgID string, results map[string]error) (bool, error) {
	var settled *Message
	var gaveUp []string
	var cond *Condition
	c, changed, err := n.update(ctx, id, func(c *Condition) bool {
		settled, gaveUp, cond = nil, nil, c
		p := c.Pending
		if p == nil || p.ID != msgID {
			return false
		}
		now := n.now()
		for name, err := range results {
			delete(p.Claims, name)
			if err != nil {
				if p.Failures == nil {
					p.Failures = map[string]string{}
				}
				p.Failures[name] = cleanText(err.Error(), 200)
				continue
			}
			p.Delivered = addUnique(p.Delivered, name)
			delete(p.Failures, name)
			if p.Notice.Phase.alarm() {
				c.Alarmed = addUnique(c.Alarmed, name)
			}
		}
		remaining := p.remaining(n.names)
		switch {
		case len(remaining) == 0:
		case !now.Before(p.At.Add(n.giveUp)) && allFailed(remaining, results):
			gaveUp = remaining
		default:
			return len(results) > 0
		}
		settled = p
		c.Pending = nil
		if p.Notice.Phase.alarm() {
			c.LastAlarm = p.At
		}
		return true
	})
	if err != nil {
		return false, err
	}
	if changed && settled != nil {
		n.settled(ctx, cond, settled, gaveUp)
	}
	return c.Pending == nil || c.Pending.ID != msgID, nil
}

func allFailed(channels []string, results map[string]error) bool {
	for _, ch := range channels {
		if err, tried := results[ch]; !tried || err == nil {
			return false
		}
	}
	return true
}

// settled logs a settled message and records it in the activity record.
func (n *Notifier) settled(ctx context.Context, c *Condition, m *Message, gaveUp []string) {
	what := fmt.Sprintf("%s %s", m.Notice.Kind, m.Notice.Phase)
	if m.Notice.Phase == PhaseReminder {
		what += fmt.Sprintf(" %d", m.Notice.Reminder)
	}
	e := activity.Entry{
		At: n.now(), ActorKind: activity.ByService, Actor: n.instance,
		Action: activity.NotifySent, Token: c.Token, Outcome: activity.OK,
	}
	attrs := []any{"condition", string(c.Kind), "token", c.Token, "phase", string(m.Notice.Phase), "message", m.ID, "delivered", m.Delivered}
	if len(gaveUp) == 0 {
		e.Detail = fmt.Sprintf("%s sent to %s", what, strings.Join(m.Delivered, ", "))
		n.log.Info("notify: notification sent", attrs...)
	} else {
		var why []string
		for _, ch := range gaveUp {
			why = append(why, ch+": "+m.Failures[ch])
		}
		e.Action, e.Outcome = activity.NotifyGivenUp, activity.Failed
		e.Detail = fmt.Sprintf("%s given up after %s on %s", what, shortDuration(n.giveUp), strings.Join(why, "; "))
		if len(m.Delivered) > 0 {
			e.Detail += "; sent to " + strings.Join(m.Delivered, ", ")
		}
		n.log.Error("notify: notification given up", append(attrs, "given_up", gaveUp, "after", shortDuration(n.giveUp), "failures", strings.Join(why, "; "))...)
	}
	if n.activity != nil {
		n.activity.Record(context.WithoutCancel(ctx), e)
	}
}

// shortDuration writes d without zero minutes and seconds (24h, not
// 24h0m0s).
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
