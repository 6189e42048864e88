package token

import (
	"fmt"
	"strconv"
	"time"
)

// EventType is the CloudEvents ce-type of a token event.
type EventType string

// Event types, as DESIGN section 4 fixes them.
const (
	EventRotated                 EventType = "token.rotated"
	EventRefreshFailed           EventType = "token.refresh_failed"
	EventReauthorizationRequired EventType = "token.reauthorization_required"
	EventRefreshExpiring         EventType = "token.refresh_expiring"
	// EventDeleted: an admin deleted the token.
	EventDeleted EventType = "token.deleted"
	// EventSweepHalted is not about one token: the worker's brake stopped
	// a sweep because many tokens failed the same permanent way. Its name
	// is empty and it has no ordering key.
	EventSweepHalted EventType = "token.sweep_halted"
)

// Trigger says what caused a change.
type Trigger string

// Triggers carried in event data.
const (
	TriggerScheduled     Trigger = "scheduled"
	TriggerInline        Trigger = "inline"
	TriggerAuthorization Trigger = "authorization"
	// TriggerManual: an admin asked for it (POST /admin/tokens/N/refresh,
	// the console's Refresh now, a delete).
	TriggerManual Trigger = "manual"
	// TriggerMint: a Service App's token pair was minted (DESIGN 5a).
	TriggerMint Trigger = "mint"
)

// Event reports a change of one token. It carries metadata only, never a
// secret. It is written to the store's outbox atomically with the change,
// then published.
type Event struct {
	// ID is deterministic, so subscribers can drop duplicates.
	ID             string
	Type           EventType
	Name           string
	Generation     int64
	AccessExpires  time.Time
	RefreshExpires time.Time
	Trigger        Trigger
	Time           time.Time
	// Message is a short, secret-free reason for failure events.
	Message string
}

// NewEvent builds the event of type typ for t's current state.
func NewEvent(typ EventType, t *Token, trigger Trigger, now time.Time) Event {
	id := fmt.Sprintf("%s/%d/%s", t.Name, t.Generation, typ)
	switch typ {
	case EventRefreshExpiring:
		// once per refresh token, i.e. per refreshExpires value
		id = fmt.Sprintf("%s/%d/%s/%s", t.Name, t.Generation, typ, strconv.FormatInt(t.RefreshExpires.UnixMilli(), 10))
	case EventDeleted:
		// A name can be created and deleted again at the same generation:
		// each deletion is its own event. The ID is still fixed once the
		// event is committed, so a republished copy shares it.
		id = fmt.Sprintf("%s/%d/%s/%s", t.Name, t.Generation, typ, strconv.FormatInt(now.UnixMilli(), 10))
	}
	return Event{
		ID:             id,
		Type:           typ,
		Name:           t.Name,
		Generation:     t.Generation,
		AccessExpires:  t.AccessExpires,
		RefreshExpires: t.RefreshExpires,
		Trigger:        trigger,
		Time:           now,
	}
}
