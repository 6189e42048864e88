package token

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"simple", "wxcc-prod", true},
		{"all classes", "A.z_0-9", true},
		{"max length", strings.Repeat("a", 128), true},
		{"dots inside", "a..b", true},
		{"underscores only at one end", "__x", true},
		{"empty", "", false},
		{"too long", strings.Repeat("a", 129), false},
		{"dot", ".", false},
		{"dotdot", "..", false},
		{"traversal", "../x", false},
		{"slash", "a/b", false},
		{"reserved", "__x__", false},
		{"reserved minimal", "____", false},
		{"space", "a b", false},
		{"unicode", "tökén", false},
		{"query chars", "a?b=c", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateName(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidateName(%q) = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidName) {
				t.Fatalf("got %v, want ErrInvalidName", err)
			}
		})
	}
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"a", "..", "__x__", "a/b", strings.Repeat("z", 129), "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateName(s) != nil {
			return
		}
		if len(s) == 0 || len(s) > MaxNameLen || strings.ContainsAny(s, "/\\?#% \x00") || s == "." || s == ".." {
			t.Fatalf("accepted unsafe name %q", s)
		}
		if len(s) >= 4 && strings.HasPrefix(s, "__") && strings.HasSuffix(s, "__") {
			t.Fatalf("accepted reserved name %q", s)
		}
	})
}
