package pubsub_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	gps "cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/wxcc/tokenservice/shared/firestore"
	"github.com/wxcc/tokenservice/shared/pubsub"
	"github.com/wxcc/tokenservice/shared/testing/emulator"
	"github.com/wxcc/tokenservice/shared/token"
)

func TestMain(m *testing.M) { os.Exit(emulator.Main(m, emulator.PubSub, emulator.Firestore)) }

// newStore returns the Firestore store on a collection of this test's own;
// its outbox is the one the relay works on in production.
func newStore(t testing.TB) *firestore.Store {
	t.Helper()
	return firestore.New(emulator.FirestoreClient(t), emulator.Collection(t))
}

// commit writes each event into s's outbox the way the refresh protocol
// does, atomically with a change of its token, one commit per event.
func commit(t testing.TB, s *firestore.Store, evs ...token.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, e := range evs {
		if _, err := s.Create(ctx, &token.Token{Name: e.Name}); err != nil {
			t.Fatalf("create %s: %v", e.Name, err)
		}
		if _, err := s.Update(ctx, e.Name, func(tok *token.Token) ([]token.Event, error) {
			tok.Generation = e.Generation
			return []token.Event{e}, nil
		}); err != nil {
			t.Fatalf("commit %s: %v", e.ID, err)
		}
	}
}

// pending returns the IDs of the events in o, oldest first.
func pending(t testing.TB, o pubsub.Outbox) []string {
	t.Helper()
	evs, err := o.PendingEvents(context.Background(), 10000)
	if err != nil {
		t.Fatalf("pending events: %v", err)
	}
	return ids(evs)
}

// memOutbox is an in-memory Outbox, for tests that need to put into it
// what Firestore would not take (an 11 MB event).
type memOutbox struct {
	mu      sync.Mutex
	events  []token.Event
	deletes []string
}

func newOutbox(events ...token.Event) *memOutbox {
	return &memOutbox{events: slices.Clone(events)}
}

func (o *memOutbox) PendingEvents(ctx context.Context, limit int) ([]token.Event, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.events[:min(limit, len(o.events))]), nil
}

func (o *memOutbox) PendingFor(ctx context.Context, name string, limit int) ([]token.Event, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []token.Event
	for _, e := range o.events {
		if e.Name == name && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (o *memOutbox) DeleteEvent(ctx context.Context, id string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.deletes = append(o.deletes, id)
	o.events = slices.DeleteFunc(o.events, func(e token.Event) bool { return e.ID == id })
	return nil
}

func newClient(t testing.TB) *gps.Client {
	t.Helper()
	c, err := gps.NewClient(context.Background(), emulator.Project())
	if err != nil {
		t.Fatalf("pubsub client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// names returns a topic ID and a subscription ID unique to this test.
func names(t testing.TB) (topicID, subID string) {
	t.Helper()
	base := emulator.Collection(t)
	return "t-" + base, "s-" + base
}

// createTopic creates the topic and an ordered subscription on it.
func createTopic(t testing.TB, c *gps.Client, topicID, subID string) {
	t.Helper()
	if err := makeTopic(c, topicID, subID); err != nil {
		t.Fatal(err)
	}
}

func makeTopic(c *gps.Client, topicID, subID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topic, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{
		Name: "projects/" + c.Project() + "/topics/" + topicID,
	})
	if err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	_, err = c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:                  "projects/" + c.Project() + "/subscriptions/" + subID,
		Topic:                 topic.GetName(),
		EnableMessageOrdering: true,
		AckDeadlineSeconds:    60,
	})
	if err != nil {
		return fmt.Errorf("create subscription: %w", err)
	}
	return nil
}

// receive collects messages from subID in arrival order until n arrived
// and then quiet passed without another one, or until 30s passed.
func receive(t testing.TB, c *gps.Client, subID string, n int, quiet time.Duration) []*gps.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		mu    sync.Mutex
		got   []*gps.Message
		timer *time.Timer
	)
	err := c.Subscriber(subID).Receive(ctx, func(_ context.Context, m *gps.Message) {
		m.Ack()
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m)
		if len(got) >= n {
			if timer == nil {
				timer = time.AfterFunc(quiet, cancel)
			} else {
				timer.Reset(quiet)
			}
		}
	})
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) < n {
		t.Fatalf("received %d messages in 30s, want %d", len(got), n)
	}
	return got
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// rotated returns the token.rotated event of name at generation gen.
func rotated(name string, gen int64) token.Event {
	return token.NewEvent(token.EventRotated, &token.Token{
		Name:           name,
		Generation:     gen,
		AccessExpires:  t0.Add(time.Duration(gen) * 12 * time.Hour),
		RefreshExpires: t0.Add(60 * 24 * time.Hour),
	}, token.TriggerScheduled, t0.Add(time.Duration(gen)*time.Minute))
}

func ids(events []token.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.ID)
	}
	return out
}

func msgIDs(msgs []*gps.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Attributes["ce-id"])
	}
	return out
}
