// Package activity is the service's record of who did what (DESIGN 2b):
// every state-changing action of a person or of the service itself, kept
// in Firestore (ACTIVITY_COLLECTION) for ACTIVITY_RETENTION and written
// as a structured log entry. Recording never blocks or fails the action
// it records, and never holds a secret.
package activity

import (
	"context"
	"time"
)

// ActorKind says who acted.
type ActorKind string

// Kinds of actors.
const (
	// ByPerson: a person signed in with Webex; Actor is their e-mail.
	ByPerson ActorKind = "person"
	// ByPassphrase: someone holding ADMIN_PASSPHRASE (the break-glass
	// way in, or the JSON admin API); Actor is "admin passphrase".
	ByPassphrase ActorKind = "passphrase"
	// ByService: the service itself; Actor is the instance (lease holder).
	ByService ActorKind = "service"
	// ByVisitor: a person without console access, such as someone
	// opening an authorization link; Actor is what is known of them.
	ByVisitor ActorKind = "visitor"
)

// PassphraseActor is the Actor of an entry made with ADMIN_PASSPHRASE.
const PassphraseActor = "admin passphrase"

// Action is what was done.
type Action string

// Actions recorded.
const (
	SignIn          Action = "signin"
	SignInRefused   Action = "signin_refused"
	SignOut         Action = "signout"
	SessionEnded    Action = "session_ended"
	TokenCreated    Action = "token_created"
	ConfigSaved     Action = "config_saved"
	PassphraseSet   Action = "passphrase_set"
	PassphraseGone  Action = "passphrase_removed"
	RefreshNow      Action = "refresh_now"
	TokenDeleted    Action = "token_deleted"
	AuthStarted     Action = "authorization_started"
	AuthCompleted   Action = "authorization_completed"
	AuthRefused     Action = "authorization_refused"
	AuthFailed      Action = "authorization_failed"
	LinkCreated     Action = "link_created"
	LinkUsed        Action = "link_used"
	LinkRevoked     Action = "link_revoked"
	Rotated         Action = "rotated"
	Minted          Action = "minted"
	RefreshFailed   Action = "refresh_failed"
	ReauthRequired  Action = "reauthorization_required"
	ExpiryWarned    Action = "refresh_expiring"
	SweepHalted     Action = "sweep_halted"
	NotifySent      Action = "notification_sent"
	NotifyGivenUp   Action = "notification_given_up"
	IdentityUnknown Action = "identity_unknown"
)

// Outcome is how the action ended.
type Outcome string

// Outcomes.
const (
	OK      Outcome = "ok"
	Refused Outcome = "refused"
	Failed  Outcome = "failed"
)

// Entry is one recorded action. Detail is a short, secret-free sentence
// (which fields changed, never their values; Webex's own message).
type Entry struct {
	At        time.Time
	ActorKind ActorKind
	Actor     string
	Action    Action
	// Token is the token acted on, "" for actions on none (a sign-in).
	Token   string
	Addr    string
	Outcome Outcome
	Detail  string
	// Generation and AccessExpires are set on the service's rotations
	// (Rotated, Minted): the generation stored and when its access token
	// ends, so that a token's life can be drawn without reading Detail.
	// Zero on every other entry, and on rotations recorded before they
	// existed.
	Generation    int64
	AccessExpires time.Time
	// ID is the store's, set when an entry is read back.
	ID string
}

// Recorder records entries. Record returns at once: it never blocks or
// fails the action it records (an entry that cannot be stored is logged).
type Recorder interface {
	Record(ctx context.Context, e Entry)
}

// Filter selects entries to list, newest first.
type Filter struct {
	Token  string
	Actor  string
	Action Action
	// Since, if not zero, keeps only entries at or after it: a token's
	// last days without paging through the rest of its history.
	Since time.Time
	// Limit is how many entries at most (1-200).
	Limit int
	// Cursor continues a listing where Page.Next left it.
	Cursor string
}

// Page is one page of a listing; Next is "" after the last.
type Page struct {
	Entries []Entry
	Next    string
}
