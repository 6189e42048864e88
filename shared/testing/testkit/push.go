package testkit

import (
	"encoding/base64"
	"encoding/json"
	"time"

	gps "cloud.google.com/go/pubsub/v2"
)

// PushEnvelope is m as a Pub/Sub push subscription POSTs it to its
// endpoint (the "wrapped" standard envelope): attributes, base64 data,
// the message ID and publish time in both spellings Pub/Sub sends, and
// the subscription's full name.
func PushEnvelope(m *gps.Message, id string, published time.Time, subscription string) []byte {
	at := published.UTC().Format(time.RFC3339Nano)
	b, err := json.Marshal(map[string]any{
		"message": map[string]any{
			"attributes": m.Attributes, "data": base64.StdEncoding.EncodeToString(m.Data),
			"messageId": id, "message_id": id, "publishTime": at, "publish_time": at,
			"orderingKey": m.OrderingKey,
		},
		"subscription": subscription,
	})
	if err != nil {
		panic("push envelope: " + err.Error()) // a map of strings always marshals
	}
	return b
}
