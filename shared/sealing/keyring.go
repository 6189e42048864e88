package sealing

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"fmt"
	"strings"
)

// KeySize is the length of an AES-256 key in bytes.
const KeySize = 32

// maxIDLen is the longest key id accepted.
const maxIDLen = 32

// Keyring holds the keys that seal and open values. The first key of the
// spec is the primary: Seal uses it, Open uses whichever key a value
// names. A Keyring is immutable and safe for concurrent use.
//
// A nil *Keyring means encryption is off: Seal stores plain text, and Open
// passes plain text through but cannot open a sealed value.
type Keyring struct {
	primary string
	// aeads holds ready ciphers, not raw keys, so that no key bytes stay
	// around to be printed.
	aeads map[string]cipher.AEAD
}

// ParseKeys parses TOKEN_ENCRYPTION_KEYS: comma-separated entries
// "id:base64-of-32-bytes", the first being the primary. Ids are 1-32
// characters of A-Z a-z 0-9 _ -. The key may be standard or URL-safe
// base64, padded or not; spaces around entries, ids and keys are ignored.
// An empty (or all-space) spec returns a nil Keyring and no error:
// encryption is off.
//
// Errors say which entry is wrong and why, naming the id only when it is a
// valid one, and never contain key material.
func ParseKeys(spec string) (*Keyring, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, nil
	}
	k := &Keyring{aeads: make(map[string]cipher.AEAD)}
	for i, entry := range strings.Split(spec, ",") {
		n := i + 1
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return nil, fmt.Errorf("parse keys: entry %d is empty", n)
		}
		id, b64, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf("parse keys: entry %d is not of the form id:base64-key", n)
		}
		id, b64 = strings.TrimSpace(id), strings.TrimSpace(b64)
		if !validID(id) {
			return nil, fmt.Errorf("parse keys: entry %d: key id must be 1-%d characters of A-Z a-z 0-9 _ -", n, maxIDLen)
		}
		if _, dup := k.aeads[id]; dup {
			return nil, fmt.Errorf("parse keys: entry %d: duplicate key id %q", n, id)
		}
		if b64 == "" {
			return nil, fmt.Errorf("parse keys: entry %d (id %q): key is empty", n, id)
		}
		raw, ok := decodeKey(b64)
		if !ok {
			return nil, fmt.Errorf("parse keys: entry %d (id %q): key is not base64", n, id)
		}
		if len(raw) != KeySize {
			clear(raw)
			return nil, fmt.Errorf("parse keys: entry %d (id %q): key is %d bytes, want %d", n, id, len(raw), KeySize)
		}
		aead, err := newAEAD(raw)
		clear(raw)
		if err != nil {
			// Not expected for a 32-byte key; the error text of
			// crypto/aes holds no key bytes, but keep it out anyway.
			return nil, fmt.Errorf("parse keys: entry %d (id %q): cannot build cipher", n, id)
		}
		if k.primary == "" {
			k.primary = id
		}
		k.aeads[id] = aead
	}
	return k, nil
}

// PrimaryID is the id of the key Seal uses, "" for a nil Keyring.
func (k *Keyring) PrimaryID() string {
	if k == nil {
		return ""
	}
	return k.primary
}

// aead returns the cipher of key id, nil if there is none.
func (k *Keyring) aead(id string) cipher.AEAD {
	if k == nil {
		return nil
	}
	return k.aeads[id]
}

// newAEAD returns AES-256-GCM under key, which draws a random 12-byte
// nonce for every Seal and prepends it to the ciphertext.
func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(block)
}

// keyEncodings are the base64 spellings ParseKeys accepts for a key.
var keyEncodings = []*base64.Encoding{
	base64.StdEncoding,
	base64.RawStdEncoding,
	base64.URLEncoding,
	base64.RawURLEncoding,
}

// decodeKey decodes s in the first encoding that accepts it. The decoder's
// own error (which carries an offset into s) is dropped.
func decodeKey(s string) ([]byte, bool) {
	for _, enc := range keyEncodings {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

// validID reports whether id is 1-32 characters of A-Z a-z 0-9 _ -. Such
// an id contains no ':' (the separator of sealed values) and is safe to
// quote in errors and logs.
func validID(id string) bool {
	if id == "" || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}
