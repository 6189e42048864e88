package pubsub

import (
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRetryQueue(t *testing.T) {
	t.Parallel()
	q := newRetryQueue()
	if dropped := q.add("a", "b", "a"); dropped != 0 {
		t.Errorf("add dropped %d, want 0", dropped)
	}
	q.add("c", "b")
	select {
	case <-q.wake:
	default:
		t.Error("add did not wake the loop")
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, q.take()); diff != "" {
		t.Errorf("take (-want +got):\n%s", diff)
	}
	if n, w := q.len(), q.waiting(); n != 3 || w != 0 {
		t.Errorf("during the round: len %d, waiting %d; want 3 (in the round), 0", n, w)
	}
	q.add("a", "d") // a failed again during the round, d is new
	if n, w := q.len(), q.waiting(); n != 4 || w != 2 {
		t.Errorf("after add during the round: len %d, waiting %d; want 4, 2", n, w)
	}
	q.finish([]string{"c", "a"}) // b went out
	if diff := cmp.Diff([]string{"a", "d", "c"}, q.take()); diff != "" {
		t.Errorf("next round (-want +got):\n%s", diff)
	}
	q.finish(nil)
	if n := q.len(); n != 0 {
		t.Errorf("len %d after a round that delivered everything, want 0", n)
	}

	for i := range maxRetrying + 10 {
		q.add(strconv.Itoa(i))
	}
	if n := q.len(); n != maxRetrying {
		t.Errorf("%d names queued, want the limit %d", n, maxRetrying)
	}
	if dropped := q.add("x", "0"); dropped != 1 {
		t.Errorf("add to a full queue dropped %d, want 1 (0 is queued already)", dropped)
	}
	round := q.take()
	if dropped := q.add("x"); dropped != 1 {
		t.Errorf("add while a full round is in progress dropped %d, want 1: the round counts", dropped)
	}
	if dropped := q.finish(round[:1]); dropped != 0 {
		t.Errorf("finish dropped %d, want 0", dropped)
	}
}
