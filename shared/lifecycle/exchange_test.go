package lifecycle_test

import (
	"context"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/token"
)

// verifierIssuer records the PKCE verifier sent with a code.
type verifierIssuer struct {
	stubIssuer
	verifier string
}

func (v *verifierIssuer) ExchangeVerified(ctx context.Context, c token.Client, code, verifier string) (token.Grant, error) {
	v.verifier = verifier
	return v.Exchange(ctx, c, code)
}

func TestExchangeCodeVerified(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "pk", 0, func(tok *token.Token) { tok.AccessToken, tok.RefreshToken = "", "" })
	vi := &verifierIssuer{stubIssuer: stubIssuer{grant: f.issuer.grant}}
	r := lifecycle.NewRefresher(lifecycle.RefresherConfig{Store: f.store, Issuer: vi, Now: f.clock.Now, Holder: "h", Threshold: 2 * time.Hour, WebexTimeout: 2 * time.Second})
	t.Cleanup(r.Close)
	if _, err := r.ExchangeCodeVerified(context.Background(), "pk", "code-1", "the-verifier"); err != nil {
		t.Fatal(err)
	}
	if vi.verifier != "the-verifier" {
		t.Errorf("verifier sent: got %q, want the-verifier", vi.verifier)
	}
	// An issuer that cannot send a verifier is not asked at all.
	f.issuer.calls = 0
	if _, err := f.r.ExchangeCodeVerified(context.Background(), "pk", "code-2", "v"); err == nil || f.issuer.Calls() != 0 {
		t.Errorf("got %v with %d calls, want an error and no call", err, f.issuer.Calls())
	}
}
