package firestore

import (
	"context"
	"errors"
	"fmt"
	"time"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/token"
)

// Due calls fn for every token whose accessExpires is before before, in
// order of accessExpires (then name), reading pageSize documents per
// query; fn runs between queries, never while one is open, and may use the
// store. Firestore compares integer and floating-point numbers as one type,
// so the Node sample's integers and older writers' doubles are both found;
// an accessExpires stored as a timestamp, or absent, is not (pending
// tokens have none). An error from fn stops the walk and is returned. A
// document whose secrets cannot be opened is skipped; the walk goes on and
// the errors of all such documents are returned at the end.
func (s *Store) Due(ctx context.Context, before time.Time, pageSize int, fn func(*token.Token) error) error {
	if err := s.walk(ctx, fAccessExpires, before, pageSize, fn); err != nil {
		return fmt.Errorf("due: %w", err)
	}
	return nil
}

// RefreshExpiring is Due over refreshExpires: it calls fn for every token
// whose refresh token expires before before, in that order, with the same
// paging and error handling.
func (s *Store) RefreshExpiring(ctx context.Context, before time.Time, pageSize int, fn func(*token.Token) error) error {
	if err := s.walk(ctx, fRefreshExpires, before, pageSize, fn); err != nil {
		return fmt.Errorf("refresh expiring: %w", err)
	}
	return nil
}

// walk calls fn for the tokens whose field (integer or double ms) is
// before before, in order of field, then name.
func (s *Store) walk(ctx context.Context, field string, before time.Time, pageSize int, fn func(*token.Token) error) error {
	if pageSize <= 0 {
		return fmt.Errorf("page size %d must be positive", pageSize)
	}
	q := s.coll.Where(field, "<", before.UnixMilli()).OrderBy(field, gfs.Asc)
	return s.eachToken(ctx, q, pageSize, fn)
}

// eachToken calls fn for the tokens q finds. A document that cannot be
// decoded or opened is skipped: the walk goes on (one bad document must
// not stop the others' refreshes), and the errors of all skipped
// documents are returned at the end.
func (s *Store) eachToken(ctx context.Context, q gfs.Query, pageSize int, fn func(*token.Token) error) error {
	var skipped []error
	err := s.eachDocument(ctx, q, pageSize, func(snap *gfs.DocumentSnapshot) error {
		t, err := s.fromSnapshot(snap)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("skip %s: %w", snap.Ref.ID, err))
			return nil
		}
		return fn(t)
	})
	if err != nil {
		return err
	}
	return errors.Join(skipped...)
}

// eachDocument runs q a page of pageSize documents at a time, each page
// starting after the last document of the one before, and calls fn for
// every document. fn runs between queries, never while one is open. A
// query's error is translated; fn's is returned as it is.
func (s *Store) eachDocument(ctx context.Context, q gfs.Query, pageSize int, fn func(*gfs.DocumentSnapshot) error) error {
	q = q.Limit(pageSize)
	var last *gfs.DocumentSnapshot
	for {
		page := q
		if last != nil {
			page = q.StartAfter(last)
		}
		snaps, err := page.Documents(ctx).GetAll()
		s.reads.Add(int64(max(len(snaps), 1)))
		if err != nil {
			return translate(err, false)
		}
		for _, snap := range snaps {
			if err := fn(snap); err != nil {
				return err
			}
		}
		if len(snaps) < pageSize {
			return nil
		}
		last = snaps[len(snaps)-1]
	}
}
