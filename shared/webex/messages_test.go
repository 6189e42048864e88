package webex

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/webexfake"
	"github.com/wxcc/tokenservice/shared/token"
)

const (
	testBot  = "bot-token-ZmFrZS1ib3QtdG9rZW4tdGhhdC1pcy1sb25n"
	testRoom = "Y2lzY29zcGFyazovL3VzL1JPT00vcm9vbQ"
)

// messagesSetup serves a fake with a bot that is a member of testRoom.
func messagesSetup(t *testing.T, o Options) (*webexfake.Server, *Client) {
	t.Helper()
	s := webexfake.Start(t)
	s.AddBot(testBot, testRoom)
	o.APIURL = s.URL
	c, err := New(testOptions(o))
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func messageClass(err error) string {
	var te *token.TransientError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrBotRejected):
		return "bot"
	case errors.Is(err, ErrRoomUnavailable):
		return "room"
	case errors.Is(err, ErrMessageRejected):
		return "message"
	case errors.As(err, &te):
		return "transient"
	}
	return "unclassified"
}

func TestPostMessageAgainstFake(t *testing.T) {
	s, c := messagesSetup(t, Options{})
	md := "**Token `wxcc` needs re-authorization**"
	if err := c.PostMessage(context.Background(), testBot, testRoom, md); err != nil {
		t.Fatal(err)
	}
	got := s.Messages()
	if len(got) != 1 || got[0].RoomID != testRoom || got[0].Markdown != md || got[0].Bearer != testBot {
		t.Fatalf("posted %+v, want one message to %s with the markdown, as the bot", got, testRoom)
	}
}

func TestPostMessageFailures(t *testing.T) {
	tests := []struct {
		name       string
		bot, room  string
		markdown   string
		fault      *webexfake.Fault
		want       string
		retryAfter time.Duration
	}{
		{name: "unknown bot token", bot: "someone-else", room: testRoom, want: "bot"},
		{name: "bot not in the room", bot: testBot, room: "another-room", want: "room"},
		{name: "too long, not sent", bot: testBot, room: testRoom, markdown: strings.Repeat("x", MaxMessageBytes+1), want: "message"},
		{name: "rate limited", bot: testBot, room: testRoom, fault: &webexfake.Fault{Kind: webexfake.FaultRateLimit, RetryAfter: "7"}, want: "transient", retryAfter: 7 * time.Second},
		{name: "server error", bot: testBot, room: testRoom, fault: &webexfake.Fault{Kind: webexfake.FaultStatus, Status: http.StatusBadGateway}, want: "transient"},
		{name: "forbidden", bot: testBot, room: testRoom, fault: &webexfake.Fault{Kind: webexfake.FaultStatus, Status: http.StatusForbidden}, want: "room"},
		{name: "connection reset", bot: testBot, room: testRoom, fault: &webexfake.Fault{Kind: webexfake.FaultReset}, want: "transient"},
		{name: "no bot token", room: testRoom, want: "bot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := messagesSetup(t, Options{})
			if tt.fault != nil {
				s.FailMessagesNext(1, *tt.fault)
			}
			md := tt.markdown
			if md == "" {
				md = "hello"
			}
			err := c.PostMessage(context.Background(), tt.bot, tt.room, md)
			if got := messageClass(err); got != tt.want {
				t.Fatalf("got %s (%v), want %s", got, err, tt.want)
			}
			var te *token.TransientError
			if errors.As(err, &te) && te.RetryAfter != tt.retryAfter {
				t.Errorf("RetryAfter = %s, want %s", te.RetryAfter, tt.retryAfter)
			}
			if strings.Contains(err.Error(), testBot) {
				t.Errorf("error %q holds the bot token", err)
			}
			if n := len(s.Messages()); n != 0 {
				t.Errorf("%d messages posted, want none", n)
			}
		})
	}
}

func TestPostMessageBoundedByTimeout(t *testing.T) {
	s, c := messagesSetup(t, Options{Timeout: 50 * time.Millisecond})
	s.FailMessagesNext(1, webexfake.Fault{Kind: webexfake.FaultHang})
	err := c.PostMessage(context.Background(), testBot, testRoom, "hello")
	if got := messageClass(err); got != "transient" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %s (%v), want a transient timeout", got, err)
	}
}
