package notify

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Notice is what one message says, stored with it so that every attempt
// renders the same words. It holds no secret: names, times, a person's
// name and e-mail, and a sanitised reason.
type Notice struct {
	Kind  Kind
	Phase Phase
	Token string // "" for the sweep
	// Generation, AccessExpires and RefreshExpires describe the token as
	// the event (or Remind's read) saw it; zero when unknown.
	Generation     int64
	AccessExpires  time.Time
	RefreshExpires time.Time
	// Since is when the condition opened; At when this message was made.
	Since time.Time
	At    time.Time
	// Reminder numbers reminders from 1.
	Reminder int
	// Reason is the event's message, sanitised.
	Reason string
	// Trigger is what resolved it (authorization, scheduled, mint, ...).
	Trigger string
	// AuthorizedBy and AuthorizedEmail name the Webex person whose grant
	// the token holds, when known.
	AuthorizedBy    string
	AuthorizedEmail string
	// Manager is a Service App's manager token.
	Manager string
}

// Headline is the notice in one line of plain text.
func (n Notice) Headline() string { return n.headline(n.Token) }

// headline is the headline with name standing for the token; the rest
// is fixed text and times, with nothing markdown would format.
func (n Notice) headline(name string) string {
	var s string
	switch n.Kind {
	case KindReauthRequired:
		s = map[Phase]string{
			PhaseOpened:   "Token " + name + " needs re-authorization",
			PhaseReminder: "Reminder: token " + name + " still needs re-authorization",
			PhaseResolved: "Resolved: token " + name + " is active again",
		}[n.Phase]
	case KindRefreshExpiring:
		when := "soon"
		if !n.RefreshExpires.IsZero() {
			when = "on " + stamp(n.RefreshExpires)
		}
		s = map[Phase]string{
			PhaseOpened:   "The refresh token of " + name + " expires " + when,
			PhaseReminder: "Reminder: the refresh token of " + name + " expires " + when,
			PhaseResolved: "Resolved: token " + name + " has a new refresh token",
		}[n.Phase]
	case KindRefreshFailed:
		s = map[Phase]string{
			PhaseOpened:   "Token " + name + " cannot be refreshed",
			PhaseReminder: "Reminder: token " + name + " still cannot be refreshed",
			PhaseResolved: "Resolved: token " + name + " is refreshed again",
		}[n.Phase]
	case KindSweepHalted:
		s = map[Phase]string{
			PhaseOpened:   "The token service halted a sweep",
			PhaseReminder: "Reminder: no sweep has completed since one was halted",
			PhaseResolved: "Resolved: sweeps complete again",
		}[n.Phase]
	}
	return s
}

// explanation says in words what happened and what it means.
func (n Notice) explanation() string {
	if n.Phase == PhaseResolved {
		switch n.Kind {
		case KindSweepHalted:
			return "A sweep completed without being halted."
		case KindRefreshExpiring:
			s := "It was authorized again"
			if !n.RefreshExpires.IsZero() {
				s += "; its refresh token is valid until " + stamp(n.RefreshExpires)
			}
			return s + "."
		}
		var how string
		switch n.Trigger {
		case "authorization":
			how = "It was authorized again"
		case "mint":
			how = "It was minted again"
		case "":
			how = "It has a new access token"
		default:
			how = "It was refreshed"
		}
		if !n.AccessExpires.IsZero() {
			how += "; its access token is valid until " + stamp(n.AccessExpires)
		}
		return how + "."
	}
	switch n.Kind {
	case KindReauthRequired:
		s := "Webex no longer accepts its refresh token, so the service cannot refresh it: a person must authorize it again."
		switch {
		case n.AccessExpires.IsZero():
		case n.AccessExpires.After(n.At):
			s += " Its access token is valid until " + stamp(n.AccessExpires) + "; after that, flows that use it fail."
		default:
			s += " Its access token expired at " + stamp(n.AccessExpires) + ": flows that use it fail."
		}
		return s
	case KindRefreshExpiring:
		return "Once it expires the token can no longer be refreshed. Authorize it again before then to avoid an outage."
	case KindRefreshFailed:
		s := "Refreshing has failed for long enough that its access token is below the refresh threshold."
		switch {
		case n.AccessExpires.IsZero():
		case n.AccessExpires.After(n.At):
			s += " It is valid until " + stamp(n.AccessExpires) + "."
		default:
			s += " It expired at " + stamp(n.AccessExpires) + ": flows that use it fail."
		}
		return s
	case KindSweepHalted:
		return "Many tokens failed the same permanent way in one sweep, which points to a bug or an outage rather than many dead tokens, so the sweep stopped refreshing."
	}
	return ""
}

// consoleLink is the console page to act on, "" without CONSOLE_URL.
func consoleLink(consoleURL, name string) string {
	if consoleURL == "" {
		return ""
	}
	if name == "" {
		return consoleURL + "/admin/"
	}
	return consoleURL + "/admin/token/" + url.PathEscape(name)
}

// Markdown renders the notice for a Webex space.
func (n Notice) Markdown(consoleURL string) string {
	var b strings.Builder
	icon := map[Kind]string{KindReauthRequired: "🔴", KindRefreshFailed: "🔴", KindSweepHalted: "🔴", KindRefreshExpiring: "🟠"}[n.Kind]
	if n.Phase == PhaseResolved {
		icon = "✅"
	}
	headline := n.headline("`" + n.Token + "`") // names have no backtick
	fmt.Fprintf(&b, "%s **%s**\n\n%s\n", icon, headline, escapeMarkdown(n.explanation()))

	var items []string
	if n.Reason != "" && n.Phase != PhaseResolved {
		items = append(items, "Why: "+escapeMarkdown(n.Reason))
	}
	if n.Phase == PhaseReminder && !n.Since.IsZero() {
		items = append(items, fmt.Sprintf("Open since: %s (reminder %d)", stamp(n.Since), n.Reminder))
	}
	if n.Phase == PhaseResolved && !n.Since.IsZero() {
		items = append(items, "Open since: "+stamp(n.Since))
	}
	if n.AuthorizedBy != "" || n.AuthorizedEmail != "" {
		who := escapeMarkdown(strings.TrimSpace(n.AuthorizedBy))
		if n.AuthorizedEmail != "" {
			if who != "" {
				who += " (" + escapeMarkdown(n.AuthorizedEmail) + ")"
			} else {
				who = escapeMarkdown(n.AuthorizedEmail)
			}
		}
		items = append(items, "Authorized by: "+who)
	}
	if n.Manager != "" {
		s := "A Service App, minted with the token of `" + n.Manager + "`"
		if n.Kind == KindReauthRequired && n.Phase != PhaseResolved {
			s += ": if that token needs re-authorization, authorize it first"
			if link := consoleLink(consoleURL, n.Manager); link != "" {
				s += " ([open `" + n.Manager + "`](" + link + "))"
			}
		}
		items = append(items, s)
	}
	if link := consoleLink(consoleURL, n.Token); link != "" {
		switch {
		case n.Phase == PhaseResolved:
			items = append(items, "Console: "+markdownLink(link, n.Token))
		case n.Kind == KindSweepHalted:
			items = append(items, "Look: "+markdownLink(link, "")+" and the worker's logs")
		case n.Kind == KindRefreshFailed:
			items = append(items, "Fix: "+markdownLink(link, n.Token)+" to see its last error and client configuration")
		default:
			items = append(items, "Fix: "+markdownLink(link, n.Token)+" and choose **Authorize with Webex**")
		}
	}
	if len(items) > 0 {
		b.WriteString("\n")
		for _, it := range items {
			b.WriteString("- " + it + "\n")
		}
	}
	return b.String()
}

func markdownLink(link, name string) string {
	if name == "" {
		return "[open the console](" + link + ")"
	}
	return "[open `" + name + "` in the console](" + link + ")"
}

// Webhook body types (the Standard Webhooks payload shape: type,
// timestamp, data; text is for receivers such as Slack's incoming
// webhooks that show a text field as it is).
type webhookPayload struct {
	Type      string      `json:"type"`
	Timestamp string      `json:"timestamp"`
	Text      string      `json:"text"`
	Data      webhookData `json:"data"`
}

type webhookData struct {
	ID             string         `json:"id"`
	Condition      Kind           `json:"condition"`
	Token          string         `json:"token,omitempty"`
	Generation     int64          `json:"generation"`
	Since          string         `json:"since"`
	Reminder       int            `json:"reminder,omitempty"`
	AccessExpires  string         `json:"accessExpires,omitempty"`
	RefreshExpires string         `json:"refreshExpires,omitempty"`
	Reason         string         `json:"reason,omitempty"`
	Trigger        string         `json:"trigger,omitempty"`
	AuthorizedBy   *webhookPerson `json:"authorizedBy,omitempty"`
	Manager        string         `json:"manager,omitempty"`
	ConsoleURL     string         `json:"consoleUrl,omitempty"`
}

type webhookPerson struct {
	DisplayName string `json:"displayName,omitempty"`
	Email       string `json:"email,omitempty"`
}

// webhookBody renders message m as the webhook's JSON body. The same
// message always renders the same bytes.
func webhookBody(m *Message, consoleURL string) []byte {
	n := m.Notice
	p := webhookPayload{
		Type:      "condition." + string(n.Phase),
		Timestamp: rfc3339(n.At),
		Text:      n.Headline(),
		Data: webhookData{
			ID: m.ID, Condition: n.Kind, Token: n.Token, Generation: n.Generation,
			Since: rfc3339(n.Since), Reminder: n.Reminder,
			AccessExpires: rfc3339(n.AccessExpires), RefreshExpires: rfc3339(n.RefreshExpires),
			Reason: n.Reason, Trigger: n.Trigger, Manager: n.Manager,
			ConsoleURL: consoleLink(consoleURL, n.Token),
		},
	}
	if n.AuthorizedBy != "" || n.AuthorizedEmail != "" {
		p.Data.AuthorizedBy = &webhookPerson{DisplayName: n.AuthorizedBy, Email: n.AuthorizedEmail}
	}
	b, err := json.Marshal(p)
	if err != nil {
		panic("notify: marshal webhook body: " + err.Error()) // strings and integers only
	}
	return b
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// markdownSpecial are the characters that start formatting in Webex's
// markdown; text from elsewhere has them escaped.
var markdownSpecial = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", `*`, `\*`, `_`, `\_`, `[`, `\[`, `]`, `\]`,
	`<`, `\<`, `>`, `\>`, `~`, `\~`, `|`, `\|`, `#`, `\#`,
)

func escapeMarkdown(s string) string { return markdownSpecial.Replace(s) }

// maxReason bounds the reason a message repeats.
const maxReason = 300

// tokenLike is a run that could be a token or secret an upstream message
// echoed: 32 or more characters of a token's alphabet.
var tokenLike = regexp.MustCompile(`[A-Za-z0-9._~+/=%-]{32,}`)

// cleanText makes text from an event or Webex safe to repeat: control
// characters and line breaks become spaces, token-like runs are
// redacted, and it is cut to max bytes.
func cleanText(s string, max int) string {
	s = strings.ToValidUTF8(s, "")
	s = tokenLike.ReplaceAllString(s, "[redacted]")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max] + "…"
}
