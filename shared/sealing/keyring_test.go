package sealing

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// testKey returns a 32-byte key filled with b, and its std base64.
func testKey(b byte) ([]byte, string) {
	raw := bytes.Repeat([]byte{b}, KeySize)
	return raw, base64.StdEncoding.EncodeToString(raw)
}

func mustParse(t testing.TB, spec string) *Keyring {
	t.Helper()
	k, err := ParseKeys(spec)
	if err != nil {
		t.Fatalf("ParseKeys: %v", err)
	}
	return k
}

func TestParseKeysValid(t *testing.T) {
	raw := make([]byte, KeySize)
	for i := range raw {
		raw[i] = byte(250 - i) // bytes that give '+' '/' and '-' '_'
	}
	tests := []struct {
		name    string
		spec    string
		primary string
	}{
		{"std padded", "k1:" + base64.StdEncoding.EncodeToString(raw), "k1"},
		{"std raw", "k1:" + base64.RawStdEncoding.EncodeToString(raw), "k1"},
		{"url padded", "k1:" + base64.URLEncoding.EncodeToString(raw), "k1"},
		{"url raw", "k1:" + base64.RawURLEncoding.EncodeToString(raw), "k1"},
		{"spaces", "  new : " + base64.StdEncoding.EncodeToString(raw) + " ,\told:" + base64.RawURLEncoding.EncodeToString(raw) + "  ", "new"},
		{"id charset and length", strings.Repeat("aZ9_-", 6) + "xy:" + base64.StdEncoding.EncodeToString(raw), strings.Repeat("aZ9_-", 6) + "xy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := mustParse(t, tt.spec)
			if got := k.PrimaryID(); got != tt.primary {
				t.Errorf("PrimaryID() = %q, want %q", got, tt.primary)
			}
			sealed, err := k.Seal("a", "secret")
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if got, _, err := k.Open("a", sealed); err != nil || got != "secret" {
				t.Errorf("Open = %q, %v, want %q, nil", got, err, "secret")
			}
		})
	}
}

func TestParseKeysSameKeyAnySpelling(t *testing.T) {
	raw := make([]byte, KeySize)
	for i := range raw {
		raw[i] = byte(250 - i)
	}
	a := mustParse(t, "k:"+base64.StdEncoding.EncodeToString(raw))
	b := mustParse(t, "k:"+base64.RawURLEncoding.EncodeToString(raw))
	sealed, err := a.Seal("x", "v")
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := b.Open("x", sealed); err != nil || got != "v" {
		t.Errorf("Open = %q, %v, want %q, nil", got, err, "v")
	}
}

func TestParseKeysEmpty(t *testing.T) {
	for _, spec := range []string{"", "   ", "\t"} {
		k, err := ParseKeys(spec)
		if k != nil || err != nil {
			t.Errorf("ParseKeys(%q) = %v, %v, want nil, nil", spec, k, err)
		}
	}
}

func TestParseKeysErrors(t *testing.T) {
	_, good := testKey(1)
	_, other := testKey(2)
	short := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 16))
	long := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{4}, 33))
	// "+/+/..." with one '/' made '_': neither the std nor the URL alphabet.
	mixed := strings.Replace(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff}, 16)), "/", "_", 1)
	tests := []struct {
		name string
		spec string
		want string // part of the error
	}{
		{"trailing comma", "a:" + good + ",", "entry 2 is empty"},
		{"empty middle", "a:" + good + ", ,b:" + other, "entry 2 is empty"},
		{"no colon", good, "entry 1 is not of the form id:base64-key"},
		{"no colon second", "a:" + good + "," + other, "entry 2 is not of the form"},
		{"empty id", ":" + good, "entry 1: key id must be 1-32 characters"},
		{"id too long", strings.Repeat("a", 33) + ":" + good, "entry 1: key id must be"},
		{"id bad char", "a.b:" + good, "entry 1: key id must be"},
		{"id with space inside", "a b:" + good, "entry 1: key id must be"},
		{"key and id swapped", good + ":a", "entry 1: key id must be"},
		{"duplicate id", "a:" + good + ",b:" + other + ",a:" + other, `entry 3: duplicate key id "a"`},
		{"empty key", "a:", `entry 1 (id "a"): key is empty`},
		{"not base64", "a:" + good[:20] + "!" + good[21:], `entry 1 (id "a"): key is not base64`},
		{"mixed alphabets", "a:" + mixed, "key is not base64"},
		{"key has colon", "a:" + good[:10] + ":" + good[10:], "key is not base64"},
		{"short key", "a:" + good + ",b:" + short, `entry 2 (id "b"): key is 16 bytes, want 32`},
		{"long key", "a:" + long, `entry 1 (id "a"): key is 33 bytes, want 32`},
		{"raw 32-char key", "a:" + strings.Repeat("k", 32), "key is 24 bytes, want 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKeys(tt.spec)
			if err == nil {
				t.Fatalf("ParseKeys = %v, nil, want error containing %q", k, tt.want)
			}
			if k != nil {
				t.Errorf("ParseKeys returned a keyring with error %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
			assertNoKeyMaterial(t, err.Error(), tt.spec)
		})
	}
}

// assertNoKeyMaterial fails if s holds any key part of spec (8 characters
// or more), or any 8-byte window of what such a part decodes to, raw or in
// hex.
func assertNoKeyMaterial(t *testing.T, s, spec string) {
	t.Helper()
	for _, entry := range strings.Split(spec, ",") {
		parts := []string{strings.TrimSpace(entry)}
		if _, key, ok := strings.Cut(entry, ":"); ok {
			parts = append(parts, strings.TrimSpace(key))
		}
		for _, p := range parts {
			if len(p) >= 8 && strings.Contains(s, p) {
				t.Errorf("error %q contains key material %q", s, p)
			}
			if raw, ok := decodeKey(p); ok {
				for i := 0; i+8 <= len(raw); i++ {
					w := raw[i : i+8]
					if strings.Contains(s, string(w)) || strings.Contains(s, fmt.Sprintf("%x", w)) {
						t.Errorf("error %q contains decoded key bytes", s)
						return
					}
				}
			}
		}
	}
}

func TestKeyringFormatsWithoutKeys(t *testing.T) {
	rawNew, newB64 := testKey(0x41) // 'A', so the raw bytes are printable
	rawOld, oldB64 := testKey(0x42)
	k := mustParse(t, "new:"+newB64+",old:"+oldB64)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		s := fmt.Sprintf(verb, k) + fmt.Sprintf(verb, *k)
		for _, key := range []string{newB64, oldB64, string(rawNew[:8]), string(rawOld[:8]), "4141414141414141", "4242424242424242"} {
			if strings.Contains(s, key) {
				t.Errorf("Sprintf(%s, keyring) = %q contains key material", verb, s)
			}
		}
	}
}

func TestPrimaryIDNil(t *testing.T) {
	var k *Keyring
	if got := k.PrimaryID(); got != "" {
		t.Errorf("PrimaryID() = %q, want \"\"", got)
	}
}
