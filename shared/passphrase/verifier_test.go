package passphrase

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

var ctx = context.Background()

func mustHash(t testing.TB, p string) string {
	t.Helper()
	h, err := HashWith(p, cheap)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestVerifierVerify(t *testing.T) {
	h := mustHash(t, good)
	other := mustHash(t, good) // same passphrase, other salt
	tests := []struct {
		name    string
		p, phc  string
		want    bool
		wantLen int
	}{
		{name: "right", p: good, phc: h, want: true, wantLen: 1},
		{name: "right again from memo", p: good, phc: h, want: true, wantLen: 1},
		{name: "wrong is not remembered", p: good + "x", phc: h, want: false, wantLen: 1},
		{name: "changed hash misses and verifies", p: good, phc: other, want: true, wantLen: 2},
		{name: "no hash", p: good, phc: "", want: false, wantLen: 2},
		{name: "malformed hash", p: good, phc: "$argon2id$v=19$m=1,t=1,p=1$x$y", want: false, wantLen: 2},
	}
	v := NewVerifier(0, nil)
	for _, tt := range tests { // in order: the memo carries over
		if got := v.Verify(ctx, tt.p, tt.phc); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
		if got := v.Len(); got != tt.wantLen {
			t.Errorf("%s: got Len %d, want %d", tt.name, got, tt.wantLen)
		}
	}
}

func TestVerifierCheckReportsMalformed(t *testing.T) {
	v := NewVerifier(1, nil)
	ok, err := v.Check(ctx, Caller{}, good, "$argon2id$v=19$m=999999999,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA")
	if ok || err == nil {
		t.Errorf("got %v, %v, want false and an error", ok, err)
	}
}

// TestVerifierMemoNeverHoldsPassphrase checks the memo keys carry only the
// hash and a digest.
func TestVerifierMemoNeverHoldsPassphrase(t *testing.T) {
	v := NewVerifier(0, nil)
	h := mustHash(t, good)
	v.Verify(ctx, good, h)
	for k := range v.memo {
		if k.phc != h {
			t.Errorf("got phc %q, want %q", k.phc, h)
		}
		if string(k.sum[:]) == good {
			t.Errorf("got the passphrase in the memo, want a digest")
		}
	}
}

func TestVerifierBounded(t *testing.T) {
	const size = 5
	v := NewVerifier(size, nil)
	var hashes, pass []string
	for i := range 3 * size {
		p := fmt.Sprintf("passphrase number %02d", i)
		pass = append(pass, p)
		hashes = append(hashes, mustHash(t, p))
	}
	for i := range hashes {
		if !v.Verify(ctx, pass[i], hashes[i]) {
			t.Fatalf("Verify %d: got false, want true", i)
		}
		if got := v.Len(); got > size {
			t.Fatalf("got Len %d, want at most %d", got, size)
		}
	}
	if got := v.Len(); got != size {
		t.Errorf("got Len %d, want %d", got, size)
	}
	// Evicted entries verify again the slow way.
	for i := range hashes {
		if !v.Verify(ctx, pass[i], hashes[i]) {
			t.Errorf("re-Verify %d: got false, want true", i)
		}
	}
}

func TestVerifierConcurrent(t *testing.T) {
	v := NewVerifier(0, nil)
	h := mustHash(t, good)
	var wg sync.WaitGroup
	var wrong atomic.Int32
	for i := range 64 {
		wg.Go(func() {
			p := good
			want := true
			if i%4 == 0 {
				p, want = good+"?", false
			}
			if v.Verify(ctx, p, h) != want {
				wrong.Add(1)
			}
		})
	}
	wg.Wait()
	if n := wrong.Load(); n != 0 {
		t.Errorf("got %d wrong answers, want 0", n)
	}
}

func BenchmarkVerifierHit(b *testing.B) {
	v := NewVerifier(0, nil)
	h, _ := Hash(good)
	v.Verify(ctx, good, h)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if !v.Verify(ctx, good, h) {
			b.Fatal("no match")
		}
	}
}

func BenchmarkVerifierHitParallel(b *testing.B) {
	v := NewVerifier(0, nil)
	h, _ := Hash(good)
	v.Verify(ctx, good, h)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !v.Verify(ctx, good, h) {
				b.Fatal("no match")
			}
		}
	})
}
