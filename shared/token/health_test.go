package token_test

import (
	"strings"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/token"
)

func TestHealth(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	w := token.HealthWindows{Refresh: 150 * time.Minute, RefreshExpiry: 7 * 24 * time.Hour}
	active := func(mod func(*token.Token)) *token.Token {
		tok := &token.Token{Name: "x", Status: token.StatusActive, AccessToken: "at", RefreshToken: "rt",
			AccessExpires: now.Add(10 * time.Hour), RefreshExpires: now.Add(60 * 24 * time.Hour)}
		if mod != nil {
			mod(tok)
		}
		return tok
	}
	tests := []struct {
		name       string
		tok        *token.Token
		unreadable bool
		want       token.Health
	}{
		{"fresh", active(nil), false, token.HealthActive},
		{"sample document without status", active(func(t *token.Token) { t.Status = "" }), false, token.HealthActive},
		{"inside the worker's window", active(func(t *token.Token) { t.AccessExpires = now.Add(2 * time.Hour) }), false, token.HealthRefreshingSoon},
		{"access token expired", active(func(t *token.Token) { t.AccessExpires = now.Add(-time.Minute) }), false, token.HealthRefreshingSoon},
		{"refresh token ends within the warning", active(func(t *token.Token) { t.RefreshExpires = now.Add(3 * 24 * time.Hour) }), false, token.HealthRefreshExpiring},
		{"refresh token already ended", active(func(t *token.Token) { t.RefreshExpires = now.Add(-time.Hour) }), false, token.HealthRefreshExpiring},
		{"no refresh token at all", active(func(t *token.Token) { t.RefreshToken, t.RefreshExpires = "", time.Time{} }), false, token.HealthRefreshExpiring},
		{"never authorized", &token.Token{Name: "x", Status: token.StatusPending, ClientID: "c"}, false, token.HealthPending},
		{"reauth", active(func(t *token.Token) { t.Status = token.StatusReauthRequired }), false, token.HealthReauthRequired},
		{"config error", active(func(t *token.Token) { t.Status = token.StatusConfigError }), false, token.HealthConfigError},
		{"secrets do not open", active(func(t *token.Token) { t.AccessToken = "" }), true, token.HealthUnreadable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.tok.Health(now, w, tt.unreadable); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	for i, h := range token.Healths {
		if h.Urgency() != i {
			t.Errorf("%s: urgency %d, want %d", h, h.Urgency(), i)
		}
	}
	if token.HealthUnreadable.Urgency() >= token.HealthActive.Urgency() {
		t.Error("unreadable secrets must come before active tokens")
	}
}

func TestStoredState(t *testing.T) {
	sealed := &token.Token{Name: "x", Status: token.StatusActive} // access token did not open
	if got := sealed.StoredState(true); got != token.StatusActive {
		t.Errorf("sealed active token: got %s, want active", got)
	}
	if got := sealed.StoredState(false); got != token.StatusPending {
		t.Errorf("readable token without access token: got %s, want pending", got)
	}
}

func TestDeletedEventsOfOneNameDiffer(t *testing.T) {
	tok := &token.Token{Name: "x", Generation: 0}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	a := token.NewEvent(token.EventDeleted, tok, token.TriggerManual, now)
	b := token.NewEvent(token.EventDeleted, tok, token.TriggerManual, now.Add(time.Second))
	if a.ID == b.ID || !strings.HasPrefix(a.ID, "x/0/token.deleted/") {
		t.Errorf("two deletions of x at generation 0 got IDs %q and %q, want distinct x/0/token.deleted/… IDs", a.ID, b.ID)
	}
}

func TestAuthorizationFailedKeepsStatus(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	tok := &token.Token{Name: "x", Status: token.StatusActive, AccessToken: "at"}
	tok.AuthorizationFailed(now, "state expired", true)
	if tok.Status != token.StatusActive || tok.LastError == nil || tok.LastError.Message != "state expired" || !tok.LastError.At.Equal(now) {
		t.Errorf("got status %s, last error %+v", tok.Status, tok.LastError)
	}
}
