package firestore

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

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
