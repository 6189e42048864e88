package throttle

import (
	"hash/maphash"
	"sync"
	"time"
)

// RecentAddrs remembers which addresses did something (presented a right
// passphrase, was refused a place in a queue) within the last ttl, in
// bounded memory. It is safe for concurrent use. Make one with
// NewRecentAddrs.
type RecentAddrs struct {
	ttl      int64 // nanoseconds
	now      func() time.Time
	perShard int
	seed     maphash.Seed
	shards   [shardCount]recentShard
}

type recentShard struct {
	mu   sync.RWMutex
	last map[string]int64 // unix nanoseconds of the latest Record
}

// NewRecentAddrs returns a RecentAddrs that remembers an address for ttl
// after it was last recorded, and at most maxAddrs addresses (spread over shards;
// a full shard forgets its least recent address first, among a few). now is
// the clock (time.Now if nil).
func NewRecentAddrs(ttl time.Duration, maxAddrs int, now func() time.Time) *RecentAddrs {
	if now == nil {
		now = time.Now
	}
	s := &RecentAddrs{ttl: int64(ttl), now: now, perShard: max(1, (maxAddrs+shardCount-1)/shardCount), seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].last = make(map[string]int64)
	}
	return s
}

// refreshAfter is the share of ttl after which an address is recorded again:
// most Records of a busy address cost only a read-locked lookup.
const refreshAfter = 16

// Record notes addr now.
func (s *RecentAddrs) Record(addr string) {
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

// Recent reports whether addr was recorded within the last ttl.
func (s *RecentAddrs) Recent(addr string) bool {
	sh := &s.shards[maphash.String(s.seed, addr)%shardCount]
	sh.mu.RLock()
	last, ok := sh.last[addr]
	sh.mu.RUnlock()
	return ok && s.now().UnixNano()-last < s.ttl
}

// Len returns the number of addresses remembered.
func (s *RecentAddrs) Len() int {
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
func (s *RecentAddrs) evict(sh *recentShard, now int64) {
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
