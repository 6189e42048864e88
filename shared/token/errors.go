package token

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Sentinel errors of the model. Adapters translate their own errors into
// these; the api maps them to HTTP statuses in one table.
var (
	// ErrInvalidName: the name breaks the naming rules.
	ErrInvalidName = errors.New("invalid token name")
	// ErrNotFound: no document for the name.
	ErrNotFound = errors.New("token not found")
	// ErrConflict: a conditional write lost against a concurrent writer.
	ErrConflict = errors.New("concurrent update")
	// ErrNotAuthorized: the document has client config but no tokens yet.
	ErrNotAuthorized = errors.New("token not authorized yet")
	// ErrReauthRequired: the refresh token is expired or was rejected; a
	// person must authorize again.
	ErrReauthRequired = errors.New("re-authorization required")
	// ErrConfigError: Webex rejected the client credentials; the client
	// config must be fixed.
	ErrConfigError = errors.New("client configuration rejected by webex")
	// ErrUnavailable: the store or Webex could not be reached in time.
	ErrUnavailable = errors.New("temporarily unavailable")
	// ErrRefreshTokenLapsed: the refresh token is missing or past its
	// expiry, so it is not sent to Webex; a person must authorize again.
	// It is ErrReauthRequired too, but not a Webex rejection.
	ErrRefreshTokenLapsed = fmt.Errorf("refresh token missing or expired: %w", ErrReauthRequired)
	// ErrExists: a token of that name exists already (creating it again).
	ErrExists = errors.New("token exists")
	// ErrSealed: a stored secret could not be decrypted with the configured keys.
	ErrSealed = errors.New("stored value cannot be decrypted")
)

// SealedError says which secret fields of a stored token no configured key
// opens, by their document names (clientSecret, accessToken,
// refreshToken). Token is the rest of the document with those fields
// empty: enough to authorize again while clientSecret opens. It matches
// ErrSealed, so a caller that needs every secret only checks that.
type SealedError struct {
	Token  *Token
	Fields []string
	Err    error // the first field's failure; it names the key id
}

func (e *SealedError) Error() string        { return e.Err.Error() }
func (e *SealedError) Unwrap() error        { return e.Err }
func (e *SealedError) Is(target error) bool { return target == ErrSealed }

// Sealed reports whether field is one that did not open.
func (e *SealedError) Sealed(field string) bool { return slices.Contains(e.Fields, field) }

// Issuer errors: how a Webex token endpoint call failed. The Webex client
// returns them wrapped; the refresh protocol classifies by errors.Is/As.
var (
	// ErrGrantRejected: Webex rejected the refresh token or code itself
	// (expired, revoked, malformed): permanent until re-authorized.
	ErrGrantRejected = errors.New("grant rejected by webex")
	// ErrClientRejected: Webex rejected the client credentials: permanent
	// until the client config changes.
	ErrClientRejected = errors.New("client rejected by webex")
	// ErrManagerTokenRejected: the applications endpoint refused the
	// manager's access token (401): worth one refresh of the manager.
	ErrManagerTokenRejected = errors.New("manager token rejected by webex")
	// ErrManagerNotPermitted: the applications endpoint refused the
	// manager's access token for lacking spark:applications_token (403
	// naming the scope): the manager must be authorized again with it.
	ErrManagerNotPermitted = errors.New("manager token lacks spark:applications_token")
)

// TransientError is a failure worth retrying later: timeouts, connection
// errors, 5xx, 429, unparseable answers. RetryAfter is Webex's hint, if any.
type TransientError struct {
	RetryAfter time.Duration
	Err        error
}

func (e *TransientError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("transient: %v (retry after %s)", e.Err, e.RetryAfter)
	}
	return fmt.Sprintf("transient: %v", e.Err)
}

func (e *TransientError) Unwrap() error { return e.Err }

// BackoffError says the token is backing off after failures until Until.
type BackoffError struct {
	Until time.Time
	Err   error // the reason: ErrUnavailable, or a *TransientError
}

func (e *BackoffError) Error() string {
	return fmt.Sprintf("refresh backing off until %s: %v", e.Until.UTC().Format(time.RFC3339), e.Err)
}

func (e *BackoffError) Unwrap() error { return e.Err }

// RejectedByWebex reports whether err is Webex rejecting a grant or a
// client, the failures the worker's brake counts. Failures found without
// calling Webex (a lapsed refresh token, a token already in
// reauth_required) are not.
func RejectedByWebex(err error) bool {
	return errors.Is(err, ErrGrantRejected) || errors.Is(err, ErrClientRejected)
}

// IsPermanent reports whether err is a refresh failure that retrying cannot fix.
func IsPermanent(err error) bool {
	return errors.Is(err, ErrGrantRejected) || errors.Is(err, ErrClientRejected) ||
		errors.Is(err, ErrReauthRequired) || errors.Is(err, ErrConfigError)
}

// ManagerError says that a Service App could not be minted because of
// its manager.
type ManagerError struct {
	Manager string
	// Generation is the manager's when Webex refused it although it
	// looked healthy (its token lacks the scope): the Service App is
	// tried again only once the manager has moved on. Nil when the
	// manager's own state says it needs re-authorization (or it does not
	// exist): any healthy manager will do.
	Generation *int64
	// Reauth: the manager must be authorized again. Otherwise the
	// failure is transient (the manager is backing off, say).
	Reauth bool
	// Err is what the manager's refresh or Webex said.
	Err error
}

func (e *ManagerError) Error() string { return e.Summary() + ": " + e.Err.Error() }

// Summary names the manager and what it needs, without the details.
func (e *ManagerError) Summary() string {
	if e.Reauth {
		return fmt.Sprintf("manager %q needs re-authorization", e.Manager)
	}
	return fmt.Sprintf("manager %q cannot mint now", e.Manager)
}

// Unwrap is ErrReauthRequired or ErrUnavailable, never the manager's own
// error: a rejection of the manager counts once, for the manager.
func (e *ManagerError) Unwrap() error {
	if e.Reauth {
		return ErrReauthRequired
	}
	return ErrUnavailable
}

// GenerationCopy is a copy of Generation (nil if none), for storing.
func (e *ManagerError) GenerationCopy() *int64 {
	if e.Generation == nil {
		return nil
	}
	g := *e.Generation
	return &g
}

// ErrNoClientConfig: the document lacks clientId, clientSecret or redirectUri.
var ErrNoClientConfig = errors.New("client configuration incomplete")
