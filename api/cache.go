package main

import (
	"sync"
	"time"

	"github.com/wxcc/tokenservice/shared/token"
)

// tokenCache keeps the last token read or written per name, so that the
// hot path reads Firestore at most once per name per CACHE_MAX_AGE.
// Entries are immutable snapshots: a writer replaces, never mutates, them.
type tokenCache struct {
	mu sync.RWMutex
	m  map[string]*cacheEntry
}

type cacheEntry struct {
	// tok is nil for a name known not to exist, so that requests for
	// unknown names do not each cost a store read.
	tok *token.Token
	// checkAfter is when the entry must be re-read from the store.
	checkAfter time.Time
}

func newTokenCache() *tokenCache {
	return &tokenCache{m: map[string]*cacheEntry{}}
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
	if old := c.m[t.Name]; old != nil && old.tok != nil && old.tok.Generation > t.Generation {
		return old
	}
	e := &cacheEntry{tok: t, checkAfter: checkAfter}
	c.m[t.Name] = e
	return e
}

// putMissing remembers until checkAfter that name does not exist.
func (c *tokenCache) putMissing(name string, checkAfter time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[name] = &cacheEntry{checkAfter: checkAfter}
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
