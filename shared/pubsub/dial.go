package pubsub

import (
	"context"
	"fmt"

	gps "cloud.google.com/go/pubsub/v2"
)

// Dial connects to Pub/Sub for project (the emulator when
// PUBSUB_EMULATOR_HOST is set) and returns a Relay over ob, with a close
// function that stops the relay and then the client.
func Dial(ctx context.Context, project string, ob Outbox, o Options) (*Relay, func(), error) {
	client, err := gps.NewClient(ctx, project)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to pub/sub: %w", err)
	}
	r := New(client, ob, o)
	return r, func() { r.Close(); client.Close() }, nil
}
