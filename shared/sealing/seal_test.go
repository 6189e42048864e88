package sealing

import (
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
)

// Test keyrings: "new" is the primary of rotated, "old" was the primary
// before it.
var (
	_, newKeyB64 = testKey(0x11)
	_, oldKeyB64 = testKey(0x22)
	oldSpec      = "old:" + oldKeyB64
	rotatedSpec  = "new:" + newKeyB64 + ",old:" + oldKeyB64
)

func TestAAD(t *testing.T) {
	if got, want := AAD("tokens", "acme", "accessToken"), "tokens/acme#accessToken"; got != want {
		t.Errorf("AAD = %q, want %q", got, want)
	}
}

func TestRoundTrip(t *testing.T) {
	k := mustParse(t, rotatedSpec)
	aad := AAD("tokens", "acme", "accessToken")
	for _, plain := range []string{"x", "MjQ5YTk3ZDQtNzU0Yi00ZjM5LWFiZDMtM2Y5ZTRmM2Y0ZjBm", "enc:v1:looks:sealed", "ünïcødé\x00bytes\xff", strings.Repeat("long", 4096)} {
		sealed, err := k.Seal(aad, plain)
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if !strings.HasPrefix(sealed, "enc:v1:new:") || !IsSealed(sealed) {
			t.Errorf("Seal = %q, want prefix enc:v1:new:", sealed)
		}
		payload := strings.TrimPrefix(sealed, "enc:v1:new:")
		b, err := base64.StdEncoding.Strict().DecodeString(payload)
		if err != nil {
			t.Errorf("payload is not padded std base64: %v", err)
		}
		if got, want := len(b), 12+len(plain)+16; got != want {
			t.Errorf("payload is %d bytes, want %d (nonce, ciphertext, tag)", got, want)
		}
		got, rotated, err := k.Open(aad, sealed)
		if err != nil || got != plain || rotated {
			t.Errorf("Open = %q, %v, %v, want %q, false, nil", got, rotated, err, plain)
		}
	}
}

func TestSealEmpty(t *testing.T) {
	k := mustParse(t, rotatedSpec)
	sealed, err := k.Seal("a", "")
	if sealed != "" || err != nil {
		t.Errorf("Seal(\"\") = %q, %v, want \"\", nil", sealed, err)
	}
	got, rotated, err := k.Open("a", "")
	if got != "" || rotated || err != nil {
		t.Errorf("Open(\"\") = %q, %v, %v, want \"\", false, nil", got, rotated, err)
	}
}

func TestSealRandomNonce(t *testing.T) {
	k := mustParse(t, rotatedSpec)
	seen := make(map[string]bool)
	for range 100 {
		sealed, err := k.Seal("a", "same")
		if err != nil {
			t.Fatal(err)
		}
		if seen[sealed] {
			t.Fatalf("Seal gave %q twice", sealed)
		}
		seen[sealed] = true
	}
}

func TestOpenWrongAAD(t *testing.T) {
	k := mustParse(t, rotatedSpec)
	sealed, err := k.Seal(AAD("tokens", "acme", "accessToken"), "secret")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		aad  string
	}{
		{"other field", AAD("tokens", "acme", "refreshToken")},
		{"other document", AAD("tokens", "acme2", "accessToken")},
		{"other collection", AAD("tokens-test", "acme", "accessToken")},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := k.Open(tt.aad, sealed)
			if !errors.Is(err, ErrUndecryptable) {
				t.Errorf("Open = %q, %v, want ErrUndecryptable", got, err)
			}
			if got != "" {
				t.Errorf("Open returned %q with an error", got)
			}
		})
	}
}

func TestOpenTampered(t *testing.T) {
	k := mustParse(t, rotatedSpec)
	sealed, err := k.Seal("a", "secret")
	if err != nil {
		t.Fatal(err)
	}
	prefix := "enc:v1:new:"
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sealed, prefix))
	if err != nil {
		t.Fatal(err)
	}
	// Flip each bit of the nonce, ciphertext and tag in turn.
	for i := range raw {
		for bit := range 8 {
			b := append([]byte(nil), raw...)
			b[i] ^= 1 << bit
			tampered := prefix + base64.StdEncoding.EncodeToString(b)
			if got, _, err := k.Open("a", tampered); !errors.Is(err, ErrUndecryptable) {
				t.Fatalf("byte %d bit %d flipped: Open = %q, %v, want ErrUndecryptable", i, bit, got, err)
			}
		}
	}
}

func TestOpenMalformed(t *testing.T) {
	k := mustParse(t, rotatedSpec)
	good, err := k.Seal("a", "secret")
	if err != nil {
		t.Fatal(err)
	}
	payload := strings.TrimPrefix(good, "enc:v1:new:")
	fb := make([]byte, 30)
	for i := range fb {
		fb[i] = 0xfb // encodes to "+/u7..." in std, "-_u7..." in URL
	}
	tests := []struct {
		name   string
		stored string
		want   string // part of the error
	}{
		{"prefix only", "enc:", "unsupported format"},
		{"v1 only", "enc:v1:", "malformed key id"},
		{"unknown version", "enc:v2:new:" + payload, "unsupported format"},
		{"upper-case version", "enc:V1:new:" + payload, "unsupported format"},
		{"no payload separator", "enc:v1:new", "malformed key id"},
		{"empty id", "enc:v1::" + payload, "malformed key id"},
		{"bad id", "enc:v1:n.w:" + payload, "malformed key id"},
		{"id too long", "enc:v1:" + strings.Repeat("n", 33) + ":" + payload, "malformed key id"},
		{"empty payload", "enc:v1:new:", "malformed payload"},
		{"short payload", "enc:v1:new:" + base64.StdEncoding.EncodeToString(make([]byte, 27)), "malformed payload"},
		{"not base64", "enc:v1:new:" + payload[:4] + "*" + payload[5:], "malformed payload"},
		{"unpadded", "enc:v1:new:" + base64.RawStdEncoding.EncodeToString(make([]byte, 34)), "malformed payload"},
		{"url alphabet", "enc:v1:new:" + base64.URLEncoding.EncodeToString(fb), "malformed payload"},
		{"trailing garbage", good + "AAAA", "malformed payload"},
		{"extra colon", good + ":x", "malformed payload"},
		{"whitespace", good + " ", "malformed payload"},
		{"valid base64, not ours", "enc:v1:new:" + base64.StdEncoding.EncodeToString(make([]byte, 40)), "authentication failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !IsSealed(tt.stored) {
				t.Fatalf("IsSealed(%q) = false", tt.stored)
			}
			got, _, err := k.Open("a", tt.stored)
			if !errors.Is(err, ErrUndecryptable) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open = %q, %v, want ErrUndecryptable saying %q", got, err, tt.want)
			}
			if strings.Contains(err.Error(), payload[:16]) {
				t.Errorf("error %q contains the stored value", err)
			}
		})
	}
}

func TestOpenUnknownKey(t *testing.T) {
	old := mustParse(t, oldSpec)
	sealed, err := old.Seal("a", "secret")
	if err != nil {
		t.Fatal(err)
	}
	onlyNew := mustParse(t, "new:"+newKeyB64)
	for name, k := range map[string]*Keyring{"other keys": onlyNew, "nil keyring": nil} {
		t.Run(name, func(t *testing.T) {
			got, rotated, err := k.Open("a", sealed)
			if !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("Open = %q, %v, %v, want ErrUnknownKey", got, rotated, err)
			}
			if errors.Is(err, ErrUndecryptable) {
				t.Errorf("error %v is also ErrUndecryptable", err)
			}
			var uk *UnknownKeyError
			if !errors.As(err, &uk) || uk.KeyID != "old" {
				t.Errorf("errors.As(%v) KeyID = %+v, want old", err, uk)
			}
			if !strings.Contains(err.Error(), `"old"`) {
				t.Errorf("error %q does not name key id old", err)
			}
			for _, key := range []string{oldKeyB64, newKeyB64, strings.TrimPrefix(sealed, "enc:v1:old:")[:16]} {
				if strings.Contains(err.Error(), key) {
					t.Errorf("error %q contains key material or the value", err)
				}
			}
		})
	}
}

func TestRotation(t *testing.T) {
	aad := AAD("tokens", "acme", "refreshToken")
	before := mustParse(t, oldSpec)
	sealedOld, err := before.Seal(aad, "refresh-me")
	if err != nil {
		t.Fatal(err)
	}
	after := mustParse(t, rotatedSpec)
	got, rotated, err := after.Open(aad, sealedOld)
	if err != nil || got != "refresh-me" || !rotated {
		t.Fatalf("Open(old value) = %q, %v, %v, want %q, true, nil", got, rotated, err, "refresh-me")
	}
	resealed, err := after.Seal(aad, got)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resealed, "enc:v1:new:") {
		t.Errorf("re-sealed = %q, want it under new", resealed)
	}
	got, rotated, err = after.Open(aad, resealed)
	if err != nil || got != "refresh-me" || rotated {
		t.Errorf("Open(re-sealed) = %q, %v, %v, want %q, false, nil", got, rotated, err, "refresh-me")
	}
	// The old binary, still running during a rollout, opens it only if
	// it already has the new key.
	if _, _, err := before.Open(aad, resealed); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("old keyring Open(re-sealed) error = %v, want ErrUnknownKey", err)
	}
}

func TestOpenPlain(t *testing.T) {
	tests := []struct {
		name        string
		k           *Keyring
		wantRotated bool
	}{
		{"keyring", mustParse(t, rotatedSpec), true},
		{"nil keyring", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, plain := range []string{"plain-token", "en", "enc", "ENC:v1:new:x", " enc:v1:new:x", "v1:new:AAAA"} {
				got, rotated, err := tt.k.Open("a", plain)
				if err != nil || got != plain || rotated != tt.wantRotated {
					t.Errorf("Open(%q) = %q, %v, %v, want it as is, %v, nil", plain, got, rotated, err, tt.wantRotated)
				}
				if IsSealed(plain) {
					t.Errorf("IsSealed(%q) = true", plain)
				}
			}
		})
	}
}

func TestNilKeyringSeal(t *testing.T) {
	var k *Keyring
	got, err := k.Seal("a", "plain")
	if got != "plain" || err != nil {
		t.Errorf("Seal = %q, %v, want %q, nil", got, err, "plain")
	}
}

func TestZeroKeyring(t *testing.T) {
	var k Keyring
	if _, err := k.Seal("a", "x"); err == nil {
		t.Error("Seal on a zero Keyring succeeded")
	}
	if _, _, err := k.Open("a", "enc:v1:x:AAAA"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Open on a zero Keyring error = %v, want ErrUnknownKey", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	k := mustParse(t, rotatedSpec)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			aad := AAD("tokens", "t"+string(rune('a'+i)), "accessToken")
			for range 200 {
				sealed, err := k.Seal(aad, "v")
				if err != nil {
					t.Error(err)
					return
				}
				if got, _, err := k.Open(aad, sealed); err != nil || got != "v" {
					t.Errorf("Open = %q, %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
