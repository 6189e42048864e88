package passphrase

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Length limits of a token's own passphrase.
const (
	// MinChars is the fewest characters (Unicode code points) allowed.
	MinChars = 16
	// MaxBytes is the longest passphrase allowed, in bytes.
	MaxBytes = 256
)

// Limits on the parameters read from a stored PHC string, so that a hostile
// or corrupt document cannot make Verify allocate gigabytes or spin for
// minutes.
const (
	MaxMemoryKiB = 256 * 1024 // 256 MiB
	MaxTime      = 10
	MaxThreads   = 16
)

// Errors returned by Validate, Hash and Verify.
var (
	// ErrInvalid reports a passphrase that Validate rejects.
	ErrInvalid = errors.New("invalid passphrase")
	// ErrMalformedHash reports a stored hash that is not a PHC string this
	// package can verify (wrong algorithm or version, bad encoding, or
	// parameters outside the limits).
	ErrMalformedHash = errors.New("malformed passphrase hash")
)

// Params are argon2id cost parameters.
type Params struct {
	MemoryKiB uint32 // m: memory in KiB
	Time      uint32 // t: passes over memory
	Threads   uint8  // p: lanes
	SaltLen   int    // bytes of random salt
	KeyLen    int    // bytes of derived key
}

// DefaultParams are OWASP's argon2id recommendation (m=19 MiB, t=2, p=1).
// On a 2-core machine one hash takes about 25-30 ms.
var DefaultParams = Params{MemoryKiB: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

var b64 = base64.RawStdEncoding.Strict()

// Validate checks a new per-token passphrase: at least MinChars characters,
// at most MaxBytes bytes, valid UTF-8, no control characters, and no
// leading or trailing white space (HTTP strips it from header values, so
// such a passphrase could never be presented).
func Validate(p string) error {
	switch {
	case len(p) > MaxBytes:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxBytes)
	case !utf8.ValidString(p):
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalid)
	case utf8.RuneCountInString(p) < MinChars:
		return fmt.Errorf("%w: shorter than %d characters", ErrInvalid, MinChars)
	case strings.TrimSpace(p) != p:
		return fmt.Errorf("%w: leading or trailing white space", ErrInvalid)
	case strings.IndexFunc(p, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: contains a control character", ErrInvalid)
	}
	return nil
}

// Short reports whether p has fewer than MinChars characters: too few for
// a passphrase that guards tokens or the admin endpoints.
func Short(p string) bool { return utf8.RuneCountInString(p) < MinChars }

// Hash validates p and returns its argon2id hash under DefaultParams with
// a fresh random salt, as a PHC string.
func Hash(p string) (string, error) {
	return HashWith(p, DefaultParams)
}

// HashWith is Hash with explicit parameters (tests use cheap ones).
func HashWith(p string, prm Params) (string, error) {
	if err := Validate(p); err != nil {
		return "", err
	}
	if err := prm.check(); err != nil {
		return "", fmt.Errorf("hash passphrase: %w", err)
	}
	salt := make([]byte, prm.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash passphrase: %w", err)
	}
	key := idKey([]byte(p), salt, prm.Time, prm.MemoryKiB, prm.Threads, uint32(prm.KeyLen))
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, prm.MemoryKiB, prm.Time, prm.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether p matches the PHC string phc, comparing the
// derived keys in constant time. It returns ErrMalformedHash (wrapped) for
// a phc it cannot use, and never panics. A p longer than MaxBytes never
// matches (Hash cannot have produced it) and costs nothing to reject.
func Verify(p, phc string) (bool, error) {
	prm, salt, want, err := parse(phc)
	if err != nil {
		return false, err
	}
	if len(p) > MaxBytes {
		return false, nil
	}
	got := idKey([]byte(p), salt, prm.Time, prm.MemoryKiB, prm.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

func (prm Params) check() error {
	switch {
	case prm.Time < 1 || prm.Time > MaxTime:
		return fmt.Errorf("%w: t=%d outside 1..%d", ErrMalformedHash, prm.Time, MaxTime)
	case prm.Threads < 1 || prm.Threads > MaxThreads:
		return fmt.Errorf("%w: p=%d outside 1..%d", ErrMalformedHash, prm.Threads, MaxThreads)
	case prm.MemoryKiB < 8*uint32(prm.Threads) || prm.MemoryKiB > MaxMemoryKiB:
		return fmt.Errorf("%w: m=%d outside %d..%d", ErrMalformedHash, prm.MemoryKiB, 8*uint32(prm.Threads), MaxMemoryKiB)
	case prm.SaltLen < 8 || prm.SaltLen > 64:
		return fmt.Errorf("%w: salt of %d bytes outside 8..64", ErrMalformedHash, prm.SaltLen)
	case prm.KeyLen < 16 || prm.KeyLen > 64:
		return fmt.Errorf("%w: hash of %d bytes outside 16..64", ErrMalformedHash, prm.KeyLen)
	}
	return nil
}

// parse reads "$argon2id$v=19$m=M,t=T,p=P$salt$hash", strictly.
func parse(phc string) (Params, []byte, []byte, error) {
	var prm Params
	// The longest valid string is well under 256 bytes; refuse to split
	// anything much longer.
	if len(phc) > 512 {
		return prm, nil, nil, fmt.Errorf("%w: too long", ErrMalformedHash)
	}
	f := strings.Split(phc, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" {
		return prm, nil, nil, fmt.Errorf("%w: not an argon2id PHC string", ErrMalformedHash)
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return prm, nil, nil, fmt.Errorf("%w: unsupported version", ErrMalformedHash)
	}
	kv := strings.Split(f[3], ",")
	if len(kv) != 3 {
		return prm, nil, nil, fmt.Errorf("%w: want parameters m,t,p", ErrMalformedHash)
	}
	var n [3]uint64
	for i, k := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(kv[i], k)
		if !ok {
			return prm, nil, nil, fmt.Errorf("%w: want parameters m,t,p", ErrMalformedHash)
		}
		x, err := decimal(v)
		if err != nil {
			return prm, nil, nil, fmt.Errorf("%w: parameter %s%q", ErrMalformedHash, k, v)
		}
		n[i] = x
	}
	if n[0] > MaxMemoryKiB || n[1] > MaxTime || n[2] > MaxThreads {
		return prm, nil, nil, fmt.Errorf("%w: parameters above limits", ErrMalformedHash)
	}
	salt, err := canonicalBase64(f[4])
	if err != nil {
		return prm, nil, nil, fmt.Errorf("%w: salt: %v", ErrMalformedHash, err)
	}
	key, err := canonicalBase64(f[5])
	if err != nil {
		return prm, nil, nil, fmt.Errorf("%w: hash: %v", ErrMalformedHash, err)
	}
	prm = Params{MemoryKiB: uint32(n[0]), Time: uint32(n[1]), Threads: uint8(n[2]), SaltLen: len(salt), KeyLen: len(key)}
	if err := prm.check(); err != nil {
		return Params{}, nil, nil, err
	}
	return prm, salt, key, nil
}

// canonicalBase64 decodes unpadded standard base64, refusing the
// characters that encoding/base64 silently skips (CR, LF).
func canonicalBase64(s string) ([]byte, error) {
	b, err := b64.DecodeString(s)
	if err != nil || b64.EncodeToString(b) != s {
		return nil, errors.New("not canonical unpadded base64")
	}
	return b, nil
}

// decimal parses a canonical unsigned decimal: digits only, no leading zero.
func decimal(s string) (uint64, error) {
	if s == "" || len(s) > 10 || (s[0] == '0' && len(s) > 1) {
		return 0, errors.New("not a canonical decimal")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a canonical decimal")
		}
	}
	return strconv.ParseUint(s, 10, 64)
}
