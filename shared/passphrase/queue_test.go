package passphrase

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// occupy fills q's one worker until the returned function is called.
func occupy(t *testing.T, q *Queue) (free func()) {
	t.Helper()
	started, done := make(chan struct{}), make(chan struct{})
	go q.Run(context.Background(), Caller{Key: "busy", Priority: Suspect}, func() { close(started); <-done })
	<-started
	return sync.OnceFunc(func() { close(done) })
}

// queued starts a Run for c that records its turn in order, and waits
// until it is queued.
func queued(t *testing.T, q *Queue, c Caller, name string, order *[]string, mu *sync.Mutex, wg *sync.WaitGroup) {
	t.Helper()
	before := q.Waiting()
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := q.Run(context.Background(), c, func() { mu.Lock(); *order = append(*order, name); mu.Unlock() })
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for q.Waiting() == before {
		if time.Now().After(deadline) {
			t.Fatalf("%s never queued", name)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestQueueOrder(t *testing.T) {
	q := NewQueue(QueueConfig{Workers: 1, MaxWait: time.Minute})
	free := occupy(t, q)
	var order []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	// Arrival order: suspects first, then an address refused before, a
	// vouched caller last.
	queued(t, q, Caller{Key: "guesser", Priority: Suspect}, "suspect", &order, &mu, &wg)
	queued(t, q, Caller{Key: "crowd", Priority: Retrying}, "retrying", &order, &mu, &wg)
	queued(t, q, Caller{Key: "a", Priority: Unknown}, "unknown-a1", &order, &mu, &wg)
	queued(t, q, Caller{Key: "a", Priority: Unknown}, "unknown-a2", &order, &mu, &wg)
	queued(t, q, Caller{Key: "a", Priority: Unknown}, "unknown-a3", &order, &mu, &wg)
	queued(t, q, Caller{Key: "b", Priority: Unknown}, "unknown-b1", &order, &mu, &wg)
	queued(t, q, Caller{Key: "flows", Priority: Vouched}, "vouched", &order, &mu, &wg)
	free()
	wg.Wait()
	want := []string{"vouched", "unknown-a1", "unknown-b1", "unknown-a2", "unknown-a3", "retrying", "suspect"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Errorf("got order %v, want %v", order, want)
	}
}

func TestQueueRefusesWhatCannotWait(t *testing.T) {
	q := NewQueue(QueueConfig{Workers: 1, MaxWait: time.Minute, Limits: [numPriorities]LaneLimits{
		Vouched: {Waiting: 4, PerKey: 4}, Unknown: {Waiting: 2, PerKey: 2}, Suspect: {Waiting: 2, PerKey: 1}}})
	free := occupy(t, q)
	var order []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	queued(t, q, Caller{Key: "g1", Priority: Suspect}, "g1", &order, &mu, &wg)
	run := func(c Caller) error { return q.Run(context.Background(), c, func() {}) }
	if err := run(Caller{Key: "g1", Priority: Suspect}); !errors.Is(err, ErrBusy) {
		t.Errorf("a second suspect check from one address: got %v, want ErrBusy", err)
	}
	queued(t, q, Caller{Key: "g2", Priority: Suspect}, "g2", &order, &mu, &wg)
	if err := run(Caller{Key: "g3", Priority: Suspect}); !errors.Is(err, ErrBusy) {
		t.Errorf("a third suspect when two may wait: got %v, want ErrBusy", err)
	}
	// A full lower lane does not stop a higher one.
	queued(t, q, Caller{Key: "flows", Priority: Vouched}, "vouched", &order, &mu, &wg)
	free()
	wg.Wait()
	if fmt.Sprint(order) != "[vouched g1 g2]" {
		t.Errorf("got order %v, want [vouched g1 g2]", order)
	}
}

func TestQueueGivesUp(t *testing.T) {
	q := NewQueue(QueueConfig{Workers: 1, MaxWait: 50 * time.Millisecond})
	free := occupy(t, q)
	defer free()
	start := time.Now()
	ran := false
	if err := q.Run(context.Background(), Caller{Key: "a", Priority: Vouched}, func() { ran = true }); !errors.Is(err, ErrBusy) || ran {
		t.Fatalf("after MaxWait: got %v, ran %v, want ErrBusy without running", err, ran)
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Fatalf("gave up after %s, want MaxWait (50ms)", took)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if err := q.Run(ctx, Caller{Key: "a", Priority: Vouched}, func() { ran = true }); !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("cancelled: got %v, ran %v, want context.Canceled without running", err, ran)
	}
	if n := q.Waiting(); n != 0 {
		t.Fatalf("got %d waiting after both gave up, want 0", n)
	}
}

func TestQueueNeverRunsMoreThanItsWorkers(t *testing.T) {
	const workers = 3
	q := NewQueue(QueueConfig{Workers: workers, MaxWait: time.Minute, Limits: [numPriorities]LaneLimits{
		Vouched: {Waiting: 1000, PerKey: 1000}, Unknown: {Waiting: 1000, PerKey: 1000},
		Retrying: {Waiting: 1000, PerKey: 1000}, Suspect: {Waiting: 1000, PerKey: 1000}}})
	var now, peak, done atomic.Int32
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			err := q.Run(context.Background(), Caller{Key: fmt.Sprint(i % 7), Priority: Priority(i % int(numPriorities))}, func() {
				n := now.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				time.Sleep(time.Millisecond)
				now.Add(-1)
				done.Add(1)
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > workers {
		t.Errorf("got %d running at once, want at most %d", p, workers)
	}
	if d := done.Load(); d != 200 {
		t.Errorf("got %d run, want 200", d)
	}
}

// A flow repeating a wrong passphrase costs one computation; the memo of
// wrong pairs holds no passphrase either.
func TestVerifierRemembersWrongPairs(t *testing.T) {
	v := NewVerifier(0, NewQueue(QueueConfig{Workers: 1}))
	h := mustHash(t, good)
	for range 5 {
		if v.Verify(ctx, "outdated passphrase 1", h) {
			t.Fatal("got a match for a wrong passphrase")
		}
	}
	if got := len(v.wrong); got != 1 {
		t.Fatalf("got %d wrong pairs remembered, want 1", got)
	}
	for k := range v.wrong {
		if string(k.sum[:]) == "outdated passphrase 1" {
			t.Fatal("the wrong passphrase is in the memo")
		}
	}
	if !v.Verify(ctx, good, h) {
		t.Fatal("the right passphrase: got no match")
	}
}

func TestVerifierBusy(t *testing.T) {
	q := NewQueue(QueueConfig{Workers: 1, Limits: [numPriorities]LaneLimits{
		Vouched: {Waiting: 1, PerKey: 1}, Unknown: {Waiting: 1, PerKey: 1}, Suspect: {Waiting: 1, PerKey: 1}}})
	v := NewVerifier(0, q)
	h := mustHash(t, good)
	free := occupy(t, q)
	defer free()
	var wg sync.WaitGroup
	wg.Go(func() { v.Check(ctx, Caller{Key: "g", Priority: Suspect}, "guess number one", h) })
	for q.Waiting() == 0 {
		time.Sleep(time.Millisecond)
	}
	ok, err := v.Check(ctx, Caller{Key: "g", Priority: Suspect}, "guess number two", h)
	if ok || !errors.Is(err, ErrBusy) {
		t.Errorf("got %v, %v, want false, ErrBusy", ok, err)
	}
	free()
	wg.Wait()
}

// After a Suspect check, Suspect checks rest (here as long as it took:
// a share of 0.5), while the others run at once; then the resting one runs.
func TestQueueSuspectsRest(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	q := NewQueue(QueueConfig{Workers: 1, MaxWait: time.Minute, SuspectShare: 0.5})
	q.now = func() time.Time { return time.Unix(0, clock.Load()) }
	// A guess that takes a second (of the test's clock).
	if err := q.Run(context.Background(), Caller{Key: "g1", Priority: Suspect}, func() { clock.Add(int64(time.Second)) }); err != nil {
		t.Fatal(err)
	}
	var order []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	queued(t, q, Caller{Key: "g2", Priority: Suspect}, "suspect", &order, &mu, &wg)
	if err := q.Run(context.Background(), Caller{Key: "flows", Priority: Vouched}, func() {
		mu.Lock()
		order = append(order, "vouched")
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := q.Run(context.Background(), Caller{Key: "new", Priority: Unknown}, func() {
		mu.Lock()
		order = append(order, "unknown")
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := fmt.Sprint(order)
	mu.Unlock()
	if got != "[vouched unknown]" {
		t.Fatalf("while suspects rest: got %s, want [vouched unknown]", got)
	}
	clock.Add(int64(time.Second)) // the rest is over; the queue's timer notices
	wg.Wait()
	if fmt.Sprint(order) != "[vouched unknown suspect]" {
		t.Fatalf("got %v, want [vouched unknown suspect]", order)
	}
}

// A Suspect check that arrives while nothing runs but suspects rest is
// run once the rest is over, not left waiting for another check to end.
func TestQueueRestingSuspectRunsWithoutOtherTraffic(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	q := NewQueue(QueueConfig{Workers: 1, MaxWait: time.Minute, SuspectShare: 0.5})
	q.now = func() time.Time { return time.Unix(0, clock.Load()) }
	if err := q.Run(context.Background(), Caller{Key: "g1", Priority: Suspect}, func() { clock.Add(int64(100 * time.Millisecond)) }); err != nil {
		t.Fatal(err)
	}
	var order []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	queued(t, q, Caller{Key: "g2", Priority: Suspect}, "suspect", &order, &mu, &wg)
	clock.Add(int64(100 * time.Millisecond))
	wg.Wait()
	if fmt.Sprint(order) != "[suspect]" {
		t.Fatalf("got %v, want [suspect]", order)
	}
}
