package firestore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/wxcc/tokenservice/shared/token"
)

// Sealer encrypts the secret fields (clientSecret, accessToken,
// refreshToken) at rest. docPath is "<collection>/<name>": with the field
// it is the associated data that binds a sealed value to its place (DESIGN
// section 6).
//
// Open must accept a value it did not seal (the Node sample's plain text)
// and return it unchanged; it returns an error wrapping token.ErrSealed
// for a sealed value that no configured key opens. Empty values are never
// passed to either method: "" is stored as "".
type Sealer interface {
	Seal(field, docPath, plaintext string) (string, error)
	Open(field, docPath, stored string) (string, error)
}

// sealedPrefix marks a sealed value. Without a Sealer such a value is
// reported as ErrSealed rather than served as a token.
const sealedPrefix = "enc:"

// open replaces the secret fields of t, read from the document at
// docPath, with their plain text. A field that does not open is left
// empty and named in the *token.SealedError it returns, which carries t.
func (s *Store) open(t *token.Token, docPath string) error {
	var sealed *token.SealedError
	for _, f := range secretsOf(t) {
		if *f.value == "" {
			continue
		}
		var err error
		if s.sealer == nil {
			if strings.HasPrefix(*f.value, sealedPrefix) {
				err = fmt.Errorf("open %s: %w: encrypted, but no encryption keys are configured", f.name, token.ErrSealed)
			}
		} else {
			var plain string
			if plain, err = s.sealer.Open(f.name, docPath, *f.value); err == nil {
				*f.value = plain
			} else {
				if !errors.Is(err, token.ErrSealed) {
					err = fmt.Errorf("%w: %w", token.ErrSealed, err)
				}
				err = fmt.Errorf("open %s: %w", f.name, err)
			}
		}
		if err == nil {
			continue
		}
		*f.value = ""
		if sealed == nil {
			sealed = &token.SealedError{Token: t, Err: err}
		}
		sealed.Fields = append(sealed.Fields, f.name)
	}
	if sealed != nil {
		return sealed
	}
	return nil
}

// seal replaces the secret fields present in m with their sealed form
// (nothing without a sealer).
func seal(sealer Sealer, m map[string]any, docPath string) error {
	if sealer == nil {
		return nil
	}
	for _, f := range secretFields {
		v, ok := m[f].(string)
		if !ok || v == "" {
			continue
		}
		sealedValue, err := sealer.Seal(f, docPath, v)
		if err != nil {
			return fmt.Errorf("seal %s: %w", f, err)
		}
		m[f] = sealedValue
	}
	return nil
}

type secretField struct {
	name  string
	value *string
}

// secretsOf points at the secret fields of t.
func secretsOf(t *token.Token) []secretField {
	return []secretField{
		{fClientSecret, &t.ClientSecret},
		{fAccessToken, &t.AccessToken},
		{fRefreshToken, &t.RefreshToken},
	}
}
