package firestore

import (
	"context"

	"github.com/wxcc/tokenservice/shared/token"
)

// List calls fn for every token, in name order, reading pageSize documents
// per query. A token whose secrets cannot be opened is still listed, with
// those secrets empty, so that an operator sees it (ListChecked says which).
func (s *Store) List(ctx context.Context, pageSize int, fn func(*token.Token) error) error {
	return s.ListChecked(ctx, pageSize, func(t *token.Token, _ []string) error { return fn(t) })
}
