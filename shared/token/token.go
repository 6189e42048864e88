// Package token holds the domain model of the token service: a named Webex
// OAuth token, the rules that decide when it must be refreshed and whether it
// may still be served, its errors and events, and the interfaces of the
// adapters around it (store, Webex issuer, event publisher). What changes a
// token (the refresh protocol and the operators' use cases) is in package
// lifecycle. It imports no database driver and no HTTP framework on purpose:
// adapters depend on it, never the other way round.
package token

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Status is the lifecycle state of a token document.
type Status string

// Statuses stored in the document's status field. Documents written by the
// Node sample have none; Token.State derives one for them.
const (
	StatusNone           Status = ""
	StatusPending        Status = "pending"
	StatusActive         Status = "active"
	StatusReauthRequired Status = "reauth_required"
	StatusConfigError    Status = "config_error"
)

// Lease marks the instance that is currently calling Webex for a token.
type Lease struct {
	Holder string
	Until  time.Time
}

// HeldByOther reports whether someone other than holder has an unexpired lease.
func (l Lease) HeldByOther(holder string, now time.Time) bool {
	return l.Holder != "" && l.Holder != holder && now.Before(l.Until)
}

// LastError is the most recent refresh failure, cleared by a successful one.
type LastError struct {
	At        time.Time
	Message   string
	Permanent bool
}

// Token is one named token: the OAuth client it belongs to, the current
// tokens and the bookkeeping of the refresh protocol. Zero times mean
// "absent".
type Token struct {
	Name string
	// Kind is KindServiceApp for a Service App; anything else (the
	// sample's documents have none) is an integration.
	Kind Kind

	ClientID     string
	ClientSecret string
	RedirectURI  string
	Scopes       []string

	AccessToken    string
	RefreshToken   string
	AccessExpires  time.Time
	RefreshExpires time.Time
	LastRefresh    time.Time

	Generation int64
	Lease      Lease
	Status     Status
	LastError  *LastError

	// PassphraseHash is the PHC string of the token's own passphrase.
	PassphraseHash string

	// A Service App's app ID, the org a Full Admin authorized it for, and
	// the name of the integration token whose access token mints it.
	AppID       string
	TargetOrgID string
	Manager     string
	// OrgID is the Webex org of the tokens, when known (see Org).
	OrgID string
	// AuthorizedBy is the Webex person an integration's current grant
	// acts as, asked from Webex after each authorization; nil if unknown.
	AuthorizedBy *Person
	// ManagerGeneration is the manager's generation when a Service App
	// last failed because of its manager, nil if none: it is retried once
	// the manager has moved on (ManagerBack).
	ManagerGeneration *int64

	// NextAttempt is when a backed-off refresh may be tried again.
	NextAttempt time.Time
	// Failures counts consecutive transient failures, for the backoff.
	Failures int
	// ConfigFingerprint identifies the client config that Webex rejected,
	// so that changing clientId or clientSecret resumes refreshing.
	ConfigFingerprint string
	// FailureReported is the generation for which token.refresh_failed
	// was published, nil if none.
	FailureReported *int64
	// ExpiryWarned is the refreshExpires value for which
	// token.refresh_expiring was published.
	ExpiryWarned time.Time

	// Version is the store's opaque revision of the document (Firestore's
	// update time), used as the precondition of a lease write.
	Version time.Time
}

// Person is a Webex person as Webex names them (GET /v1/people/me): who
// an integration's grant acts as, or who signed in to the console.
type Person struct {
	ID          string
	Email       string
	DisplayName string
	OrgID       string
}

// HasAccessToken reports whether the token holds an access token at all.
func (t *Token) HasAccessToken() bool { return t.AccessToken != "" }

// Remaining is how long the access token is still valid at now.
func (t *Token) Remaining(now time.Time) time.Duration {
	if t.AccessExpires.IsZero() {
		return 0
	}
	return t.AccessExpires.Sub(now)
}

// Due reports whether the access token has less than within left.
func (t *Token) Due(now time.Time, within time.Duration) bool {
	return t.Remaining(now) < within
}

// Servable reports whether the access token may still be handed out: it
// has at least minValidity left.
func (t *Token) Servable(now time.Time, minValidity time.Duration) bool {
	return t.HasAccessToken() && t.Remaining(now) >= minValidity
}

// RefreshTokenExpired reports whether the refresh token is known to have
// expired, in which case it must not be sent to Webex.
func (t *Token) RefreshTokenExpired(now time.Time) bool {
	return !t.RefreshExpires.IsZero() && !now.Before(t.RefreshExpires)
}

// HeldBack is the one rule for "may this token be sent to Webex now?":
// it returns why not, or nil. The refresh protocol, the api (before an
// inline refresh) and the worker (before a sweep hands a token to the
// protocol) all ask it. A lease held by another instance is not a reason
// here: the protocol decides whether to wait for its holder.
//
//   - no access token yet: ErrNotAuthorized (a Service App: nil, it is
//     minted);
//   - reauth_required: ErrReauthRequired (a Service App waits for its
//     manager: the protocol mints it once the manager is back);
//   - config_error with the client config Webex rejected: ErrConfigError;
//   - backing off after transient failures: a *BackoffError;
//   - the refresh token missing or past its expiry: ErrRefreshTokenLapsed
//     (which is ErrReauthRequired too). Such a token was never sent to
//     Webex, so it is not a Webex rejection: the protocol records it as
//     reauth_required without a Webex call. A Service App's is no reason:
//     it is minted again.
func (t *Token) HeldBack(now time.Time) error { return t.heldBack(now, false) }

// HeldBackFromForced is HeldBack for an operator's forced refresh, which
// a backoff does not hold back.
func (t *Token) HeldBackFromForced(now time.Time) error { return t.heldBack(now, true) }

func (t *Token) heldBack(now time.Time, ignoreBackoff bool) error {
	switch {
	case !t.HasAccessToken() && !t.IsServiceApp():
		return ErrNotAuthorized
	case t.WaitsForManager():
		return ErrWaitingForManager
	case t.Status == StatusReauthRequired:
		return ErrReauthRequired
	case t.Status == StatusConfigError && !t.ConfigErrorResolved():
		return ErrConfigError
	case t.NextAttempt.After(now) && !ignoreBackoff:
		cause := ErrUnavailable
		if t.LastError != nil {
			cause = fmt.Errorf("%w: last error: %s", ErrUnavailable, t.LastError.Message)
		}
		return &BackoffError{Until: t.NextAttempt, Err: cause}
	case !t.IsServiceApp() && (t.RefreshToken == "" || t.RefreshTokenExpired(now)):
		return ErrRefreshTokenLapsed
	}
	return nil // for a Service App without usable tokens: mint (NeedsMint)
}

// State is the effective status, also for documents written by the Node
// sample, which have no status field.
func (t *Token) State() Status {
	switch {
	case t.Status == StatusReauthRequired || t.Status == StatusConfigError:
		return t.Status
	case !t.HasAccessToken():
		return StatusPending
	default:
		return StatusActive
	}
}

// ClientFingerprint identifies t's OAuth client config without revealing
// the secret. It is stored when Webex rejects the client, so that a later
// change of clientId or clientSecret (for a Service App also of appId,
// targetOrgId or manager: what a mint sends) can be detected.
func (t *Token) ClientFingerprint() string {
	in := t.ClientID + "\x00" + t.ClientSecret
	if t.IsServiceApp() {
		in = strings.Join([]string{string(KindServiceApp), t.AppID, t.ClientID, t.ClientSecret, t.TargetOrgID, t.Manager}, "\x00")
	}
	sum := sha256.Sum256([]byte(in))
	return hex.EncodeToString(sum[:16])
}

// ConfigErrorResolved reports whether a token in config_error has had its
// client config changed since Webex rejected it.
func (t *Token) ConfigErrorResolved() bool {
	return t.Status == StatusConfigError && t.ConfigFingerprint != t.ClientFingerprint()
}

// ResumeIfClientFixed takes a token out of config_error once its client
// config differs from the one Webex rejected, so that refreshing resumes
// without a new authorization, and reports whether it did. Call it after
// changing the client config.
func (t *Token) ResumeIfClientFixed() bool {
	if !t.ConfigErrorResolved() {
		return false
	}
	t.Status = StatusPending
	if t.HasAccessToken() {
		t.Status = StatusActive
	}
	t.ConfigFingerprint, t.LastError, t.NextAttempt, t.Failures = "", nil, time.Time{}, 0
	return true
}

// MissingClientFields names the client config fields (as the document
// names them) that an authorization needs and t lacks, or for a Service
// App those a mint needs; none means the client config is complete.
func (t *Token) MissingClientFields() []string {
	type field struct{ name, value string }
	fields := []field{{"clientId", t.ClientID}, {"clientSecret", t.ClientSecret}, {"redirectUri", t.RedirectURI}}
	if t.IsServiceApp() {
		fields = []field{{"appId", t.AppID}, {"clientId", t.ClientID}, {"clientSecret", t.ClientSecret},
			{"targetOrgId", t.TargetOrgID}, {"manager", t.Manager}}
	}
	var missing []string
	for _, f := range fields {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	return missing
}

// ForReauthorization is what a store read of t yields for authorizing it
// again: the token itself, or, when only its access and refresh tokens do
// not open with the configured keys (its client secret does), the rest of
// it: a new authorization replaces the tokens that do not open.
func ForReauthorization(t *Token, err error) (*Token, error) {
	var sealed *SealedError
	if errors.As(err, &sealed) && !sealed.Sealed("clientSecret") {
		return sealed.Token, nil
	}
	return t, err
}

// Clone returns a deep copy, so that a cached token can be handed out
// without sharing mutable state.
func (t *Token) Clone() *Token {
	c := *t
	c.Scopes = nil // an empty list and none are the same to the store
	if len(t.Scopes) > 0 {
		c.Scopes = slices.Clone(t.Scopes)
	}
	if t.LastError != nil {
		le := *t.LastError
		c.LastError = &le
	}
	if t.AuthorizedBy != nil {
		p := *t.AuthorizedBy
		c.AuthorizedBy = &p
	}
	if t.FailureReported != nil {
		g := *t.FailureReported
		c.FailureReported = &g
	}
	if t.ManagerGeneration != nil {
		g := *t.ManagerGeneration
		c.ManagerGeneration = &g
	}
	return &c
}
