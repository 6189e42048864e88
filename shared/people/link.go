package people

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wxcc/tokenservice/shared/token"
)

// Sentinel errors of links; each is something to tell the person who
// opened the link.
var (
	ErrLinkNotFound    = errors.New("no such authorization link")
	ErrLinkUsed        = errors.New("authorization link already used")
	ErrLinkExpired     = errors.New("authorization link expired")
	ErrLinkRevoked     = errors.New("authorization link revoked")
	ErrLinkWrongPerson = errors.New("authorization link is for someone else")
)

// LinkState is where a link is in its life.
type LinkState string

// States of a link.
const (
	LinkPending LinkState = "pending"
	LinkUsed    LinkState = "used"
	LinkRevoked LinkState = "revoked"
	LinkExpired LinkState = "expired"
)

// Link lets someone without console access authorize one token with
// Webex: single use, expiring, optionally for one e-mail address. The URL
// carries the ID (NewLink's first result); the store keeps only Key.
type Link struct {
	// Key is the hex SHA-256 of the URL's ID: the document ID.
	Key string
	// Token is the name of the token to authorize.
	Token string
	// Email, if set, is the only person (normalized address) who may use it.
	Email string
	// CreatedBy is the actor who made it (an e-mail, or "admin passphrase").
	CreatedBy string
	Created   time.Time
	Expires   time.Time
	// Verifier is the PKCE code verifier (RFC 7636), held server-side:
	// a secret, never logged or shown. Stores seal it when encryption at
	// rest is on and forget it once the link is used or revoked.
	Verifier string
	// UsedAt and UsedBy (who authorized) once used.
	UsedAt time.Time
	UsedBy string
	// RevokedAt and RevokedBy once revoked.
	RevokedAt time.Time
	RevokedBy string
}

// NewLink makes a link to authorize the token name, for email if not
// empty, made by createdBy, valid for ttl (AUTHORIZE_LINK_TTL): the ID for
// the URL and the link to store.
func NewLink(name, email, createdBy string, now time.Time, ttl time.Duration) (id string, l *Link, err error) {
	if err := token.ValidateName(name); err != nil {
		return "", nil, fmt.Errorf("new link: %w", err)
	}
	if email != "" {
		if _, _, ok := splitEmail(strings.TrimSpace(email)); !ok {
			return "", nil, fmt.Errorf("new link: %q is not an e-mail address", email)
		}
	}
	if ttl <= 0 {
		return "", nil, errors.New("new link: ttl must be positive")
	}
	id, key := NewSecret()
	return id, &Link{
		Key: key, Token: name, Email: NormalizeEmail(email), CreatedBy: createdBy,
		Created: now, Expires: now.Add(ttl), Verifier: newVerifier(),
	}, nil
}

// newVerifier is 32 random bytes, base64url: 43 characters of RFC 7636's
// unreserved set, the length it recommends.
func newVerifier() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Challenge is the S256 code challenge of the verifier.
func (l *Link) Challenge() string {
	sum := sha256.Sum256([]byte(l.Verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// State is the link's state at now: used and revoked win over expired.
func (l *Link) State(now time.Time) LinkState {
	switch {
	case !l.UsedAt.IsZero():
		return LinkUsed
	case !l.RevokedAt.IsZero():
		return LinkRevoked
	case !now.Before(l.Expires):
		return LinkExpired
	}
	return LinkPending
}

// Check says whether the person with e-mail address email may use the
// link at now: nil, or ErrLinkUsed, ErrLinkRevoked, ErrLinkExpired or
// ErrLinkWrongPerson. Pass "" when who it is is not known yet: that
// fails only a link bound to an address.
func (l *Link) Check(now time.Time, email string) error {
	switch l.State(now) {
	case LinkUsed:
		return ErrLinkUsed
	case LinkRevoked:
		return ErrLinkRevoked
	case LinkExpired:
		return ErrLinkExpired
	}
	if l.Email != "" && NormalizeEmail(email) != l.Email {
		return ErrLinkWrongPerson
	}
	return nil
}

// LinkStore keeps authorization links where every instance sees them.
// Times are the store's clock. Only Get takes the URL's ID; the other
// methods take the Key of a link already read.
type LinkStore interface {
	// Create stores a new link (from NewLink).
	Create(ctx context.Context, l *Link) error
	// Get returns the link whose URL ID is id, in whatever state, with
	// its verifier while pending; ErrLinkNotFound otherwise (also for an
	// id of the wrong shape).
	Get(ctx context.Context, id string) (*Link, error)
	// Use marks the link used by the person with e-mail address by and
	// returns it with its verifier. Exactly one of any number of
	// concurrent uses, on any instances, succeeds; the others get
	// ErrLinkUsed. A link not pending gets Check's error, and so does a
	// link bound to another address (it stays pending).
	Use(ctx context.Context, key, by string) (*Link, error)
	// Revoke ends a pending link; a used, revoked or expired one gets
	// Check's error.
	Revoke(ctx context.Context, key, by string) error
	// Pending returns the pending links of the token name, or of every
	// token for "", oldest first, without their verifiers.
	Pending(ctx context.Context, name string) ([]Link, error)
}
