package main

import (
	"testing"
	"time"
)

func TestStallClock(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &stallClock{list: []stall{{At: t0.Add(10 * time.Second), For: 2 * time.Second}, {At: t0.Add(30 * time.Second), For: time.Second}}}
	if got := s.in(t0, t0.Add(20*time.Second)); got != 2*time.Second {
		t.Errorf("in: got %v, want 2s", got)
	}
	if got := s.in(t0.Add(40*time.Second), t0.Add(50*time.Second)); got != 0 {
		t.Errorf("in a quiet window: got %v, want 0", got)
	}
	// A deadline at 29.5 s is pushed back by the first stall, and then by
	// the second, which falls in the time added.
	if got, want := s.stretch(t0, t0.Add(29500*time.Millisecond)), t0.Add(32500*time.Millisecond); !got.Equal(want) {
		t.Errorf("stretch: got %v, want %v", got.Sub(t0), want.Sub(t0))
	}
	if n, total, longest := s.summary(t0, t0.Add(time.Minute)); n != 2 || total != 3*time.Second || longest != 2*time.Second {
		t.Errorf("summary: got %d %v %v", n, total, longest)
	}
}
