// Package storetest is the contract test suite of token.Store. The same
// suite runs against the in-memory store and the Firestore adapter on the
// emulator, so the fake the protocol's table tests use cannot drift from
// the real store.
//
// Besides token.Store, a store under test must implement Outbox (the
// events its Update commits are checked through it); Sweeper,
// ServiceAppWalker and ReadCounter are checked when implemented.
package storetest

import (
	"context"
	"time"

	"github.com/wxcc/tokenservice/shared/token"
)

// Outbox is the outbox side of a store: events committed by Update,
// pending until delivered.
type Outbox interface {
	// PendingEvents returns up to limit events, oldest first; the events
	// of one token in the order they were committed.
	PendingEvents(ctx context.Context, limit int) ([]token.Event, error)
	// DeleteEvent removes a delivered event; an unknown id is no error.
	DeleteEvent(ctx context.Context, id string) error
}

// Sweeper walks the tokens a sweep must look at.
type Sweeper interface {
	// Due calls fn for every token with AccessExpires before before, in
	// order of AccessExpires, reading pageSize documents at a time.
	// Tokens without AccessExpires are not due.
	Due(ctx context.Context, before time.Time, pageSize int, fn func(*token.Token) error) error
	// RefreshExpiring is the same over RefreshExpires.
	RefreshExpiring(ctx context.Context, before time.Time, pageSize int, fn func(*token.Token) error) error
}

// ServiceAppWalker walks the Service Apps, which a sweep looks at whatever
// their expiries.
type ServiceAppWalker interface {
	// ServiceApps calls fn for every token of kind service_app, in name
	// order, reading pageSize documents at a time.
	ServiceApps(ctx context.Context, pageSize int, fn func(*token.Token) error) error
}

// ReadCounter counts the documents a store has read, as Firestore bills
// them (one per document read, one for a query that returns none).
type ReadCounter interface {
	Reads() int
}
