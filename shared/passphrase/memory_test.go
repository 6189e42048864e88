package passphrase

import (
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// retainedHeap is the heap memory the process holds from the system.
func retainedHeap() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapSys - ms.HeapReleased
}

// Not parallel: it measures the process's heap, so nothing else may
// allocate meanwhile.
func TestMemoryGoesBackAfterChecks(t *testing.T) {
	phc, err := Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	debug.FreeOSMemory()
	base := retainedHeap()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { Verify("a wrong passphrase, guessed", phc) })
	}
	wg.Wait()
	const slack = 8 << 20
	deadline := time.Now().Add(5 * time.Second)
	for retainedHeap() > base+slack {
		if time.Now().After(deadline) {
			t.Fatalf("5s after three argon2id checks (%d MiB each) the heap still holds %d MiB from the system, %d MiB before them",
				DefaultParams.MemoryKiB>>10, retainedHeap()>>20, base>>20)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMemoryReturnOncePerBurst(t *testing.T) {
	var released atomic.Int32
	m := &memoryReturn{release: func() { released.Add(1) }, settle: 50 * time.Millisecond}
	// A burst: computations overlap and follow each other closely.
	for range 5 {
		m.begin()
		m.begin()
		m.end()
		m.end()
		time.Sleep(5 * time.Millisecond)
	}
	m.begin() // still running when the settle time ends
	time.Sleep(100 * time.Millisecond)
	if n := released.Load(); n != 0 {
		t.Fatalf("released %d times while a computation ran", n)
	}
	m.end()
	time.Sleep(150 * time.Millisecond)
	if n := released.Load(); n != 1 {
		t.Fatalf("released %d times after the burst ended, want 1", n)
	}
}
