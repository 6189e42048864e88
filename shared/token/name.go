package token

import (
	"fmt"
	"strings"
)

// MaxNameLen is the longest token name accepted.
const MaxNameLen = 128

// ValidateName checks a token name: 1-128 characters of A-Z a-z 0-9 . _ -,
// not "." or "..", and not of Firestore's reserved form __*__. A valid name
// is safe as a Firestore document ID and in a URL path.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: name is empty", ErrInvalidName)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: name is longer than %d characters", ErrInvalidName, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("%w: name may contain only A-Z a-z 0-9 . _ -", ErrInvalidName)
		}
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%w: name may not be . or ..", ErrInvalidName)
	}
	if len(name) >= 4 && strings.HasPrefix(name, "__") && strings.HasSuffix(name, "__") {
		return fmt.Errorf("%w: names of the form __*__ are reserved", ErrInvalidName)
	}
	return nil
}
