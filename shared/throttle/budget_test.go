package throttle

import (
	"fmt"
	"testing"
	"time"
)

func TestBudgetCountsDistinctNames(t *testing.T) {
	const a, b = "192.0.2.1", "192.0.2.2"
	c := newClock()
	bu := NewBudget(3, 15*time.Minute, c.now)

	// One name failing again and again uses one unit of the budget.
	for range 50 {
		if _, blocked := bu.Fail(a, "flow"); blocked {
			t.Fatal("one name repeated: got blocked, want not")
		}
	}
	if got := bu.Names(a); got != 1 {
		t.Fatalf("got Names %d, want 1", got)
	}
	c.advance(time.Minute)
	bu.Fail(a, "second")
	if _, blocked := bu.Blocked(a); blocked {
		t.Fatal("two names: got blocked, want not")
	}
	c.advance(time.Minute)
	retry, blocked := bu.Fail(a, "third")
	// The oldest name's latest failure (at 0) ages out at 15m; now is 2m.
	if !blocked || retry != 13*time.Minute {
		t.Fatalf("third name: got %v, %v, want 13m0s, true", retry, blocked)
	}
	if retry, blocked := bu.Blocked(a); !blocked || retry != 13*time.Minute {
		t.Fatalf("Blocked: got %v, %v, want 13m0s, true", retry, blocked)
	}
	if _, blocked := bu.Blocked(b); blocked {
		t.Fatal("another address: got blocked, want not")
	}

	// A repeat of an old name moves it forward: now the oldest is "second".
	bu.Fail(a, "flow")
	if retry, _ := bu.Blocked(a); retry != 14*time.Minute {
		t.Fatalf("after repeating the oldest name: got retry %v, want 14m0s", retry)
	}
	c.advance(14 * time.Minute)
	if _, blocked := bu.Blocked(a); blocked {
		t.Fatal("after the oldest name aged out: got blocked, want not")
	}
	if got := bu.Names(a); got != 2 {
		t.Fatalf("got Names %d, want 2", got)
	}
}

func TestBudgetRetryAfterWithManyNames(t *testing.T) {
	c := newClock()
	bu := NewBudget(10, time.Minute, c.now)
	var blockedAt int
	for i := range 30 { // the attack: 30 names from one address
		if _, blocked := bu.Fail("a", fmt.Sprint("name", i)); blocked && blockedAt == 0 {
			blockedAt = i + 1
		}
		c.advance(time.Millisecond)
	}
	if blockedAt != 10 {
		t.Fatalf("got blocked at name %d, want 10", blockedAt)
	}
	if retry, blocked := bu.Blocked("a"); !blocked || retry <= 0 || retry > time.Minute {
		t.Fatalf("got %v, %v, want blocked with a retry in (0, 1m]", retry, blocked)
	}
}

func TestBudgetBounded(t *testing.T) {
	c := newClock()
	bu := NewBudget(2, 15*time.Minute, c.now, WithMaxPairs(64))
	for i := range 10_000 {
		bu.Fail(fmt.Sprint("addr", i), "n")
	}
	if got := bu.Len(); got > 64 {
		t.Fatalf("got Len %d, want at most 64", got)
	}
}

func TestFailures(t *testing.T) {
	c := newClock()
	th := New(3, time.Minute, c.now)
	if got := th.Failures("a", "n"); got != 0 {
		t.Fatalf("got %d, want 0", got)
	}
	th.Fail("a", "n")
	c.advance(30 * time.Second)
	th.Fail("a", "n")
	if got := th.Failures("a", "n"); got != 2 {
		t.Fatalf("got %d, want 2", got)
	}
	c.advance(30 * time.Second)
	if got := th.Failures("a", "n"); got != 1 {
		t.Fatalf("after the first aged out: got %d, want 1", got)
	}
}

func TestRecentAddrs(t *testing.T) {
	c := newClock()
	s := NewRecentAddrs(time.Hour, 64, c.now)
	if s.Recent("a") {
		t.Fatal("unknown address: got recent, want not")
	}
	s.Record("a")
	c.advance(59 * time.Minute)
	if !s.Recent("a") {
		t.Fatal("59m after a success: got not recent, want recent")
	}
	s.Record("a") // refreshes
	c.advance(30 * time.Minute)
	if !s.Recent("a") {
		t.Fatal("30m after a second success: got not recent, want recent")
	}
	c.advance(31 * time.Minute)
	if s.Recent("a") {
		t.Fatal("61m after the last success: got recent, want not")
	}
	for i := range 10_000 {
		c.advance(time.Millisecond)
		s.Record(fmt.Sprint("flood", i))
	}
	if got := s.Len(); got > 64 {
		t.Fatalf("got Len %d, want at most 64", got)
	}
	if !s.Recent("flood9999") {
		t.Fatal("the latest address was forgotten")
	}
}

func BenchmarkRecentAddrsRecordKnown(b *testing.B) {
	s := NewRecentAddrs(time.Hour, 10_000, nil)
	s.Record("203.0.113.7")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Record("203.0.113.7")
		}
	})
}
