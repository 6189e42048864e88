package passphrase

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"hash"
	"sync"

	"golang.org/x/sync/singleflight"
)

// DefaultMemoSize is the number of verified passphrases a Verifier made
// with a size of 0 remembers.
const DefaultMemoSize = 10000

// wrongMemoShare: a Verifier remembers size/wrongMemoShare wrong pairs.
const wrongMemoShare = 10

// A Verifier checks passphrases against PHC strings and remembers the
// pairs that matched, so that a token's flows pay for argon2id once per
// process rather than once per request.
//
// The memo is keyed by the PHC string and a digest of the passphrase: it
// never holds a passphrase, and a changed hash (new passphrase, or new salt)
// misses automatically. The digest is HMAC-SHA-256 under a random key made
// per Verifier, so the memo cannot be matched against precomputed tables.
//
// A smaller memo remembers pairs that did not match, so that a flow
// repeating a wrong or outdated passphrase costs one computation, not one
// per request; a guesser, whose every guess differs, gains nothing from it.
// Concurrent checks of the same pair share one computation. Computations
// go through a Queue: a few at a time, in priority order, fair between
// callers, and ErrBusy when there is no room to wait, so that guesses can
// neither take all the CPU nor make a right passphrase wait long.
//
// A Verifier is safe for concurrent use. Make one with NewVerifier.
type Verifier struct {
	macs  sync.Pool // of hash.Hash: HMAC-SHA-256 under a random key
	max   int
	queue *Queue
	group singleflight.Group

	mu    sync.RWMutex
	memo  map[memoKey]struct{}
	wrong map[memoKey]struct{}
}

type memoKey struct {
	phc string
	sum [sha256.Size]byte
}

// NewVerifier returns a Verifier that remembers up to size verified pairs
// (DefaultMemoSize if size <= 0), forgetting a random one when full, and
// runs computations through q (NewQueue(QueueConfig{}) if nil).
func NewVerifier(size int, q *Queue) *Verifier {
	if size <= 0 {
		size = DefaultMemoSize
	}
	if q == nil {
		q = NewQueue(QueueConfig{})
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic("passphrase: crypto/rand failed: " + err.Error()) // never happens since Go 1.24
	}
	return &Verifier{
		macs:  sync.Pool{New: func() any { return hmac.New(sha256.New, key) }},
		max:   size,
		queue: q,
		memo:  make(map[memoKey]struct{}),
		wrong: make(map[memoKey]struct{}),
	}
}

// Verify reports whether p matches phc, for a caller of Unknown priority.
// A malformed phc, a busy queue or an ended ctx never match; use Check to
// tell them apart.
func (v *Verifier) Verify(ctx context.Context, p, phc string) bool {
	ok, _ := v.Check(ctx, Caller{Priority: Unknown}, p, phc)
	return ok
}

// Check reports whether p matches phc. It returns ErrBusy when the
// computation could not be queued or waited too long, ctx's error when ctx
// ended first, and ErrMalformedHash (wrapped) for a phc it cannot use;
// false in each case.
func (v *Verifier) Check(ctx context.Context, c Caller, p, phc string) (bool, error) {
	if phc == "" || len(p) > MaxBytes {
		return false, nil
	}
	k := memoKey{phc: phc, sum: v.digest(p)}
	v.mu.RLock()
	_, right := v.memo[k]
	_, wrong := v.wrong[k]
	v.mu.RUnlock()
	if right || wrong {
		return right, nil
	}
	type result struct {
		ok  bool
		err error
	}
	r, err, _ := v.group.Do(phc+"\x00"+string(k.sum[:]), func() (any, error) {
		var res result
		if err := v.queue.Run(ctx, c, func() { res.ok, res.err = Verify(p, phc) }); err != nil {
			return nil, err
		}
		if res.err == nil {
			v.remember(k, res.ok)
		}
		return res, nil
	})
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, ErrBusy) {
			err = ErrBusy // the leader's caller went away; this one may retry
		}
		return false, err
	}
	res := r.(result)
	return res.ok, res.err
}

// Len returns the number of remembered pairs that matched.
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

func (v *Verifier) remember(k memoKey, ok bool) {
	m, size := v.memo, v.max
	if !ok {
		m, size = v.wrong, max(1, v.max/wrongMemoShare)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := m[k]; ok {
		return
	}
	for old := range m { // map iteration starts at a random entry
		if len(m) < size {
			break
		}
		delete(m, old)
	}
	m[k] = struct{}{}
}
