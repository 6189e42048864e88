package token

import "time"

// Health is how a token is doing as an operator needs to know it: its
// status, refined by what is coming (a refresh, the end of the refresh
// token) and by secrets that no configured key opens. The admin console
// shows it as a badge; GET /admin/status counts it.
type Health string

// Healths, from the most urgent to the least (see Urgency).
const (
	// HealthUnreadable: a stored secret does not open with the configured
	// keys (TOKEN_ENCRYPTION_KEYS); the token is not served.
	HealthUnreadable Health = "secrets_unreadable"
	// HealthReauthRequired: a person must authorize again.
	HealthReauthRequired Health = "reauth_required"
	// HealthConfigError: Webex rejected the client credentials.
	HealthConfigError Health = "config_error"
	// HealthPending: never authorized; nothing to serve yet.
	HealthPending Health = "pending"
	// HealthRefreshExpiring: the refresh token ends within the warning
	// window; a person must authorize again before it does.
	HealthRefreshExpiring Health = "refresh_expiring"
	// HealthRefreshingSoon: the access token is inside the worker's
	// window; the next sweep refreshes it.
	HealthRefreshingSoon Health = "refreshing_soon"
	// HealthActive: served and refreshed automatically; nothing to do.
	HealthActive Health = "active"
)

// Healths lists every Health, most urgent first.
var Healths = []Health{HealthUnreadable, HealthReauthRequired, HealthConfigError, HealthPending,
	HealthRefreshExpiring, HealthRefreshingSoon, HealthActive}

// Urgency orders healths: 0 is the most urgent.
func (h Health) Urgency() int {
	for i, x := range Healths {
		if x == h {
			return i
		}
	}
	return len(Healths)
}

// HealthWindows are the time spans that Health looks ahead.
type HealthWindows struct {
	// Refresh is when the worker refreshes: REFRESH_THRESHOLD + REFRESH_LEAD.
	Refresh time.Duration
	// RefreshExpiry is REFRESH_EXPIRY_WARNING.
	RefreshExpiry time.Duration
}

// Health is t's health at now. unreadable says that some of its stored
// secrets did not open (the store read it with those fields empty).
func (t *Token) Health(now time.Time, w HealthWindows, unreadable bool) Health {
	switch {
	case unreadable:
		return HealthUnreadable
	case t.Status == StatusReauthRequired:
		return HealthReauthRequired
	case t.Status == StatusConfigError:
		return HealthConfigError
	case !t.HasAccessToken():
		return HealthPending
	case t.RefreshExpires.IsZero() && t.RefreshToken == "", !t.RefreshExpires.IsZero() && t.RefreshExpires.Sub(now) < w.RefreshExpiry:
		return HealthRefreshExpiring
	case t.Due(now, w.Refresh):
		return HealthRefreshingSoon
	}
	return HealthActive
}

// StoredState is State for a token read with some secrets that did not
// open (empty): the status the document says, since an access token that
// does not open is still there.
func (t *Token) StoredState(unreadable bool) Status {
	if unreadable && t.Status != StatusNone {
		return t.Status
	}
	return t.State()
}
