package notify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wxcc/tokenservice/shared/token"
)

// Limits of a push request. Our events make envelopes of about 1 KiB.
const (
	// MaxEnvelope bounds the body of POST /notify.
	MaxEnvelope = 8 << 10
	// maxData bounds an event's decoded data.
	maxData = 4 << 10
	// Pub/Sub's own limits on attributes: what exceeds them did not come
	// from Pub/Sub.
	maxAttributes = 100
	maxAttrKey    = 256
	maxAttrValue  = 1024
	maxEventID    = 512
)

// Attributes of the service's events (DESIGN 4).
const (
	attrSpecVersion = "ce-specversion"
	attrType        = "ce-type"
	attrID          = "ce-id"
	attrTime        = "ce-time"
	attrName        = "name"
	attrGeneration  = "generation"
)

var (
	// errEnvelope: the body is not a Pub/Sub push envelope (400).
	errEnvelope = errors.New("not a pub/sub push envelope")
	// errTooLarge: the body exceeds MaxEnvelope (413).
	errTooLarge = errors.New("push envelope too large")
	// errNotEvent: a well-formed envelope whose message is not one of
	// the service's events. It is acknowledged: delivering it again
	// cannot make it one.
	errNotEvent = errors.New("message is not a token event")
)

// envelope is Pub/Sub's push request body (wrapped delivery).
type envelope struct {
	Message *struct {
		Attributes  map[string]string `json:"attributes"`
		Data        *string           `json:"data"`
		MessageID   string            `json:"messageId"`
		PublishTime string            `json:"publishTime"`
	} `json:"message"`
	Subscription    string `json:"subscription"`
	DeliveryAttempt *int   `json:"deliveryAttempt"`
}

// eventData is the JSON data of an event. Fields it does not name (an
// operator may opt in to secrets in events) are ignored, never copied.
type eventData struct {
	Name           string `json:"name"`
	Generation     int64  `json:"generation"`
	AccessExpires  int64  `json:"accessExpires"`
	RefreshExpires int64  `json:"refreshExpires"`
	Trigger        string `json:"trigger"`
	Message        string `json:"message"`
}

// parsePush reads a push request body into the event it carries. Errors
// wrap errTooLarge or errEnvelope (the body is not what Pub/Sub sends:
// 4xx) or errNotEvent (Pub/Sub sent something that is not an event of
// ours: acknowledge and drop it).
func parsePush(body []byte) (token.Event, error) {
	if len(body) > MaxEnvelope {
		return token.Event{}, fmt.Errorf("%w: %d bytes, at most %d", errTooLarge, len(body), MaxEnvelope)
	}
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&env); err != nil {
		return token.Event{}, fmt.Errorf("%w: %s", errEnvelope, jsonProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return token.Event{}, fmt.Errorf("%w: data after the JSON object", errEnvelope)
	}
	m := env.Message
	switch {
	case m == nil:
		return token.Event{}, fmt.Errorf("%w: no message", errEnvelope)
	case m.MessageID == "" || len(m.MessageID) > maxAttrKey:
		return token.Event{}, fmt.Errorf("%w: no valid messageId", errEnvelope)
	case env.Subscription == "" || len(env.Subscription) > 1024:
		return token.Event{}, fmt.Errorf("%w: no valid subscription", errEnvelope)
	case env.DeliveryAttempt != nil && *env.DeliveryAttempt < 1:
		return token.Event{}, fmt.Errorf("%w: deliveryAttempt below 1", errEnvelope)
	case len(m.Attributes) > maxAttributes:
		return token.Event{}, fmt.Errorf("%w: %d attributes", errEnvelope, len(m.Attributes))
	}
	for k, v := range m.Attributes {
		if k == "" || len(k) > maxAttrKey || len(v) > maxAttrValue {
			return token.Event{}, fmt.Errorf("%w: attribute beyond pub/sub's limits", errEnvelope)
		}
	}
	var published time.Time
	if m.PublishTime != "" {
		var err error
		if published, err = time.Parse(time.RFC3339Nano, m.PublishTime); err != nil {
			return token.Event{}, fmt.Errorf("%w: publishTime is not RFC 3339", errEnvelope)
		}
	}
	var data []byte
	if m.Data != nil {
		var err error
		if data, err = base64.StdEncoding.DecodeString(*m.Data); err != nil {
			return token.Event{}, fmt.Errorf("%w: data is not base64", errEnvelope)
		}
	}
	return decodeEvent(m.Attributes, data, published)
}

// jsonProblem says what is wrong with a body without quoting it.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "field " + te.Field + " has the wrong type"
	}
	return "malformed JSON"
}

// decodeEvent checks a message's attributes and data against DESIGN 4.
// ce-time, or else the publish time, is the event's time.
func decodeEvent(attrs map[string]string, data []byte, published time.Time) (token.Event, error) {
	bad := func(format string, args ...any) (token.Event, error) {
		return token.Event{}, fmt.Errorf("%w: %s", errNotEvent, fmt.Sprintf(format, args...))
	}
	typ := attrs[attrType]
	if typ == "" {
		return bad("no ce-type")
	}
	if !printable(typ, 100) {
		return bad("malformed ce-type")
	}
	if v, ok := attrs[attrSpecVersion]; ok && v != "1.0" {
		return bad("ce-specversion %q", v)
	}
	id := attrs[attrID]
	if id == "" || !printable(id, maxEventID) {
		return bad("no valid ce-id")
	}
	at := published
	if v := attrs[attrTime]; v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return bad("ce-time is not RFC 3339")
		}
		at = t
	}
	if at.IsZero() {
		return bad("no ce-time and no publish time")
	}
	if len(data) == 0 || len(data) > maxData {
		return bad("data missing or larger than %d bytes", maxData)
	}
	var d eventData
	if err := json.Unmarshal(data, &d); err != nil {
		return bad("data: %s", jsonProblem(err))
	}
	if n, ok := attrs[attrName]; ok && n != d.Name {
		return bad("name attribute and data disagree")
	}
	if g, ok := attrs[attrGeneration]; ok {
		if n, err := strconv.ParseInt(g, 10, 64); err != nil || n != d.Generation {
			return bad("generation attribute and data disagree")
		}
	}
	e := token.Event{
		ID:             id,
		Type:           token.EventType(typ),
		Name:           d.Name,
		Generation:     d.Generation,
		AccessExpires:  fromMillis(d.AccessExpires),
		RefreshExpires: fromMillis(d.RefreshExpires),
		Trigger:        knownTrigger(d.Trigger),
		Time:           at,
		Message:        d.Message,
	}
	switch {
	case d.Generation < 0:
		return bad("negative generation")
	case e.Type == token.EventSweepHalted && e.Name != "":
		return bad("%s names a token", e.Type)
	case e.Type != token.EventSweepHalted && token.ValidateName(e.Name) != nil:
		return bad("invalid token name")
	}
	return e, nil
}

// printable reports whether s is at most n bytes of printable ASCII.
func printable(s string, n int) bool {
	if len(s) > n || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x21 || r > 0x7e })
}

func fromMillis(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// knownTrigger keeps a trigger DESIGN names, "" for any other.
func knownTrigger(s string) token.Trigger {
	switch t := token.Trigger(s); t {
	case token.TriggerScheduled, token.TriggerInline, token.TriggerAuthorization, token.TriggerManual, token.TriggerMint:
		return t
	}
	return ""
}
