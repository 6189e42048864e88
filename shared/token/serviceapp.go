package token

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind says how a token's pair is obtained (DESIGN sections 3 and 5a).
type Kind string

// Kinds stored in the document's kind field. The Node sample's documents
// have none: they are integrations, and so is any value other than
// KindServiceApp.
const (
	KindIntegration Kind = "integration"
	// KindServiceApp: a Webex machine account that a Full Admin
	// authorized in Control Hub. Its pair is minted with the access token
	// of its manager (an integration holding spark:applications_token),
	// then refreshed with its own client like any other.
	KindServiceApp Kind = "service_app"
)

// IsServiceApp reports whether t is a Service App.
func (t *Token) IsServiceApp() bool { return t.Kind == KindServiceApp }

// NeedsMint reports whether t is a Service App whose pair must be minted
// again rather than refreshed: it has none, its refresh token is missing
// or expired, or it expires within within (the worker passes
// REFRESH_EXPIRY_WARNING; 0 looks at expiry only). A Service App's pair
// never needs a person.
func (t *Token) NeedsMint(now time.Time, within time.Duration) bool {
	if !t.IsServiceApp() {
		return false
	}
	return !t.HasAccessToken() || t.RefreshToken == "" || t.RefreshTokenExpired(now) ||
		(within > 0 && !t.RefreshExpires.IsZero() && t.RefreshExpires.Before(now.Add(within)))
}

// WaitsForManager reports whether t is a Service App that could not be
// minted because its manager needs re-authorization. It is in
// reauth_required, but no person acts on it: it is minted again once the
// manager is back (ManagerBack).
func (t *Token) WaitsForManager() bool {
	return t.IsServiceApp() && t.Status == StatusReauthRequired
}

// ManagerBack reports whether manager (nil: it does not exist) can mint
// t again after t failed because of it: it is an integration with an
// access token, not in reauth_required, and, if the failure recorded the
// manager's generation (Webex refused a manager that looked healthy: its
// token lacks the scope), has moved on since (authorized again, or at
// least refreshed). That keeps such a manager from costing a Webex call
// per sweep: one try per manager generation.
func (t *Token) ManagerBack(manager *Token) bool {
	return manager != nil && !manager.IsServiceApp() && manager.HasAccessToken() &&
		manager.Status != StatusReauthRequired &&
		(t.ManagerGeneration == nil || manager.Generation != *t.ManagerGeneration)
}

// ShouldMint reports whether the worker should hand the Service App t to
// the refresh protocol now: it needs a mint (NeedsMint) and nothing holds
// it back, or it waits for its manager (the protocol looks at the
// manager: while it is still down that is a store read, no Webex call).
func (t *Token) ShouldMint(now time.Time, within time.Duration) bool {
	return (t.NeedsMint(now, within) && t.HeldBack(now) == nil) || t.WaitsForManager()
}

// Org is the Webex org ID of t's tokens, "" if unknown: a Service App's
// targetOrgId; else the stored orgId, or the one a WxCC access token
// carries after its last "_".
func (t *Token) Org() string {
	switch {
	case t.IsServiceApp():
		return t.TargetOrgID
	case t.OrgID != "":
		return t.OrgID
	}
	return OrgOfAccessToken(t.AccessToken)
}

// OrgOfAccessToken returns the org ID that WxCC access tokens carry after
// their last "_" (…_PF84_<org uuid>), or "" when what follows is not an
// org ID. It allocates nothing: it serves the api's hot path.
func OrgOfAccessToken(accessToken string) string {
	i := strings.LastIndexByte(accessToken, '_')
	if i < 0 {
		return ""
	}
	if org := accessToken[i+1:]; isUUID(org) {
		return org
	}
	return ""
}

// isUUID reports whether s has the 8-4-4-4-12 hex digits shape of a UUID.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// ErrWaitingForManager holds back a Service App that waits for its
// manager (it is ErrReauthRequired too); the protocol tries again, with
// no Webex call before, once the manager is back.
var ErrWaitingForManager = fmt.Errorf("waiting for its manager to be authorized again: %w", ErrReauthRequired)

// ErrBadManager: a Service App's manager is not an integration token of
// this service (missing name, itself a Service App, or the Service App
// itself). It is a config error, not a Webex rejection.
var ErrBadManager = errors.New("manager must be another token of kind integration")

// CheckManager says why manager (nil: no token has that name) cannot be
// the manager of the Service App app, or nil if it can. app.Manager names
// it.
func CheckManager(app, manager *Token) error {
	switch {
	case app.Manager == "":
		return fmt.Errorf("%w: no manager named", ErrBadManager)
	case app.Manager == app.Name:
		return fmt.Errorf("%w: a Service App cannot manage itself", ErrBadManager)
	case manager == nil:
		return fmt.Errorf("%w: no token named %q", ErrBadManager, app.Manager)
	case manager.IsServiceApp():
		return fmt.Errorf("%w: %q is itself a Service App", ErrBadManager, app.Manager)
	}
	return nil
}

// OrgUUID is the UUID of a Webex organization ID, whichever way it is
// spelled: the UUID that Control Hub and WxCC use (returned lower-cased),
// or the REST APIs' ID that /v1/people/me answers, base64 of
// "ciscospark://<region>/ORGANIZATION/<uuid>". Anything else comes back
// trimmed and lower-cased, so that two spellings of one org compare equal.
func OrgUUID(id string) string {
	id = strings.TrimSpace(id)
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		raw, err := enc.DecodeString(strings.TrimRight(id, "="))
		if err != nil {
			continue
		}
		if rest, ok := strings.CutPrefix(string(raw), "ciscospark://"); ok {
			if _, uuid, found := strings.Cut(rest, "/ORGANIZATION/"); found && uuid != "" && !strings.Contains(uuid, "/") {
				return asciiLower(uuid)
			}
		}
	}
	return asciiLower(id)
}

// SameOrg reports whether two organization IDs name the same org
// (OrgUUID); an empty ID matches nothing.
func SameOrg(a, b string) bool {
	ka, kb := OrgUUID(a), OrgUUID(b)
	return ka != "" && ka == kb
}

// asciiLower lower-cases ASCII letters only: IDs are ASCII, and Unicode
// folding would let look-alikes match.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
