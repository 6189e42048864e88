package sealing

import (
	"errors"
	"strings"
	"testing"
)

// FuzzOpen checks that Open never panics, that its errors are of the two
// documented kinds, and that a sealed value that opens under one aad does
// not open under another. It also seals the fuzzed plaintext and checks
// the round trip and the aad binding of the result.
func FuzzOpen(f *testing.F) {
	k := mustParse(f, rotatedSpec)
	old := mustParse(f, oldSpec)
	aad := AAD("tokens", "acme", "accessToken")
	for _, kr := range []*Keyring{k, old} {
		for _, plain := range []string{"secret", "x", "enc:v1:new:AAAA"} {
			sealed, err := kr.Seal(aad, plain)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(aad, AAD("tokens", "acme", "refreshToken"), sealed, plain)
			f.Add(aad, AAD("tokens", "acme2", "accessToken"), sealed, plain)
		}
	}
	f.Add("a", "b", "", "")
	f.Add("a", "a", "plain-token", "plain")
	f.Add("a", "b", "enc:v1:new:", "p")
	f.Add("a", "b", "enc:v1:unknown:AAAA", "p")
	f.Add("a", "b", "enc:v2:new:AAAA", "p")
	f.Add("", "b", "enc:v1:new:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "\x00\xff")

	f.Fuzz(func(t *testing.T, aadA, aadB, stored, plain string) {
		for _, kr := range []*Keyring{k, old, nil} {
			got, rotated, err := kr.Open(aadA, stored)
			if !IsSealed(stored) {
				if err != nil || got != stored {
					t.Fatalf("Open(plain %q) = %q, %v, %v, want it as is", stored, got, rotated, err)
				}
				continue
			}
			if err != nil {
				if !errors.Is(err, ErrUndecryptable) && !errors.Is(err, ErrUnknownKey) {
					t.Fatalf("Open error %v is neither ErrUndecryptable nor ErrUnknownKey", err)
				}
				if got != "" || rotated {
					t.Fatalf("Open = %q, %v with error %v", got, rotated, err)
				}
				continue
			}
			if aadA == aadB {
				continue
			}
			if got, _, err := kr.Open(aadB, stored); !errors.Is(err, ErrUndecryptable) {
				t.Fatalf("value that opens under %q also opens under %q: %q, %v", aadA, aadB, got, err)
			}
		}

		sealed, err := k.Seal(aadA, plain)
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if plain == "" {
			if sealed != "" {
				t.Fatalf("Seal(\"\") = %q", sealed)
			}
			return
		}
		if !strings.HasPrefix(sealed, "enc:v1:new:") {
			t.Fatalf("Seal = %q, want prefix enc:v1:new:", sealed)
		}
		got, rotated, err := k.Open(aadA, sealed)
		if err != nil || got != plain || rotated {
			t.Fatalf("round trip = %q, %v, %v, want %q, false, nil", got, rotated, err, plain)
		}
		if aadA != aadB {
			if got, _, err := k.Open(aadB, sealed); !errors.Is(err, ErrUndecryptable) {
				t.Fatalf("sealed under %q opens under %q: %q, %v", aadA, aadB, got, err)
			}
		}
	})
}

// FuzzParseKeys checks that ParseKeys never panics, that its errors hold
// no key material, and that a keyring it accepts works.
func FuzzParseKeys(f *testing.F) {
	for _, s := range []string{
		"",
		" ",
		rotatedSpec,
		oldSpec + ",",
		"a:" + newKeyB64 + ",a:" + oldKeyB64,
		newKeyB64,
		newKeyB64 + ":a",
		"a.b:" + newKeyB64,
		"a:" + newKeyB64[:20],
		"a:" + strings.TrimRight(newKeyB64, "="),
		" a : " + newKeyB64 + " , b:" + oldKeyB64,
		"a:-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_w",
		"a:+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/w=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		k, err := ParseKeys(spec)
		if err != nil {
			if k != nil {
				t.Fatalf("ParseKeys returned a keyring with error %v", err)
			}
			msg := err.Error()
			for _, entry := range strings.Split(spec, ",") {
				parts := []string{strings.TrimSpace(entry)}
				if _, key, ok := strings.Cut(entry, ":"); ok {
					parts = append(parts, strings.TrimSpace(key))
				}
				for _, p := range parts {
					// Anything longer than an id (32) cannot be quoted
					// legitimately; a 32-byte key is 43+ characters.
					if len(p) > maxIDLen && strings.Contains(msg, p) {
						t.Fatalf("error %q contains input %q", msg, p)
					}
					if raw, ok := decodeKey(p); ok && len(raw) >= 8 && strings.Contains(msg, string(raw)) {
						t.Fatalf("error %q contains decoded key bytes", msg)
					}
				}
			}
			return
		}
		if strings.TrimSpace(spec) == "" {
			if k != nil {
				t.Fatalf("ParseKeys(%q) = %v, want nil", spec, k)
			}
			return
		}
		first, _, _ := strings.Cut(strings.TrimSpace(strings.Split(spec, ",")[0]), ":")
		if got, want := k.PrimaryID(), strings.TrimSpace(first); got != want {
			t.Fatalf("PrimaryID() = %q, want %q", got, want)
		}
		sealed, err := k.Seal("a", "v")
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if got, rotated, err := k.Open("a", sealed); err != nil || got != "v" || rotated {
			t.Fatalf("Open = %q, %v, %v, want v, false, nil", got, rotated, err)
		}
	})
}
