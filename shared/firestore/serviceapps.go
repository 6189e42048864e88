package firestore

import (
	"context"
	"fmt"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/token"
)

// ServiceApps calls fn for every token of kind service_app, in name
// order, reading pageSize documents per query (an equality filter: no
// composite index). A sweep looks at each of them, whatever their
// expiries: one without tokens has none to be found by. A document whose
// secrets cannot be opened is skipped; the walk goes on and the errors
// of all such documents are returned at the end.
func (s *Store) ServiceApps(ctx context.Context, pageSize int, fn func(*token.Token) error) error {
	if pageSize <= 0 {
		return fmt.Errorf("service apps: page size %d must be positive", pageSize)
	}
	q := s.coll.Where(fKind, "==", string(token.KindServiceApp)).OrderBy(gfs.DocumentID, gfs.Asc)
	if err := s.eachToken(ctx, q, pageSize, fn); err != nil {
		return fmt.Errorf("service apps: %w", err)
	}
	return nil
}
