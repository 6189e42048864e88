package passphrase

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"hash"
	"runtime"
	"sync"

	"golang.org/x/sync/singleflight"
)

// DefaultMemoSize is the number of verified passphrases a Verifier made
// with a size of 0 remembers.
const DefaultMemoSize = 10000

// A Verifier checks passphrases against PHC strings and remembers the
// pairs that matched, so that a token's flows pay for argon2id once per
// process rather than once per request.
//
// The memo is keyed by the PHC string and a digest of the passphrase: it
// never holds a passphrase, and a changed hash (new passphrase, or new salt)
// misses automatically. The digest is HMAC-SHA-256 under a random key made
// per Verifier, so the memo cannot be matched against precomputed tables.
// Failures are not remembered: every wrong guess pays the full cost (the
// caller throttles them). Concurrent checks of the same pair share one
// computation, and at most GOMAXPROCS argon2id computations run at once,
// which bounds the memory a burst of guesses can take.
//
// A Verifier is safe for concurrent use. Make one with NewVerifier.
type Verifier struct {
	macs  sync.Pool // of hash.Hash: HMAC-SHA-256 under a random key
	max   int
	sem   chan struct{}
	group singleflight.Group

	mu   sync.RWMutex
	memo map[memoKey]struct{}
}

type memoKey struct {
	phc string
	sum [sha256.Size]byte
}

// NewVerifier returns a Verifier that remembers up to size verified pairs
// (DefaultMemoSize if size <= 0). When full, it forgets a random entry.
func NewVerifier(size int) *Verifier {
	if size <= 0 {
		size = DefaultMemoSize
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic("passphrase: crypto/rand failed: " + err.Error()) // never happens since Go 1.24
	}
	return &Verifier{
		macs: sync.Pool{New: func() any { return hmac.New(sha256.New, key) }},
		max:  size,
		sem:  make(chan struct{}, max(runtime.GOMAXPROCS(0), 1)),
		memo: make(map[memoKey]struct{}),
	}
}

// Verify reports whether p matches phc. A malformed phc never matches;
// use Check to see why.
func (v *Verifier) Verify(p, phc string) bool {
	ok, _ := v.Check(p, phc)
	return ok
}

// Check is Verify that also returns the error for a malformed phc
// (ErrMalformedHash, wrapped), for logging.
func (v *Verifier) Check(p, phc string) (bool, error) {
	if phc == "" || len(p) > MaxBytes {
		return false, nil
	}
	k := memoKey{phc: phc, sum: v.digest(p)}
	v.mu.RLock()
	_, hit := v.memo[k]
	v.mu.RUnlock()
	if hit {
		return true, nil
	}
	type result struct {
		ok  bool
		err error
	}
	r, _, _ := v.group.Do(phc+"\x00"+string(k.sum[:]), func() (any, error) {
		v.sem <- struct{}{}
		defer func() { <-v.sem }()
		ok, err := Verify(p, phc)
		if ok {
			v.remember(k)
		}
		return result{ok, err}, nil
	})
	res := r.(result)
	return res.ok, res.err
}

// Len returns the number of remembered pairs.
func (v *Verifier) Len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.memo)
}

func (v *Verifier) digest(p string) [sha256.Size]byte {
	m := v.macs.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(p))
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	v.macs.Put(m)
	return sum
}

func (v *Verifier) remember(k memoKey) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.memo[k]; ok {
		return
	}
	for old := range v.memo { // map iteration starts at a random entry
		if len(v.memo) < v.max {
			break
		}
		delete(v.memo, old)
	}
	v.memo[k] = struct{}{}
}
