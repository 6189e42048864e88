package webex

import (
	"errors"
	"net/url"
)

// errNotASegment: a stored value that would change a URL's path if put in
// it, so the request is not sent.
var errNotASegment = errors.New("not usable as a URL path segment")

// pathSegment returns s escaped as one segment of a URL path, for every
// path built from stored data: url.PathEscape turns "/", "?", "#" and "%"
// into escapes, but leaves "." alone, so "." and ".." (which a server or a
// proxy resolves against the path around them) and "" (which merges two
// slashes) are refused instead. No other value can leave its segment.
func pathSegment(s string) (string, error) {
	switch s {
	case "", ".", "..":
		return "", errNotASegment
	}
	return url.PathEscape(s), nil
}
