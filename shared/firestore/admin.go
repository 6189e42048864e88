package firestore

import (
	"context"
	"errors"
	"fmt"
	"time"

	gfs "cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wxcc/tokenservice/shared/token"
)

// List calls fn for every token, in name order, reading pageSize documents
// per query. A token whose secrets cannot be opened is still listed, with
// those secrets empty, so that an operator sees it.
func (s *Store) List(ctx context.Context, pageSize int, fn func(*token.Token) error) error {
	if pageSize <= 0 {
		return fmt.Errorf("list: page size %d must be positive", pageSize)
	}
	q := s.coll.OrderBy(gfs.DocumentID, gfs.Asc)
	err := s.eachDocument(ctx, q, pageSize, func(snap *gfs.DocumentSnapshot) error {
		t, err := s.fromSnapshot(snap)
		var sealed *token.SealedError
		if errors.As(err, &sealed) {
			// Listed all the same, only the fields that did not open empty.
			s.log.Warn("token has secrets that no configured key opens", "token", sealed.Token.Name, "error", err.Error())
			t, err = sealed.Token, nil
		}
		if err != nil {
			return err
		}
		return fn(t)
	})
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	return nil
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
