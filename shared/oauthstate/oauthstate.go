// Package oauthstate issues and checks the signed, expiring OAuth state
// that /authorize hands to Webex and /callback gets back.
//
// A state reads
//
//	v1.<expiry, unix seconds>.<nonce, 32 hex digits>.<token name>.<tag>
//
// where tag is the unpadded base64url HMAC-SHA-256, under the signing key,
// of everything before the last dot. All its characters are in
// A-Z a-z 0-9 . _ -, so it needs no escaping in a URL. The state proves
// that the authorization was started by an admin for that name, recently;
// that each state is used only once is up to the caller, which records the
// nonce (in Firestore, so that the check holds across instances).
//
// The package imports no database or HTTP framework.
package oauthstate

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/wxcc/tokenservice/shared/token"
)

const (
	// DefaultTTL is how long a state is valid unless Signer.TTL says
	// otherwise.
	DefaultTTL = 15 * time.Minute
	// MaxLen is the longest state Verify looks at. The longest valid one
	// (a 128-character name) is about 220 bytes.
	MaxLen = 512
	// MinKeyLen is the shortest signing key accepted, in bytes.
	MinKeyLen = 16
	// maxSkew is how far beyond now+TTL an expiry may lie (clocks of
	// instances differ a little) before the state is refused.
	maxSkew = time.Minute

	version  = "v1"
	nonceLen = 16 // bytes; 32 hex digits
	tagLen   = 43 // base64url characters of 32 bytes, unpadded
	keyLabel = "tokenservice oauth state v1"
)

// Errors returned by Verify; ErrExpiredState only for a state that is
// otherwise valid. Their text is for logs, not for callers.
var (
	ErrInvalidState = errors.New("invalid oauth state")
	ErrExpiredState = errors.New("expired oauth state")
	// ErrInvalidKey reports a signing key shorter than MinKeyLen: a
	// configuration error, not the caller's.
	ErrInvalidKey = errors.New("oauth state signing key missing or shorter than 16 bytes")
)

// ExpiredError is Verify's error for an authentic state past its expiry.
// It matches ErrExpiredState; Claims says which token the late
// authorization was for, so that the failure can be recorded on it.
type ExpiredError struct {
	Claims Claims
}

func (e *ExpiredError) Error() string {
	return fmt.Sprintf("%v: expired at %s", ErrExpiredState, e.Claims.Expires.Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrExpiredState) hold.
func (e *ExpiredError) Is(target error) bool { return target == ErrExpiredState }

// Claims are what a valid state carries.
type Claims struct {
	Name    string    // the token to authorize
	Nonce   string    // 32 hex digits, to be recorded once
	Expires time.Time // UTC, whole seconds
}

// A Signer issues and verifies states. Its fields are read only; set them
// before use. It is safe for concurrent use.
type Signer struct {
	// Key is the HMAC key, at least MinKeyLen bytes: STATE_SIGNING_KEY,
	// or DeriveKey(ADMIN_PASSPHRASE).
	Key []byte
	// TTL is how long an issued state is valid; DefaultTTL if zero.
	TTL time.Duration
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// Issue returns a new state for the token name, its nonce, and when it
// expires.
func (s Signer) Issue(name string) (state, nonce string, expires time.Time, err error) {
	if len(s.Key) < MinKeyLen {
		return "", "", time.Time{}, ErrInvalidKey
	}
	if err := token.ValidateName(name); err != nil {
		return "", "", time.Time{}, fmt.Errorf("issue oauth state: %w", err)
	}
	var n [nonceLen]byte
	if _, err := rand.Read(n[:]); err != nil {
		return "", "", time.Time{}, fmt.Errorf("issue oauth state: %w", err)
	}
	nonce = hex.EncodeToString(n[:])
	exp := s.now().Add(s.ttl()).Unix()
	body := version + "." + strconv.FormatInt(exp, 10) + "." + nonce + "." + name
	return body + "." + s.tag(body), nonce, time.Unix(exp, 0).UTC(), nil
}

// Verify checks a state's tag in constant time, then its form and expiry,
// and returns its claims. Every failure wraps ErrInvalidState, except an
// authentic state past its expiry (ErrExpiredState) and a missing key
// (ErrInvalidKey). It never panics, whatever the input.
func (s Signer) Verify(state string) (Claims, error) {
	if len(s.Key) < MinKeyLen {
		return Claims{}, ErrInvalidKey
	}
	if len(state) > MaxLen {
		return Claims{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidState, MaxLen)
	}
	i := strings.LastIndexByte(state, '.')
	if i < 0 {
		return Claims{}, fmt.Errorf("%w: malformed", ErrInvalidState)
	}
	body, tag := state[:i], state[i+1:]
	if len(tag) != tagLen {
		return Claims{}, fmt.Errorf("%w: malformed", ErrInvalidState)
	}
	if !strings.HasPrefix(body, version+".") {
		return Claims{}, fmt.Errorf("%w: unknown version", ErrInvalidState)
	}
	if !hmac.Equal([]byte(tag), []byte(s.tag(body))) {
		return Claims{}, fmt.Errorf("%w: bad signature", ErrInvalidState)
	}
	// Authentic from here on; the checks below guard against our own bugs
	// and against keys shared with a differently configured issuer.
	f := strings.SplitN(body, ".", 4)
	if len(f) != 4 {
		return Claims{}, fmt.Errorf("%w: malformed", ErrInvalidState)
	}
	exp, err := unixSeconds(f[1])
	if err != nil {
		return Claims{}, fmt.Errorf("%w: malformed expiry", ErrInvalidState)
	}
	if !isNonce(f[2]) {
		return Claims{}, fmt.Errorf("%w: malformed nonce", ErrInvalidState)
	}
	if err := token.ValidateName(f[3]); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalidState, err)
	}
	c := Claims{Name: f[3], Nonce: f[2], Expires: time.Unix(exp, 0).UTC()}
	now := s.now()
	if !now.Before(c.Expires) {
		return Claims{}, &ExpiredError{Claims: c}
	}
	if c.Expires.Sub(now) > s.ttl()+maxSkew {
		return Claims{}, fmt.Errorf("%w: expiry too far ahead", ErrInvalidState)
	}
	return c, nil
}

// DeriveKey returns the default signing key for an admin passphrase, or
// nil for an empty one. The passphrase is first stretched with argon2id
// (a fixed salt, so that every instance derives the same key; about 30 ms,
// once at start-up), then expanded with HKDF-SHA256 under a fixed label.
// The stretching matters: every state is public (it travels in URLs), and
// with a fast derivation each one would let an attacker test guesses of
// the admin passphrase offline at billions per second. Never derive the
// key from TOKEN_PASSPHRASE, which flow authors know.
func DeriveKey(adminPassphrase string) []byte {
	if adminPassphrase == "" {
		return nil
	}
	stretched := argon2.IDKey([]byte(adminPassphrase), []byte(keyLabel+" salt"), 2, 19456, 1, 32)
	key, err := hkdf.Key(sha256.New, stretched, nil, keyLabel, 32)
	if err != nil { // only for impossible lengths
		panic("oauthstate: hkdf: " + err.Error())
	}
	return key
}

func (s Signer) tag(body string) string {
	m := hmac.New(sha256.New, s.Key)
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s Signer) ttl() time.Duration {
	if s.TTL <= 0 {
		return DefaultTTL
	}
	return s.TTL
}

func (s Signer) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// unixSeconds parses a canonical positive decimal (no sign, no leading
// zero) of at most 12 digits.
func unixSeconds(v string) (int64, error) {
	if v == "" || len(v) > 12 || v[0] == '0' {
		return 0, errors.New("not a canonical decimal")
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, errors.New("not a canonical decimal")
		}
	}
	return strconv.ParseInt(v, 10, 64)
}

func isNonce(v string) bool {
	if len(v) != 2*nonceLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
