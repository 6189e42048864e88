// Package people is who may use the admin console and how they stay in
// (DESIGN 2b): the roles and the decision who gets which, server-side
// console sessions, and authorization links for someone without console
// access. It holds the model, its rules and the store ports; the Firestore
// adapters live in shared/firestore. No Firestore, no HTTP here.
package people

import (
	"errors"
	"fmt"
	"strings"

	"github.com/wxcc/tokenservice/shared/token"
)

// Role is what a person may do in the console.
type Role string

// Roles.
const (
	// Operator may change things: client configs, passphrases, refresh,
	// delete, authorize, links, sessions.
	Operator Role = "operator"
	// Viewer sees everything an operator sees (never a secret) and
	// changes nothing.
	Viewer Role = "viewer"
)

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { return r == Operator || r == Viewer }

// CanChange reports whether r may change anything.
func (r Role) CanChange() bool { return r == Operator }

// ErrRefused: the person may not enter the console. The *Refusal that
// carries it says why.
var ErrRefused = errors.New("not allowed into the console")

// Reasons of a Refusal: fixed sentences, safe to show the person and to
// record.
const (
	ReasonNoEmail   = "Webex gave no e-mail address"
	ReasonBadEmail  = "the e-mail address is malformed"
	ReasonOrg       = "the person belongs to another Webex organization"
	ReasonNotListed = "the e-mail address is in neither CONSOLE_OPERATORS nor CONSOLE_VIEWERS"
)

// Refusal is the error of a refused person; it matches ErrRefused.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string        { return ErrRefused.Error() + ": " + r.Reason }
func (r *Refusal) Is(target error) bool { return target == ErrRefused }

// Access decides who may enter: CONSOLE_OPERATORS, CONSOLE_VIEWERS and
// CONSOLE_ORG_ID. The zero value lets nobody in.
type Access struct {
	operators, viewers []string // lower-case addresses, or "*@domain"
	org                string   // normalized; "" for any
}

// NewAccess checks the patterns (an e-mail address, or *@domain for
// every address of exactly that domain) and returns the decision.
func NewAccess(operators, viewers []string, orgID string) (*Access, error) {
	a := &Access{org: token.OrgUUID(orgID)}
	for _, list := range []struct {
		name string
		in   []string
		out  *[]string
	}{{"CONSOLE_OPERATORS", operators, &a.operators}, {"CONSOLE_VIEWERS", viewers, &a.viewers}} {
		for _, p := range list.in {
			p = strings.TrimSpace(p)
			local, domain, ok := splitEmail(p)
			if !ok || local != "*" && strings.Contains(local, "*") || strings.Contains(domain, "*") {
				return nil, fmt.Errorf("%s: %q is neither an e-mail address nor *@domain", list.name, p)
			}
			*list.out = append(*list.out, asciiLower(p))
		}
	}
	return a, nil
}

// Decide returns p's role, or a *Refusal saying why p may not enter. An
// operator match wins over a viewer match. E-mail addresses compare
// without regard to ASCII case; "*@example.com" matches that domain only,
// not its sub-domains nor "evil-example.com". With CONSOLE_ORG_ID set,
// p's org must be that one (a UUID and its Webex ID form are the same).
func (a *Access) Decide(p token.Person) (Role, error) {
	email := strings.TrimSpace(p.Email)
	if email == "" {
		return "", &Refusal{Reason: ReasonNoEmail}
	}
	local, domain, ok := splitEmail(email)
	if !ok || local == "*" {
		return "", &Refusal{Reason: ReasonBadEmail}
	}
	if a.org != "" && token.OrgUUID(p.OrgID) != a.org {
		return "", &Refusal{Reason: ReasonOrg}
	}
	email, domain = asciiLower(email), asciiLower(domain)
	if matches(a.operators, email, domain) {
		return Operator, nil
	}
	if matches(a.viewers, email, domain) {
		return Viewer, nil
	}
	return "", &Refusal{Reason: ReasonNotListed}
}

// Nobody reports whether no pattern lets anyone in.
func (a *Access) Nobody() bool { return len(a.operators)+len(a.viewers) == 0 }

func matches(patterns []string, email, domain string) bool {
	for _, p := range patterns {
		if p == email || strings.HasPrefix(p, "*@") && p[2:] == domain {
			return true
		}
	}
	return false
}

// splitEmail splits an address with exactly one @, a non-empty local
// part and a dotted domain, without spaces or control characters.
func splitEmail(s string) (local, domain string, ok bool) {
	if len(s) > 254 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "", "", false
	}
	local, domain, ok = strings.Cut(s, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") ||
		!strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", "", false
	}
	return local, domain, true
}

// NormalizeEmail is how an e-mail address is kept and compared: trimmed,
// ASCII letters in lower case.
func NormalizeEmail(s string) string { return asciiLower(strings.TrimSpace(s)) }

// asciiLower lowers ASCII letters only: Unicode case folding would make
// the Kelvin sign (U+212A) match "k".
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
