package firestore

import (
	"context"
	"fmt"
	"time"

	gfs "cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wxcc/tokenservice/shared/token"
)

// List calls fn for every token, in name order, reading pageSize documents
// per query. A token whose secrets cannot be opened is still listed, with
// its secrets empty, so that an operator sees it.
func (s *Store) List(ctx context.Context, pageSize int, fn func(*token.Token) error) error {
	if pageSize <= 0 {
		return fmt.Errorf("list: page size %d must be positive", pageSize)
	}
	q := s.coll.OrderBy(gfs.DocumentID, gfs.Asc).Limit(pageSize)
	var last *gfs.DocumentSnapshot
	for {
		page := q
		if last != nil {
			page = q.StartAfter(last)
		}
		snaps, err := page.Documents(ctx).GetAll()
		s.reads.Add(int64(max(len(snaps), 1)))
		if err != nil {
			return fmt.Errorf("list: %w", translate(err, false))
		}
		for _, snap := range snaps {
			t, bad := decode(snap.Data())
			t.Name = snap.Ref.ID
			t.Version = snap.UpdateTime
			if len(bad) > 0 {
				s.log.Warn("ignoring malformed fields", "token", t.Name, "fields", bad)
			}
			if err := s.open(t, s.docPath(t.Name)); err != nil {
				// Only the fields that did not open are empty.
				s.log.Warn("token has secrets that no configured key opens", "token", t.Name, "error", err.Error())
			}
			if err := fn(t); err != nil {
				return err
			}
		}
		if len(snaps) < pageSize {
			return nil
		}
		last = snaps[len(snaps)-1]
	}
}

// UseNonce records an OAuth state nonce as used and reports whether it
// was new: a signed state is accepted once across all instances. The
// record carries its expiry, so a Firestore TTL policy on "expires" can
// remove old ones.
func (s *Store) UseNonce(ctx context.Context, nonce string, expires time.Time) (bool, error) {
	ref := s.client.Collection(s.name + "_states").Doc(nonce)
	_, err := ref.Create(ctx, map[string]any{"expires": expires, "usedAt": s.now().UnixMilli()})
	if status.Code(err) == codes.AlreadyExists {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record state nonce: %w", translate(err, false))
	}
	return true, nil
}

// Count is the number of token documents, from an aggregation query: it
// costs one read per 1000 documents, not one per document.
func (s *Store) Count(ctx context.Context) (int64, error) {
	res, err := s.coll.NewAggregationQuery().WithCount("n").Get(ctx)
	s.reads.Add(1)
	if err != nil {
		return 0, fmt.Errorf("count tokens: %w", translate(err, false))
	}
	v, ok := res["n"]
	if !ok {
		return 0, fmt.Errorf("count tokens: no count in the answer")
	}
	switch n := v.(type) {
	case int64:
		return n, nil
	case interface{ GetIntegerValue() int64 }:
		return n.GetIntegerValue(), nil
	}
	return 0, fmt.Errorf("count tokens: unexpected %T", v)
}
