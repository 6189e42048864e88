package firestore

import (
	"fmt"

	"github.com/wxcc/tokenservice/shared/sealing"
)

// WithKeys turns on encryption at rest with the TOKEN_ENCRYPTION_KEYS
// spec ("id:base64-of-32-bytes,..."; the first is the primary). An empty
// spec leaves encryption off. It also returns the primary key's id, "" when off.
func WithKeys(spec string) (Option, string, error) {
	keys, err := sealing.ParseKeys(spec)
	if err != nil {
		return nil, "", fmt.Errorf("TOKEN_ENCRYPTION_KEYS: %w", err)
	}
	if keys == nil {
		return func(*Store) {}, "", nil
	}
	return WithSealer(sealing.Fields{K: keys}), keys.PrimaryID(), nil
}
