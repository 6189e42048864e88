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

	"github.com/wxcc/tokenservice/shared/testing/testkit"
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
	// The last sweep in an admin's words: when, and what it did; no
	// instance, and no "halted" unless it did.
	sweep := b.text("#sweep")
	if !strings.HasPrefix(sweep, "Last check ") || !strings.Contains(sweep, " min ago") || !strings.HasSuffix(sweep, ": 1 token refreshed, 1 failed.") {
		t.Errorf("sweep line %q, want \"Last check 1 min ago (<time>): 1 token refreshed, 1 failed.\"", sweep)
	}
	for _, unwanted := range []string{"worker-7d9f", "halted", "sweep"} {
		if strings.Contains(sweep, unwanted) {
			t.Errorf("sweep line %q says %q", sweep, unwanted)
		}
	}
	// Times are shown in the viewer's time zone (Berlin: CET or CEST).
	if abs := b.text(`tr[data-name="billing-flow"] td.access .abs`); !strings.Contains(abs, "CET") && !strings.Contains(abs, "CEST") && !strings.Contains(abs, "GMT+1") && !strings.Contains(abs, "GMT+2") {
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
	// Webex's refusal reads as advice, and the status box agrees with it.
	const refused = "Webex refused this client ID and secret: copy the secret again from developer.webex.com"
	b.waitText("#flash", "Authorization failed: "+refused, 15*time.Second)
	if got := b.text("#last-error"); !strings.Contains(got, refused) {
		t.Errorf("last error after a refused authorization: %q", got)
	}
	if got := b.text("#token-status"); got != "Active" {
		t.Errorf("a failed re-authorization changed the status to %q; the token still works", got)
	}
	if got := b.text("#advice"); !strings.Contains(got, "Flows still get the current access token, but "+refused) || strings.Contains(got, "Nothing to do") {
		t.Errorf("the advice %q does not agree with the refused authorization", got)
	}
	if !b.has("#advice.a-warning") {
		t.Error("the advice after a refused authorization is not shown as a warning")
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

// TestConsoleServiceAppInBrowser: an operator creates a Service App from
// the console with a healthy manager (minted at once: one applications
// call, token.rotated with trigger mint), mints it again with Refresh
// now, finds it on its manager's page, and creates a second one whose
// manager needs re-authorization: the console names that manager
// wherever the Service App shows.
func TestConsoleServiceAppInBrowser(t *testing.T) {
	t.Parallel()
	w := newConsoleWorld(t, nil)
	mgr := testkit.SeedManager(t, w.Firestore, w.Collection, "mgr", w.Webex.Fake, 10*time.Hour, 60*24*time.Hour)
	old := testkit.SeedManager(t, w.Firestore, w.Collection, "old-mgr", w.Webex.Fake, -time.Minute, 60*24*time.Hour)
	w.Secret(append(mgr.Secrets(), old.Secrets()...)...)
	w.raw("old-mgr", map[string]any{"status": "reauth_required", "lastError": map[string]any{"at": time.Now().Add(-time.Hour).UnixMilli(),
		"message": "webex refresh: HTTP 400 invalid_grant", "permanent": true}})
	w.seed("wallboard", 10*time.Hour, 60*24*time.Hour, nil) // an integration without the scope
	app, app2 := testkit.NewServiceApp(w.Webex.Fake), testkit.NewServiceApp(w.Webex.Fake)
	w.Secret(app.ClientSecret, app2.ClientSecret)
	b := newBrowser(t, "")
	clean := func(step string, expected ...string) {
		t.Helper()
		if p := b.takeProblems(expected...); len(p) > 0 {
			t.Errorf("%s: the browser logged errors: %q", step, p)
		}
	}
	b.open(w.base + "/admin/")
	b.run(chromedp.SendKeys(chromedp.ID("passphrase"), adminPass))
	b.submit("#signin")

	// New token, kind Service App: the name typed so far is kept.
	create := func(name string, a testkit.ServiceApp, manager string) {
		t.Helper()
		b.open(w.base + "/admin/new")
		b.run(chromedp.SendKeys(chromedp.ID("name"), name))
		b.submit("#kind-service_app")
		if got := b.value("#name"); got != name {
			t.Errorf("switching to Service App lost the name: %q, want %q", got, name)
		}
		if b.has("#redirectUri") || b.has("#scopes") {
			t.Error("the Service App form asks for a redirect URI or scopes")
		}
		b.run(
			chromedp.SendKeys(chromedp.ID("appId"), a.AppID),
			chromedp.SendKeys(chromedp.ID("clientId"), a.ClientID),
			chromedp.SendKeys(chromedp.ID("clientSecret"), a.ClientSecret),
			chromedp.SendKeys(chromedp.ID("targetOrgId"), a.OrgID),
			chromedp.SetValue(chromedp.ID("manager"), manager),
		)
		b.submit("#create")
		if got := b.text("#token-name"); got != name {
			t.Fatalf("after creating the Service App the page shows %q", got)
		}
	}
	create("queue-bot", app, "mgr")
	if got := b.text("#flash"); !strings.Contains(got, "Service App created and minted") {
		t.Errorf("after creating: message %q, want it minted", got)
	}
	for sel, want := range map[string]string{
		"#token-status": "Active", "#kind": "Service App", "#app-id": app.AppID, "#target-org": app.OrgID,
		"#manager-of": "mgr Active", "#org-id": app.OrgID, "#secret-state": "A client secret is set",
	} {
		if got := b.text(sel); !strings.Contains(got, want) {
			t.Errorf("Service App page: %s shows %q, want %q", sel, got, want)
		}
	}
	if b.has("#authorize") {
		t.Error("a Service App's page offers Authorize with Webex")
	}
	if st := w.Webex.MintStats(); st.Calls != 1 || st.Minted != 1 {
		t.Errorf("creating the Service App made %+v applications calls, want exactly one", st)
	}
	waitEvent(t, w.events, "queue-bot", "token.rotated", "mint")
	w.Secret(docString(w, "queue-bot", "accessToken"), docString(w, "queue-bot", "refreshToken"))
	for _, secret := range []string{app.ClientSecret, docString(w, "queue-bot", "accessToken"), docString(w, "queue-bot", "refreshToken"), mgr.AccessToken} {
		if strings.Contains(b.html(), secret) {
			t.Errorf("the Service App's page holds a secret (%.8s…)", secret)
		}
	}
	t.Logf("Service App page screenshot: %s", b.screenshot(screenshotDir(), "console-serviceapp.png"))
	clean("create Service App")

	// Refresh now mints a new pair: one more applications call.
	b.submit("#refresh")
	if got := b.text("#flash"); !strings.Contains(got, "Minted") {
		t.Errorf("after Refresh now: message %q", got)
	}
	if st := w.Webex.MintStats(); st.Calls != 2 {
		t.Errorf("Refresh now on a Service App: %d applications calls in all, want 2", st.Calls)
	}
	if got := b.text("#token-status"); got != "Active" {
		t.Errorf("after Refresh now: status %q", got)
	}
	clean("refresh Service App")

	// Its manager's page lists the Service Apps it manages.
	b.submit("#manager-of a")
	if got := b.text("#token-name"); got != "mgr" {
		t.Fatalf("the manager link leads to %q", got)
	}
	if got := b.text("#managed"); !strings.Contains(got, "queue-bot") || !strings.Contains(got, "Active") {
		t.Errorf("the manager's page lists %q, want queue-bot, active", got)
	}
	t.Logf("manager page screenshot: %s", b.screenshot(screenshotDir(), "console-manager.png"))
	clean("manager page")

	// A manager that needs re-authorization: the Service App is created
	// but not minted, and the console names the manager.
	create("wallboard-bot", app2, "old-mgr")
	if got := b.text("#flash"); !strings.Contains(got, "Service App created, but not minted: its manager old-mgr needs re-authorization") {
		t.Errorf("creating with a manager that needs re-authorization: message %q", got)
	}
	if got := b.text("#token-status"); got != "Re-authorization required" {
		t.Errorf("status %q, want Re-authorization required", got)
	}
	if got := b.text("#advice"); !strings.Contains(got, "Its manager old-mgr must be authorized again") {
		t.Errorf("advice %q does not name the manager", got)
	}
	if got := b.text("#refresh-why"); !b.has("#refresh[disabled]") || !strings.Contains(got, "old-mgr") {
		t.Errorf("Refresh now is offered (or its reason %q does not name the manager) while the manager needs re-authorization", got)
	}
	if st := w.Webex.MintStats(); st.Calls != 2 {
		t.Errorf("a Service App whose manager needs re-authorization cost %d applications calls, want none", st.Calls-2)
	}
	t.Logf("waiting Service App screenshot: %s", b.screenshot(screenshotDir(), "console-serviceapp-waiting.png"))
	clean("Service App waiting for its manager")

	// The overview: the kind next to the name, the manager named.
	b.open(w.base + "/admin/")
	if got := b.text(`tr[data-name="queue-bot"] .tag`); got != "Service App" {
		t.Errorf("overview: queue-bot's kind tag %q", got)
	}
	if b.has(`tr[data-name="mgr"] .tag`) {
		t.Error("overview: the integration mgr is tagged")
	}
	if got := b.text(`tr[data-name="wallboard-bot"] td.status`); got != "Re-authorization required Manager old-mgr needs re-authorization" {
		t.Errorf("overview: wallboard-bot's status shows %q, want the manager named", got)
	}
	if got := b.text(`tr[data-name="old-mgr"] td.status`); got != "Re-authorization required 1 Service App waits for it" {
		t.Errorf("overview: old-mgr's status shows %q, want the Service App waiting for it counted", got)
	}
	t.Logf("overview screenshot: %s", b.screenshot(screenshotDir(), "console-overview-serviceapps.png"))
	clean("overview")
	if foreign := b.foreignRequests(w.base); len(foreign) > 0 {
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
