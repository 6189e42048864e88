package notify

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/token"
)

// unused stands in for the ports in tests of New, which calls none.
type unused struct{}

func (unused) Conditions(context.Context, ...string) (map[string]*Condition, error) { panic("unused") }
func (unused) SaveCondition(context.Context, *Condition) error                      { panic("unused") }
func (unused) ActiveConditions(context.Context, func(*Condition) error) error       { panic("unused") }
func (unused) Get(context.Context, string) (*token.Token, error)                    { panic("unused") }
func (unused) LastSweep(context.Context) (*token.SweepRecord, error)                { panic("unused") }
func (unused) PostMessage(context.Context, string, string, string) error            { panic("unused") }

func TestNewRefusesIncompleteConfig(t *testing.T) {
	base := func() Config {
		return Config{Conditions: unused{}, Tokens: unused{}, Sweeps: unused{}, Reminder: time.Hour, GiveUp: time.Hour,
			WebexBotToken: "bot", WebexRoomID: "room", Webex: unused{},
			WebhookURL: "https://hooks.example.test/x", WebhookSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
	}
	tests := []struct {
		name   string
		change func(c *Config)
		want   string // "" for no error
	}{
		{"both channels", func(*Config) {}, ""},
		{"webhook only", func(c *Config) { c.WebexBotToken, c.WebexRoomID = "", "" }, ""},
		{"no channel", func(c *Config) { c.WebexBotToken, c.WebexRoomID, c.WebhookURL = "", "", "" }, "no channel"},
		{"bot without room", func(c *Config) { c.WebexRoomID = "" }, "room ID"},
		{"webex without client", func(c *Config) { c.Webex = nil }, "client"},
		{"relative webhook URL", func(c *Config) { c.WebhookURL = "/hook" }, "NOTIFY_WEBHOOK_URL"},
		{"short secret", func(c *Config) { c.WebhookSecret = "too-short" }, "NOTIFY_WEBHOOK_SECRET"},
		{"no store", func(c *Config) { c.Conditions = nil }, "required"},
		{"no reminder", func(c *Config) { c.Reminder = 0 }, "NOTIFY_REMINDER"},
	}
	for _, tt := range tests {
		c := base()
		tt.change(&c)
		n, err := New(c)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: got %v, want an error naming %q", tt.name, err, tt.want)
		case tt.want == "" && n.claim < 30*time.Second:
			t.Errorf("%s: claim %s, want at least 30s", tt.name, n.claim)
		}
	}
}
