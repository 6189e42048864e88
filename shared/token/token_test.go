package token_test

import (
	"errors"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/token"
)

func TestHeldBack(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	ready := func() *token.Token {
		return &token.Token{Name: "n", ClientID: "cid", ClientSecret: "secret", AccessToken: "at", RefreshToken: "rt",
			AccessExpires: now.Add(time.Hour), RefreshExpires: now.Add(30 * 24 * time.Hour), Status: token.StatusActive}
	}
	rejected := ready()
	rejected.Status, rejected.ConfigFingerprint = token.StatusConfigError, rejected.ClientFingerprint()
	fixed := ready()
	fixed.Status, fixed.ConfigFingerprint = token.StatusConfigError, "fingerprint of the rejected client"
	tests := []struct {
		name      string
		mod       func(*token.Token)
		t         *token.Token
		want      error
		lapsed    bool
		backoff   bool
		mayBeSent bool
	}{
		{name: "active and due", mayBeSent: true},
		{name: "not authorized", mod: func(t *token.Token) { t.AccessToken = "" }, want: token.ErrNotAuthorized},
		{name: "reauth required", mod: func(t *token.Token) { t.Status = token.StatusReauthRequired }, want: token.ErrReauthRequired},
		{name: "config error, client unchanged", t: rejected, want: token.ErrConfigError},
		{name: "config error, client changed since", t: fixed, mayBeSent: true},
		{name: "backing off", mod: func(t *token.Token) { t.NextAttempt = now.Add(time.Minute) }, backoff: true},
		{name: "backoff over", mod: func(t *token.Token) { t.NextAttempt = now.Add(-time.Second) }, mayBeSent: true},
		{name: "refresh token expired", mod: func(t *token.Token) { t.RefreshExpires = now }, want: token.ErrReauthRequired, lapsed: true},
		{name: "refresh token missing", mod: func(t *token.Token) { t.RefreshToken = "" }, want: token.ErrReauthRequired, lapsed: true},
		{name: "refresh expiry unknown (sample document)", mod: func(t *token.Token) { t.RefreshExpires = time.Time{} }, mayBeSent: true},
		{name: "leased elsewhere is not a reason", mod: func(t *token.Token) { t.Lease = token.Lease{Holder: "other", Until: now.Add(time.Minute)} }, mayBeSent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.t
			if tok == nil {
				tok = ready()
			}
			if tt.mod != nil {
				tt.mod(tok)
			}
			err := tok.HeldBack(now)
			if tt.mayBeSent != (err == nil) {
				t.Fatalf("got %v, want may be sent: %v", err, tt.mayBeSent)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if got := errors.Is(err, token.ErrRefreshTokenLapsed); got != tt.lapsed {
				t.Fatalf("got lapsed %v (%v), want %v", got, err, tt.lapsed)
			}
			if got := errors.As(err, new(*token.BackoffError)); got != tt.backoff {
				t.Fatalf("got backoff %v (%v), want %v", got, err, tt.backoff)
			}
			if token.RejectedByWebex(err) {
				t.Fatalf("%v counts as a Webex rejection, but nothing was sent", err)
			}
		})
	}
}

func TestResumeIfClientFixed(t *testing.T) {
	tok := &token.Token{ClientID: "cid", ClientSecret: "old", AccessToken: "at", Status: token.StatusConfigError,
		LastError: &token.LastError{Message: "invalid_client", Permanent: true}, Failures: 2}
	tok.ConfigFingerprint = tok.ClientFingerprint()
	if tok.ResumeIfClientFixed() || tok.Status != token.StatusConfigError {
		t.Fatal("resumed with the client config Webex rejected")
	}
	tok.ClientSecret = "new"
	if !tok.ResumeIfClientFixed() {
		t.Fatal("did not resume after the client secret changed")
	}
	if tok.Status != token.StatusActive || tok.LastError != nil || tok.Failures != 0 || tok.ConfigFingerprint != "" {
		t.Fatalf("got %+v, want active with the failure forgotten", tok)
	}
	pending := &token.Token{ClientID: "cid", ClientSecret: "x", Status: token.StatusConfigError, ConfigFingerprint: "other"}
	if !pending.ResumeIfClientFixed() || pending.Status != token.StatusPending {
		t.Fatalf("got %q, want pending for a token without tokens", pending.Status)
	}
}

func TestMissingClientFields(t *testing.T) {
	tok := &token.Token{ClientID: "cid"}
	if got := tok.MissingClientFields(); len(got) != 2 || got[0] != "clientSecret" || got[1] != "redirectUri" {
		t.Fatalf("got %v, want [clientSecret redirectUri]", got)
	}
	tok.ClientSecret, tok.RedirectURI = "s", "https://example.com/cb"
	if got := tok.MissingClientFields(); len(got) != 0 {
		t.Fatalf("got %v for a complete client config", got)
	}
}

func TestForReauthorization(t *testing.T) {
	rest := &token.Token{Name: "n", ClientID: "cid", ClientSecret: "secret"}
	tokensSealed := &token.SealedError{Token: rest, Fields: []string{"accessToken", "refreshToken"}, Err: errors.New("key k0 missing")}
	if got, err := token.ForReauthorization(nil, tokensSealed); err != nil || got != rest {
		t.Fatalf("got %v, %v; want the rest of the token", got, err)
	}
	secretSealed := &token.SealedError{Token: rest, Fields: []string{"clientSecret"}, Err: errors.New("key k0 missing")}
	if _, err := token.ForReauthorization(nil, secretSealed); !errors.Is(err, token.ErrSealed) {
		t.Fatalf("got %v, want ErrSealed: the client secret is needed", err)
	}
}
