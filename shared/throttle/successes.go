package throttle

import (
	"hash/maphash"
	"sync"
	"time"
)

// Successes remembers which addresses presented a right passphrase within
// the last ttl. An attacker cannot get an address remembered without
// knowing a passphrase, so work queued for remembered addresses may go
// first. It is safe for concurrent use. Make one with NewSuccesses.
type Successes struct {
	ttl      int64 // nanoseconds
	now      func() time.Time
	perShard int
	seed     maphash.Seed
	shards   [shardCount]successShard
}

type successShard struct {
	mu   sync.RWMutex
	last map[string]int64 // unix nanoseconds of the latest success
}

// NewSuccesses returns a Successes that remembers an address for ttl after
// its latest success, and at most maxAddrs addresses (spread over shards;
// a full shard forgets its least recent address first, among a few). now is
// the clock (time.Now if nil).
func NewSuccesses(ttl time.Duration, maxAddrs int, now func() time.Time) *Successes {
	if now == nil {
		now = time.Now
	}
	s := &Successes{ttl: int64(ttl), now: now, perShard: max(1, (maxAddrs+shardCount-1)/shardCount), seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].last = make(map[string]int64)
	}
	return s
}

// refreshAfter is the share of ttl after which a success is written again:
// most successes of a busy address cost only a read-locked lookup.
const refreshAfter = 16

// Record notes a success from addr.
func (s *Successes) Record(addr string) {
	now := s.now().UnixNano()
	sh := &s.shards[maphash.String(s.seed, addr)%shardCount]
	sh.mu.RLock()
	last, ok := sh.last[addr]
	sh.mu.RUnlock()
	if ok && now-last >= 0 && now-last < s.ttl/refreshAfter {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.last[addr]; !ok && len(sh.last) >= s.perShard {
		s.evict(sh, now)
	}
	sh.last[addr] = now
}

// Recent reports whether addr succeeded within the last ttl.
func (s *Successes) Recent(addr string) bool {
	sh := &s.shards[maphash.String(s.seed, addr)%shardCount]
	sh.mu.RLock()
	last, ok := sh.last[addr]
	sh.mu.RUnlock()
	return ok && s.now().UnixNano()-last < s.ttl
}

// Len returns the number of addresses remembered.
func (s *Successes) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		n += len(sh.last)
		sh.mu.RUnlock()
	}
	return n
}

// evict drops the expired addresses of a full shard or, if none expired,
// the least recent among a few random ones. Called with sh.mu held.
func (s *Successes) evict(sh *successShard, now int64) {
	for a, last := range sh.last {
		if now-last >= s.ttl {
			delete(sh.last, a)
		}
	}
	if len(sh.last) < s.perShard {
		return
	}
	var victim string
	oldest := int64(0)
	i := 0
	for a, last := range sh.last { // starts at a random entry
		if i == 0 || last < oldest {
			victim, oldest = a, last
		}
		if i++; i == evictionSample {
			break
		}
	}
	delete(sh.last, victim)
}
