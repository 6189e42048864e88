package token

import (
	"context"
	"time"
)

// AuthorizationFailed records on t that an authorization of it failed
// (at /callback: the code rejected, the state expired or reused, Webex
// unreachable, the client config incomplete), so that the operator sees
// why where they look. It changes nothing else: a token that was active
// stays active and keeps being refreshed. A later refresh or
// authorization clears it, as it clears every failure.
func (t *Token) AuthorizationFailed(now time.Time, message string, permanent bool) {
	t.LastError = &LastError{At: now, Message: message, Permanent: permanent}
}

// VerifierIssuer is an Issuer that can complete an authorization made
// with PKCE (RFC 7636): it sends the code verifier with the code.
type VerifierIssuer interface {
	ExchangeVerified(ctx context.Context, c Client, code, verifier string) (Grant, error)
}
