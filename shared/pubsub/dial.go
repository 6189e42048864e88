package pubsub

import (
	"context"
	"fmt"
	"time"

	gps "cloud.google.com/go/pubsub/v2"
	vkit "cloud.google.com/go/pubsub/v2/apiv1"
	gax "github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
)

// Dial connects to Pub/Sub for project (the emulator when
// PUBSUB_EMULATOR_HOST is set) and returns a Relay over ob, with a close
// function that stops the relay and then the client. opts are added to
// the client's options (tests route it through a fault proxy).
//
// The client is tuned to notice quickly that Pub/Sub is back: with the
// library's defaults, a publish in progress when an outage ends sleeps up
// to 6.4 s between its retries, and the connection waits up to 20 s on a
// connect that hangs and up to 120 s between reconnects. Measured on the
// emulator behind a fault proxy, after outages of 12 to 90 s, a relay's
// failed events reached Pub/Sub 10 to 27 s after it was back with the
// defaults, 1 to 4 s with these settings.
func Dial(ctx context.Context, project string, ob Outbox, o Options, opts ...option.ClientOption) (*Relay, func(), error) {
	client, err := gps.NewClientWithConfig(ctx, project, clientConfig(), append(clientOptions(), opts...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to pub/sub: %w", err)
	}
	r := New(client, ob, o)
	return r, func() { r.Close(); client.Close() }, nil
}

// clientOptions bound how long the connection takes to come back after
// an outage: a connect attempt gives up after 3 s (one to Google's front
// end takes well under one), and reconnects are at most about 2 s apart.
func clientOptions() []option.ClientOption {
	return []option.ClientOption{option.WithGRPCDialOption(grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 250 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
		MinConnectTimeout: 3 * time.Second,
	}))}
}

// clientConfig keeps the library's retry of a publish (same codes) but
// pauses at most 1 s between attempts instead of up to 60 s, so that a
// publish retried through an outage goes out within a second of its end.
// PublishTimeout still bounds the whole publish.
func clientConfig() *gps.ClientConfig {
	retryable := []codes.Code{codes.Aborted, codes.Canceled, codes.Internal, codes.ResourceExhausted,
		codes.Unknown, codes.Unavailable, codes.DeadlineExceeded}
	return &gps.ClientConfig{TopicAdminCallOptions: &vkit.TopicAdminCallOptions{
		Publish: []gax.CallOption{gax.WithRetry(func() gax.Retryer {
			return gax.OnCodes(retryable, gax.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2})
		})},
	}}
}
