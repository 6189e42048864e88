package passphrase

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// cheap keeps the tests fast; DefaultParams is exercised once.
var cheap = Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

const good = "correct horse battery staple"

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       string
		wantErr bool
	}{
		{name: "16 ascii", p: "abcdefghijklmnop"},
		{name: "15 ascii", p: "abcdefghijklmno", wantErr: true},
		{name: "empty", p: "", wantErr: true},
		{name: "16 runes multibyte", p: strings.Repeat("é", 16)},
		{name: "15 runes in 30 bytes", p: strings.Repeat("é", 15), wantErr: true},
		{name: "inner spaces", p: "correct horse battery"},
		{name: "256 bytes", p: strings.Repeat("a", 256)},
		{name: "257 bytes", p: strings.Repeat("a", 257), wantErr: true},
		{name: "leading space", p: " abcdefghijklmnop", wantErr: true},
		{name: "trailing tab", p: "abcdefghijklmnop\t", wantErr: true},
		{name: "control char", p: "abcdefgh\x00ijklmnop", wantErr: true},
		{name: "invalid utf-8", p: "abcdefghijklmnop\xff", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.p)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate(%q) = %v, want error: %v", tt.p, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("got %v, want ErrInvalid", err)
			}
		})
	}
}

var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashDefault(t *testing.T) {
	h, err := Hash(good)
	if err != nil {
		t.Fatal(err)
	}
	if !phcRE.MatchString(h) {
		t.Errorf("got %q, want a match for %s", h, phcRE)
	}
	if ok, err := Verify(good, h); !ok || err != nil {
		t.Errorf("Verify(good) = %v, %v, want true, nil", ok, err)
	}
	h2, _ := Hash(good)
	if h2 == h {
		t.Errorf("got the same hash twice, want fresh salts")
	}
	if _, err := Hash("short"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Hash(short): got %v, want ErrInvalid", err)
	}
}

// TestVerifyInterop checks a PHC string made by another implementation
// (the argon2-cffi documentation's example).
func TestVerifyInterop(t *testing.T) {
	const h = "$argon2id$v=19$m=65536,t=3,p=4$MIIRqgvgQbgj220jfp0MPA$YfwJSVjtjSU0zzV/P3S9nnQ/USre2wvJMjfCIjrTQbg"
	for _, tt := range []struct {
		name string
		p    string
		want bool
	}{
		{name: "right", p: good, want: true},
		{name: "wrong", p: good + "!", want: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Verify(tt.p, h)
			if got != tt.want || err != nil {
				t.Errorf("got %v, %v, want %v, nil", got, err, tt.want)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	h, err := HashWith(good, cheap)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		p    string
		want bool
	}{
		{name: "right", p: good, want: true},
		{name: "wrong", p: "correct horse battery stapl", want: false},
		{name: "empty", p: "", want: false},
		{name: "longer than MaxBytes", p: strings.Repeat("x", MaxBytes+1), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Verify(tt.p, h)
			if got != tt.want || err != nil {
				t.Errorf("got %v, %v, want %v, nil", got, err, tt.want)
			}
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	const salt, key = "c2FsdHNhbHRzYWx0c2FsdA", "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
	tests := []struct {
		name string
		phc  string
	}{
		{name: "empty", phc: ""},
		{name: "garbage", phc: "not a hash"},
		{name: "bcrypt", phc: "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"},
		{name: "argon2i", phc: "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{name: "version 16", phc: "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key},
		{name: "no version", phc: "$argon2id$m=64,t=1,p=1$" + salt + "$" + key},
		{name: "memory above cap", phc: "$argon2id$v=19$m=262145,t=1,p=1$" + salt + "$" + key},
		{name: "memory huge", phc: "$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key},
		{name: "memory overflow", phc: "$argon2id$v=19$m=99999999999999999999,t=1,p=1$" + salt + "$" + key},
		{name: "memory below 8p", phc: "$argon2id$v=19$m=15,t=1,p=2$" + salt + "$" + key},
		{name: "time zero", phc: "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key},
		{name: "time above cap", phc: "$argon2id$v=19$m=64,t=11,p=1$" + salt + "$" + key},
		{name: "threads zero", phc: "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key},
		{name: "threads above cap", phc: "$argon2id$v=19$m=256,t=1,p=17$" + salt + "$" + key},
		{name: "threads 256 wraps uint8", phc: "$argon2id$v=19$m=4096,t=1,p=256$" + salt + "$" + key},
		{name: "leading zero", phc: "$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key},
		{name: "plus sign", phc: "$argon2id$v=19$m=+64,t=1,p=1$" + salt + "$" + key},
		{name: "negative", phc: "$argon2id$v=19$m=-64,t=1,p=1$" + salt + "$" + key},
		{name: "parameters reordered", phc: "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key},
		{name: "missing parameter", phc: "$argon2id$v=19$m=64,t=1$" + salt + "$" + key},
		{name: "extra parameter", phc: "$argon2id$v=19$m=64,t=1,p=1,keyid=x$" + salt + "$" + key},
		{name: "salt bad base64", phc: "$argon2id$v=19$m=64,t=1,p=1$!!!!$" + key},
		{name: "salt padded", phc: "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key},
		{name: "salt non-canonical", phc: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdB$" + key},
		{name: "salt with newline", phc: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNh\nbHRzYWx0c2FsdA$" + key},
		{name: "hash with CR", phc: "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$\r" + key},
		{name: "salt too short", phc: "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + key},
		{name: "hash too short", phc: "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$aGFzaA"},
		{name: "hash empty", phc: "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$"},
		{name: "no hash", phc: "$argon2id$v=19$m=64,t=1,p=1$" + salt},
		{name: "extra field", phc: "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$"},
		{name: "too long", phc: "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.Repeat("A", 600)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := Verify(good, tt.phc)
			if ok || !errors.Is(err, ErrMalformedHash) {
				t.Errorf("got %v, %v, want false, ErrMalformedHash", ok, err)
			}
		})
	}
}

func TestHashWithRejectsBadParams(t *testing.T) {
	tests := []struct {
		name string
		prm  Params
	}{
		{name: "zero", prm: Params{}},
		{name: "memory above cap", prm: Params{MemoryKiB: MaxMemoryKiB + 1, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}},
		{name: "short salt", prm: Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := HashWith(good, tt.prm); err == nil {
				t.Errorf("got nil, want an error")
			}
		})
	}
}

func BenchmarkHash(b *testing.B) {
	for b.Loop() {
		if _, err := Hash(good); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	h, _ := Hash(good)
	for b.Loop() {
		if ok, _ := Verify(good, h); !ok {
			b.Fatal("no match")
		}
	}
}
