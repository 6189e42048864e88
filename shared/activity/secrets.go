package activity

import (
	"strings"
)

// Redacted replaces what looks like a secret in an entry.
const Redacted = "[redacted]"

// webexIDPrefix starts every Webex ID (base64 of "ciscospark://"): a
// person, org or application ID is long and random-looking but no secret.
const webexIDPrefix = "Y2lzY29zcGFyazovL"

// LooksSecret reports whether s holds something shaped like a credential:
// a JWT, a sealed value, a password hash, or a long run of base64 or hex
// characters mixing letters and digits (Webex access and refresh tokens,
// client secrets, session and link IDs, PKCE verifiers). It is a last
// line of defence, not a guarantee: a passphrase made of words passes.
// UUIDs, Webex tracking IDs and Webex IDs do not count as secrets.
func LooksSecret(s string) bool {
	_, found := redact(s)
	return found
}

// redact returns s with every run that looks like a secret replaced by
// Redacted, and whether there was one.
func redact(s string) (string, bool) {
	if strings.Contains(s, "$argon2") || strings.Contains(s, "enc:v1:") {
		return Redacted, true
	}
	var (
		b     strings.Builder
		found bool
		start = -1
	)
	flush := func(end int) {
		run := s[start:end]
		if secretRun(run) {
			b.WriteString(Redacted)
			found = true
		} else {
			b.WriteString(run)
		}
		start = -1
	}
	for i := 0; i < len(s); i++ {
		if runChar(s[i]) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			flush(i)
		}
		b.WriteByte(s[i])
	}
	if start >= 0 {
		flush(len(s))
	}
	if !found {
		return s, false
	}
	return b.String(), true
}

// runChar: the characters of base64, base64url and JWTs.
func runChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '+' || c == '/' || c == '=' || c == '.'
}

// secretRun decides about one run of runChar characters. Separators
// (- _ + / = .) split it into segments. Random credentials have a long
// segment mixing letters and digits, or segments no person would write
// (mixed case with digits); identifiers people read have short segments
// that are words, numbers, hex (UUIDs, tracking IDs) or capitals and
// digits (base32 nonces).
func secretRun(run string) bool {
	if len(run) < 20 || strings.HasPrefix(run, webexIDPrefix) {
		return false
	}
	if strings.HasPrefix(run, "eyJ") && strings.Count(run, ".") >= 2 {
		return true // a JWT: base64url JSON header, payload, signature
	}
	for _, seg := range strings.FieldsFunc(run, func(r rune) bool { return strings.ContainsRune("-_+/=.", r) }) {
		if len(seg) >= 20 && hasDigit(seg) && hasLetter(seg) {
			return true
		}
		if len(run) >= 24 && len(seg) >= 6 && !readable(seg) {
			return true
		}
	}
	return false
}

// readable: a word (lower case, Title or CAPITALS), a number, hex, or up
// to 12 capitals and digits.
func readable(seg string) bool {
	var lower, upper, digit, nonHex int
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c >= '0' && c <= '9':
			digit++
		case c >= 'a' && c <= 'z':
			lower++
			if c > 'f' {
				nonHex++
			}
		case c >= 'A' && c <= 'Z':
			upper++
			if c > 'F' {
				nonHex++
			}
		}
	}
	switch {
	case digit == 0 && (upper == 0 || lower == 0 || upper == 1 && seg[0] >= 'A' && seg[0] <= 'Z'):
		return true // a word
	case nonHex == 0 && (upper == 0 || lower == 0):
		return true // a number, or hex
	case lower == 0 && len(seg) <= 12:
		return true // capitals and digits
	}
	return false
}

func hasDigit(s string) bool { return strings.ContainsAny(s, "0123456789") }

func hasLetter(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' })
}

// scrub returns e with every field that looks like a secret redacted, and
// the names of those fields.
func scrub(e Entry) (Entry, []string) {
	var fields []string
	for _, f := range []struct {
		name string
		v    *string
	}{
		{"actor", &e.Actor}, {"token", &e.Token}, {"addr", &e.Addr}, {"detail", &e.Detail},
	} {
		if clean, found := redact(*f.v); found {
			*f.v = clean
			fields = append(fields, f.name)
		}
	}
	return e, fields
}
