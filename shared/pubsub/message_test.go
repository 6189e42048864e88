package pubsub_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wxcc/tokenservice/shared/pubsub"
	"github.com/wxcc/tokenservice/shared/token"
)

func TestNewMessage(t *testing.T) {
	t.Parallel()
	access := time.Date(2026, 3, 2, 0, 0, 0, 123e6, time.UTC)
	refresh := time.Date(2026, 4, 30, 0, 0, 0, 0, time.UTC)
	at := time.Date(2026, 3, 1, 12, 0, 0, 456789e3, time.FixedZone("CET", 3600))
	tests := []struct {
		name      string
		event     token.Event
		wantAttrs map[string]string
		wantData  string
	}{
		{
			name: "rotated",
			event: token.Event{
				ID: "flow-a/7/token.rotated", Type: token.EventRotated, Name: "flow-a", Generation: 7,
				AccessExpires: access, RefreshExpires: refresh, Trigger: token.TriggerInline, Time: at,
			},
			wantAttrs: map[string]string{
				"ce-specversion":     "1.0",
				"ce-type":            "token.rotated",
				"ce-source":          "//tokenservice/projects/p1/collections/tokens",
				"ce-id":              "flow-a/7/token.rotated",
				"ce-time":            "2026-03-01T11:00:00.456789Z",
				"ce-datacontenttype": "application/json",
				"name":               "flow-a",
				"generation":         "7",
			},
			wantData: `{"name":"flow-a","generation":7,"accessExpires":1772409600123,"refreshExpires":1777507200000,"trigger":"inline"}`,
		},
		{
			name: "failure with message and unknown expiries",
			event: token.Event{
				ID: "b/0/token.reauthorization_required", Type: token.EventReauthorizationRequired, Name: "b",
				Trigger: token.TriggerScheduled, Time: at, Message: `refresh token "expired"`,
			},
			wantAttrs: map[string]string{
				"ce-specversion":     "1.0",
				"ce-type":            "token.reauthorization_required",
				"ce-source":          "//tokenservice/projects/p1/collections/tokens",
				"ce-id":              "b/0/token.reauthorization_required",
				"ce-time":            "2026-03-01T11:00:00.456789Z",
				"ce-datacontenttype": "application/json",
				"name":               "b",
				"generation":         "0",
			},
			wantData: `{"name":"b","generation":0,"accessExpires":0,"refreshExpires":0,"trigger":"scheduled","message":"refresh token \"expired\""}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := pubsub.NewMessage(tt.event, pubsub.Source("p1", "tokens"))
			if diff := cmp.Diff(tt.wantAttrs, m.Attributes); diff != "" {
				t.Errorf("attributes (-want +got):\n%s", diff)
			}
			if got := string(m.Data); got != tt.wantData {
				t.Errorf("data = %s, want %s", got, tt.wantData)
			}
			if m.OrderingKey != tt.event.Name {
				t.Errorf("ordering key = %q, want %q", m.OrderingKey, tt.event.Name)
			}
		})
	}
}

// TestNewMessageCarriesNoSecret checks that secrets of a token never reach
// a message built from its event.
func TestNewMessageCarriesNoSecret(t *testing.T) {
	t.Parallel()
	tok := &token.Token{
		Name: "n", ClientID: "cid-SECRET1", ClientSecret: "SECRET2", AccessToken: "SECRET3",
		RefreshToken: "SECRET4", PassphraseHash: "SECRET5", Generation: 1,
	}
	for _, typ := range []token.EventType{token.EventRotated, token.EventRefreshFailed, token.EventReauthorizationRequired, token.EventRefreshExpiring} {
		m := pubsub.NewMessage(token.NewEvent(typ, tok, token.TriggerAuthorization, time.Now()), "s")
		all := string(m.Data)
		for k, v := range m.Attributes {
			all += k + v
		}
		if strings.Contains(all, "SECRET") {
			t.Errorf("%s message contains a secret: %s", typ, all)
		}
	}
}
