package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/testing/webexfake"
	"github.com/wxcc/tokenservice/shared/token"
)

// People of the console tests: an operator and a viewer by address and
// by domain, someone not on the lists, and the Webex user who must
// authorize a token through a link.
var (
	opsPerson    = webexfake.Person{Email: "olivia.ops@example.com", DisplayName: "Olivia Ops"}
	viewerPerson = webexfake.Person{Email: "victor@viewers.example.com", DisplayName: "Victor Viewer"}
	outsider     = webexfake.Person{Email: "mallory@elsewhere.example.net", DisplayName: "Mallory"}
	supervisor   = webexfake.Person{Email: "sam.supervisor@example.com", DisplayName: "Sam Supervisor"}
	otherPerson  = webexfake.Person{Email: "otto@example.com", DisplayName: "Otto"}
)

// newPeopleWorld is the console world with sign-in with Webex configured
// against the fake Webex (its own client for sign-in), the admin
// passphrase as the break-glass way in, and the people above.
func newPeopleWorld(t *testing.T) *consoleWorld {
	t.Helper()
	// CONSOLE_URL must name the api's own origin before it starts.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	secret := "console-signin-secret-" + randomHex(8)
	w := newConsoleWorld(t, map[string]string{
		"PORT": fmt.Sprint(port), "CONSOLE_URL": fmt.Sprintf("http://127.0.0.1:%d", port),
		"CONSOLE_OIDC_CLIENT_ID": "console-signin", "CONSOLE_OIDC_CLIENT_SECRET": secret,
		"CONSOLE_OPERATORS": opsPerson.Email, "CONSOLE_VIEWERS": "*@viewers.example.com",
	}, func(h *harness) { h.Env["CONSOLE_OIDC_ISSUER"] = h.Webex.IssuerURL })
	w.Secret(secret)
	w.Webex.AddClient("console-signin", secret)
	for _, p := range []webexfake.Person{opsPerson, viewerPerson, outsider, supervisor, otherPerson} {
		w.Webex.AddPerson(p)
	}
	return w
}

// signInWithWebex signs b in as person through the sign-in page.
func signInWithWebex(t *testing.T, w *consoleWorld, b *browser, person webexfake.Person) {
	t.Helper()
	if err := w.Webex.SignInAs(person.Email); err != nil {
		t.Fatal(err)
	}
	b.open(w.base + "/admin/signin")
	b.submit("#signin-webex")
	b.waitText("body", "", 10*time.Second)
}

// TestPeopleInBrowser (issue 22): in headless Chromium, an operator and a
// viewer sign in with Webex, someone not on the lists is refused, the
// viewer's actions are refused in the browser and by the server, the
// operator ends the viewer's session, a signed-out cookie is refused, an
// authorization link authorizes a token for a second person (and not for
// a third), and the Activity page shows each of these with the right
// actor. The overview shows who each token acts as and warns when
// several act as one person.
func TestPeopleInBrowser(t *testing.T) {
	t.Parallel()
	w := newPeopleWorld(t)
	clientID, secret := "flows-client-"+randomHex(3), "flows-secret-"+randomHex(8)
	w.Secret(secret)
	w.Webex.AddClient(clientID, secret)
	w.raw("queue-stats", map[string]any{"clientId": clientID, "clientSecret": secret, "redirectUri": w.base + "/callback",
		"scopes": []string{"spark:kms", "spark:people_read"}, "status": "pending"})
	for _, n := range []string{"wallboard", "reports"} {
		w.seed(n, 8*time.Hour, 60*24*time.Hour, map[string]any{"authorizedBy": map[string]any{
			"personId": "p-1", "email": "legacy.admin@example.com", "displayName": "Lee Legacy", "orgId": webexfake.DefaultOrgID}})
	}

	// Someone not on the lists signs in at Webex and is refused.
	stranger := newBrowser(t, "")
	signInWithWebex(t, w, stranger, outsider)
	if got := stranger.text("#signin-error"); !strings.Contains(got, "not open to you") || !strings.Contains(got, outsider.Email) {
		t.Errorf("a person not on the lists sees %q, want a refusal naming them", got)
	}
	stranger.open(w.base + "/admin/")
	if got := stranger.text("h1"); got != "Sign in" {
		t.Errorf("the refused person reaches %q", got)
	}

	// The operator signs in with Webex and sees who they are.
	ops := newBrowser(t, "")
	signInWithWebex(t, w, ops, opsPerson)
	ops.waitText("h1", "Tokens", 10*time.Second)
	if got := ops.text("#who"); !strings.Contains(got, opsPerson.Email) || !strings.Contains(got, "operator") {
		t.Errorf("the operator's header says %q", got)
	}
	// Who each token acts as, and the warning about one person holding several.
	if got := ops.text(`tr[data-name="wallboard"] .acts-as`); got != "legacy.admin@example.com" {
		t.Errorf("wallboard acts as %q on the overview", got)
	}
	if got := ops.text(".holder"); !strings.Contains(got, "2 tokens act as legacy.admin@example.com") {
		t.Errorf("holder warning %q", got)
	}

	// The viewer signs in: everything visible, nothing changeable.
	viewer := newBrowser(t, "")
	signInWithWebex(t, w, viewer, viewerPerson)
	viewer.waitText("h1", "Tokens", 10*time.Second)
	if got := viewer.text("#who"); !strings.Contains(got, "viewer") {
		t.Errorf("the viewer's header says %q", got)
	}
	viewer.open(w.base + "/admin/token/wallboard")
	if !viewer.has("#refresh[disabled]") || !viewer.has("#delete[disabled]") || !strings.Contains(viewer.text("#viewer-note"), "viewer") {
		t.Errorf("the viewer's token page has live buttons or no note")
	}
	// The server refuses what the browser would not send.
	code, err := chromedp.Run(viewer.ctx, chromedp.Evaluate[int](`fetch("/admin/token/wallboard/refresh", {method: "POST",
		headers: {"Content-Type": "application/x-www-form-urlencoded"},
		body: "csrf=" + encodeURIComponent(document.querySelector("input[name=csrf]").value)}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || code != http.StatusForbidden {
		t.Errorf("the viewer's Refresh now, forced: got %d (%v), want 403", code, err)
	}
	if got := w.Webex.Stats().Refreshes; got != 0 {
		t.Errorf("the viewer's refresh reached Webex %d times", got)
	}

	// The operator sees both sessions and ends the viewer's.
	ops.open(w.base + "/admin/sessions")
	if !ops.has(`tr[data-who="`+viewerPerson.Email+`"]`) || !ops.has(`tr[data-who="`+opsPerson.Email+`"]`) {
		t.Fatalf("the sessions page lacks a session: %s", ops.text("#sessions"))
	}
	ops.submit(`tr[data-who="` + viewerPerson.Email + `"] button`)
	viewer.open(w.base + "/admin/token/wallboard")
	if got := viewer.text("h1"); got != "Sign in" {
		t.Errorf("after the operator ended it, the viewer's session shows %q, want the sign-in page", got)
	}
	shot := ops.screenshot(screenshotDir(), "console-sessions.png")
	t.Logf("sessions screenshot: %s", shot)

	// An authorization link for the supervisor, who has no console access.
	ops.open(w.base + "/admin/token/queue-stats")
	ops.run(chromedp.SendKeys(chromedp.ID("link-email"), supervisor.Email))
	ops.submit("#create-link")
	link := ops.value("#new-link")
	if !strings.HasPrefix(link, w.base+"/link/") {
		t.Fatalf("the new link is %q", link)
	}
	if got := ops.text("#pending-links"); !strings.Contains(got, supervisor.Email) {
		t.Errorf("pending links %q lack the supervisor's", got)
	}
	// Someone else opens it and signs in at Webex as themselves: refused.
	intruder := newBrowser(t, "")
	if err := w.Webex.SignInAs(otherPerson.Email); err != nil {
		t.Fatal(err)
	}
	intruder.open(link)
	intruder.submit("#link-authorize")
	if got := intruder.text("#link-result"); !strings.Contains(got, "for "+supervisor.Email) || !strings.Contains(got, "nothing was stored") {
		t.Errorf("the wrong person sees %q", got)
	}
	if d := w.Doc("queue-stats"); d["accessToken"] != "" && d["accessToken"] != nil {
		t.Errorf("the wrong person's grant was stored")
	}
	// The supervisor completes it.
	sup := newBrowser(t, "")
	if err := w.Webex.SignInAs(supervisor.Email); err != nil {
		t.Fatal(err)
	}
	sup.open(link)
	if got := sup.text("#link-for"); !strings.Contains(got, supervisor.Email) {
		t.Errorf("the link page says %q", got)
	}
	sup.submit("#link-authorize")
	if got := sup.text("#link-result"); !strings.Contains(got, "is authorized") {
		t.Fatalf("the supervisor sees %q", got)
	}
	doc := w.Doc("queue-stats")
	w.Secret(doc["accessToken"].(string), doc["refreshToken"].(string))
	if by, _ := doc["authorizedBy"].(map[string]any); by["email"] != supervisor.Email || by["displayName"] != supervisor.DisplayName {
		t.Errorf("authorizedBy is %v, want the supervisor", doc["authorizedBy"])
	}
	if want := token.OrgUUID(webexfake.DefaultOrgID); doc["orgId"] != want || len(want) != 36 {
		t.Errorf("orgId is %v, want the org's UUID %s (as WxCC's APIs take it)", doc["orgId"], want)
	}
	// Used once: opening it again says so.
	sup.open(link)
	if got := sup.text("#link-problem"); !strings.Contains(got, "used already") {
		t.Errorf("the used link says %q", got)
	}
	ops.open(w.base + "/admin/token/queue-stats")
	if got := ops.text("#acts-as"); !strings.Contains(got, supervisor.Email) {
		t.Errorf("the token page says it acts as %q", got)
	}
	shot = ops.screenshot(screenshotDir(), "console-token-history.png")
	t.Logf("token history screenshot: %s", shot)

	// A signed-out cookie is refused everywhere at once.
	old := sessionCookieOf(t, ops)
	ops.submit("#signout")
	if r := do(t, http.MethodGet, w.base+"/admin/status", "", map[string]string{"Cookie": "tks_session=" + old}); r.code != 401 {
		t.Errorf("the signed-out cookie: got %d, want 401", r.code)
	}

	// The Activity page shows each of these with the right actor.
	admin := newBrowser(t, "")
	admin.open(w.base + "/admin/signin")
	admin.run(chromedp.Click(chromedp.CSS("#break-glass summary")), chromedp.SendKeys(chromedp.ID("passphrase"), adminPass))
	admin.submit("#signin")
	admin.open(w.base + "/admin/activity-log")
	rows, err := chromedp.Run(admin.ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#activity tbody tr")).map(r =>
		r.dataset.action + "|" + r.querySelector(".actor").innerText)`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		string(activity.SignInRefused) + "|" + outsider.Email,
		string(activity.SignIn) + "|" + opsPerson.Email,
		string(activity.SignIn) + "|" + viewerPerson.Email,
		string(activity.SessionEnded) + "|" + opsPerson.Email,
		string(activity.LinkCreated) + "|" + opsPerson.Email,
		string(activity.AuthRefused) + "|" + otherPerson.Email,
		string(activity.LinkUsed) + "|" + supervisor.Email,
		string(activity.AuthCompleted) + "|" + supervisor.Email,
		string(activity.SignOut) + "|" + opsPerson.Email,
	} {
		if !contains(rows, want) {
			t.Errorf("the Activity page lacks %q; it shows %q", want, rows)
		}
	}
	shot = admin.screenshot(screenshotDir(), "console-activity.png")
	t.Logf("activity screenshot: %s", shot)
	stranger.open(w.base + "/admin/signin")
	shot = stranger.screenshot(screenshotDir(), "console-signin.png")
	t.Logf("sign-in screenshot: %s", shot)

	// No entry holds a secret.
	page, err := w.store.Activity().List(context.Background(), activity.Filter{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) < 9 {
		t.Fatalf("the record holds %d entries", len(page.Entries))
	}
	for _, e := range page.Entries {
		for _, secret := range w.Secrets() {
			if all := e.Actor + " " + e.Detail + " " + e.Token + " " + e.Addr; len(secret) >= 8 && strings.Contains(all, secret) {
				t.Errorf("activity entry %s holds a secret", e.Action)
			}
		}
	}
}

// sessionCookieOf reads the browser's console session cookie (HttpOnly,
// so through the DevTools protocol).
func sessionCookieOf(t *testing.T, b *browser) string {
	t.Helper()
	res, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == "tks_session" {
			return c.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}
