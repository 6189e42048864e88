package firestore

import (
	"context"
	"errors"
	"fmt"

	gfs "cloud.google.com/go/firestore"

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
