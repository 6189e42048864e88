package notify

import (
	"strings"
	"testing"
	"time"
)

func TestMarkdownKeepsOutsideTextInert(t *testing.T) {
	n := Notice{
		Kind: KindRefreshFailed, Phase: PhaseOpened, Token: "flow_1",
		Reason:       cleanText("webex said *no* [click](https://evil.example) <@all>\n# heading `x`", maxReason),
		AuthorizedBy: "Mallory ~~*_x_*~~", AuthorizedEmail: "m@example.com",
	}
	md := n.Markdown("")
	for _, bad := range []string{"*no*", "[click]", "<@all>", "\n# heading", "~~*_x_*~~", "`x`"} {
		if strings.Contains(md, bad) {
			t.Errorf("markdown keeps %q active:\n%s", bad, md)
		}
	}
	if strings.Contains(md, "console") || strings.Contains(md, "[open") {
		t.Errorf("a link without CONSOLE_URL:\n%s", md)
	}
	if !strings.Contains(md, "**Token `flow_1` cannot be refreshed**") {
		t.Errorf("headline:\n%s", md)
	}
}

func TestCleanText(t *testing.T) {
	tok := "ZjQ4ZjY5YjAtYWU1NS00ZTdiLWI0ZjYtYjI3ZmQ1ZWUxNDcz_P0A1"
	got := cleanText("expired\r\n\ttoken "+tok+" at\x00 night", 100)
	if want := "expired token [redacted] at night"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := cleanText(strings.Repeat("é", 200), 11); got != "ééééé…" {
		t.Errorf("cut at a rune boundary: got %q", got)
	}
}

func TestHeadlines(t *testing.T) {
	at := time.Date(2026, 5, 11, 14, 0, 0, 0, time.UTC)
	tests := []struct {
		n    Notice
		want string
	}{
		{Notice{Kind: KindReauthRequired, Phase: PhaseOpened, Token: "t"}, "Token t needs re-authorization"},
		{Notice{Kind: KindRefreshExpiring, Phase: PhaseReminder, Token: "t", RefreshExpires: at}, "Reminder: the refresh token of t expires on 2026-05-11 14:00 UTC"},
		{Notice{Kind: KindRefreshFailed, Phase: PhaseResolved, Token: "t"}, "Resolved: token t is refreshed again"},
		{Notice{Kind: KindSweepHalted, Phase: PhaseOpened}, "The token service halted a sweep"},
	}
	for _, tt := range tests {
		if got := tt.n.Headline(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func TestReminderSaysWhenTheAccessTokenHasExpired(t *testing.T) {
	at := time.Date(2026, 5, 4, 9, 30, 0, 0, time.UTC)
	n := Notice{Kind: KindReauthRequired, Phase: PhaseOpened, Token: "t", AccessExpires: at.Add(time.Hour), At: at}
	if md := n.Markdown(""); !strings.Contains(md, "valid until 2026-05-04 10:30 UTC") {
		t.Errorf("opening:\n%s", md)
	}
	n.Phase, n.At = PhaseReminder, at.Add(24*time.Hour)
	if md := n.Markdown(""); !strings.Contains(md, "expired at 2026-05-04 10:30 UTC") {
		t.Errorf("reminder a day later:\n%s", md)
	}
}
