package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// screenshotDir is where the browser tests leave their screenshots (bin/
// is not committed); SCREENSHOT_DIR overrides it.
func screenshotDir() string {
	if d := os.Getenv("SCREENSHOT_DIR"); d != "" {
		return d
	}
	return filepath.Join("..", "bin", "screenshots")
}

// TestConsoleInBrowser walks through the console as an operator does, in
// headless Chromium against the real api on the emulators and the fake
// Webex: sign in (a wrong passphrase refused), the overview's badges,
// creating a token, authorizing it through Webex's approve page, Refresh
// now, a failed authorization, Delete, sign out, and then the throttle.
// Every step asserts what a person sees, and the browser may log no error
// and load nothing from another origin.
func TestConsoleInBrowser(t *testing.T) {
	t.Parallel()
	w := newConsoleWorld(t, map[string]string{"AUTH_FAILURE_LIMIT": "3"})
	w.Webex.SetConsentPage(true)
	badges := w.seedStates()
	b := newBrowser(t, "Europe/Berlin")
	fake := strings.TrimSuffix(w.Webex.URL, "/")
	clean := func(step string, expected ...string) {
		t.Helper()
		if p := b.takeProblems(expected...); len(p) > 0 {
			t.Errorf("%s: the browser logged errors: %q", step, p)
		}
	}

	// Sign in: a wrong passphrase is refused, the right one opens the overview.
	b.open(w.base + "/admin/")
	if got := b.text("h1"); got != "Sign in" {
		t.Fatalf("GET /admin/ without a session shows %q, want the sign-in page", got)
	}
	b.run(chromedp.SendKeys(chromedp.ID("passphrase"), "not-the-admin-passphrase"))
	if resp := b.submit("#signin"); resp.Status != http.StatusUnauthorized {
		t.Errorf("wrong passphrase: status %d, want 401", resp.Status)
	}
	if got := b.text("#signin-error"); !strings.Contains(got, "Wrong passphrase") {
		t.Errorf("wrong passphrase: the page says %q", got)
	}
	clean("wrong passphrase", "status of 401")
	b.run(chromedp.SendKeys(chromedp.ID("passphrase"), adminPass))
	b.submit("#signin")
	if got := b.text("h1"); got != "Tokens" {
		t.Fatalf("after signing in the page shows %q, want the overview", got)
	}
	clean("sign in")

	// The overview: every token with its badge, most urgent first, and
	// the summary line with the last sweep.
	for name, want := range badges {
		if got := b.text(`tr[data-name="` + name + `"] .badge`); got != want {
			t.Errorf("overview: %s shows %q, want %q", name, got, want)
		}
	}
	names, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#tokens tbody tr")).map(r => r.dataset.name)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 7 || names[0] != "archive" || names[1] != "reporting" || names[2] != "crm-sync" || names[len(names)-1] != "billing-flow" {
		t.Errorf("overview order %v: want the unreadable, re-authorization and config error first, the healthy one last", names)
	}
	summary := b.text("#summary")
	for _, want := range []string{"7 tokens", "1 Secrets unreadable", "1 Re-authorization required", "1 Active"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary %q lacks %q", summary, want)
		}
	}
	sweep := b.text("#sweep")
	for _, want := range []string{"Last sweep", "ago", "worker-7d9f", "1 refreshed", "1 failed", "not halted"} {
		if !strings.Contains(sweep, want) {
			t.Errorf("sweep line %q lacks %q", sweep, want)
		}
	}
	// Times are shown in the viewer's time zone (Berlin: CET or CEST).
	if abs := b.text(`tr[data-name="billing-flow"] td:nth-child(3) .abs`); !strings.Contains(abs, "CET") && !strings.Contains(abs, "CEST") && !strings.Contains(abs, "GMT+1") && !strings.Contains(abs, "GMT+2") {
		t.Errorf("access expiry %q is not shown in the viewer's time zone", abs)
	}
	if got := b.text(`tr[data-name="reporting"] .lasterror`); !strings.Contains(got, "invalid_grant") {
		t.Errorf("reporting's last error shows %q", got)
	}
	if got := b.text(`tr[data-name="ivr-lookup"] td:last-child`); got != "Yes" {
		t.Errorf("ivr-lookup's own passphrase shows %q, want Yes", got)
	}
	shot := b.screenshot(screenshotDir(), "console-overview.png")
	t.Logf("overview screenshot: %s", shot)
	clean("overview")

	// The overview updates itself: a token created elsewhere appears
	// without a reload.
	w.seed("late-arrival", 10*time.Hour, 60*24*time.Hour, nil)
	b.waitText("#tokens", "late-arrival", 45*time.Second)
	clean("polling")

	// Create a token with the fake Webex's client, as the local stack prints it.
	clientID, secret := "console-client-"+randomHex(3), "console-secret-"+randomHex(8)
	w.Secret(secret)
	w.Webex.AddClient(clientID, secret)
	b.open(w.base + "/admin/new")
	b.run(
		chromedp.SendKeys(chromedp.ID("name"), "agent-desktop"),
		chromedp.SendKeys(chromedp.ID("clientId"), clientID),
		chromedp.SendKeys(chromedp.ID("clientSecret"), secret),
		chromedp.SetValue(chromedp.ID("redirectUri"), w.base+"/callback"),
		chromedp.SendKeys(chromedp.ID("scopes"), "spark:kms cjp:config_read"),
	)
	b.submit("#create")
	if got := b.text("#token-name"); got != "agent-desktop" {
		t.Fatalf("after Create token the page shows %q", got)
	}
	if got := b.text("#token-status"); got != "Pending authorization" {
		t.Errorf("new token's status %q, want Pending authorization", got)
	}
	if got := b.text("#flash"); !strings.Contains(got, "Token created") {
		t.Errorf("after creating: message %q", got)
	}
	if got := b.text("#secret-state"); !strings.Contains(got, "A client secret is set") {
		t.Errorf("client secret state %q", got)
	}
	clean("create")

	// Authorize with Webex: the fake's approve page, one click, back to
	// the console with the token active.
	b.submit("#authorize")
	if loc := b.location(); !strings.HasPrefix(loc, fake) {
		t.Fatalf("Authorize with Webex went to %s, want the fake Webex", loc)
	}
	if got := b.text("h1"); !strings.Contains(got, clientID) {
		t.Errorf("the approve page shows %q", got)
	}
	b.submit("#approve")
	b.waitText("#token-status", "Active", 15*time.Second)
	if loc := b.location(); !strings.HasPrefix(loc, w.base+"/admin/token/agent-desktop") {
		t.Errorf("after approving, the browser is at %s, want the token's page", loc)
	}
	if got := b.text("#flash"); !strings.Contains(got, "Authorized with Webex") {
		t.Errorf("after authorizing: message %q", got)
	}
	if got := b.text("#access-expires"); !strings.HasPrefix(got, "in 11 h") && !strings.HasPrefix(got, "in 12 h") {
		t.Errorf("access token expires %q, want in about 12 h", got)
	}
	r := get(t, w.base+"/?name=agent-desktop", map[string]string{"x-token-passphrase": w.Env["TOKEN_PASSPHRASE"]})
	if r.code != 200 || !strings.HasPrefix(r.str("token"), "fake-at-") {
		t.Fatalf("the authorized token is not served: %d %s", r.code, r.raw)
	}
	w.Secret(r.str("token"))
	for _, secretValue := range []string{secret, r.str("token"), docString(w, "agent-desktop", "refreshToken")} {
		if strings.Contains(b.html(), secretValue) {
			t.Errorf("the token page holds a secret (%.8s…)", secretValue)
		}
	}
	shot = b.screenshot(screenshotDir(), "console-token.png")
	t.Logf("token page screenshot: %s", shot)
	clean("authorize")

	// Refresh now: exactly one Webex call, the event published.
	before := w.Webex.Stats().Refreshes
	b.submit("#refresh")
	if got := b.text("#flash"); !strings.Contains(got, "Refreshed") {
		t.Errorf("after Refresh now: message %q", got)
	}
	if calls := w.Webex.Stats().Refreshes - before; calls != 1 {
		t.Errorf("Refresh now made %d Webex refresh calls, want 1", calls)
	}
	waitEvent(t, w.events, "agent-desktop", "token.rotated", "manual")
	clean("refresh")

	// A failed authorization is shown on the page: the client secret
	// changed at Webex, so the code exchange is refused.
	w.Webex.AddClient(clientID, "rotated-"+secret)
	b.submit("#authorize")
	b.submit("#approve")
	b.waitText("#flash", "Authorization failed: webex rejected the client credentials", 15*time.Second)
	if got := b.text("#last-error"); !strings.Contains(got, "rejected the client credentials") {
		t.Errorf("last error after a refused authorization: %q", got)
	}
	if got := b.text("#token-status"); got != "Active" {
		t.Errorf("a failed re-authorization changed the status to %q; the token still works", got)
	}
	clean("failed authorization", "status of 502")

	// Delete, confirmed by typing the name.
	b.run(chromedp.SendKeys(chromedp.ID("confirm-name"), "agent-desktop"))
	b.submit("#delete")
	if got := b.text("#flash"); got != "Token agent-desktop deleted." {
		t.Errorf("after Delete: message %q", got)
	}
	if b.has(`tr[data-name="agent-desktop"]`) {
		t.Error("the deleted token is still listed")
	}
	waitEvent(t, w.events, "agent-desktop", "token.deleted", "manual")
	clean("delete")

	// Sign out: the console is closed again.
	b.submit("#signout")
	if got := b.text("#flash"); got != "You are signed out." {
		t.Errorf("after signing out: %q", got)
	}
	b.open(w.base + "/admin/token/billing-flow")
	if got := b.text("h1"); got != "Sign in" {
		t.Errorf("a token page after signing out shows %q, want the sign-in page", got)
	}
	clean("sign out")

	// Failed sign-ins share the passphrase throttle: after
	// AUTH_FAILURE_LIMIT (3, with the one above) the right one is refused too.
	for range 2 {
		b.run(chromedp.SendKeys(chromedp.ID("passphrase"), "guess-"+randomHex(4)))
		b.submit("#signin")
	}
	b.run(chromedp.SendKeys(chromedp.ID("passphrase"), adminPass))
	if resp := b.submit("#signin"); resp.Status != http.StatusTooManyRequests {
		t.Errorf("sign-in after 3 failures: status %d, want 429", resp.Status)
	}
	if got := b.text("#signin-error"); !strings.Contains(got, "Too many failed sign-ins") {
		t.Errorf("throttled sign-in says %q", got)
	}
	clean("throttle", "status of 401", "status of 429")

	if foreign := b.foreignRequests(w.base, fake); len(foreign) > 0 {
		t.Errorf("the console loaded from other origins: %q", foreign)
	}
}

// docString reads a string field of a token document.
func docString(w *consoleWorld, name, field string) string {
	v, _ := w.Doc(name)[field].(string)
	return v
}

// TestConsoleRefusesForgedFormInBrowser: a page of another origin on the
// same host (so SameSite lets the session cookie through) makes the
// signed-in admin's browser post the delete form. The console refuses it.
func TestConsoleRefusesForgedFormInBrowser(t *testing.T) {
	t.Parallel()
	h, a, _ := consoleAPI(t, nil)
	h.seed("victim", 10*time.Hour, 30*24*time.Hour, nil)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><title>prize</title><form method="post" action="%s/admin/token/victim/delete">
<input type="hidden" name="confirm" value="victim"><input type="hidden" name="csrf" value="guessed">
<button id="win" type="submit">Claim your prize</button></form>`, a.url)
	}))
	t.Cleanup(evil.Close)
	b := newBrowser(t, "")
	b.open(a.url + "/admin/")
	b.run(chromedp.SendKeys(chromedp.ID("passphrase"), adminPass))
	b.submit("#signin")
	if got := b.text("h1"); got != "Tokens" {
		t.Fatalf("sign in: the page shows %q", got)
	}
	b.open(evil.URL)
	if resp := b.submit("#win"); resp.Status != http.StatusForbidden {
		t.Errorf("forged form: status %d, want 403", resp.Status)
	}
	if got := b.text("#flash"); !strings.Contains(got, "Request refused") {
		t.Errorf("forged form: the page says %q", got)
	}
	if r := h.token(a, "victim"); r.code != 200 {
		t.Errorf("the token was deleted by a forged form: %d", r.code)
	}
	b.takeProblems("status of 403")
}
