package oauthstate

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	testKey = []byte("0123456789abcdef0123456789abcdef")
	t0      = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
)

func signerAt(at time.Time) Signer {
	return Signer{Key: testKey, Now: func() time.Time { return at }}
}

var stateRE = regexp.MustCompile(`^v1\.[0-9]+\.[0-9a-f]{32}\.[A-Za-z0-9._-]+\.[A-Za-z0-9_-]{43}$`)

func TestIssueVerify(t *testing.T) {
	tests := []struct {
		name string
		tok  string
	}{
		{name: "simple", tok: "queue-1"},
		{name: "dots", tok: "a.b.c"},
		{name: "longest", tok: strings.Repeat("x", 128)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := signerAt(t0)
			state, nonce, exp, err := s.Issue(tt.tok)
			if err != nil {
				t.Fatal(err)
			}
			if !stateRE.MatchString(state) || len(state) > MaxLen {
				t.Errorf("got state %q, want a match for %s within %d bytes", state, stateRE, MaxLen)
			}
			if want := t0.Add(DefaultTTL); !exp.Equal(want) {
				t.Errorf("got expiry %v, want %v", exp, want)
			}
			got, err := s.Verify(state)
			if err != nil {
				t.Fatalf("Verify: got %v, want nil", err)
			}
			want := Claims{Name: tt.tok, Nonce: nonce, Expires: exp}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNoncesDiffer(t *testing.T) {
	s := signerAt(t0)
	a, na, _, _ := s.Issue("n")
	b, nb, _, _ := s.Issue("n")
	if a == b || na == nb {
		t.Errorf("got the same state twice, want fresh nonces")
	}
}

func TestIssueErrors(t *testing.T) {
	tests := []struct {
		name    string
		key     []byte
		tok     string
		wantErr error
	}{
		{name: "no key", tok: "n", wantErr: ErrInvalidKey},
		{name: "short key", key: []byte("short"), tok: "n", wantErr: ErrInvalidKey},
		{name: "empty name", key: testKey, tok: ""},
		{name: "reserved name", key: testKey, tok: "__x__"},
		{name: "dot", key: testKey, tok: "."},
		{name: "tilde", key: testKey, tok: "a~b"},
		{name: "too long", key: testKey, tok: strings.Repeat("x", 129)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := Signer{Key: tt.key}.Issue(tt.tok)
			if err == nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("got %v, want an error (%v)", err, tt.wantErr)
			}
		})
	}
}

func TestVerifyErrors(t *testing.T) {
	s := signerAt(t0)
	good, _, _, err := s.Issue("queue-1")
	if err != nil {
		t.Fatal(err)
	}
	body := good[:strings.LastIndexByte(good, '.')]
	// sign makes an authentic state with arbitrary content.
	sign := func(body string) string { return body + "." + s.tag(body) }
	otherKey := Signer{Key: bytes.Repeat([]byte{7}, 32), Now: s.Now}
	fromOther, _, _, _ := otherKey.Issue("queue-1")
	tests := []struct {
		name    string
		signer  Signer
		state   string
		wantErr error
	}{
		{name: "empty", signer: s, state: "", wantErr: ErrInvalidState},
		{name: "legacy raw name", signer: s, state: "queue-1", wantErr: ErrInvalidState},
		{name: "sample placeholder", signer: s, state: "set_state_here", wantErr: ErrInvalidState},
		{name: "other key", signer: s, state: fromOther, wantErr: ErrInvalidState},
		{name: "no tag", signer: s, state: body, wantErr: ErrInvalidState},
		{name: "empty tag", signer: s, state: body + ".", wantErr: ErrInvalidState},
		{name: "truncated tag", signer: s, state: good[:len(good)-1], wantErr: ErrInvalidState},
		{name: "appended byte", signer: s, state: good + "A", wantErr: ErrInvalidState},
		{name: "name swapped", signer: s, state: strings.Replace(good, "queue-1", "queue-2", 1), wantErr: ErrInvalidState},
		{name: "too long", signer: s, state: good + strings.Repeat("A", MaxLen), wantErr: ErrInvalidState},
		{name: "wrong version", signer: s, state: sign("v2" + body[2:]), wantErr: ErrInvalidState},
		{name: "signed bad name", signer: s, state: sign("v1.1748780100.00000000000000000000000000000000.__x__"), wantErr: ErrInvalidState},
		{name: "signed bad nonce", signer: s, state: sign("v1.1748780100.0000.queue-1"), wantErr: ErrInvalidState},
		{name: "signed upper-case nonce", signer: s, state: sign("v1.1748780100.0000000000000000000000000000000A.queue-1"), wantErr: ErrInvalidState},
		{name: "signed leading zero expiry", signer: s, state: sign("v1.01748780100.00000000000000000000000000000000.queue-1"), wantErr: ErrInvalidState},
		{name: "signed negative expiry", signer: s, state: sign("v1.-1.00000000000000000000000000000000.queue-1"), wantErr: ErrInvalidState},
		{name: "signed missing field", signer: s, state: sign("v1.1748780100.queue-1"), wantErr: ErrInvalidState},
		{name: "signed expiry far ahead", signer: s, state: sign("v1.1748800000.00000000000000000000000000000000.queue-1"), wantErr: ErrInvalidState},
		{name: "expired at the second", signer: signerAt(t0.Add(DefaultTTL)), state: good, wantErr: ErrExpiredState},
		{name: "expired long ago", signer: signerAt(t0.Add(24 * time.Hour)), state: good, wantErr: ErrExpiredState},
		{name: "shorter TTL now", signer: Signer{Key: testKey, TTL: time.Minute, Now: s.Now}, state: good, wantErr: ErrInvalidState},
		{name: "no key", signer: Signer{Now: s.Now}, state: good, wantErr: ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.signer.Verify(tt.state)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("got %v, want %v", err, tt.wantErr)
			}
			if c != (Claims{}) {
				t.Errorf("got claims %+v, want none", c)
			}
		})
	}
}

func TestValidUntilJustBeforeExpiry(t *testing.T) {
	state, _, exp, _ := signerAt(t0).Issue("n")
	if _, err := signerAt(exp.Add(-time.Nanosecond)).Verify(state); err != nil {
		t.Errorf("got %v, want nil", err)
	}
}

// TestEveryByteMatters alters each byte of a state to every other value
// and truncates it at every length: none may verify.
func TestEveryByteMatters(t *testing.T) {
	s := signerAt(t0)
	state, _, _, _ := s.Issue("queue.1_a-B")
	for i := range len(state) {
		b := []byte(state)
		for v := range 256 {
			if byte(v) == state[i] {
				continue
			}
			b[i] = byte(v)
			if _, err := s.Verify(string(b)); err == nil {
				t.Fatalf("byte %d set to %#x: got a valid state, want an error", i, v)
			}
		}
		if _, err := s.Verify(state[:i]); err == nil {
			t.Fatalf("truncated to %d bytes: got a valid state, want an error", i)
		}
	}
}

func TestDeriveKey(t *testing.T) {
	a := DeriveKey("admin passphrase one")
	tests := []struct {
		name string
		got  []byte
		same bool
	}{
		{name: "deterministic", got: DeriveKey("admin passphrase one"), same: true},
		{name: "other passphrase", got: DeriveKey("admin passphrase two"), same: false},
		{name: "not the passphrase itself", got: []byte("admin passphrase one"), same: false},
	}
	if len(a) != 32 {
		t.Fatalf("got %d bytes, want 32", len(a))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bytes.Equal(tt.got, a); got != tt.same {
				t.Errorf("got equal %v, want %v", got, tt.same)
			}
		})
	}
	if k := DeriveKey(""); k != nil {
		t.Errorf("DeriveKey(\"\"): got %x, want nil", k)
	}
	s := Signer{Key: a, Now: func() time.Time { return t0 }}
	state, _, _, err := s.Issue("n")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (Signer{Key: DeriveKey("admin passphrase two"), Now: s.Now}).Verify(state); !errors.Is(err, ErrInvalidState) {
		t.Errorf("other admin passphrase: got %v, want ErrInvalidState", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	s := signerAt(t0)
	state, _, _, _ := s.Issue("queue-1")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Verify(state); err != nil {
			b.Fatal(err)
		}
	}
}

func TestExpiredStateNamesItsToken(t *testing.T) {
	state, _, _, _ := signerAt(t0).Issue("late-one")
	_, err := signerAt(t0.Add(time.Hour)).Verify(state)
	var ee *ExpiredError
	if !errors.As(err, &ee) || !errors.Is(err, ErrExpiredState) || ee.Claims.Name != "late-one" {
		t.Fatalf("got %v, want an ExpiredError naming late-one", err)
	}
}
