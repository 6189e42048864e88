package throttle

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type clock struct{ t atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.t.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) advance(d time.Duration) { c.t.Add(int64(d)) }

// step is one action in a scenario: advance the clock, then fail or check.
type step struct {
	advance     time.Duration
	fail        bool // Fail instead of Blocked
	addr, name  string
	wantBlocked bool
	wantRetry   time.Duration
}

func TestThrottle(t *testing.T) {
	const a, b, n, m = "192.0.2.1", "192.0.2.2", "flow", "other"
	fails := func(k int, every time.Duration) []step {
		var s []step
		for i := range k {
			s = append(s, step{advance: every, fail: true, addr: a, name: n, wantBlocked: i == k-1 && k >= 3})
			if i == 0 {
				s[0].advance = 0
			}
		}
		return s
	}
	tests := []struct {
		name  string
		limit int
		steps []step
	}{
		{
			name: "below the limit",
			steps: append(fails(2, time.Minute),
				step{addr: a, name: n}),
		},
		{
			name: "limit reached blocks the pair",
			steps: append(fails(3, time.Minute),
				step{addr: a, name: n, wantBlocked: true, wantRetry: 13 * time.Minute}),
		},
		{
			name: "other name and other address are not blocked",
			steps: append(fails(3, 0),
				step{addr: a, name: m},
				step{addr: b, name: n},
				step{addr: a, name: n, wantBlocked: true, wantRetry: 15 * time.Minute}),
		},
		{
			name: "unblocks when the oldest failure ages out",
			steps: append(fails(3, time.Minute),
				step{advance: 13*time.Minute - time.Second, addr: a, name: n, wantBlocked: true, wantRetry: time.Second},
				step{advance: time.Second, addr: a, name: n}),
		},
		{
			name: "one more failure after unblocking blocks again",
			steps: append(fails(3, time.Minute),
				step{advance: 13 * time.Minute, addr: a, name: n},
				step{fail: true, addr: a, name: n, wantBlocked: true, wantRetry: time.Minute},
				step{advance: time.Minute, addr: a, name: n},
				step{advance: time.Minute, addr: a, name: n}),
		},
		{
			name: "failures spread wider than the window never block",
			steps: []step{
				{fail: true, addr: a, name: n},
				{advance: 8 * time.Minute, fail: true, addr: a, name: n},
				{advance: 8 * time.Minute, fail: true, addr: a, name: n},
				{advance: 8 * time.Minute, fail: true, addr: a, name: n},
				{addr: a, name: n},
			},
		},
		{
			name:  "limit 1",
			limit: 1,
			steps: []step{
				{fail: true, addr: a, name: n, wantBlocked: true, wantRetry: 15 * time.Minute},
				{advance: 15 * time.Minute, addr: a, name: n},
			},
		},
		{
			name:  "limit 0 turns throttling off",
			limit: -1,
			steps: []step{
				{fail: true, addr: a, name: n},
				{fail: true, addr: a, name: n},
				{addr: a, name: n},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := 3
			switch {
			case tt.limit > 0:
				limit = tt.limit
			case tt.limit < 0:
				limit = 0
			}
			c := newClock()
			th := New(limit, 15*time.Minute, c.now)
			for i, s := range tt.steps {
				c.advance(s.advance)
				var retry time.Duration
				var blocked bool
				if s.fail {
					retry, blocked = th.Fail(s.addr, s.name)
				} else {
					retry, blocked = th.Blocked(s.addr, s.name)
				}
				if blocked != s.wantBlocked || (s.wantRetry != 0 && retry != s.wantRetry) {
					t.Errorf("step %d: got %v, %v, want %v, %v", i, retry, blocked, s.wantRetry, s.wantBlocked)
				}
				if blocked && (retry <= 0 || retry > 15*time.Minute) {
					t.Errorf("step %d: got retryAfter %v, want in (0, 15m]", i, retry)
				}
			}
		})
	}
}

func TestClockGoingBack(t *testing.T) {
	c := newClock()
	th := New(2, time.Minute, c.now)
	th.Fail("a", "n")
	th.Fail("a", "n")
	c.advance(-time.Hour)
	retry, blocked := th.Blocked("a", "n")
	if !blocked || retry != time.Minute {
		t.Errorf("got %v, %v, want 1m0s, true", retry, blocked)
	}
}

func TestExpiredPairsAreDropped(t *testing.T) {
	c := newClock()
	th := New(10, time.Minute, c.now)
	for i := range 1000 {
		th.Fail(fmt.Sprint("addr", i), "n")
	}
	if got := th.Len(); got != 1000 {
		t.Fatalf("got Len %d, want 1000", got)
	}
	c.advance(time.Minute)
	for i := range 1000 { // a failure in each shard triggers its sweep
		th.Fail("late", fmt.Sprint("n", i))
	}
	if got := th.Len(); got != 1000 {
		t.Errorf("got Len %d, want 1000 (only the late pairs)", got)
	}
}

func TestBoundedAndKeepsBlockedPairs(t *testing.T) {
	const maxPairs = 320
	c := newClock()
	th := New(3, 15*time.Minute, c.now, WithMaxPairs(maxPairs))
	var victims []string
	for i := range 50 {
		v := fmt.Sprint("victim", i)
		victims = append(victims, v)
		for range 3 {
			th.Fail(v, "n")
		}
	}
	for i := range 100_000 {
		c.advance(time.Millisecond)
		th.Fail(fmt.Sprint("flood", i), "n")
		if i%1000 == 0 {
			if got := th.Len(); got > maxPairs {
				t.Fatalf("got Len %d, want at most %d", got, maxPairs)
			}
		}
	}
	kept := 0
	for _, v := range victims {
		if _, blocked := th.Blocked(v, "n"); blocked {
			kept++
		}
	}
	if kept != len(victims) {
		t.Errorf("got %d of %d blocked pairs still blocked after a flood, want all", kept, len(victims))
	}
}

func TestConcurrent(t *testing.T) {
	th := New(10, time.Minute, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				addr := fmt.Sprint("a", (g*7+i)%50)
				th.Fail(addr, "n")
				th.Blocked(addr, "n")
				th.Blocked("untracked", "n")
			}
		})
	}
	wg.Wait()
	for i := range 50 {
		if _, blocked := th.Blocked(fmt.Sprint("a", i), "n"); !blocked {
			t.Errorf("a%d: got not blocked, want blocked", i)
		}
	}
}

func BenchmarkBlockedUntracked(b *testing.B) {
	th := New(10, 15*time.Minute, nil)
	for i := range 10_000 {
		th.Fail(fmt.Sprint("198.51.100.", i), "flow")
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			th.Blocked("203.0.113.7", "flow")
		}
	})
}

func BenchmarkFail(b *testing.B) {
	th := New(10, 15*time.Minute, nil)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		th.Fail("203.0.113.7", fmt.Sprint(i%1000))
		i++
	}
}
