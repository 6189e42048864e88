package people

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wxcc/tokenservice/shared/token"
)

// Via is how a person came into the console.
type Via string

// Ways in.
const (
	ViaWebex      Via = "webex"      // OpenID Connect sign-in with Webex
	ViaPassphrase Via = "passphrase" // ADMIN_PASSPHRASE, the break-glass way
)

// Valid reports whether v is one of the ways in.
func (v Via) Valid() bool { return v == ViaWebex || v == ViaPassphrase }

// TouchEvery is how stale a session's LastSeen may get before a request
// writes it again: browsing is not a write per click.
const TouchEvery = time.Minute

// ErrNoSession: no open session has that ID (never created, ended, or
// expired). The console answers it by asking to sign in.
var ErrNoSession = errors.New("no such console session")

// Session is one console sign-in, kept server-side so that it can be
// ended everywhere at once and survives restarts. The browser holds the
// ID (NewSession's first result); the store keeps only Key.
type Session struct {
	// Key is the hex SHA-256 of the browser's ID: the document ID.
	Key string
	// Person is who signed in with Webex (zero for ViaPassphrase).
	// Email is kept normalized (NormalizeEmail).
	Person token.Person
	Role   Role
	Via    Via
	// Created and LastSeen (at most TouchEvery stale); Addr is the client
	// address of the last touch.
	Created, LastSeen time.Time
	Addr              string
	// Expires is the absolute end (Created + ADMIN_SESSION_TTL).
	Expires time.Time
	// Idle ends the session after this long unseen (ADMIN_SESSION_IDLE).
	Idle time.Duration
}

// NewSession starts a session for p: the ID for the browser's cookie and
// the session to store. ttl is ADMIN_SESSION_TTL, idle ADMIN_SESSION_IDLE.
func NewSession(p token.Person, role Role, via Via, addr string, now time.Time, ttl, idle time.Duration) (id string, s *Session, err error) {
	switch {
	case !role.Valid():
		return "", nil, fmt.Errorf("new session: unknown role %q", role)
	case !via.Valid():
		return "", nil, fmt.Errorf("new session: unknown way in %q", via)
	case ttl <= 0 || idle <= 0:
		return "", nil, errors.New("new session: ttl and idle must be positive")
	}
	p.Email = NormalizeEmail(p.Email)
	id, key := NewSecret()
	return id, &Session{
		Key: key, Person: p, Role: role, Via: via,
		Created: now, LastSeen: now, Addr: addr,
		Expires: now.Add(ttl), Idle: idle,
	}, nil
}

// IdleExpires is when the session ends unless it is seen again.
func (s *Session) IdleExpires() time.Time { return s.LastSeen.Add(s.Idle) }

// Open reports whether the session is still valid at now.
func (s *Session) Open(now time.Time) bool {
	return now.Before(s.Expires) && now.Before(s.IdleExpires())
}

// NeedsTouch reports whether a request at now should write LastSeen:
// only once it is TouchEvery old.
func (s *Session) NeedsTouch(now time.Time) bool { return now.Sub(s.LastSeen) >= TouchEvery }

// SessionStore keeps console sessions where every instance sees them.
// Times are the store's clock. Only Get takes the browser's ID; every
// other method takes the Key of a session already read.
type SessionStore interface {
	// Create stores a new session (from NewSession).
	Create(ctx context.Context, s *Session) error
	// Get returns the open session whose browser ID is id, or
	// ErrNoSession (also for an id of the wrong shape).
	Get(ctx context.Context, id string) (*Session, error)
	// Touch records that the session was seen now from addr; ErrNoSession
	// if it ended. Call it when NeedsTouch says so.
	Touch(ctx context.Context, key, addr string) error
	// End ends one session; ending one already gone is no error.
	End(ctx context.Context, key string) error
	// List returns the open sessions, most recently seen first.
	List(ctx context.Context) ([]Session, error)
	// EndAllOf ends every session of the person with that e-mail address
	// (compared normalized) and returns how many it ended.
	EndAllOf(ctx context.Context, email string) (int, error)
}
