package passphrase

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
)

// Configured holds passphrases set in the configuration, compared by digest:
// TOKEN_PASSPHRASE and, during a rotation, TOKEN_PASSPHRASE_PREVIOUS; or
// ADMIN_PASSPHRASE alone. The zero value matches nothing.
type Configured struct {
	sums [2][sha256.Size]byte
	set  [2]bool
}

// NewConfigured returns a Configured for the current passphrase and an optional
// previous one. An empty passphrase is never accepted.
func NewConfigured(current, previous string) Configured {
	var g Configured
	for i, p := range [2]string{current, previous} {
		if p != "" {
			g.sums[i] = sha256.Sum256([]byte(p))
			g.set[i] = true
		}
	}
	return g
}

// Match reports whether given is one of the passphrases. It hashes given
// and compares the digest with every slot in constant time, without
// stopping at the first match, so timing reveals neither which one matched
// nor how much of it.
func (g Configured) Match(given string) bool {
	d := sha256.Sum256([]byte(given))
	ok := 0
	for i := range g.sums {
		eq := subtle.ConstantTimeCompare(d[:], g.sums[i][:])
		ok |= eq & subtle.ConstantTimeByteEq(b2u8(g.set[i]), 1)
	}
	return ok == 1
}

// String hides the digests from fmt.
func (g Configured) String() string { return "passphrase.Configured{REDACTED}" }

// LogValue hides the digests from log/slog.
func (g Configured) LogValue() slog.Value { return slog.StringValue("REDACTED") }

func b2u8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
