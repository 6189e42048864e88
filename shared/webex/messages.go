package webex

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/wxcc/tokenservice/shared/token"
)

// opMessage names the Messages API call in errors.
const opMessage = "message"

// MessagesPath is the Messages API under WEBEX_API_URL.
const MessagesPath = "/v1/messages"

// MaxMessageBytes is the longest markdown the Messages API accepts.
const MaxMessageBytes = 7439

// Permanent failures of PostMessage: Webex will refuse the same post
// until someone changes the configuration (the bot's token, the room, the
// bot's membership of it).
var (
	// ErrBotRejected: the bot's access token was refused (401).
	ErrBotRejected = errors.New("bot token rejected by webex")
	// ErrRoomUnavailable: the room is unknown, or the bot is not a member
	// of it or may not post there (403, 404).
	ErrRoomUnavailable = errors.New("room unknown to the bot")
	// ErrMessageRejected: Webex refused the message itself (another 4xx,
	// or a message too long to send).
	ErrMessageRejected = errors.New("message rejected by webex")
)

// messageBody is the JSON body of a post, as Webex documents it.
type messageBody struct {
	RoomID   string `json:"roomId"`
	Markdown string `json:"markdown"`
}

// PostMessage posts markdown to the room roomID as the bot whose access
// token is botToken: POST {WEBEX_API_URL}/v1/messages with a bearer token
// and JSON roomId and markdown. The call is bounded by the client's
// timeout (WEBEX_TIMEOUT). Failures:
//
//   - 401: ErrBotRejected;
//   - 403, 404: ErrRoomUnavailable;
//   - other 4xx, and markdown longer than MaxMessageBytes (not sent):
//     ErrMessageRejected;
//   - 408, 429 (with Retry-After), 5xx, timeouts and connection errors:
//     *token.TransientError.
//
// Permanent ones are an *Error wrapping the sentinel. No error's text
// holds the bot's token.
func (c *Client) PostMessage(ctx context.Context, botToken, roomID, markdown string) error {
	switch {
	case botToken == "":
		return &Error{Op: opMessage, Description: "no bot token configured", Err: ErrBotRejected}
	case roomID == "":
		return &Error{Op: opMessage, Description: "no room configured", Err: ErrRoomUnavailable}
	case markdown == "":
		return &Error{Op: opMessage, Description: "empty message", Err: ErrMessageRejected}
	case len(markdown) > MaxMessageBytes:
		return &Error{Op: opMessage, Description: fmt.Sprintf("message of %d bytes, more than %d", len(markdown), MaxMessageBytes), Err: ErrMessageRejected}
	}
	body, err := json.Marshal(messageBody{RoomID: roomID, Markdown: markdown})
	if err != nil {
		return &Error{Op: opMessage, Description: "message not encodable", Err: ErrMessageRejected}
	}
	ctx, cancel := c.context(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.apiURL+MessagesPath, bytes.NewReader(body))
	if err != nil {
		return &token.TransientError{Err: &Error{Op: opMessage, Description: "request not built", Err: errUnusableAnswer}}
	}
	req.Header.Set("Authorization", "Bearer "+botToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	resp, err := c.hc.Do(req)
	if err != nil {
		return &token.TransientError{Err: &Error{Op: opMessage, Err: transportCause(ctx, err)}}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if resp.StatusCode/100 == 2 {
		return nil // posted; an answer cut short does not undo that
	}
	if err != nil {
		return &token.TransientError{Err: &Error{Op: opMessage, Status: resp.StatusCode, Err: transportCause(ctx, err)}}
	}
	return c.messageFailure(resp, raw, []string{botToken})
}

// messageFailure classifies an error answer of the Messages API.
func (c *Client) messageFailure(resp *http.Response, raw []byte, secrets []string) error {
	e, _ := restError(opMessage, resp, raw, secrets)
	switch s := resp.StatusCode; {
	case s == http.StatusTooManyRequests || s == http.StatusRequestTimeout || s >= 500:
	case s == http.StatusUnauthorized:
		e.Err = ErrBotRejected
		return e
	case s == http.StatusForbidden || s == http.StatusNotFound:
		e.Err = ErrRoomUnavailable
		return e
	case s/100 == 4:
		e.Err = ErrMessageRejected
		return e
	}
	return &token.TransientError{RetryAfter: retryAfter(resp.Header, c.now()), Err: e}
}
