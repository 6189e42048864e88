package passphrase

import (
	"fmt"
	"testing"
)

// FuzzParse checks that reading a stored PHC string never panics, that
// whatever it accepts is within the limits (so argon2id cannot panic or
// allocate too much), and that it accepts only the canonical form.
func FuzzParse(f *testing.F) {
	f.Add("$argon2id$v=19$m=65536,t=3,p=4$MIIRqgvgQbgj220jfp0MPA$YfwJSVjtjSU0zzV/P3S9nnQ/USre2wvJMjfCIjrTQbg")
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
	f.Add("$argon2id$v=19$m=4294967296,t=0,p=256$$")
	f.Add("$$$$$")
	f.Fuzz(func(t *testing.T, phc string) {
		prm, salt, key, err := parse(phc)
		if err != nil {
			return
		}
		if err := prm.check(); err != nil {
			t.Fatalf("parse(%q) accepted %+v: %v", phc, prm, err)
		}
		again := fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", prm.MemoryKiB, prm.Time, prm.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
		if again != phc {
			t.Fatalf("parse(%q): got %q back, want the same string", phc, again)
		}
	})
}
