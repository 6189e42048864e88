package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Channel names, as stored in a message's To and Delivered.
const (
	ChannelWebex   = "webex"
	ChannelWebhook = "webhook"
)

// channel delivers a message somewhere. send bounds itself in time.
type channel interface {
	name() string
	send(ctx context.Context, m *Message) error
}

// MessagePoster posts markdown to a Webex room as a bot (webex.Client's
// PostMessage), bounded by its own timeout.
type MessagePoster interface {
	PostMessage(ctx context.Context, botToken, roomID, markdown string) error
}

// webexChannel posts to a Webex space through a bot.
type webexChannel struct {
	poster     MessagePoster
	botToken   string
	roomID     string
	consoleURL string
}

func (c *webexChannel) name() string { return ChannelWebex }

func (c *webexChannel) send(ctx context.Context, m *Message) error {
	return c.poster.PostMessage(ctx, c.botToken, c.roomID, m.Notice.Markdown(c.consoleURL))
}

// Standard Webhooks' headers and secret prefix.
const (
	headerWebhookID        = "webhook-id"
	headerWebhookTimestamp = "webhook-timestamp"
	headerWebhookSignature = "webhook-signature"
	secretPrefix           = "whsec_"
)

// webhookChannel POSTs the message as JSON, signed as the Standard
// Webhooks specification says.
type webhookChannel struct {
	url        string
	key        []byte
	hc         *http.Client
	consoleURL string
	now        func() time.Time
}

func (c *webhookChannel) name() string { return ChannelWebhook }

// errWebhook: the webhook answered something other than 2xx.
var errWebhook = errors.New("webhook refused the message")

func (c *webhookChannel) send(ctx context.Context, m *Message) error {
	body := webhookBody(m, c.consoleURL)
	ts := c.now().Unix() // the attempt's time, as the specification asks
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(headerWebhookID, m.ID)
	req.Header.Set(headerWebhookTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(headerWebhookSignature, sign(c.key, m.ID, ts, body))
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // drop method and URL: the URL may hold a key
			err = ue.Err
		}
		return fmt.Errorf("post webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%w: HTTP %d", errWebhook, resp.StatusCode)
	}
	return nil
}

// sign is the webhook-signature of one attempt: "v1," and the base64 of
// HMAC-SHA256 under key of "<id>.<timestamp>.<body>".
func sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(timestamp, 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// webhookKey is the HMAC key of NOTIFY_WEBHOOK_SECRET. A whsec_ value is
// the Standard Webhooks serialisation, base64 of 24 to 64 random bytes,
// and the key is those bytes; any other value (at least 24 characters)
// is used as it is, its bytes the key.
func webhookKey(secret string) ([]byte, error) {
	rest, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok {
		if len(secret) < 24 {
			return nil, errors.New("NOTIFY_WEBHOOK_SECRET must be at least 24 characters")
		}
		return []byte(secret), nil
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, errors.New("NOTIFY_WEBHOOK_SECRET: the part after whsec_ is not base64")
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, fmt.Errorf("NOTIFY_WEBHOOK_SECRET: a whsec_ secret must decode to 24 to 64 bytes, not %d", len(key))
	}
	return key, nil
}
