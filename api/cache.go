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
	// filled is closed when the cache takes its first entry: until then
	// it holds nothing a change elsewhere could make stale.
	filled     chan struct{}
	filledOnce sync.Once
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
	// unseen: the change feed listed the collection and did not see the
	// token (checkAfter is zero): only a read or a newer state settles
	// whether it still exists.
	unseen bool
}

func newTokenCache(maxMissing int) *tokenCache {
	return &tokenCache{m: map[string]*cacheEntry{}, missing: make([]*cacheEntry, max(maxMissing, 1)), filled: make(chan struct{})}
}

// noteFilled marks the cache as holding something (called with c.mu held).
func (c *tokenCache) noteFilled() { c.filledOnce.Do(func() { close(c.filled) }) }

func (c *tokenCache) get(name string) *cacheEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[name]
}

// put stores t unless the cache already holds a newer state of it
// (newer); then that one is kept, and served until checkAfter: the store
// answered with an older state than this instance holds (a write of its
// own not landed yet, or a read that raced a refresh).
func (c *tokenCache) put(t *token.Token, checkAfter time.Time) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.noteFilled()
	e := &cacheEntry{tok: t, checkAfter: checkAfter}
	if old := c.m[t.Name]; old != nil && old.tok != nil && old.unreadable == nil && newer(old.tok, t) {
		e.tok = old.tok
	}
	c.m[t.Name] = e
	return e
}

// newer reports whether a is a later state of its document than b: by the
// store's update time when both carry one (it grows with every write,
// across a deletion and a re-creation, whose generation starts again),
// else by generation (a grant not yet stored carries no update time).
func newer(a, b *token.Token) bool {
	if !a.Version.IsZero() && !b.Version.IsZero() {
		return a.Version.After(b.Version)
	}
	return a.Generation > b.Generation
}

// changed applies a change the store reported (the change feed) to the
// entry of its name, if the cache holds one: a token's new state replaces
// an older one, an unknown name that now exists is forgotten (the next
// request reads it), a deletion makes the name unknown unless the cache
// holds a state stored after it, and an unseen name is read again at its
// next request. Names the cache does not hold are
// left alone, without a write lock: the cache fills from requests only.
func (c *tokenCache) changed(ch token.Change, at, checkAfter, missingUntil time.Time) {
	if c.get(ch.Name) == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m[ch.Name]
	switch {
	case old == nil:
	case ch.Deleted():
		if old.tok != nil && !old.tok.Version.IsZero() && old.tok.Version.After(at) {
			return // re-created and read after the deletion
		}
		if old.tok != nil {
			c.missingLocked(ch.Name, missingUntil)
		}
	case old.tok == nil:
		delete(c.m, ch.Name) // was unknown: read it again rather than trust the order of notices
	case ch.Unseen:
		if !old.tok.Version.IsZero() && old.tok.Version.After(at) {
			return // read after the listing that missed it
		}
		// Probably deleted: read again at the next request, and kept for
		// serving meanwhile if the store cannot answer, as any stale entry.
		c.m[ch.Name] = &cacheEntry{tok: old.tok, unreadable: old.unreadable, unseen: true}
	case ch.Token != nil:
		if old.unreadable == nil && newer(old.tok, ch.Token) {
			return
		}
		if old.unseen && !newer(ch.Token, old.tok) {
			return // the state it had, sent again: the emulator re-sends deleted documents, so only a read settles it
		}
		c.m[ch.Name] = &cacheEntry{tok: ch.Token, checkAfter: checkAfter}
	default:
		var sealed *token.SealedError
		if errors.As(ch.Err, &sealed) && (old.unreadable != nil || !newer(old.tok, sealed.Token)) {
			c.m[ch.Name] = &cacheEntry{tok: sealed.Token, unreadable: ch.Err, checkAfter: checkAfter}
		}
	}
}

// tokenNames returns the names the cache holds a token for (unreadable
// ones included), under the read lock only.
func (c *tokenCache) tokenNames() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := make([]string, 0, len(c.m))
	for name, e := range c.m {
		if e.tok != nil {
			names = append(names, name)
		}
	}
	return names
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
	c.noteFilled()
	c.m[sealed.Token.Name] = &cacheEntry{tok: sealed.Token, unreadable: err, checkAfter: checkAfter}
}

// putMissing remembers until checkAfter that name does not exist,
// forgetting the oldest unknown name when maxMissing are remembered.
func (c *tokenCache) putMissing(name string, checkAfter time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.noteFilled()
	c.missingLocked(name, checkAfter)
}

func (c *tokenCache) missingLocked(name string, checkAfter time.Time) {
	if old := c.missing[c.next]; old != nil && c.m[old.name] == old {
		delete(c.m, old.name)
	}
	e := &cacheEntry{name: name, checkAfter: checkAfter}
	c.m[name] = e
	c.missing[c.next] = e
	c.next = (c.next + 1) % len(c.missing)
}

// postpone keeps serving the token cached under name without a store
// read until checkAfter: the store failed. That is e's token, or a state
// the change feed put there meanwhile (newer, or as new).
func (c *tokenCache) postpone(e *cacheEntry, checkAfter time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	name := e.tok.Name
	cur := c.m[name]
	switch {
	case cur == e:
		// An unseen token stays unseen: a state sent again must not
		// settle it meanwhile.
		c.m[name] = &cacheEntry{tok: e.tok, checkAfter: checkAfter, unseen: e.unseen}
	case cur != nil && cur.tok != nil && cur.unreadable == nil && cur.checkAfter.Before(checkAfter):
		c.m[name] = &cacheEntry{tok: cur.tok, checkAfter: checkAfter}
	}
}

func (c *tokenCache) drop(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, name)
}
