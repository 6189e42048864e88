package webexfake

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestLedger(t *testing.T) {
	s := start(t)
	s.SetRotation(true)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.SetNow(func() time.Time { return now })
	rt := s.IssueRefreshToken(clientID, time.Hour)

	s.FailNext(1, ServerError(503))
	mustPost(t, s.TokenURL, refreshForm(rt)) // unanswered: rt stays valid
	r := mustPost(t, s.TokenURL, refreshForm(rt))
	next := str(r.json, "refresh_token")
	mustPost(t, s.TokenURL, refreshForm(rt)) // spent: presented after rotation

	u := s.RefreshTokenUses()[rt]
	want := RefreshTokenUse{ClientID: clientID, Expires: now.Add(time.Hour), Presented: 3, Unanswered: 1,
		Granted: 1, FirstGrant: now, Retired: now, RetiredBy: RetiredByRotation, AfterRotation: 1}
	if u != want {
		t.Errorf("ledger of the rotated token:\n got %+v\nwant %+v", u, want)
	}

	// A lost answer spends next; the retry is presented after rotation.
	s.FailNext(1, Fault{Kind: FaultLostAnswer})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err := post(t, ctx, s.TokenURL, refreshForm(next))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lost answer: got %v, want the client's deadline", err)
	}
	mustPost(t, s.TokenURL, refreshForm(next))
	if u := s.RefreshTokenUses()[next]; u.Granted != 1 || u.Lost != 1 || u.AfterRotation != 1 || u.Presented != 2 {
		t.Errorf("ledger after a lost answer: got %+v, want 1 grant, 1 lost, 1 presentation after rotation", u)
	}

	// Expiry and revocation.
	old := s.IssueRefreshToken(clientID, time.Minute)
	now = now.Add(2 * time.Minute)
	mustPost(t, s.TokenURL, refreshForm(old))
	if u := s.RefreshTokenUses()[old]; u.AfterExpiry != 1 || u.Granted != 0 || !u.FirstAfterExpiry.Equal(now) {
		t.Errorf("expired: got %+v, want one presentation after expiry, no grant", u)
	}
	other := s.IssueRefreshToken(clientID, time.Hour)
	if n := s.RevokeClientGrants(clientID); n < 1 {
		t.Errorf("RevokeClientGrants: got %d, want at least 1", n)
	}
	if s.RefreshTokenValid(other) {
		t.Error("a revoked refresh token is still valid")
	}
	mustPost(t, s.TokenURL, refreshForm(other))
	if u := s.RefreshTokenUses()[other]; u.AfterRevocation != 1 || u.RetiredBy != RetiredByRevocation {
		t.Errorf("revoked: got %+v, want one presentation after revocation", u)
	}

	issued := s.Issued()
	for _, v := range []string{rt, next, old, other, str(r.json, "access_token")} {
		if !slices.Contains(issued, v) {
			t.Errorf("Issued lacks %.12s…", v)
		}
	}
}

func TestAddAccessToken(t *testing.T) {
	s := start(t)
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	s.AddAccessToken(clientID, "seeded-at", exp)
	if got, ok := s.AccessTokenExpiry("seeded-at"); !ok || !got.Equal(exp) || !s.AccessTokenValid("seeded-at") {
		t.Errorf("got %v %v, want %v and valid", got, ok, exp)
	}
	if _, ok := s.AccessTokenExpiry("unknown"); ok {
		t.Error("an unknown access token has an expiry")
	}
}

func TestReset(t *testing.T) {
	s := start(t)
	rt := s.IssueRefreshToken(clientID, 0)
	s.FailNext(1, Fault{Kind: FaultReset})
	if _, err := post(t, context.Background(), s.TokenURL, refreshForm(rt)); err == nil {
		t.Fatal("got an answer, want the connection reset")
	}
	if !s.RefreshTokenValid(rt) {
		t.Error("a reset changed the grant state")
	}
	if r := mustPost(t, s.TokenURL, refreshForm(rt)); r.status != 200 {
		t.Errorf("after the reset: got %d, want 200", r.status)
	}
}

func TestClientExpiresIn(t *testing.T) {
	s := start(t)
	s.AddClient("long-lived", "long-secret")
	s.SetClientExpiresIn("long-lived", 5*time.Minute)
	lived := func(client, secret string) float64 {
		rt := s.IssueRefreshToken(client, 0)
		f := refreshForm(rt)
		f.Set("client_id", client)
		f.Set("client_secret", secret)
		return num(mustPost(t, s.TokenURL, f).json, "expires_in")
	}
	if got := lived("long-lived", "long-secret"); got != 300 {
		t.Errorf("expires_in of the client with its own lifetime: got %v, want 300", got)
	}
	if got := lived(clientID, secret); got != DefaultExpiresIn.Seconds() {
		t.Errorf("expires_in of another client: got %v, want %v", got, DefaultExpiresIn.Seconds())
	}
	s.SetClientExpiresIn("long-lived", 0)
	if got := lived("long-lived", "long-secret"); got != DefaultExpiresIn.Seconds() {
		t.Errorf("after SetClientExpiresIn(0): got %v, want the default", got)
	}
}
