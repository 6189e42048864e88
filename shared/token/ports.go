package token

import (
	"context"
	"time"
)

// Store is the persistence the refresh protocol needs. The Firestore
// adapter implements it for production; an in-memory one serves the
// protocol's table tests, and one contract test suite keeps both honest.
type Store interface {
	// Get reads one token. ErrNotFound if there is none.
	Get(ctx context.Context, name string) (*Token, error)

	// TryLease writes lease on t's document only if the document is still
	// at t.Version (no transaction: a conditional write). It returns the
	// token as written, with its new Version, or ErrConflict (also when
	// the document is gone: a precondition cannot tell the two apart).
	TryLease(ctx context.Context, t *Token, lease Lease) (*Token, error)

	// Update reads the current token, applies fn and writes the result
	// together with the events fn returns into the outbox, atomically. If
	// fn returns an error nothing is written and Update returns it. fn may
	// run more than once. ErrNotFound if there is no document.
	Update(ctx context.Context, name string, fn func(t *Token) ([]Event, error)) (*Token, error)

	// Create stores t if no document has its name and reports whether it
	// did; an existing document is left untouched.
	Create(ctx context.Context, t *Token) (bool, error)
}

// Grant is what the Webex token endpoint answered.
type Grant struct {
	AccessToken string
	ExpiresIn   time.Duration
	// RefreshToken is empty when Webex sent none; the old one stays.
	RefreshToken     string
	RefreshExpiresIn time.Duration
}

// Client is the OAuth client config a grant is made for.
type Client struct {
	ID          string
	Secret      string
	RedirectURI string
}

// MintRequest is what minting a Service App's pair sends to Webex: the
// app, its OAuth client, the org a Full Admin authorized it for, and the
// manager's access token as the bearer.
type MintRequest struct {
	AppID        string
	Client       Client
	TargetOrgID  string
	ManagerToken string
}

// Issuer talks to the Webex token endpoint (Refresh, Exchange) and to the
// applications endpoint that mints Service App pairs (Mint). Each call is
// bounded by WEBEX_TIMEOUT: the refresh protocol's leases outlive it. Its
// errors wrap ErrGrantRejected, ErrClientRejected or a *TransientError;
// Mint's also ErrManagerTokenRejected or ErrManagerNotPermitted.
type Issuer interface {
	Refresh(ctx context.Context, c Client, refreshToken string) (Grant, error)
	Exchange(ctx context.Context, c Client, code string) (Grant, error)
	Mint(ctx context.Context, req MintRequest) (Grant, error)
}

// Publisher delivers events committed to the outbox (publish, then remove
// from the outbox). Failures are its own business: events left in the
// outbox are retried by the worker. Deliver must bound every step itself:
// ctx ends only when the process shuts down.
type Publisher interface {
	Deliver(ctx context.Context, events []Event)
}
