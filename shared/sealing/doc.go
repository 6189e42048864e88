// Package sealing encrypts token secrets at rest (DESIGN section 6,
// "Encryption at rest").
//
// A sealed value has the form
//
//	enc:v1:<keyId>:<base64(nonce‖ciphertext)>
//
// where the cipher is AES-256-GCM under the key named keyId, the nonce is
// 12 random bytes (crypto/rand) drawn afresh for every Seal, ciphertext
// ends with GCM's 16-byte tag, and the base64 is the standard alphabet with
// padding (encoding/base64.StdEncoding): that alphabet never contains ':',
// so the value splits unambiguously, and it is what other tools (base64,
// openssl, Node's Buffer) emit and read by default. Open accepts exactly
// that encoding and no other spelling of the same bytes.
//
// The associated data binds a value to its place: AAD builds
// "<collection>/<name>#<field>", so a value copied to another document or
// field fails to open. Random 96-bit nonces keep GCM within its limits
// for up to 2^32 seals per key (NIST SP 800-38D), far beyond what a token
// store writes before its key is rotated.
//
// Keys come from TOKEN_ENCRYPTION_KEYS, parsed by ParseKeys into a
// Keyring: the first key seals, every key opens. Rotation is: put the new
// key first, keep the old ones after it; Open reports rotated=true for
// values the caller should seal again at its next write (plain text, or a
// value sealed under a key that is no longer the primary); once no value
// names an old key, drop it.
//
// Values without the "enc:" prefix are the Node sample's plain text and
// pass through Open unchanged. Values with that prefix are never served as
// plain text: an unknown version, an unknown key id or a failed
// authentication is an error (ErrUndecryptable, ErrUnknownKey).
//
// This protects against read-only exposure of the store (exports, backups,
// console viewers). Someone who can write to the store can still swap a
// document's values for older ones of the same document and field.
//
// No error or formatted value of this package contains key material.
package sealing
