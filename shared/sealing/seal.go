package sealing

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

const (
	// sealedPrefix marks every sealed value, whatever its version. A value
	// with this prefix is never read as plain text.
	sealedPrefix = "enc:"
	// v1Prefix marks the format this package writes.
	v1Prefix = sealedPrefix + "v1:"
)

// payloadEncoding encodes nonce‖ciphertext in a sealed value: standard
// base64 with padding, decoded strictly so that one payload has one
// spelling.
var payloadEncoding = base64.StdEncoding.Strict()

// nonceSize and tagSize are GCM's, as used by NewGCMWithRandomNonce.
const (
	nonceSize = 12
	tagSize   = 16
)

// errNoPrimary guards against a Keyring built other than by ParseKeys.
var errNoPrimary = errors.New("sealing: keyring has no primary key")

// ErrUndecryptable: a sealed value is malformed, of an unknown version, or
// fails authentication (tampered, or moved to another document or field).
var ErrUndecryptable = errors.New("sealing: value cannot be decrypted")

// ErrUnknownKey: a sealed value names a key id that is not configured.
// Errors wrapping it are *UnknownKeyError, which carries the id.
var ErrUnknownKey = errors.New("sealing: unknown key id")

// UnknownKeyError is returned by Open for a value sealed under a key that
// the Keyring lacks. KeyID is a valid key id (see ParseKeys), safe to log.
type UnknownKeyError struct {
	KeyID string
}

func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("sealing: key id %q is not configured", e.KeyID)
}

// Unwrap makes errors.Is(err, ErrUnknownKey) hold.
func (e *UnknownKeyError) Unwrap() error { return ErrUnknownKey }

// AAD is the associated data binding a sealed value to its place:
// "<collection>/<name>#<field>". It is unambiguous as long as collection
// has no '/' and field no '#' (true of Firestore collection ids and of the
// fixed field names), whatever name holds.
func AAD(collection, name, field string) string {
	return collection + "/" + name + "#" + field
}

// IsSealed reports whether s is in sealed form (starts with "enc:"), that
// is, whether Open treats it as ciphertext rather than plain text.
func IsSealed(s string) bool {
	return strings.HasPrefix(s, sealedPrefix)
}

// Seal encrypts plaintext under the primary key with associated data aad
// (see AAD) and returns "enc:v1:<keyId>:<base64(nonce‖ciphertext)>". Every
// call draws a fresh random nonce, so sealing the same value twice gives
// different results.
//
// An empty plaintext gives "" (nothing to protect, and an absent field
// stays absent). A nil Keyring returns plaintext unchanged; note that
// plain text starting with "enc:" would then read back as a sealed value.
func (k *Keyring) Seal(aad, plaintext string) (string, error) {
	if k == nil || plaintext == "" {
		return plaintext, nil
	}
	aead := k.aead(k.primary)
	if aead == nil {
		return "", errNoPrimary
	}
	sealed := aead.Seal(nil, nil, []byte(plaintext), []byte(aad))
	return v1Prefix + k.primary + ":" + payloadEncoding.EncodeToString(sealed), nil
}

// Open returns the plain text of stored, a value read from the field whose
// associated data is aad.
//
// A value without the "enc:" prefix is plain text and is returned as is. A
// sealed value is opened with the key whose id it names. rotated reports
// that the value should be sealed again at the next write: it is plain
// text (and the Keyring is not nil), or it was sealed under a key other
// than the primary. "" is returned as is with rotated=false, as Seal would
// store it unchanged.
//
// Errors wrap ErrUnknownKey (as *UnknownKeyError, naming the id) when the
// named key is not configured — always so for a nil Keyring, whose
// operator once configured encryption and has since lost the keys — and
// ErrUndecryptable when the value is malformed or fails authentication.
// Errors never contain the value or key material.
func (k *Keyring) Open(aad, stored string) (plaintext string, rotated bool, err error) {
	if !IsSealed(stored) {
		return stored, k != nil && stored != "", nil
	}
	rest, ok := strings.CutPrefix(stored, v1Prefix)
	if !ok {
		return "", false, fmt.Errorf("open sealed value: unsupported format: %w", ErrUndecryptable)
	}
	id, payload, ok := strings.Cut(rest, ":")
	if !ok || !validID(id) {
		return "", false, fmt.Errorf("open sealed value: malformed key id: %w", ErrUndecryptable)
	}
	aead := k.aead(id)
	if aead == nil {
		return "", false, &UnknownKeyError{KeyID: id}
	}
	sealed, err := payloadEncoding.DecodeString(payload)
	if err != nil || len(sealed) < nonceSize+tagSize {
		return "", false, fmt.Errorf("open sealed value (key %q): malformed payload: %w", id, ErrUndecryptable)
	}
	plain, err := aead.Open(nil, nil, sealed, []byte(aad))
	if err != nil {
		return "", false, fmt.Errorf("open sealed value (key %q): authentication failed: %w", id, ErrUndecryptable)
	}
	return string(plain), id != k.primary, nil
}
