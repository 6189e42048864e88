package webexfake

import (
	"net/url"
	"time"
)

// Why a refresh token stopped being valid before its expiry.
const (
	RetiredByRotation   = "rotation"
	RetiredByRevocation = "revocation"
)

// RefreshTokenUse is what the fake saw of one refresh token, from its
// issue to its last presentation: enough to tell whether a client sent a
// refresh token it should have known was spent (with rotation on), had
// expired, or had been revoked, and whether it was retried after an answer
// that was lost.
type RefreshTokenUse struct {
	ClientID string
	// Expires is the refresh token's expiry.
	Expires time.Time
	// Presented counts refresh calls that sent it, faulted ones included.
	Presented int
	// Unanswered counts calls that sent it and got a fault, or that the
	// client gave up on during SetLatency, before any grant was made:
	// they left the refresh token as it was.
	Unanswered int
	// Granted counts grants made with it (more than one only with
	// rotation off); Lost counts those whose answer was lost
	// (FaultLostAnswer).
	Granted, Lost int
	// FirstGrant is when the first grant was made with it.
	FirstGrant time.Time
	// Retired is when rotation or revocation ended it (zero if neither
	// did), RetiredBy says which.
	Retired   time.Time
	RetiredBy string
	// AfterRotation, AfterRevocation and AfterExpiry count the calls that
	// sent it after rotation retired it, after it was revoked, and at or
	// after its expiry.
	AfterRotation, AfterRevocation, AfterExpiry int
	// FirstAfterExpiry is when the first call at or after its expiry came.
	FirstAfterExpiry time.Time
}

// RefreshTokenUses returns the ledger of every refresh token the fake
// issued, was given (AddRefreshToken) or was sent, keyed by the token.
func (f *Fake) RefreshTokenUses() map[string]RefreshTokenUse {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]RefreshTokenUse, len(f.uses))
	for rt, u := range f.uses {
		out[rt] = *u
	}
	return out
}

// Issued returns every access and refresh token the fake issued or was
// given, in order: the values a test must never find in a log line.
func (f *Fake) Issued() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.issued...)
}

// AccessTokenExpiry returns when accessToken expires, if the fake issued
// it (or was given it).
func (f *Fake) AccessTokenExpiry(accessToken string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.access[accessToken]
	return g.expires, ok
}

// RevokeClientGrants invalidates every refresh token of clientID, as a
// user revoking the integration's access in Webex does, and returns how
// many there were. Access tokens already issued stay valid until they
// expire.
func (f *Fake) RevokeClientGrants(clientID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for rt, g := range f.refresh {
		if g.clientID == clientID {
			f.retireLocked(rt, RetiredByRevocation)
			delete(f.refresh, rt)
			n++
		}
	}
	return n
}

func (f *Fake) useLocked(rt string) *RefreshTokenUse {
	u := f.uses[rt]
	if u == nil {
		u = &RefreshTokenUse{}
		f.uses[rt] = u
	}
	return u
}

func (f *Fake) issuedRefreshLocked(rt string, g refreshGrant) {
	u := f.useLocked(rt)
	u.ClientID, u.Expires = g.clientID, g.expires
	f.issued = append(f.issued, rt)
}

func (f *Fake) retireLocked(rt, why string) {
	u := f.useLocked(rt)
	if u.Retired.IsZero() {
		u.Retired, u.RetiredBy = f.now(), why
	}
}

// notePresentedLocked records a refresh call that sent rt, before any
// fault or grant.
func (f *Fake) notePresentedLocked(rt string) {
	if rt == "" {
		return
	}
	u := f.useLocked(rt)
	u.Presented++
	switch u.RetiredBy {
	case RetiredByRotation:
		u.AfterRotation++
	case RetiredByRevocation:
		u.AfterRevocation++
	}
	if now := f.now(); !u.Expires.IsZero() && !now.Before(u.Expires) {
		if u.AfterExpiry == 0 {
			u.FirstAfterExpiry = now
		}
		u.AfterExpiry++
	}
}

// noteUnanswered records a refresh call that ended before its grant.
func (f *Fake) noteUnanswered(form url.Values) {
	if form.Get("grant_type") != "refresh_token" || form.Get("refresh_token") == "" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.useLocked(form.Get("refresh_token")).Unanswered++
}

// noteGrantLocked records the outcome of a refresh grant; lost says its
// answer will never reach the client.
func (f *Fake) noteGrantLocked(form url.Values, a answer, lost bool) {
	rt := form.Get("refresh_token")
	if form.Get("grant_type") != "refresh_token" || rt == "" || a.status != 200 {
		return
	}
	u := f.useLocked(rt)
	if u.Granted == 0 {
		u.FirstGrant = f.now()
	}
	u.Granted++
	if lost {
		u.Lost++
	}
}
