package notify_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	gps "cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/wxcc/tokenservice/shared/notify"
	"github.com/wxcc/tokenservice/shared/pubsub"
	"github.com/wxcc/tokenservice/shared/testing/emulator"
	"github.com/wxcc/tokenservice/shared/testing/webexfake"
	"github.com/wxcc/tokenservice/shared/token"
)

// The Pub/Sub emulator pushes the event, as a push subscription does in
// production, to a handler that serves POST /notify as the worker does:
// the envelope it sends is the one HandlePush reads, and an answer of 503
// makes it deliver the event again.
func TestPushFromPubSubEmulator(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.seed("pushed")
	w.webex.FailMessagesNext(1, webexfake.ServerError(http.StatusServiceUnavailable))

	answers := make(chan int, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, notify.MaxEnvelope+1))
		if err != nil {
			rw.WriteHeader(http.StatusBadRequest)
			return
		}
		status, _ := w.n.HandlePush(r.Context(), body)
		rw.WriteHeader(status)
		answers <- status
	}))
	t.Cleanup(srv.Close)

	ctx := ctxT(t)
	c, err := gps.NewClient(ctx, emulator.Project())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	id := emulator.Collection(t)
	topic, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/" + c.Project() + "/topics/" + id})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/" + c.Project() + "/subscriptions/" + id, Topic: topic.GetName(),
		PushConfig: &pubsubpb.PushConfig{PushEndpoint: srv.URL + "/notify"}, AckDeadlineSeconds: 60,
	}); err != nil {
		t.Fatal(err)
	}
	pub := c.Publisher(topic.GetName())
	pub.EnableMessageOrdering = true // as the relay publishes
	t.Cleanup(pub.Stop)
	e := w.event(token.EventReauthorizationRequired, tok, "")
	if _, err := pub.Publish(ctx, pubsub.NewMessage(e, pubsub.Source(c.Project(), "tokens"))).Get(ctx); err != nil {
		t.Fatal(err)
	}

	wait := func() int {
		t.Helper()
		select {
		case s := <-answers:
			return s
		case <-time.After(60 * time.Second):
			t.Fatal("the emulator pushed nothing")
			return 0
		}
	}
	if s := wait(); s != http.StatusServiceUnavailable {
		t.Fatalf("first push answered %d, want 503 (Webex failed once)", s)
	}
	if s := wait(); s != http.StatusOK {
		t.Fatalf("redelivery answered %d, want 200", s)
	}
	w.expect(1, 1)
}
