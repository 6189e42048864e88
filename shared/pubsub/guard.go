package pubsub

import (
	"context"
	"sync"
)

// keyLocks serializes publishing per ordering key within one process, so
// that Deliver and Drain never publish the same token's events at once.
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{} // holds one token while locked
	refs int
}

// lock waits until key is free or ctx ends.
func (k *keyLocks) lock(ctx context.Context, key string) error {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		k.release(key, l)
		return ctx.Err()
	}
}

func (k *keyLocks) unlock(key string) {
	k.mu.Lock()
	l := k.locks[key]
	k.mu.Unlock()
	<-l.ch
	k.release(key, l)
}

func (k *keyLocks) release(key string, l *keyLock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l.refs--
	if l.refs == 0 {
		delete(k.locks, key)
	}
}

// eventState is what this process last did with an event.
type eventState uint8

const (
	stateUnknown   eventState = iota
	statePublished            // accepted by Pub/Sub, still in the outbox
	stateDeleted              // accepted and deleted from the outbox
)

// recent remembers the fate of the last few thousand events this process
// published, so that a Drain that read an event before a concurrent
// Deliver published it does not publish it again (and the other way
// round). Forgetting is harmless: delivery is at-least-once anyway. It
// never causes a loss: an event it makes a call skip is not deleted.
type recent struct {
	mu    sync.Mutex
	state map[string]eventState
	ring  []string
	next  int
}

const recentSize = 4096

// take returns the state of id. A stateDeleted entry is forgotten as it
// is returned: it stands for one event that a concurrent call read before
// it was deleted, and skipping must not outlive that race. Were the same
// event committed again later, it would then be skipped at most once,
// and, since skipping never deletes, published by the next call.
func (r *recent) take(id string) eventState {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.state[id]
	if s == stateDeleted {
		delete(r.state, id)
	}
	return s
}

func (r *recent) set(id string, s eventState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == nil {
		r.state = make(map[string]eventState, recentSize)
		r.ring = make([]string, recentSize)
	}
	if _, ok := r.state[id]; !ok {
		if old := r.ring[r.next]; old != "" {
			delete(r.state, old)
		}
		r.ring[r.next] = id
		r.next = (r.next + 1) % recentSize
	}
	r.state[id] = s
}
