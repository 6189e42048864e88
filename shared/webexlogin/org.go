package webexlogin

import (
	"encoding/base64"
	"strings"
)

// SameOrg reports whether two Webex organization IDs name the same
// organization, whichever way each is spelled: the UUID that Control Hub
// shows (and an operator puts in CONSOLE_ORG_ID), or the REST APIs' ID
// that /v1/people/me answers, base64 of
// ciscospark://<region>/ORGANIZATION/<uuid>. An empty ID matches nothing.
func SameOrg(a, b string) bool {
	na, nb := orgKey(a), orgKey(b)
	return na != "" && na == nb
}

// orgKey is the UUID inside an organization ID, lower case.
func orgKey(id string) string {
	id = strings.TrimSpace(id)
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		raw, err := enc.DecodeString(strings.TrimRight(id, "="))
		if err != nil {
			continue
		}
		rest, ok := strings.CutPrefix(string(raw), "ciscospark://")
		if _, uuid, found := strings.Cut(rest, "/ORGANIZATION/"); ok && found && uuid != "" && !strings.Contains(uuid, "/") {
			return strings.ToLower(uuid)
		}
	}
	return strings.ToLower(id)
}
