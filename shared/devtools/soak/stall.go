package main

import (
	"context"
	"sync"
	"time"
)

// A shared 2-core machine sometimes gives no process any CPU for
// seconds. The campaign measures that on itself: a goroutine asks to
// sleep stallTick and records how much later than that it wakes. Checks
// whose only failure would be lateness (a request without an answer, a
// slow 503, a deadline of recovery, a slow shutdown) stretch their bound
// by the stall measured in the same window, and the report gives the
// stalls. A real hang, a wrong answer or a lost event fails whatever the
// machine did.
const (
	stallTick = 50 * time.Millisecond
	// stallMin is the lateness that counts as a stall, not jitter.
	stallMin = 200 * time.Millisecond
)

// stall is one late wake-up: from At the machine gave us nothing for For.
type stall struct {
	At  time.Time
	For time.Duration
}

type stallClock struct {
	mu   sync.Mutex
	list []stall
}

// run measures until ctx ends.
func (s *stallClock) run(ctx context.Context) {
	for ctx.Err() == nil {
		before := time.Now()
		time.Sleep(stallTick)
		if late := time.Since(before) - stallTick; late >= stallMin {
			s.mu.Lock()
			s.list = append(s.list, stall{At: before, For: late})
			s.mu.Unlock()
		}
	}
}

// in returns how long the machine stalled between from and to.
func (s *stallClock) in(from, to time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d time.Duration
	for _, st := range s.list {
		end := st.At.Add(stallTick + st.For)
		if end.Before(from) || st.At.After(to) {
			continue
		}
		d += st.For
	}
	return d
}

// stretch is by pushed back by the stalls between from and by (and the
// stalls within the time added, once).
func (s *stallClock) stretch(from, by time.Time) time.Time {
	extra := s.in(from, by)
	return by.Add(extra + s.in(by, by.Add(extra)))
}

// summary is the number of stalls, their total and the longest.
func (s *stallClock) summary(from, to time.Time) (n int, total, longest time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.list {
		if st.At.Before(from) || st.At.After(to) {
			continue
		}
		n++
		total += st.For
		longest = max(longest, st.For)
	}
	return n, total, longest
}
