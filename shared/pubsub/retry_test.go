package pubsub_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	gps "cloud.google.com/go/pubsub/v2"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/wxcc/tokenservice/shared/pubsub"
	"github.com/wxcc/tokenservice/shared/testing/emulator"
	"github.com/wxcc/tokenservice/shared/testing/netfault"
	"github.com/wxcc/tokenservice/shared/token"
)

// TestFailedDeliveriesGoOutWhenPubSubIsBack (issue 10, bug 2): events
// that a live instance failed to deliver while Pub/Sub was unreachable
// reach Pub/Sub within 10 s of its return, retried by the instance itself
// (no Drain is called), each token's in commit order (first arrivals),
// and leave the outbox. The relay is made by Dial, as in production, and reaches the
// emulator through a fault proxy that either black-holes connections or
// refuses them.
func TestFailedDeliveriesGoOutWhenPubSubIsBack(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		fault func(*netfault.Proxy)
	}{
		{"black hole", (*netfault.Proxy).Cut},
		{"refused", (*netfault.Proxy).Refuse},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t)
			topicID, subID := names(t)
			createTopic(t, c, topicID, subID)
			proxy := startProxy(t)
			outbox := newStore(t)
			r, _ := dialThrough(t, proxy, topicID, outbox, pubsub.Options{PublishTimeout: 2 * time.Second})

			// Connected before the outage, as a running instance is.
			before := rotated("before", 1)
			commit(t, outbox, before)
			r.Deliver(context.Background(), []token.Event{before})
			if got := pending(t, outbox); len(got) != 0 {
				t.Fatalf("outbox holds %v before the outage, want nothing", got)
			}

			tt.fault(proxy)
			var evs []token.Event
			for g := int64(1); g <= 3; g++ {
				for _, name := range []string{"a", "b", "c"} {
					evs = append(evs, rotated(name, g))
				}
			}
			commit(t, outbox, evs...)
			r.Deliver(context.Background(), evs)
			if diff := cmp.Diff(ids(evs), pending(t, outbox)); diff != "" {
				t.Fatalf("outbox after Deliver during the outage (-want +got):\n%s", diff)
			}
			if s := r.Stats(); s.Retrying != 3 {
				t.Errorf("stats %+v, want 3 tokens retrying", s)
			}
			// The outage outlasts a retry, so that the loop is backing off.
			failedByDeliver := r.Stats().Failed
			eventually(t, 30*time.Second, "a retry failed", func() bool { return r.Stats().Failed > failedByDeliver })

			proxy.Restore()
			restored := time.Now()
			msgs, at := arrivals(t, c, subID, len(evs)+1, restored.Add(20*time.Second))
			var last time.Duration
			for _, a := range at {
				last = max(last, a.Sub(restored))
			}
			t.Logf("%d events arrived %s after Pub/Sub was back (the last of them)", len(msgs), last.Round(time.Millisecond))
			if last > 10*time.Second {
				t.Errorf("the last event arrived %s after Pub/Sub was back, want within 10s", last)
			}
			// A publish whose answer was lost (the client gave up just as
			// Pub/Sub came back) is published again: at-least-once, as
			// DESIGN allows. After dropping duplicates by ce-id, as
			// subscribers do, every event is there, in commit order.
			if d := len(msgs) - len(distinct(msgs)); d > 0 {
				t.Logf("%d duplicates: %v", d, msgIDs(msgs))
			}
			checkOrder(t, distinct(msgs), append([]token.Event{before}, evs...))
			eventually(t, 10*time.Second, "the outbox is empty and nothing is retried", func() bool {
				return len(pending(t, outbox)) == 0 && r.Stats().Retrying == 0
			})
		})
	}
}

// TestCloseDuringOutage: while Pub/Sub black-holes every connection and
// the retry loop waits on a publish, Close returns within a few seconds
// (shutdown must fit in Cloud Run's 10 s), and the events stay in the
// outbox for the worker's next sweep.
func TestCloseDuringOutage(t *testing.T) {
	t.Parallel()
	proxy := startProxy(t)
	outbox := newStore(t)
	evs := []token.Event{rotated("a", 1), rotated("a", 2), rotated("b", 1)}
	commit(t, outbox, evs...)
	r, closeRelay := dialThrough(t, proxy, "token-events", outbox, pubsub.Options{PublishTimeout: time.Minute})
	proxy.Cut()

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	r.Deliver(ctx, evs)
	eventually(t, 10*time.Second, "the retry loop is publishing", func() bool { return r.Stats().Delivering == 1 })
	start := time.Now()
	closeRelay()
	took := time.Since(start)
	t.Logf("Close took %s", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("Close took %s while a publish hung, want a few seconds at most", took)
	}
	if diff := cmp.Diff(ids(evs), pending(t, outbox)); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
}

// startProxy starts a fault proxy in front of the Pub/Sub emulator.
func startProxy(t testing.TB) *netfault.Proxy {
	t.Helper()
	proxy, err := netfault.Start(os.Getenv("PUBSUB_EMULATOR_HOST"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	return proxy
}

// dialThrough returns a relay made by Dial, as in production, whose
// client reaches Pub/Sub through proxy, and its close function (also
// called when the test ends).
func dialThrough(t testing.TB, proxy *netfault.Proxy, topicID string, outbox pubsub.Outbox, o pubsub.Options) (*pubsub.Relay, func()) {
	t.Helper()
	o.Topic, o.Source = topicID, source
	r, closeRelay, err := pubsub.Dial(context.Background(), emulator.Project(), outbox, o,
		option.WithEndpoint(proxy.Addr()), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	closeOnce := func() { once.Do(closeRelay) }
	t.Cleanup(closeOnce)
	return r, closeOnce
}

// arrivals receives subID's messages until n distinct ones arrived or
// until deadline, and returns them in arrival order with the time each
// arrived.
func arrivals(t testing.TB, c *gps.Client, subID string, n int, deadline time.Time) ([]*gps.Message, []time.Time) {
	t.Helper()
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var (
		mu   sync.Mutex
		msgs []*gps.Message
		at   []time.Time
		seen = map[string]bool{}
	)
	err := c.Subscriber(subID).Receive(ctx, func(_ context.Context, m *gps.Message) {
		now := time.Now()
		m.Ack()
		mu.Lock()
		defer mu.Unlock()
		msgs, at = append(msgs, m), append(at, now)
		seen[m.Attributes["ce-id"]] = true
		if len(seen) >= n {
			cancel()
		}
	})
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) < n {
		t.Fatalf("received %d distinct messages by the deadline, want %d: %v", len(seen), n, msgIDs(msgs))
	}
	return msgs, at
}

// distinct keeps the first message of each ce-id.
func distinct(msgs []*gps.Message) []*gps.Message {
	seen := map[string]bool{}
	var out []*gps.Message
	for _, m := range msgs {
		if id := m.Attributes["ce-id"]; !seen[id] {
			seen[id] = true
			out = append(out, m)
		}
	}
	return out
}

// eventually waits up to d for cond, failing the test with what it
// waited for.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
