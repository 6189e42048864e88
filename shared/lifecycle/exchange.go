package lifecycle

import (
	"context"
	"fmt"
	"strings"

	"github.com/wxcc/tokenservice/shared/token"
)

// ExchangeCode completes an OAuth authorization: it exchanges code with
// the client config stored for name and stores the grant as a new
// generation, clearing any reauth_required or config_error state. A
// person authorized, so it wins over whatever state the token was in.
func (r *Refresher) ExchangeCode(ctx context.Context, name, code string) (*token.Token, error) {
	return r.ExchangeCodeVerified(ctx, name, code, "")
}

// ExchangeCodeVerified is ExchangeCode for an authorization started with
// PKCE: verifier (if not empty) goes to Webex with the code, through an
// Issuer that is a VerifierIssuer.
func (r *Refresher) ExchangeCodeVerified(ctx context.Context, name, code, verifier string) (*token.Token, error) {
	if err := token.ValidateName(name); err != nil {
		return nil, err
	}
	t, err := token.ForReauthorization(r.o.Store.Get(ctx, name))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if t.IsServiceApp() {
		return nil, fmt.Errorf("authorize %s: %w: a Service App is minted with its manager's token, not authorized by a person", name, token.ErrNoClientConfig)
	}
	if missing := t.MissingClientFields(); len(missing) > 0 {
		return nil, fmt.Errorf("authorize %s: %w: no %s", name, token.ErrNoClientConfig, strings.Join(missing, ", "))
	}
	client := token.Client{ID: t.ClientID, Secret: t.ClientSecret, RedirectURI: t.RedirectURI}
	exchange := func(ctx context.Context) (token.Grant, error) { return r.o.Issuer.Exchange(ctx, client, code) }
	if verifier != "" {
		vi, ok := r.o.Issuer.(token.VerifierIssuer)
		if !ok {
			return nil, fmt.Errorf("authorize %s: the webex client cannot send a PKCE verifier", name)
		}
		exchange = func(ctx context.Context) (token.Grant, error) {
			return vi.ExchangeVerified(ctx, client, code, verifier)
		}
	}
	g, latency, err := r.callWebex(ctx, exchange)
	var saved *token.Token
	if err == nil {
		// The code is spent: the grant is stored even if the caller goes away.
		saved, err = r.storeGrant(ctx, name, g, token.TriggerAuthorization, nil)
	} else {
		err = fmt.Errorf("authorize %s: %w", name, err)
	}
	res := Result{Token: saved, Outcome: Refreshed}
	r.report(RefreshReport{Name: name, Trigger: token.TriggerAuthorization, Grant: "authorization_code", Result: resultOf(res, err), WebexLatency: latency, Token: saved})
	if err != nil {
		return nil, err
	}
	r.o.Logger.Info("token authorized", "token", name, "generation", saved.Generation)
	return saved, nil
}
