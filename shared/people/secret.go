package people

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// A session's or a link's ID is a secret the browser (cookie) or the URL
// carries: 32 random bytes, base64url without padding (43 characters).
// Stores keep only its Key, the hex SHA-256 of the ID, as the document
// ID: looking up by a hash leaks nothing through timing about stored IDs,
// and a read-only copy of the database holds no usable ID.
const (
	secretBytes = 32
	secretLen   = 43 // base64url of 32 bytes, unpadded
	keyLen      = 64 // hex of SHA-256
)

// NewSecret returns a new random ID and its Key.
func NewSecret() (id, key string) {
	b := make([]byte, secretBytes)
	rand.Read(b) // never fails (crypto/rand)
	id = base64.RawURLEncoding.EncodeToString(b)
	return id, KeyOf(id)
}

// KeyOf is the Key stored for the ID id.
func KeyOf(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// ValidID reports whether id has the shape NewSecret gives: anything else
// from a cookie or a URL is refused before it reaches a store.
func ValidID(id string) bool {
	if len(id) != secretLen {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(id)
	return err == nil
}

// ValidKey reports whether key has the shape KeyOf gives.
func ValidKey(key string) bool {
	if len(key) != keyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
