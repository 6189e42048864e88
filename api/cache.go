package main

import (
	"errors"
	"sync"
	"time"

	"github.com/wxcc/tokenservice/shared/token"
)

// maxMissing is how many unknown names the cache remembers at most. Each
// costs about 200 bytes, so the names a caller can make up cost at most
// about 2 MB; past the cap the oldest is forgotten first (its next request
// reads Firestore again, which the per-address budget limits).
const maxMissing = 10_000

// tokenCache keeps the last token read or written per name, so that the
// hot path reads Firestore at most once per name per CACHE_MAX_AGE, and
// remembers briefly which names do not exist (at most maxMissing).
// Entries are immutable snapshots: a writer replaces, never mutates, them.
type tokenCache struct {
	mu sync.RWMutex
	m  map[string]*cacheEntry
	// missing is a ring of the "missing" entries put into m, in the order
	// they were put; next is where the next one goes, over the oldest. An
	// entry replaced in m since is left alone when its turn comes. The
	// ring's length bounds the missing entries in m.
	missing []*cacheEntry
	next    int
}

type cacheEntry struct {
	// tok is nil for a name known not to exist, so that requests for
	// unknown names do not each cost a store read.
	tok *token.Token
	// name is the name of a missing entry (tok is nil).
	name string
	// unreadable, if not nil, says that tok's secrets do not open with
	// the configured keys (a *token.SealedError holding tok): it is
	// remembered, and never served.
	unreadable error
	// checkAfter is when the entry must be re-read from the store.
	checkAfter time.Time
}

func newTokenCache(maxMissing int) *tokenCache {
	return &tokenCache{m: map[string]*cacheEntry{}, missing: make([]*cacheEntry, max(maxMissing, 1))}
}

func (c *tokenCache) get(name string) *cacheEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[name]
}

// put stores t unless the cache already holds a newer generation.
func (c *tokenCache) put(t *token.Token, checkAfter time.Time) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[t.Name]; old != nil && old.tok != nil && old.unreadable == nil && old.tok.Generation > t.Generation {
		return old
	}
	e := &cacheEntry{tok: t, checkAfter: checkAfter}
	c.m[t.Name] = e
	return e
}

// putUnreadable remembers until checkAfter that the token err holds (a
// *token.SealedError) cannot be decrypted.
func (c *tokenCache) putUnreadable(err error, checkAfter time.Time) {
	var sealed *token.SealedError
	if !errors.As(err, &sealed) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[sealed.Token.Name] = &cacheEntry{tok: sealed.Token, unreadable: err, checkAfter: checkAfter}
}

// putMissing remembers until checkAfter that name does not exist,
// forgetting the oldest unknown name when maxMissing are remembered.
func (c *tokenCache) putMissing(name string, checkAfter time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.missing[c.next]; old != nil && c.m[old.name] == old {
		delete(c.m, old.name)
	}
	e := &cacheEntry{name: name, checkAfter: checkAfter}
	c.m[name] = e
	c.missing[c.next] = e
	c.next = (c.next + 1) % len(c.missing)
}

// postpone keeps serving e without a store read until checkAfter.
func (c *tokenCache) postpone(e *cacheEntry, checkAfter time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[e.tok.Name] == e {
		c.m[e.tok.Name] = &cacheEntry{tok: e.tok, checkAfter: checkAfter}
	}
}

func (c *tokenCache) drop(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, name)
}
