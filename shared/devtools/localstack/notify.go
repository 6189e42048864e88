package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	gps "cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wxcc/tokenservice/shared/testing/cloudrun"
	"github.com/wxcc/tokenservice/shared/testing/testkit"
	"github.com/wxcc/tokenservice/shared/testing/webexfake"
)

// The notifications of the local stack (DESIGN 2b): the worker consumes
// the service's own events through a Pub/Sub push subscription to its
// POST /notify, authenticated by the subscription's OIDC token through
// Cloud Run's IAM check. The Pub/Sub emulator's push cannot attach an ID
// token, so a small pusher stands in for it: it pulls from the
// subscription and POSTs each message in Pub/Sub's push envelope through
// the local front end with a token minted as Pub/Sub mints it,
// acknowledging only a 2xx and letting the emulator deliver a refused one
// again, as push does. The worker posts into a Webex space of the fake
// Webex through a bot; each message posted is printed as [webex space].
const (
	notifySubscriptionID = "token-events-notify"
	botToken             = "demo-bot-token-0123456789abcdef"
	roomID               = "demo-room-token-alerts"
)

// createNotifySubscription creates the push subscription's stand-in:
// unordered (a failed delivery must not hold back a token's later
// events), with the ack deadline of the deployment's.
func createNotifySubscription(ctx context.Context, c *gps.Client) error {
	_, err := c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:               "projects/" + project + "/subscriptions/" + notifySubscriptionID,
		Topic:              "projects/" + project + "/topics/" + topicID,
		AckDeadlineSeconds: 60,
	})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create subscription %s: %w", notifySubscriptionID, err)
	}
	return nil
}

// pushToNotify delivers the subscription's messages to the worker's
// /notify through the front end until ctx ends.
func pushToNotify(ctx context.Context, c *gps.Client, iss *cloudrun.Issuer, workerURL string, con *console) {
	hc := &http.Client{Timeout: 60 * time.Second}
	sub := "projects/" + project + "/subscriptions/" + notifySubscriptionID
	err := c.Subscriber(notifySubscriptionID).Receive(ctx, func(ctx context.Context, m *gps.Message) {
		tok, err := iss.Mint(workerURL, schedulerSA)
		if err != nil {
			m.Nack()
			return
		}
		body := testkit.PushEnvelope(m, m.ID, m.PublishTime, sub)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, workerURL+"/notify", bytes.NewReader(body))
		if err != nil {
			m.Nack()
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			con.line("[push]", fmt.Sprintf("/notify unreachable (%v): Pub/Sub delivers it again", err))
			m.Nack()
			return
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			con.line("[push]", fmt.Sprintf("/notify answered %d to %s: Pub/Sub delivers it again", resp.StatusCode, m.Attributes["ce-type"]))
			m.Nack()
			return
		}
		m.Ack()
	})
	if err != nil && ctx.Err() == nil {
		con.say("pushing events to /notify stopped: %v", err)
	}
}

// printMessages prints every message the worker posts into the fake
// Webex space, one line each, until ctx ends.
func printMessages(ctx context.Context, fake *webexfake.Server, con *console) {
	seen := 0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		msgs := fake.Messages()
		for _, m := range msgs[min(seen, len(msgs)):] {
			first, _, _ := strings.Cut(m.Markdown, "\n")
			con.line("[webex space]", strings.ReplaceAll(first, "**", ""))
		}
		seen = len(msgs)
	}
}

// signIn is the local stack's sign-in with Webex: a sign-in integration
// of the fake Webex, and the people it offers on its picker page.
type signIn struct {
	clientID, clientSecret string
	operator, viewers      string
	people                 []webexfake.Person
}

// teachSignIn registers the sign-in integration and the demo people with
// the fake Webex, which shows a page to pick who signs in.
func teachSignIn(fake *webexfake.Server) signIn {
	s := signIn{clientID: "console-signin", clientSecret: "console-signin-secret-" + randomHex(8),
		operator: "olivia.ops@example.com", viewers: "*@viewers.example.com",
		people: []webexfake.Person{
			{Email: "olivia.ops@example.com", DisplayName: "Olivia Ops"},
			{Email: "victor@viewers.example.com", DisplayName: "Victor Viewer"},
			{Email: "sam.supervisor@example.com", DisplayName: "Sam Supervisor"},
			{Email: "mallory@elsewhere.example.net", DisplayName: "Mallory (not on the lists)"},
		}}
	fake.AddClient(s.clientID, s.clientSecret)
	for _, p := range s.people {
		fake.AddPerson(p)
	}
	fake.SetPersonPicker(true)
	return s
}
