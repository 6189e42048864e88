package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"time"

	"github.com/wxcc/tokenservice/shared/token"
)

// Kind is a condition that needs a person.
type Kind string

// Kinds of conditions, named after the events that open them.
const (
	// KindReauthRequired: the refresh token is expired or was rejected.
	KindReauthRequired Kind = "reauthorization_required"
	// KindRefreshExpiring: the refresh token expires soon.
	KindRefreshExpiring Kind = "refresh_expiring"
	// KindRefreshFailed: refreshing failed for long enough that the
	// token is below the threshold, or Webex rejected the client.
	KindRefreshFailed Kind = "refresh_failed"
	// KindSweepHalted: the worker's brake stopped a sweep; about no token.
	KindSweepHalted Kind = "sweep_halted"
)

// tokenKinds are the kinds a token can have open.
var tokenKinds = []Kind{KindReauthRequired, KindRefreshExpiring, KindRefreshFailed}

// kindOf maps an event type to the kind it opens, "" for others.
func kindOf(t token.EventType) Kind {
	switch t {
	case token.EventReauthorizationRequired:
		return KindReauthRequired
	case token.EventRefreshExpiring:
		return KindRefreshExpiring
	case token.EventRefreshFailed:
		return KindRefreshFailed
	case token.EventSweepHalted:
		return KindSweepHalted
	}
	return ""
}

// ConditionID is the document ID of condition kind of the token name
// ("" for the sweep): one document per token and kind, reused when the
// condition opens again.
func ConditionID(kind Kind, name string) string {
	if name == "" {
		return string(kind)
	}
	return string(kind) + "." + name
}

// Phase says what a message is about.
type Phase string

// Phases of a condition's messages.
const (
	PhaseOpened   Phase = "opened"
	PhaseReminder Phase = "reminder"
	PhaseResolved Phase = "resolved"
)

// alarm reports whether a message of phase p tells of a problem (rather
// than its end).
func (p Phase) alarm() bool { return p == PhaseOpened || p == PhaseReminder }

// Why a condition closed.
const (
	ClosedResolved   = "resolved"   // an event showed the token active again
	ClosedChecked    = "checked"    // Remind found it resolved without an event
	ClosedDeleted    = "deleted"    // the token is gone
	ClosedSuperseded = "superseded" // re-authorization required replaced it
)

// Condition is the notification state of one token and kind: whether it
// is open, which channels were alarmed, when the last alarm went out, and
// the message being delivered, if any.
type Condition struct {
	ID    string
	Kind  Kind
	Token string // "" for the sweep
	Open  bool
	// Generation is the token's generation when it opened; for
	// KindRefreshExpiring, RefreshExpires is the value warned about.
	Generation     int64
	RefreshExpires time.Time
	OpenedAt       time.Time
	// Reason is the opening event's message, sanitised, for reminders.
	Reason   string
	ClosedAt time.Time
	ClosedBy string
	// Alarmed lists the channels that got an alarm (the opening or a
	// reminder) since it opened: the recovery goes to them only.
	Alarmed []string
	// LastAlarm is the time of the last alarm settled; the next reminder
	// is due NOTIFY_REMINDER after it.
	LastAlarm time.Time
	Reminders int
	// Pending is the message being delivered, nil when none is.
	Pending *Message
	// ExpireAt is when Firestore's TTL policy may delete the document.
	ExpireAt time.Time
	// Version is the store's revision (Firestore's update time): the
	// precondition of the next save. Zero for a condition not stored yet.
	Version time.Time
}

// Active reports whether Remind has something to do with c.
func (c *Condition) Active() bool { return c.Open || c.Pending != nil }

// Clone returns a deep copy.
func (c *Condition) Clone() *Condition {
	d := *c
	d.Alarmed = slices.Clone(c.Alarmed)
	if c.Pending != nil {
		d.Pending = c.Pending.clone()
	}
	return &d
}

// Message is one notification on its way to the channels. Its ID (the
// webhook-id) and Notice stay the same across attempts, so that every
// channel gets the same message once.
type Message struct {
	ID string
	// At is when it became due (the event's time, or when Remind made
	// it): delivery is given up NOTIFY_GIVE_UP after it.
	At time.Time
	// To are the channels it is for; Delivered those that have it.
	To        []string
	Delivered []string
	// Claims are the channels an instance is sending to right now, until
	// when: another instance leaves them alone meanwhile.
	Claims map[string]time.Time
	// Failures holds each channel's last failure, secret-free.
	Failures map[string]string
	Notice   Notice
}

func (m *Message) clone() *Message {
	d := *m
	d.To, d.Delivered = slices.Clone(m.To), slices.Clone(m.Delivered)
	d.Claims, d.Failures = maps.Clone(m.Claims), maps.Clone(m.Failures)
	return &d
}

// remaining lists the channels of m not delivered yet that are still
// configured.
func (m *Message) remaining(configured []string) []string {
	var out []string
	for _, ch := range m.To {
		if slices.Contains(configured, ch) && !slices.Contains(m.Delivered, ch) {
			out = append(out, ch)
		}
	}
	return out
}

// messageID derives a message's ID from what makes it unique. It never
// holds a ".", as Standard Webhooks asks of webhook-id.
func messageID(condID string, phase Phase, discriminator string) string {
	sum := sha256.Sum256([]byte(condID + "\x00" + string(phase) + "\x00" + discriminator))
	return "msg_" + hex.EncodeToString(sum[:16])
}

// addUnique appends s to list unless it is there.
func addUnique(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// Store keeps the conditions under META_COLLECTION. Every save is
// conditional, so that instances handling the same event at once cannot
// both send it.
type Store interface {
	// Conditions reads the conditions with the given IDs; absent ones
	// are not in the map.
	Conditions(ctx context.Context, ids ...string) (map[string]*Condition, error)
	// SaveCondition creates c when c.Version is zero (token.ErrConflict
	// if it exists), or else replaces it only if it is still at
	// c.Version (token.ErrConflict if not, or if it is gone). It sets
	// c.Version to the new revision.
	SaveCondition(ctx context.Context, c *Condition) error
	// ActiveConditions calls fn for every condition that is open or has
	// a message pending.
	ActiveConditions(ctx context.Context, fn func(*Condition) error) error
}

// Tokens reads a token's current state (token.Store's Get).
type Tokens interface {
	Get(ctx context.Context, name string) (*token.Token, error)
}

// Sweeps reads the last sweep's record (token.ErrNotFound if none).
type Sweeps interface {
	LastSweep(ctx context.Context) (*token.SweepRecord, error)
}
