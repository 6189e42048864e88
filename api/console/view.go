package console

import (
	"fmt"
	"html/template"
	"io/fs"
	"strings"
	"time"

	"github.com/wxcc/tokenservice/api/listing"
	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/token"
)

// actionLabels are the activity record's actions in words.
var actionLabels = map[activity.Action]string{
	activity.SignIn: "Signed in", activity.SignInRefused: "Sign-in refused", activity.SignOut: "Signed out",
	activity.SessionEnded: "Ended a session", activity.TokenCreated: "Created the token", activity.ConfigSaved: "Saved the client config",
	activity.PassphraseSet: "Set the token's passphrase", activity.PassphraseGone: "Removed the token's passphrase",
	activity.RefreshNow: "Refresh now", activity.TokenDeleted: "Deleted the token", activity.AuthStarted: "Started an authorization",
	activity.AuthCompleted: "Authorized", activity.AuthRefused: "Authorization refused", activity.AuthFailed: "Authorization failed",
	activity.LinkCreated: "Made an authorization link", activity.LinkUsed: "Used an authorization link", activity.LinkRevoked: "Revoked an authorization link",
	activity.Rotated: "Rotated", activity.Minted: "Minted", activity.RefreshFailed: "Refresh failed",
	activity.ReauthRequired: "Needs re-authorization", activity.ExpiryWarned: "Refresh token expires soon", activity.SweepHalted: "Sweep halted",
	activity.NotifySent: "Notified", activity.NotifyGivenUp: "Gave up notifying", activity.IdentityUnknown: "Webex did not say who authorized",
}

// healthLabels are the badges' words.
var healthLabels = map[token.Health]string{
	token.HealthActive:          "Active",
	token.HealthRefreshingSoon:  "Refreshing soon",
	token.HealthRefreshExpiring: "Refresh token expiring",
	token.HealthPending:         "Pending authorization",
	token.HealthReauthRequired:  "Re-authorization required",
	token.HealthConfigError:     "Config error",
	token.HealthUnreadable:      "Secrets unreadable",
}

// healthAdvice says what a status means and what to do about it.
var healthAdvice = map[token.Health]string{
	token.HealthActive:          "Served to flows and refreshed automatically. Nothing to do.",
	token.HealthRefreshingSoon:  "The access token is inside the worker's refresh window; the next sweep refreshes it. If it stays here, check the last sweep: is the worker running?",
	token.HealthRefreshExpiring: "The refresh token ends soon. Authorize with Webex again before it does, or flows stop getting a token.",
	token.HealthPending:         "Never authorized. Set the client config, then Authorize with Webex.",
	token.HealthReauthRequired:  "Webex rejected the refresh token, or it expired. Authorize with Webex again; until then flows get 409 once the access token runs out.",
	token.HealthConfigError:     clientAdvice + ". Refreshing then resumes by itself: no new authorization is needed.",
	token.HealthUnreadable:      "A stored secret does not open with the configured TOKEN_ENCRYPTION_KEYS, so the token is not served. Put the missing key back; or set a new client secret and Authorize with Webex again.",
}

// serviceAppAdvice is healthAdvice for a Service App, which no person
// authorizes: its manager is, and it is minted. Waiting for its manager,
// the page names the manager instead (managerAdvice).
var serviceAppAdvice = map[token.Health]string{
	token.HealthActive:          "Served to flows, refreshed automatically, and minted again with its manager's token whenever its refresh token lapses. Nothing to do.",
	token.HealthRefreshingSoon:  healthAdvice[token.HealthRefreshingSoon],
	token.HealthRefreshExpiring: "Its refresh token ends soon: the worker mints a new pair with the manager's token at its next sweep. Nothing to do; if it stays, check the last sweep and the manager.",
	token.HealthPending:         "Not minted yet: the api mints it on the first request, the worker at the next sweep. Refresh now mints it at once.",
	token.HealthReauthRequired:  "Its manager must be authorized again; then this Service App is minted again by itself.",
	token.HealthConfigError:     "Webex refused to mint it: the app ID is unknown, the app is not authorized for the target org, or the client ID and secret are not the app's. Fix the Service App config: saving a change resumes it and mints it.",
	token.HealthUnreadable:      "A stored secret does not open with the configured TOKEN_ENCRYPTION_KEYS, so it is not served. Put the missing key back; or set a new client secret in the Service App config.",
}

// clientAdvice is what to do when Webex refuses an integration's client
// ID and secret (invalid_client): the console's words for it wherever it
// shows, while the log keeps the error as it was.
const clientAdvice = "Webex refused this client ID and secret: copy the secret again from developer.webex.com and save it in the client config"

// clientRefused reports whether message (a stored last error, or an
// error's text) says that Webex refused the client ID and secret.
func clientRefused(message string) bool {
	m := strings.ToLower(message)
	for _, s := range []string{"invalid_client", "unauthorized_client", "rejected the client credentials",
		"refused this client id", "client rejected", "http 401"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// authFailedPrefix starts the last error of a failed authorization.
const authFailedPrefix = "authorization failed: "

// lastErrorText is r's last error as the console shows it: advice for a
// client that Webex refused, the stored message otherwise.
func lastErrorText(r listing.Row) string {
	le := r.LastError
	if le == nil {
		return ""
	}
	if !r.ServiceApp && clientRefused(le.Message) {
		if strings.HasPrefix(le.Message, authFailedPrefix) {
			return "Authorization failed: " + clientAdvice + "."
		}
		return clientAdvice + "."
	}
	return le.Message
}

// warnAdvice reports whether r still works but something failed since
// its last success: its advice then says so, as a warning.
func warnAdvice(r listing.Row) bool {
	switch r.Health {
	case token.HealthActive, token.HealthRefreshingSoon, token.HealthRefreshExpiring:
		return r.LastError != nil
	}
	return false
}

// rowAdvice says what r's status means and what to do about it: it
// agrees with the last error the page shows.
func rowAdvice(r listing.Row) string {
	if warnAdvice(r) && !r.ServiceApp {
		switch msg := r.LastError.Message; {
		case clientRefused(msg):
			return "Flows still get the current access token, but " + clientAdvice + ", or the next refresh fails too."
		case strings.HasPrefix(msg, authFailedPrefix):
			return "Flows still get the current access token; the last authorization failed (see Last error): Authorize with Webex again."
		default:
			return "Flows still get the current access token; the last refresh failed (see Last error) and is tried again automatically before it runs low."
		}
	}
	if !r.ServiceApp {
		return healthAdvice[r.Health]
	}
	if r.WaitsForManager && r.Health == token.HealthReauthRequired {
		return managerAdvice(r.Manager)
	}
	return serviceAppAdvice[r.Health]
}

// managerAdvice is what to do for a Service App waiting for manager.
func managerAdvice(manager string) string {
	return "Its manager " + manager + " must be authorized again (its refresh token died, or its token lacks spark:applications_token): open " +
		manager + " and Authorize with Webex. This Service App is then minted again by itself at the next sweep; nothing to do on it."
}

// heldReason says in words why a token cannot be refreshed (a Service
// App: minted) now, or "".
func heldReason(r listing.Row) string {
	switch {
	case len(r.Unreadable) > 0:
		return "Its secrets do not open with the configured keys."
	case r.Held() == nil, isBackoff(r.Held()):
		return "" // a forced refresh ignores the backoff
	case r.WaitsForManager:
		return "It waits for its manager " + r.Manager + ", which must be authorized again first."
	case r.ServiceApp && r.Status == token.StatusConfigError:
		return "Webex refused to mint it: fix the Service App config first."
	case r.Status == token.StatusPending:
		return "It has not been authorized yet: Authorize with Webex first."
	case r.Status == token.StatusReauthRequired:
		return "It must be authorized again: Authorize with Webex."
	case r.Status == token.StatusConfigError:
		return "Webex rejected its client credentials: fix the client config first."
	default:
		return "Its refresh token is missing or has expired: Authorize with Webex again."
	}
}

func isBackoff(err error) bool {
	_, ok := err.(*token.BackoffError)
	return ok
}

// humanDuration is d for people: "3 days 4 h", "2 h 5 min", "40 s".
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		h := int(d.Hours())
		if m := int(d.Minutes()) % 60; m != 0 {
			return fmt.Sprintf("%d h %d min", h, m)
		}
		return fmt.Sprintf("%d h", h)
	default:
		days := int(d.Hours()) / 24
		if h := int(d.Hours()) % 24; h != 0 {
			return fmt.Sprintf("%d days %d h", days, h)
		}
		return fmt.Sprintf("%d days", days)
	}
}

// relative is t from now: "in 2 h 5 min" or "3 min ago".
func relative(t, now time.Time) string {
	if t.After(now) {
		return "in " + humanDuration(t.Sub(now))
	}
	return humanDuration(now.Sub(t)) + " ago"
}

// parsePages parses each page with the shared layout.
func (cs *Console) parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"label":  func(h token.Health) string { return healthLabels[h] },
		"advice": rowAdvice,
		"iso":    func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"fallback": func(t time.Time) string {
			return relative(t, cs.now()) + " (" + t.UTC().Format("2 Jan 2006 15:04 MST") + ")"
		},
		"asset": func(name string) string {
			a, ok := cs.assets[name]
			if !ok {
				panic("console: no asset " + name)
			}
			return "/admin/static/" + name + "?v=" + a.version
		},
		"join":         strings.Join,
		"ms":           func(t time.Time) int64 { return t.UnixMilli() },
		"human":        humanDuration,
		"held":         heldReason,
		"sweepCounts":  sweepCounts,
		"sweepProblem": sweepProblem,
		"lastError":    lastErrorText,
		"warnAdvice":   warnAdvice,
		"actionLabel": func(a activity.Action) string {
			if l, ok := actionLabels[a]; ok {
				return l
			}
			return string(a)
		},
	}
	base := template.Must(template.New("layout").Funcs(funcs).ParseFS(templates, "templates/layout.html", "templates/partials.html"))
	pages := map[string]*template.Template{}
	names, err := fs.Glob(templates, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		name := strings.TrimSuffix(n[strings.LastIndexByte(n, '/')+1:], ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		pages[name] = template.Must(template.Must(base.Clone()).ParseFS(templates, n))
	}
	return pages
}
