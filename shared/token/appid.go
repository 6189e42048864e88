package token

import (
	"errors"
	"fmt"
)

// MaxAppIDLen is the longest Service App ID accepted. A Webex application
// ID is about 90 characters; the bound only keeps junk out.
const MaxAppIDLen = 512

// ErrInvalidAppID: a Service App's appId is not shaped like a Webex
// application ID.
var ErrInvalidAppID = errors.New("invalid appId")

// ValidateAppID checks a Service App's appId, which the mint puts in the
// path /v1/applications/{appId}/token. Webex IDs are base64 encodings of
// a URI (ciscospark://us/APPLICATION/<id>), written with the URL-safe
// alphabet and sometimes padded; some APIs also take the bare UUID. So
// an appId is 1-512 characters of A-Z a-z 0-9 - _, optionally ending in
// one or two "=". Such a value needs no escaping in a URL path and can be
// neither a dot segment nor a separator, so it cannot move the mint off
// its endpoint.
func ValidateAppID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidAppID)
	}
	if len(id) > MaxAppIDLen {
		return fmt.Errorf("%w: longer than %d characters", ErrInvalidAppID, MaxAppIDLen)
	}
	body := len(id)
	for body > 0 && len(id)-body < 2 && id[body-1] == '=' {
		body--
	}
	if body == 0 {
		return fmt.Errorf("%w: only padding", ErrInvalidAppID)
	}
	for i := 0; i < body; i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: a Webex application ID has only A-Z a-z 0-9 - _ (base64url), and at most two = at the end", ErrInvalidAppID)
		}
	}
	return nil
}
