package token

import (
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"
)

// webexAppID is an application ID the way Webex writes it: the URI of the
// app, base64-encoded without padding.
var webexAppID = base64.RawURLEncoding.EncodeToString([]byte("ciscospark://us/APPLICATION/C279cb30ab49470aa3eba80cd82f1175"))

func TestValidateAppID(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"webex id", webexAppID, true},
		{"documented example", "Y2lzY29zcGFyazovL3VzL0FQUExJQ0FUSU9OL0MyNzljYjMwYWI0OTQ3MGFhM2ViYTgwY2Q4MmYxMTc1", true},
		{"padded", base64.URLEncoding.EncodeToString([]byte("ciscospark://us/APPLICATION/x")), true},
		{"two padding characters", "YQ==", true},
		{"bare uuid", "0676ab52-f761-4015-a01d-5b62d60c8113", true},
		{"url-safe alphabet", "a-b_c", true},
		{"max length", strings.Repeat("A", MaxAppIDLen), true},
		{"empty", "", false},
		{"too long", strings.Repeat("A", MaxAppIDLen+1), false},
		{"dotdot", "..", false},
		{"dot", ".", false},
		{"dot inside", "a.b", false},
		{"slash", "a/b", false},
		{"traversal", "../../v1/people/me", false},
		{"percent-encoded dots", "%2e%2e", false},
		{"backslash", `a\b`, false},
		{"query", "a?b", false},
		{"fragment", "a#b", false},
		{"space", "a b", false},
		{"standard base64 plus", "a+b", false},
		{"only padding", "==", false},
		{"three padding characters", "YQ===", false},
		{"padding inside", "Y=Q", false},
		{"control", "a\x00", false},
		{"unicode", "äpp", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateAppID(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidateAppID(%q) = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidAppID) {
				t.Fatalf("got %v, want ErrInvalidAppID", err)
			}
		})
	}
}

// FuzzValidateAppID: whatever the rule accepts is one plain path segment
// (nothing to escape, not a dot segment), within the length bound, and
// base64url with padding only at the end.
func FuzzValidateAppID(f *testing.F) {
	for _, s := range []string{webexAppID, "..", ".", "a/b", "%2e%2e", "YQ==", "==", "a=b", strings.Repeat("Q", MaxAppIDLen+1), "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateAppID(s) != nil {
			return
		}
		if len(s) == 0 || len(s) > MaxAppIDLen {
			t.Fatalf("accepted %q of length %d", s, len(s))
		}
		if url.PathEscape(s) != s || strings.ContainsAny(s, "./\\%?#") {
			t.Fatalf("accepted %q, which is not a plain path segment", s)
		}
		body := strings.TrimRight(s, "=")
		if body == "" || len(s)-len(body) > 2 || strings.Trim(body, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("accepted %q, which is not base64url", s)
		}
	})
}
