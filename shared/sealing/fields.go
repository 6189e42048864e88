package sealing

import (
	"errors"
	"fmt"

	"github.com/wxcc/tokenservice/shared/token"
)

// Fields adapts a Keyring to the store's Sealer: the associated data of a
// field is AAD's "<collection>/<name>#<field>" (docPath is
// "<collection>/<name>"), and every failure to open wraps token.ErrSealed so
// the api answers 503, never the ciphertext.
type Fields struct{ K *Keyring }

// Seal encrypts plaintext for field of the document at docPath.
func (f Fields) Seal(field, docPath, plaintext string) (string, error) {
	return f.K.Seal(docPath+"#"+field, plaintext)
}

// Open decrypts stored, or returns plain text (the Node sample's) as is.
func (f Fields) Open(field, docPath, stored string) (string, error) {
	plain, _, err := f.K.Open(docPath+"#"+field, stored)
	if err != nil {
		var uk *UnknownKeyError
		if errors.As(err, &uk) {
			return "", fmt.Errorf("%w: %s is sealed under key id %q, which TOKEN_ENCRYPTION_KEYS does not hold", token.ErrSealed, field, uk.KeyID)
		}
		return "", fmt.Errorf("%w: %s: %w", token.ErrSealed, field, err)
	}
	return plain, nil
}
