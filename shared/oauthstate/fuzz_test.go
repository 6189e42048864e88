package oauthstate

import (
	"fmt"
	"testing"
	"time"
)

// FuzzVerify checks that Verify never panics, that nothing but an issued
// state verifies, and that an issued state altered in any one byte does not.
func FuzzVerify(f *testing.F) {
	s := Signer{Key: testKey, Now: func() time.Time { return t0 }}
	issued := map[string]bool{}
	var list []string
	// Fixed nonces, so that every fuzzing process knows the same states.
	for i, n := range []string{"queue-1", "a.b.c", "x", "Z_9-.z"} {
		body := fmt.Sprintf("v1.%d.%032x.%s", t0.Add(DefaultTTL).Unix(), i, n)
		state := body + "." + s.tag(body)
		if _, err := s.Verify(state); err != nil {
			f.Fatal(err)
		}
		issued[state] = true
		list = append(list, state)
		f.Add(state, uint16(0), byte('A'))
	}
	f.Add("", uint16(3), byte(0))
	f.Add("v1.1.2.3.4", uint16(7), byte('.'))
	f.Add("v1....", uint16(1), byte(0xff))
	f.Fuzz(func(t *testing.T, state string, pos uint16, b byte) {
		c, err := s.Verify(state)
		if err == nil && !issued[state] {
			t.Fatalf("Verify(%q) = %+v, want an error: never issued", state, c)
		}
		base := list[int(pos)%len(list)]
		i := int(pos/uint16(len(list))) % len(base)
		if base[i] == b {
			return
		}
		altered := base[:i] + string([]byte{b}) + base[i+1:]
		if _, err := s.Verify(altered); err == nil {
			t.Fatalf("Verify(%q), byte %d altered: got nil, want an error", altered, i)
		}
	})
}
