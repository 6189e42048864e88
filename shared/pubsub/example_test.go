package pubsub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"strconv"
	"sync"
	"time"

	gps "cloud.google.com/go/pubsub/v2"

	"github.com/wxcc/tokenservice/shared/pubsub"
	"github.com/wxcc/tokenservice/shared/testing/emulator"
	"github.com/wxcc/tokenservice/shared/token"
)

// A subscriber of token events: it reacts to token.rotated, drops
// duplicates by ce-id (delivery is at-least-once) and drops events older
// than the newest generation it has seen (api and worker both publish, so
// arrival order is not generation order).
func Example_subscriber() {
	client, subID, cleanup := exampleSetup() // publishes four events, see below
	defer cleanup()

	var (
		mu sync.Mutex
		// seen holds the ce-id of every event handled. A real subscriber
		// keeps it in its own database with a TTL of a few days.
		seen = map[string]bool{}
		// newest is the newest generation handled per token name.
		newest = map[string]int64{}
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	received := 0
	err := client.Subscriber(subID).Receive(ctx, func(_ context.Context, m *gps.Message) {
		defer m.Ack()
		mu.Lock()
		defer mu.Unlock()
		if received++; received == 4 {
			defer cancel() // enough for the example
		}
		if m.Attributes["ce-type"] != string(token.EventRotated) {
			return
		}
		id, name := m.Attributes["ce-id"], m.Attributes["name"]
		if seen[id] {
			fmt.Printf("duplicate %s dropped\n", id)
			return
		}
		seen[id] = true
		gen, err := strconv.ParseInt(m.Attributes["generation"], 10, 64)
		if err != nil {
			log.Printf("bad generation attribute in %s: %v", id, err)
			return
		}
		if gen <= newest[name] {
			fmt.Printf("generation %d of %s is older than %d: dropped\n", gen, name, newest[name])
			return
		}
		newest[name] = gen
		var d pubsub.Data
		if err := json.Unmarshal(m.Data, &d); err != nil {
			log.Printf("bad data in %s: %v", id, err)
			return
		}
		// The event carries no token: fetch the new one from the token
		// service (GET /?name=...) when it is needed.
		fmt.Printf("%s rotated to generation %d (%s), valid until %s\n",
			name, gen, d.Trigger, time.UnixMilli(d.AccessExpires).UTC().Format(time.RFC3339))
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// flow-a rotated to generation 1 (scheduled), valid until 2026-03-02T00:00:00Z
	// flow-a rotated to generation 3 (scheduled), valid until 2026-03-03T00:00:00Z
	// generation 2 of flow-a is older than 3: dropped
	// duplicate flow-a/3/token.rotated dropped
}

// exampleSetup creates a topic with an ordered subscription on the
// emulator and publishes through two relays, as api and worker would:
// generation 1, then 3 (by one), then a late 2 and a duplicate of 3 (by
// the other).
func exampleSetup() (*gps.Client, string, func()) {
	ctx := context.Background()
	client, err := gps.NewClient(ctx, emulator.Project())
	if err != nil {
		log.Fatal(err)
	}
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topicID, subID := "example-"+suffix, "example-sub-"+suffix
	if err := makeTopic(client, topicID, subID); err != nil {
		log.Fatal(err)
	}
	// Each relay delivers what its instance committed.
	api := pubsub.New(client, newOutbox(rotated("flow-a", 1), rotated("flow-a", 3)), pubsub.Options{Topic: topicID, Source: pubsub.Source(emulator.Project(), "tokens")})
	worker := pubsub.New(client, newOutbox(rotated("flow-a", 2), rotated("flow-a", 3)), pubsub.Options{Topic: topicID, Source: pubsub.Source(emulator.Project(), "tokens")})
	api.Deliver(ctx, []token.Event{rotated("flow-a", 1), rotated("flow-a", 3)})
	worker.Deliver(ctx, []token.Event{rotated("flow-a", 2), rotated("flow-a", 3)})
	if s1, s2 := api.Stats(), worker.Stats(); s1.Published+s2.Published != 4 {
		log.Fatalf("published %d events, want 4", s1.Published+s2.Published)
	}
	return client, subID, func() {
		api.Close()
		worker.Close()
		client.Close()
	}
}
