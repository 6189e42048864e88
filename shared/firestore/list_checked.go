package firestore

import (
	"context"
	"errors"
	"fmt"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/token"
)

// ListChecked is List that also tells fn which secret fields of each
// token no configured key opened (by their document names; none for a
// token that opened), so that an operator sees which tokens cannot be
// served.
func (s *Store) ListChecked(ctx context.Context, pageSize int, fn func(t *token.Token, unreadable []string) error) error {
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
			return fn(sealed.Token, sealed.Fields)
		}
		if err != nil {
			return err
		}
		return fn(t, nil)
	})
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	return nil
}
