// Package throttle limits failed passphrase attempts per client address:
// per token name (Throttle), and across names (Budget).
//
// When limit failures for a pair fall within the last window, the pair is
// blocked: every request for it should be refused (HTTP 429 with
// Retry-After), whatever passphrase it carries, until enough of those
// failures have aged out of the window. A success does not reset the count.
// Keying on the name as well as the address keeps one misconfigured flow
// from locking out every flow behind the same egress address.
//
// A Budget closes the gap that keying on the name leaves: changing the name
// would reset the count. It blocks an address once failures for limit
// distinct names fall within the window. Counting names rather than
// failures means a flow that keeps failing on one name uses one unit of its
// address's budget, however often it repeats, while a guesser moving from
// name to name uses one per name.
//
// RecentAddrs remembers which addresses recently did something (presented
// a right passphrase, say), so that work done for them can go first.
//
// State is per instance and in memory. The number of tracked keys is
// capped; keys whose failures have all aged out are dropped lazily. The
// package imports no database or HTTP framework.
package throttle

import (
	"hash/maphash"
	"sync"
	"time"
)

// DefaultMaxPairs is the number of (address, name) pairs tracked at most,
// unless WithMaxPairs says otherwise. At a limit of 10 a pair costs about
// 200 bytes, so the cap bounds the state to about 20 MB. The cap is split
// over shards, so a shard may start evicting a little before the total is
// reached.
const DefaultMaxPairs = 100_000

const shardCount = 32

// evictionSample is how many random pairs are looked at to choose one to
// drop when a shard is full and nothing has expired.
const evictionSample = 8

// A Throttle counts failures per (address, name) pair. It is safe for
// concurrent use. Make one with New.
type Throttle struct {
	limit    int
	window   time.Duration
	now      func() time.Time
	perShard int
	seed     maphash.Seed
	// distinct makes the Throttle count distinct names per address
	// (a Budget) instead of failures per pair.
	distinct bool
	shards   [shardCount]shard
}

type key struct{ addr, name string }

type shard struct {
	mu        sync.RWMutex
	pairs     map[key]*entry
	lastSweep int64 // unix nanoseconds
}

// entry holds the times of the last limit failures. For a pair they form a
// ring in time order; for a Budget each slot is one name (tags), holding
// the time of its latest failure.
type entry struct {
	at   []int64  // unix nanoseconds, len == limit
	tags []uint64 // a Budget's name hashes, else nil
	next int      // pairs: where the next failure goes; when full, the oldest
	n    int      // slots used, at most limit
}

// An Option changes a Throttle made by New.
type Option func(*Throttle)

// WithMaxPairs caps the number of tracked pairs (DefaultMaxPairs if n <= 0);
// for a Budget, the number of tracked addresses.
func WithMaxPairs(n int) Option {
	return func(t *Throttle) {
		if n > 0 {
			t.perShard = max(1, (n+shardCount-1)/shardCount)
		}
	}
}

// New returns a Throttle that blocks a pair while limit failures fall
// within the last window. A limit or window below 1 turns throttling off.
// now is the clock (time.Now if nil).
func New(limit int, window time.Duration, now func() time.Time, opts ...Option) *Throttle {
	if now == nil {
		now = time.Now
	}
	t := &Throttle{
		limit:    limit,
		window:   window,
		now:      now,
		perShard: (DefaultMaxPairs + shardCount - 1) / shardCount,
		seed:     maphash.MakeSeed(),
	}
	for _, o := range opts {
		o(t)
	}
	for i := range t.shards {
		t.shards[i].pairs = make(map[key]*entry)
	}
	return t
}

func (t *Throttle) off() bool { return t.limit < 1 || t.window <= 0 }

func (t *Throttle) shard(k key) *shard {
	return &t.shards[maphash.Comparable(t.seed, k)%shardCount]
}

// Blocked reports whether the pair is blocked and, if so, how long until
// it no longer is (always positive; round it up to whole seconds for
// Retry-After). For a pair without failures it costs a read-locked map
// lookup.
func (t *Throttle) Blocked(addr, name string) (retryAfter time.Duration, blocked bool) {
	if t.off() {
		return 0, false
	}
	k := key{addr, name}
	s := t.shard(k)
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.pairs[k]
	if e == nil {
		return 0, false
	}
	return t.status(e, t.now().UnixNano())
}

// Failures returns how many failures of the pair fall within the window
// (at most the limit).
func (t *Throttle) Failures(addr, name string) int {
	if t.off() {
		return 0
	}
	k := key{addr, name}
	s := t.shard(k)
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.pairs[k]
	if e == nil {
		return 0
	}
	return t.inWindow(e, t.now().UnixNano())
}

// Fail records a failed attempt for the pair and returns the pair's state
// afterwards, as Blocked would.
func (t *Throttle) Fail(addr, name string) (retryAfter time.Duration, blocked bool) {
	if t.off() {
		return 0, false
	}
	now := t.now().UnixNano()
	k := key{addr, name}
	var tag uint64
	if t.distinct {
		k.name, tag = "", maphash.String(t.seed, name)
	}
	s := t.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if now-s.lastSweep >= int64(t.window) {
		t.sweep(s, now)
	}
	e := s.pairs[k]
	if e == nil {
		if len(s.pairs) >= t.perShard {
			t.sweep(s, now)
			if len(s.pairs) >= t.perShard {
				t.evict(s, now)
			}
		}
		e = &entry{at: make([]int64, t.limit)}
		if t.distinct {
			e.tags = make([]uint64, t.limit)
		}
		s.pairs[k] = e
	}
	if t.distinct {
		t.record(e, tag, now)
	} else {
		e.at[e.next] = now
		e.next = (e.next + 1) % t.limit
		e.n = min(e.n+1, t.limit)
	}
	return t.status(e, now)
}

// record notes a Budget's failure for the name whose hash is tag: the
// name's slot moves to now; a new name takes a free slot, or the oldest.
func (t *Throttle) record(e *entry, tag uint64, now int64) {
	for i := range e.n {
		if e.tags[i] == tag {
			e.at[i] = now
			return
		}
	}
	i := e.n
	if e.n < t.limit {
		e.n++
	} else {
		i = t.oldestSlot(e)
	}
	e.tags[i], e.at[i] = tag, now
}

// Len returns the number of pairs tracked.
func (t *Throttle) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		n += len(s.pairs)
		s.mu.RUnlock()
	}
	return n
}

// status: blocked when the limit-th most recent failure is still inside
// the window; it unblocks when that one ages out.
func (t *Throttle) status(e *entry, now int64) (time.Duration, bool) {
	if e.n < t.limit {
		return 0, false
	}
	oldest := e.at[t.oldestSlot(e)]
	left := time.Duration(oldest + int64(t.window) - now)
	if left <= 0 {
		return 0, false
	}
	return min(left, t.window), true // min: the clock may have gone back
}

// oldestSlot is the slot of the oldest failure of a full entry.
func (t *Throttle) oldestSlot(e *entry) int {
	if !t.distinct {
		return e.next
	}
	o := 0
	for i := 1; i < e.n; i++ {
		if e.at[i] < e.at[o] {
			o = i
		}
	}
	return o
}

func (t *Throttle) newest(e *entry) int64 {
	if !t.distinct {
		return e.at[(e.next+t.limit-1)%t.limit]
	}
	var n int64
	for _, at := range e.at[:e.n] {
		n = max(n, at)
	}
	return n
}

// sweep drops the pairs whose failures have all aged out. Called with s.mu
// held, at most about once per window per shard, or when the shard is full.
func (t *Throttle) sweep(s *shard, now int64) {
	s.lastSweep = now
	for k, e := range s.pairs {
		if now-t.newest(e) >= int64(t.window) {
			delete(s.pairs, k)
		}
	}
}

// evict drops, among a few random pairs, the one with the fewest failures
// in the window (the oldest last failure breaking ties). Blocked pairs are
// thus kept as long as unblocked ones are found, so flooding the table
// with new pairs does not free a blocked one.
func (t *Throttle) evict(s *shard, now int64) {
	var victim key
	found := false
	var fewest int
	var oldest int64
	i := 0
	for k, e := range s.pairs { // starts at a random entry
		n, nt := t.inWindow(e, now), t.newest(e)
		if !found || n < fewest || n == fewest && nt < oldest {
			victim, fewest, oldest, found = k, n, nt, true
		}
		if i++; i == evictionSample {
			break
		}
	}
	if found {
		delete(s.pairs, victim)
	}
}

func (t *Throttle) inWindow(e *entry, now int64) int {
	n := 0
	for _, at := range e.at[:e.n] {
		if now-at < int64(t.window) {
			n++
		}
	}
	return n
}

// A Budget limits failures per address across names: it blocks an address
// while failures for limit distinct names fall within the window, whatever
// the names. Repeated failures on one name count once. It is safe for
// concurrent use. Make one with NewBudget.
type Budget struct{ t *Throttle }

// NewBudget returns a Budget that blocks an address once limit distinct
// names failed from it within window. A limit or window below 1 turns it
// off. WithMaxPairs caps the number of addresses tracked.
func NewBudget(limit int, window time.Duration, now func() time.Time, opts ...Option) *Budget {
	t := New(limit, window, now, opts...)
	t.distinct = true
	return &Budget{t: t}
}

// Blocked reports whether addr is blocked and, if so, for how long.
func (b *Budget) Blocked(addr string) (retryAfter time.Duration, blocked bool) {
	return b.t.Blocked(addr, "")
}

// Fail records a failure from addr for name and returns addr's state
// afterwards, as Blocked would.
func (b *Budget) Fail(addr, name string) (retryAfter time.Duration, blocked bool) {
	return b.t.Fail(addr, name)
}

// Names returns how many distinct names failed from addr within the
// window (at most the limit).
func (b *Budget) Names(addr string) int { return b.t.Failures(addr, "") }

// Len returns the number of addresses tracked.
func (b *Budget) Len() int { return b.t.Len() }
