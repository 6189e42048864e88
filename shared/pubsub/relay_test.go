package pubsub_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
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
	"github.com/wxcc/tokenservice/shared/token"
)

const source = "//tokenservice/projects/test/collections/tokens"

func newRelay(t testing.TB, c *gps.Client, topicID string, outbox pubsub.Outbox, o pubsub.Options) *pubsub.Relay {
	t.Helper()
	o.Topic = topicID
	o.Source = source
	r := pubsub.New(c, outbox, o)
	t.Cleanup(r.Close)
	return r
}

// checkOrder fails unless msgs hold exactly the events want, each once,
// every token's events in want's order.
func checkOrder(t *testing.T, msgs []*gps.Message, want []token.Event) {
	t.Helper()
	byID := map[string]token.Event{}
	wantPerKey := map[string][]string{}
	for _, e := range want {
		byID[e.ID] = e
		wantPerKey[e.Name] = append(wantPerKey[e.Name], e.ID)
	}
	gotPerKey := map[string][]string{}
	for _, m := range msgs {
		id := m.Attributes["ce-id"]
		e, ok := byID[id]
		if !ok {
			t.Errorf("unexpected message %q", id)
			continue
		}
		gotPerKey[e.Name] = append(gotPerKey[e.Name], id)
		if m.OrderingKey != e.Name {
			t.Errorf("%s: ordering key %q, want %q", id, m.OrderingKey, e.Name)
		}
	}
	if diff := cmp.Diff(wantPerKey, gotPerKey); diff != "" {
		t.Errorf("messages per token in arrival order (-want +got):\n%s", diff)
	}
}

func TestDeliver(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	topicID, subID := names(t)
	createTopic(t, c, topicID, subID)

	var evs []token.Event
	for g := int64(1); g <= 20; g++ {
		evs = append(evs, rotated("a", g), rotated("b", g))
	}
	failed := token.NewEvent(token.EventRefreshFailed, &token.Token{Name: "c", Generation: 4,
		AccessExpires: t0.Add(time.Hour)}, token.TriggerInline, t0)
	failed.Message = "webex answered 503"
	evs = append(evs, failed)
	outbox := newStore(t)
	commit(t, outbox, evs...)
	r := newRelay(t, c, topicID, outbox, pubsub.Options{})

	r.Deliver(context.Background(), evs)

	if got := pending(t, outbox); len(got) != 0 {
		t.Errorf("outbox after Deliver holds %v, want nothing", got)
	}
	msgs := receive(t, c, subID, len(evs), 500*time.Millisecond)
	checkOrder(t, msgs, evs)
	byID := map[string]token.Event{}
	for _, e := range evs {
		byID[e.ID] = e
	}
	for _, m := range msgs {
		e := byID[m.Attributes["ce-id"]]
		want := pubsub.NewMessage(e, source)
		if diff := cmp.Diff(want.Attributes, m.Attributes); diff != "" {
			t.Errorf("%s: attributes (-want +got):\n%s", e.ID, diff)
		}
		if !bytes.Equal(m.Data, want.Data) {
			t.Errorf("%s: data %s, want %s", e.ID, m.Data, want.Data)
		}
	}
	// One message checked against literal values, not only against NewMessage.
	for _, m := range msgs {
		if m.Attributes["ce-id"] != "c/4/token.refresh_failed" {
			continue
		}
		wantAttrs := map[string]string{
			"ce-specversion": "1.0", "ce-type": "token.refresh_failed", "ce-source": source,
			"ce-id": "c/4/token.refresh_failed", "ce-time": "2026-03-01T12:00:00Z",
			"ce-datacontenttype": "application/json", "name": "c", "generation": "4",
		}
		if diff := cmp.Diff(wantAttrs, m.Attributes); diff != "" {
			t.Errorf("attributes (-want +got):\n%s", diff)
		}
		wantData := `{"name":"c","generation":4,"accessExpires":1772370000000,"refreshExpires":0,"trigger":"inline","message":"webex answered 503"}`
		if string(m.Data) != wantData {
			t.Errorf("data %s, want %s", m.Data, wantData)
		}
	}
	if s := r.Stats(); s.Published != uint64(len(evs)) || s.Failed != 0 || s.DeleteFailed != 0 {
		t.Errorf("stats %+v, want %d published and no failure", s, len(evs))
	}
}

// TestDeliverStopsAtFailure makes the second of a token's events
// unpublishable (too large) and checks that it and the events after it
// stay in the outbox, nothing after it is published, other tokens are not
// held up, and, once the event is repaired, the retry loop publishes the
// rest in order without a Drain.
func TestDeliverStopsAtFailure(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	topicID, subID := names(t)
	createTopic(t, c, topicID, subID)

	a1, a2, a3, b1 := rotated("a", 1), rotated("a", 2), rotated("a", 3), rotated("b", 1)
	huge := a2
	huge.Message = strings.Repeat("x", 11<<20) // over Pub/Sub's 10 MB limit
	outbox := newOutbox(a1, huge, a3, b1)
	r := newRelay(t, c, topicID, outbox, pubsub.Options{})

	r.Deliver(context.Background(), []token.Event{a1, huge, a3, b1})

	if diff := cmp.Diff([]string{a2.ID, a3.ID}, pending(t, outbox)); diff != "" {
		t.Errorf("outbox after Deliver (-want +got):\n%s", diff)
	}
	checkOrder(t, receive(t, c, subID, 2, time.Second), []token.Event{a1, b1})
	if s := r.Stats(); s.Published != 2 || s.Failed == 0 || s.Retrying != 1 {
		t.Errorf("stats %+v, want 2 published, failures, 1 token retrying", s)
	}

	outbox.mu.Lock()
	outbox.events[0] = a2
	outbox.mu.Unlock()
	checkOrder(t, receive(t, c, subID, 2, time.Second), []token.Event{a2, a3})
	eventually(t, 10*time.Second, "the outbox is empty and nothing is retried", func() bool {
		return len(pending(t, outbox)) == 0 && r.Stats().Retrying == 0
	})
}

// TestTopicMissing: events wait in the outbox while the topic is missing,
// the error says so, and a Drain after the topic was created publishes
// them all, in order, once.
func TestTopicMissing(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	topicID, subID := names(t)

	var evs []token.Event
	for g := int64(1); g <= 5; g++ {
		for _, name := range []string{"a", "b", "c"} {
			evs = append(evs, rotated(name, g))
		}
	}
	outbox := newStore(t)
	commit(t, outbox, evs...)
	var logs bytes.Buffer
	api := newRelay(t, c, topicID, outbox, pubsub.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	wantErr := fmt.Sprintf("topic projects/%s/topics/%s not found; events wait in the outbox", c.Project(), topicID)

	api.Deliver(context.Background(), evs[:3])
	if !strings.Contains(logs.String(), wantErr) {
		t.Errorf("Deliver logged %q, want it to contain %q", logs.String(), wantErr)
	}
	api.Close()                                                        // the instance that committed them is gone: the worker's Drain publishes them
	r := newRelay(t, c, topicID, outbox, pubsub.Options{BatchSize: 4}) // Drain reads several pages
	n, err := r.Drain(context.Background())
	if n != 0 || !errors.Is(err, pubsub.ErrTopicNotFound) || !strings.Contains(err.Error(), wantErr) {
		t.Errorf("Drain = %d, %v; want 0 and an error containing %q", n, err, wantErr)
	}
	if diff := cmp.Diff(ids(evs), pending(t, outbox)); diff != "" {
		t.Errorf("outbox lost events (-want +got):\n%s", diff)
	}
	if s := r.Stats(); s.Published != 0 || s.Failed == 0 || s.Backlog != 4 {
		t.Errorf("stats %+v, want nothing published, failures, backlog 4 (one page)", s)
	}

	createTopic(t, c, topicID, subID)
	n, err = r.Drain(context.Background())
	if err != nil || n != len(evs) {
		t.Fatalf("Drain after creating the topic = %d, %v; want %d, nil", n, err, len(evs))
	}
	if got := pending(t, outbox); len(got) != 0 {
		t.Errorf("outbox after Drain holds %v, want nothing", got)
	}
	checkOrder(t, receive(t, c, subID, len(evs), time.Second), evs)
	if s := r.Stats(); s.Backlog != 0 || s.Published != uint64(len(evs)) {
		t.Errorf("stats %+v, want backlog 0, %d published", s, len(evs))
	}
}

// TestOutageIsBounded: with Pub/Sub unreachable, Deliver and Drain return
// within their timeouts and leave every event in the outbox.
func TestOutageIsBounded(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	c, err := gps.NewClient(context.Background(), emulator.Project(),
		option.WithEndpoint(dead), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	evs := []token.Event{rotated("a", 1), rotated("a", 2), rotated("b", 1)}
	outbox := newOutbox(evs...)
	r := newRelay(t, c, "token-events", outbox, pubsub.Options{PublishTimeout: time.Second})

	start := time.Now()
	r.Deliver(context.Background(), evs)
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Deliver took %v with Pub/Sub down, want about PublishTimeout (1s)", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start = time.Now()
	if n, err := r.Drain(ctx); n != 0 || err == nil {
		t.Errorf("Drain = %d, %v; want 0 and an error", n, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Drain took %v with a 500ms deadline", d)
	}
	if diff := cmp.Diff(ids(evs), pending(t, outbox)); diff != "" {
		t.Errorf("outbox lost events (-want +got):\n%s", diff)
	}
	if s := r.Stats(); s.Published != 0 || s.Failed < 2 || s.Retrying != 2 {
		t.Errorf("stats %+v, want 0 published, failures, 2 tokens retrying", s)
	}
}

// TestDeliverAndDrainConcurrently: Deliver and Drain of the same events
// at once in one process publish each event once, in order.
func TestDeliverAndDrainConcurrently(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	topicID, subID := names(t)
	createTopic(t, c, topicID, subID)
	outbox := newStore(t)
	r := newRelay(t, c, topicID, outbox, pubsub.Options{})

	var all []token.Event
	for round := range 3 {
		var evs []token.Event
		for g := int64(1); g <= 4; g++ {
			for k := range 8 {
				evs = append(evs, rotated("tok"+strconv.Itoa(k), int64(round*10)+g))
			}
		}
		commit(t, outbox, evs...)
		all = append(all, evs...)

		var wg sync.WaitGroup
		wg.Go(func() { r.Deliver(context.Background(), evs) })
		wg.Go(func() {
			if _, err := r.Drain(context.Background()); err != nil {
				t.Errorf("Drain: %v", err)
			}
		})
		wg.Wait()
	}
	if got := pending(t, outbox); len(got) != 0 {
		t.Errorf("outbox holds %v, want nothing", got)
	}
	checkOrder(t, receive(t, c, subID, len(all), time.Second), all)
	if s := r.Stats(); s.Published != uint64(len(all)) {
		t.Errorf("published %d, want %d (no duplicates)", s.Published, len(all))
	}
}

// TestDrainPublishesWhatOthersLeft: events that an instance committed
// but did not deliver (it died) are published by the next Drain, however
// young, oldest first and in order per token.
func TestDrainPublishesWhatOthersLeft(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	topicID, subID := names(t)
	createTopic(t, c, topicID, subID)
	fresh := func(e token.Event) token.Event { e.Time = time.Now(); return e }
	evs := []token.Event{rotated("a", 1), fresh(rotated("a", 2)), fresh(rotated("b", 1)), rotated("c", 1), fresh(rotated("a", 3))}
	outbox := newStore(t)
	commit(t, outbox, evs...)
	r := newRelay(t, c, topicID, outbox, pubsub.Options{})

	if n, err := r.Drain(context.Background()); err != nil || n != len(evs) {
		t.Fatalf("Drain = %d, %v; want %d, nil", n, err, len(evs))
	}
	if got := pending(t, outbox); len(got) != 0 {
		t.Errorf("outbox holds %v, want nothing", got)
	}
	checkOrder(t, receive(t, c, subID, len(evs), 500*time.Millisecond), evs)
}
