package people

import (
	"errors"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/token"
)

var now = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func TestNewSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id, key := NewSecret()
		if !ValidID(id) || !ValidKey(key) || KeyOf(id) != key {
			t.Fatalf("NewSecret() = %q, %q: want a valid ID and its key", id, key)
		}
		if seen[id] {
			t.Fatalf("NewSecret repeated an ID")
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "short", "q3Vt0Jx8ZkYb2HcR9LmPw4sTnE6aUdGi1oQyVfKzXh+", "q3Vt0Jx8ZkYb2HcR9LmPw4sTnE6aUdGi1oQyVfKzXhC=",
		"q3Vt0Jx8ZkYb2HcR9LmPw4sTnE6aUdGi1oQyVfKzXhCx"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
	if ValidKey(KeyOf("x")[:63]+"G") || ValidKey("") {
		t.Errorf("ValidKey accepts a malformed key")
	}
}

func TestSession(t *testing.T) {
	id, s, err := NewSession(token.Person{Email: "Ann@Example.com"}, Viewer, ViaWebex, "192.0.2.1", now, 8*time.Hour, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if KeyOf(id) != s.Key || s.Person.Email != "ann@example.com" || !s.Expires.Equal(now.Add(8*time.Hour)) {
		t.Errorf("NewSession: key matches %v, email %q, expires %v", KeyOf(id) == s.Key, s.Person.Email, s.Expires)
	}
	tests := []struct {
		name     string
		lastSeen time.Duration // after now
		at       time.Duration
		open     bool
		touch    bool
	}{
		{"fresh", 0, 0, true, false},
		{"a click later", 0, 30 * time.Second, true, false},
		{"a minute later", 0, time.Minute, true, true},
		{"idle too long", 0, time.Hour, false, true},
		{"seen recently, long after start", 7*time.Hour + 30*time.Minute, 7*time.Hour + 45*time.Minute, true, true},
		{"past the absolute end while active", 7*time.Hour + 59*time.Minute, 8 * time.Hour, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := *s
			c.LastSeen = now.Add(tt.lastSeen)
			at := now.Add(tt.at)
			if got := c.Open(at); got != tt.open {
				t.Errorf("Open = %v, want %v", got, tt.open)
			}
			if got := c.NeedsTouch(at); got != tt.touch {
				t.Errorf("NeedsTouch = %v, want %v", got, tt.touch)
			}
		})
	}
	for _, bad := range []struct {
		role Role
		via  Via
		ttl  time.Duration
	}{{"admin", ViaWebex, time.Hour}, {Operator, "magic", time.Hour}, {Operator, ViaPassphrase, 0}} {
		if _, _, err := NewSession(token.Person{}, bad.role, bad.via, "", now, bad.ttl, time.Hour); err == nil {
			t.Errorf("NewSession(%q, %q, %v) accepted it", bad.role, bad.via, bad.ttl)
		}
	}
}

func TestLink(t *testing.T) {
	id, l, err := NewLink("flow-1", "Bob@Example.com", "ann@example.com", now, 72*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if KeyOf(id) != l.Key || l.Email != "bob@example.com" || len(l.Verifier) != 43 || l.Verifier == id {
		t.Errorf("NewLink: %+v", l)
	}
	later := now.Add(time.Hour)
	tests := []struct {
		name  string
		edit  func(*Link)
		at    time.Time
		email string
		state LinkState
		want  error
	}{
		{"pending, right person", nil, later, "BOB@example.com", LinkPending, nil},
		{"pending, someone else", nil, later, "eve@example.com", LinkPending, ErrLinkWrongPerson},
		{"pending, not known yet", nil, later, "", LinkPending, ErrLinkWrongPerson},
		{"expired", nil, now.Add(72 * time.Hour), "bob@example.com", LinkExpired, ErrLinkExpired},
		{"used", func(l *Link) { l.UsedAt = later }, later, "bob@example.com", LinkUsed, ErrLinkUsed},
		{"used, then expired", func(l *Link) { l.UsedAt = later }, now.Add(100 * time.Hour), "bob@example.com", LinkUsed, ErrLinkUsed},
		{"revoked", func(l *Link) { l.RevokedAt = later }, later, "bob@example.com", LinkRevoked, ErrLinkRevoked},
		{"unbound, anyone", func(l *Link) { l.Email = "" }, later, "", LinkPending, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := *l
			if tt.edit != nil {
				tt.edit(&c)
			}
			if got := c.State(tt.at); got != tt.state {
				t.Errorf("State = %q, want %q", got, tt.state)
			}
			if err := c.Check(tt.at, tt.email); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Check = %v, want %v", err, tt.want)
			}
		})
	}
	for _, bad := range []struct{ name, email string }{{"../x", ""}, {"flow-1", "not-an-address"}} {
		if _, _, err := NewLink(bad.name, bad.email, "ann", now, time.Hour); err == nil {
			t.Errorf("NewLink(%q, %q) accepted it", bad.name, bad.email)
		}
	}
}

// TestChallenge: RFC 7636 appendix B.
func TestChallenge(t *testing.T) {
	l := &Link{Verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"}
	if got, want := l.Challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"; got != want {
		t.Errorf("Challenge() = %q, want %q", got, want)
	}
}
