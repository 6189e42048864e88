package firestore

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wxcc/tokenservice/shared/token"
)

// translate turns a Firestore error into the model's: NotFound into
// ErrNotFound; for conditional writes (conflict true) FailedPrecondition,
// Aborted and AlreadyExists into ErrConflict; Unavailable, DeadlineExceeded
// and an expired context into ErrUnavailable. The original error stays in
// the chain.
func translate(err error, conflict bool) error {
	switch status.Code(err) {
	case codes.NotFound:
		return fmt.Errorf("%w: %w", token.ErrNotFound, err)
	case codes.FailedPrecondition, codes.Aborted, codes.AlreadyExists:
		if conflict {
			return fmt.Errorf("%w: %w", token.ErrConflict, err)
		}
	case codes.Unavailable, codes.DeadlineExceeded:
		return fmt.Errorf("%w: %w", token.ErrUnavailable, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", token.ErrUnavailable, err)
	}
	return err
}
