package webexlogin

import "github.com/wxcc/tokenservice/shared/token"

// SameOrg reports whether two Webex organization IDs name the same
// organization, whichever way each is spelled (token.SameOrg): the UUID
// that Control Hub shows (and an operator puts in CONSOLE_ORG_ID), or the
// REST APIs' ID that /v1/people/me answers. An empty ID matches nothing.
func SameOrg(a, b string) bool { return token.SameOrg(a, b) }
