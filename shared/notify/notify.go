// Package notify tells a person when they must act (DESIGN 2b): a token
// needs re-authorization, its refresh token expires soon, refreshing it
// failed below the threshold, or a sweep halted; and, once it is active
// again, that the problem is over. It consumes the service's own events,
// which Pub/Sub pushes to the worker's POST /notify, and sends a message
// to a Webex space through a bot and/or a webhook signed as the Standard
// Webhooks specification says.
//
// Each token and kind is one condition, kept through the Store port
// (Firestore, under META_COLLECTION): at most one message when it opens,
// a reminder every NOTIFY_REMINDER while it stays open (Remind, which
// the sweep calls), one recovery message when it resolves, none when the
// token is deleted. A message is delivered per channel: a push is
// answered non-2xx until every channel has it, so that Pub/Sub delivers
// it again, and 2xx once they do or once NOTIFY_GIVE_UP has passed since
// the event; a channel that has the message never gets it twice, also
// when Pub/Sub delivers the event twice or to two instances at once.
//
// The package imports neither Echo nor Firestore: the worker's main wires
// HandlePush to its route, and adapters implement the ports.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/token"
)

// DefaultWebhookTimeout bounds one webhook call when Config sets none.
const DefaultWebhookTimeout = 10 * time.Second

// minClaim is the least time an instance sending a message holds its
// claim on the channels; it is at least twice the longest channel
// timeout.
const minClaim = 30 * time.Second

// keep is how long a closed condition's document is kept: longer than
// Pub/Sub keeps an unacknowledged message (31 days at most), so that a
// late copy of the event that opened it finds it closed.
const keep = 32 * 24 * time.Hour

// Config is what a Notifier needs. Channels are each optional, but one
// must be configured.
type Config struct {
	// Webex: the bot's access token and the room (NOTIFY_WEBEX_BOT_TOKEN,
	// NOTIFY_WEBEX_ROOM_ID), posted to through Webex (the shared
	// webex.Client, bounded by WEBEX_TIMEOUT).
	WebexBotToken string
	WebexRoomID   string
	Webex         MessagePoster
	// Webhook: NOTIFY_WEBHOOK_URL and NOTIFY_WEBHOOK_SECRET. WebhookClient
	// (default: one that follows no redirect) makes the calls, each
	// bounded by WebhookTimeout (DefaultWebhookTimeout).
	WebhookURL     string
	WebhookSecret  string
	WebhookClient  *http.Client
	WebhookTimeout time.Duration
	// ConsoleURL (CONSOLE_URL) links messages to the console; "" leaves
	// the links out.
	ConsoleURL string
	// Reminder (NOTIFY_REMINDER) and GiveUp (NOTIFY_GIVE_UP), required.
	Reminder time.Duration
	GiveUp   time.Duration
	// WebexTimeout is WEBEX_TIMEOUT, which bounds Webex's calls in the
	// client; here it only sizes the claim on a channel being sent to.
	WebexTimeout time.Duration

	// Conditions keeps the state; Tokens and Sweeps are read to decide
	// whether an event is stale and whether a condition resolved without
	// one (the Firestore store implements all three).
	Conditions Store
	Tokens     Tokens
	Sweeps     Sweeps
	// Activity records every message sent or given up on; nil records
	// nothing.
	Activity activity.Recorder
	// Instance names this process in the activity record.
	Instance string
	Logger   *slog.Logger
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Notifier decides, delivers and records notifications. It is safe for
// concurrent use, also by several processes sharing one Store.
type Notifier struct {
	channels   []channel
	names      []string // of channels, in order
	consoleURL string
	reminder   time.Duration
	giveUp     time.Duration
	claim      time.Duration
	store      Store
	tokens     Tokens
	sweeps     Sweeps
	activity   activity.Recorder
	instance   string
	log        *slog.Logger
	now        func() time.Time
}

// New checks c and returns a Notifier.
func New(c Config) (*Notifier, error) {
	n := &Notifier{
		consoleURL: strings.TrimRight(c.ConsoleURL, "/"),
		reminder:   c.Reminder, giveUp: c.GiveUp,
		store: c.Conditions, tokens: c.Tokens, sweeps: c.Sweeps, activity: c.Activity,
		instance: c.Instance, log: c.Logger, now: c.Now,
	}
	webhookTimeout := c.WebhookTimeout
	if webhookTimeout <= 0 {
		webhookTimeout = DefaultWebhookTimeout
	}
	n.claim = max(minClaim, 2*c.WebexTimeout, 2*webhookTimeout)
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.now == nil {
		n.now = time.Now
	}
	if n.instance == "" {
		n.instance = "worker"
	}
	if n.store == nil || n.tokens == nil || n.sweeps == nil {
		return nil, errors.New("notify: Conditions, Tokens and Sweeps are required")
	}
	if n.reminder <= 0 || n.giveUp <= 0 {
		return nil, errors.New("notify: Reminder (NOTIFY_REMINDER) and GiveUp (NOTIFY_GIVE_UP) must be positive")
	}
	if c.WebexBotToken != "" || c.WebexRoomID != "" {
		if c.WebexBotToken == "" || c.WebexRoomID == "" || c.Webex == nil {
			return nil, errors.New("notify: the Webex channel needs a bot token, a room ID and a client")
		}
		n.channels = append(n.channels, &webexChannel{poster: c.Webex, botToken: c.WebexBotToken, roomID: c.WebexRoomID, consoleURL: n.consoleURL})
	}
	if c.WebhookURL != "" {
		ch, err := newWebhookChannel(c, n)
		if err != nil {
			return nil, err
		}
		n.channels = append(n.channels, ch)
	}
	if len(n.channels) == 0 {
		return nil, errors.New("notify: no channel configured (NOTIFY_WEBEX_BOT_TOKEN with NOTIFY_WEBEX_ROOM_ID, or NOTIFY_WEBHOOK_URL)")
	}
	for _, ch := range n.channels {
		n.names = append(n.names, ch.name())
	}
	return n, nil
}

func newWebhookChannel(c Config, n *Notifier) (*webhookChannel, error) {
	u, err := url.Parse(c.WebhookURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("notify: NOTIFY_WEBHOOK_URL is not an absolute http(s) URL")
	}
	key, err := webhookKey(c.WebhookSecret)
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	timeout := c.WebhookTimeout
	if timeout <= 0 {
		timeout = DefaultWebhookTimeout
	}
	hc := c.WebhookClient
	if hc == nil {
		// A 3xx is a failure (Standard Webhooks): following it would send
		// the signed message where nobody configured it to go.
		hc = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	bounded := *hc
	bounded.Timeout = timeout
	return &webhookChannel{url: c.WebhookURL, key: key, hc: &bounded, consoleURL: n.consoleURL, now: n.now}, nil
}

// Channels names the configured channels.
func (n *Notifier) Channels() []string { return append([]string(nil), n.names...) }

// errPending: a message is not yet with every channel (Pub/Sub should
// deliver the event again).
var errPending = errors.New("notification not delivered to every channel yet")

// HandlePush handles the body of one Pub/Sub push request to POST
// /notify and returns the HTTP status to answer, with an error to log
// (secret-free, fit for the answer's message) for any but 200:
//
//   - 413: the body is larger than MaxEnvelope; 400: it is not a push
//     envelope. Pub/Sub retries these as it retries any non-2xx, until
//     the subscription's retention or dead-letter policy ends it: only
//     a misconfigured subscription (payload unwrapping) or a caller that
//     is not Pub/Sub sends them, and neither should be acknowledged.
//   - 200: handled: every channel has the message, or it was given up
//     on, or there was nothing to send (a duplicate, a stale event, an
//     event type that needs no message, or a message that is not one of
//     the service's events: delivering that again cannot help, so it is
//     acknowledged and logged).
//   - 503: some channel does not have the message yet, or the store
//     could not be read or written: Pub/Sub delivers it again with
//     backoff.
//
// The caller authenticates the request (like /run) and reads at most
// MaxEnvelope+1 bytes of body.
func (n *Notifier) HandlePush(ctx context.Context, body []byte) (status int, err error) {
	ev, err := parsePush(body)
	switch {
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge, err
	case errors.Is(err, errEnvelope):
		n.log.Warn("notify: refused a push request", "error", err.Error())
		return http.StatusBadRequest, err
	case err != nil:
		n.log.Warn("notify: acknowledged a message that is not a token event", "error", err.Error())
		return http.StatusOK, nil
	}
	done, err := n.handle(ctx, ev)
	if err != nil {
		n.log.Warn("notify: event not handled yet", "event", ev.ID, "error", err.Error())
		return http.StatusServiceUnavailable, fmt.Errorf("handle event: %w", errUnavailable)
	}
	if !done {
		return http.StatusServiceUnavailable, errPending
	}
	return http.StatusOK, nil
}

// errUnavailable is what a caller learns of a store failure.
var errUnavailable = errors.New("notification state unavailable")

// handle acts on one event and reports whether it is done with it.
func (n *Notifier) handle(ctx context.Context, ev token.Event) (bool, error) {
	switch ev.Type {
	case token.EventReauthorizationRequired, token.EventRefreshExpiring, token.EventRefreshFailed, token.EventSweepHalted:
		return n.opened(ctx, ev)
	case token.EventRotated:
		return n.rotated(ctx, ev)
	case token.EventDeleted:
		return true, n.deleted(ctx, ev)
	}
	return true, nil // nothing a person must act on
}
