package webexfake

// Granted describes a refresh grant the fake made and is about to answer.
type Granted struct {
	ClientID string
	// Presented is the refresh token sent; RefreshToken the one answered
	// (a new one with rotation on).
	Presented, RefreshToken string
}

// OnGrant calls fn (nil: nobody) for every refresh grant the fake makes
// and answers, after the grant and before its answer is written: a test
// can make something fail "right after Webex answered". fn runs on the
// request's goroutine, outside the fake's lock.
func (f *Fake) OnGrant(fn func(Granted)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onGrant = fn
}

// grantedLocked returns what to tell the OnGrant hook about a, if anything.
func (f *Fake) grantedLocked(grantType, clientID, presented string, a answer) (func(Granted), Granted) {
	if f.onGrant == nil || grantType != "refresh_token" || a.status != 200 {
		return nil, Granted{}
	}
	ta, ok := a.body.(tokenAnswer)
	if !ok {
		return nil, Granted{}
	}
	return f.onGrant, Granted{ClientID: clientID, Presented: presented, RefreshToken: ta.RefreshToken}
}
