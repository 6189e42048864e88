package token

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNoClientConfig: the document lacks clientId, clientSecret or redirectUri.
var ErrNoClientConfig = errors.New("client configuration incomplete")

// ExchangeCode completes an OAuth authorization: it exchanges code with the
// client config stored for name and stores the grant as a new generation,
// clearing any reauth_required or config_error state. A person authorized,
// so it wins over whatever state the token was in.
func (r *Refresher) ExchangeCode(ctx context.Context, name, code string) (*Token, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	t, err := r.o.Store.Get(ctx, name)
	var sealed *SealedError
	if errors.As(err, &sealed) && !sealed.Sealed("clientSecret") {
		// Tokens that no key opens are replaced by this authorization.
		t, err = sealed.Token, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if t.ClientID == "" || t.ClientSecret == "" || t.RedirectURI == "" {
		return nil, fmt.Errorf("authorize %s: %w", name, ErrNoClientConfig)
	}
	wctx, cancel := context.WithTimeout(ctx, r.o.WebexTimeout)
	start := time.Now()
	g, err := r.o.Issuer.Exchange(wctx, Client{ID: t.ClientID, Secret: t.ClientSecret, RedirectURI: t.RedirectURI}, code)
	cancel()
	rep := RefreshReport{Name: name, Trigger: TriggerAuthorization, Grant: "authorization_code", WebexLatency: time.Since(start), Result: "refreshed"}
	defer func() { r.report(rep) }()
	if err == nil && (g.AccessToken == "" || g.ExpiresIn <= 0) {
		err = &TransientError{Err: errors.New("webex answered without an access token or expiry")}
	}
	if err != nil {
		rep.Result = "rejected"
		if errors.As(err, new(*TransientError)) {
			rep.Result = "transient"
		}
		return nil, fmt.Errorf("authorize %s: %w", name, err)
	}
	var events []Event
	// The code is spent: store the grant even if the caller goes away.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	saved, err := r.o.Store.Update(cctx, name, func(cur *Token) ([]Event, error) {
		now := r.o.Now()
		applyGrant(cur, g, now)
		cur.NextAttempt = r.shortLivedBackoff(g, now)
		events = []Event{NewEvent(EventRotated, cur, TriggerAuthorization, now)}
		return events, nil
	})
	if err != nil {
		rep.Result = "store_error"
		return nil, fmt.Errorf("store %s: %w", name, err)
	}
	rep.Token = saved
	r.o.Logger.Info("token authorized", "token", name, "generation", saved.Generation)
	r.deliver(events)
	return saved, nil
}
