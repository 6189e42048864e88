package token

import "time"

// Change is what a store's change feed says about one token document: its
// new state, or that it is gone. A feed lets every api instance honour a
// change made through another one (a deletion, a passphrase, a client
// config, a rotation) within moments instead of CACHE_MAX_AGE.
type Change struct {
	Name string
	// Token is the document as it now is, secrets opened; nil when the
	// document was deleted, or when Err says why it cannot be served.
	Token *Token
	// Err, if not nil, is why the document cannot be served: a
	// *SealedError (which holds the token) when no configured key opens
	// its secrets.
	Err error
	// Unseen says that the feed listed the collection again and did not
	// see the document: probably deleted while the feed was away, but not
	// for sure (the Firestore emulator, after a resumed stream's RESET,
	// can reach a consistent point before it has sent every document
	// again), so a reader reads it again rather than call it gone.
	Unseen bool
}

// Deleted reports whether the change is the document's deletion, as the
// store reported it.
func (c Change) Deleted() bool { return c.Token == nil && c.Err == nil && !c.Unseen }

// Changes is one batch of a change feed.
type Changes struct {
	// Complete says that the feed has just finished listing every token
	// document there is (at its start): Exists then reports which names
	// the listing saw; a name it denies is unseen (see Change.Unseen),
	// not known to be gone. The listing's documents
	// arrive in this batch and, for a large collection, in the batches
	// just before it.
	Complete bool
	// Exists, set in a complete batch only, reports whether a token
	// document has name. It is valid only while the batch is handled.
	Exists func(name string) bool
	// At is the store's time the batch is consistent at (comparable with
	// Token.Version): a deletion it reports happened at or before At, so
	// a state stored after At is newer than the deletion. Deletions come
	// only in batches that are consistent; a batch sent ahead of that
	// (part of a long listing) holds new states only.
	At   time.Time
	List []Change
}
