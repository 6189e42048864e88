package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/activity/activitytest"
	"github.com/wxcc/tokenservice/shared/firestore"
	"github.com/wxcc/tokenservice/shared/people"
	"github.com/wxcc/tokenservice/shared/token"
)

// activityStore is the world's activity record, as the api reads it.
func (w *consoleWorld) activityStore() *firestore.Activity {
	return firestore.New(w.Firestore, w.Collection, firestore.WithMetaCollection(w.Env["META_COLLECTION"]),
		firestore.WithActivity(w.Env["ACTIVITY_COLLECTION"], 24*time.Hour)).Activity()
}

// weekCounts is what a week of history holds inside the last 7 days, as
// a person would count the entries.
type weekCounts struct{ refreshes, failures, reauths, authorizations int }

// seedWeek writes a token whose access token lives 12 hours, refreshed
// 3 hours ago, and its last eight days in the activity record
// (activitytest.Week), written directly with past times.
func (w *consoleWorld) seedWeek(name string) weekCounts {
	w.T.Helper()
	now := time.Now()
	last := now.Add(-3 * time.Hour)
	w.seed(name, 9*time.Hour, 60*24*time.Hour, map[string]any{"lastRefresh": last.UnixMilli(), "accessExpires": last.Add(12 * time.Hour).UnixMilli()})
	store := w.activityStore()
	var c weekCounts
	for _, e := range activitytest.Week(name, last, 12*time.Hour) {
		if err := store.Add(context.Background(), e); err != nil {
			w.T.Fatal(err)
		}
		if e.At.Before(now.Add(-7 * 24 * time.Hour)) {
			continue
		}
		switch e.Action {
		case activity.Rotated:
			c.refreshes++
		case activity.AuthCompleted: // its rotation is no refresh
			c.refreshes--
			c.authorizations++
		case activity.RefreshFailed:
			c.failures++
		case activity.ReauthRequired:
			c.reauths++
		}
	}
	return c
}

// signIn signs b in with the admin passphrase.
func (w *consoleWorld) signIn(b *browser) {
	w.T.Helper()
	b.open(w.base + "/admin/")
	b.run(chromedp.SendKeys(chromedp.ID("passphrase"), adminPass))
	b.submit("#signin")
	if got := b.text("h1"); got != "Tokens" {
		w.T.Fatalf("after signing in the page shows %q", got)
	}
}

// signInViewer gives b the session of a viewer who signed in with Webex,
// stored as the console stores it.
func (w *consoleWorld) signInViewer(b *browser) {
	w.T.Helper()
	id, s, err := people.NewSession(token.Person{Email: "viewer@example.com", DisplayName: "Vera Viewer"}, people.Viewer, people.ViaWebex,
		"127.0.0.1", time.Now(), 8*time.Hour, time.Hour)
	if err != nil {
		w.T.Fatal(err)
	}
	if err := w.store.Sessions().Create(context.Background(), s); err != nil {
		w.T.Fatal(err)
	}
	b.run(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		httpOnly := true
		_, err := cdp.Call(ctx, t, network.SetCookie, network.SetCookieParams{Name: "tks_session", Value: id, URL: w.base + "/",
			HTTPOnly: &httpOnly, SameSite: network.CookieSameSiteStrict})
		return err
	}))
}

// count is how many elements sel matches.
func (b *browser) count(sel string) int {
	b.t.Helper()
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(sel)+`).length`))
	if err != nil {
		b.t.Fatalf("browser: count %s: %v", sel, err)
	}
	return n
}

// eval evaluates a JavaScript expression.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("browser: %s: %v", expr, err)
	}
	return v
}

// shoot saves the element sel as a PNG in dir/name.
func (b *browser) shoot(sel, dir, name string) string {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("browser: screenshot of %s: %v", sel, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return p
}

// viewportShot saves what the window shows now as a PNG in dir/name.
func (b *browser) viewportShot(dir, name string) string {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("browser: screenshot: %v", err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return p
}

// TestConsoleLifeChartInBrowser: a token with a week of history shows
// the chart of its access token's validity, drawn under the page's CSP
// (no inline style, no error), with the marks counted as the record
// holds them, a text alternative that says the same, and a legend. A
// Refresh now adds a mark from the entry the refresh protocol records.
// The Flow Designer panel shows what to type, never the passphrase, and
// its copy buttons copy.
func TestConsoleLifeChartInBrowser(t *testing.T) {
	t.Parallel()
	w := newConsoleWorld(t, nil)
	want := w.seedWeek("wallboard-feed")
	b := newBrowser(t, "")
	clean := func(step string, expected ...string) {
		t.Helper()
		if p := b.takeProblems(expected...); len(p) > 0 {
			t.Errorf("%s: the browser logged errors: %q", step, p)
		}
	}
	w.signIn(b)
	b.open(w.base + "/admin/token/wallboard-feed")

	// The text alternative, in words and in the SVG's title and desc.
	summary := b.text("#life-summary")
	wantSummary := fmt.Sprintf("Last 7 days: %d refreshes, %d failure, %d re-authorization needed, %d authorization, lowest validity 0: the access token ran out for ",
		want.refreshes, want.failures, want.reauths, want.authorizations)
	if !strings.HasPrefix(summary, wantSummary) {
		t.Errorf("chart summary %q, want it to start %q", summary, wantSummary)
	}
	if desc := eval[string](b, `document.querySelector("#life-chart desc").textContent`); !strings.Contains(desc, summary) {
		t.Errorf("the chart's desc %q does not say what the summary says", desc)
	}
	if title := eval[string](b, `document.querySelector("#life-chart title").textContent`); !strings.Contains(title, "validity") {
		t.Errorf("the chart's title is %q", title)
	}
	if got := eval[string](b, `document.getElementById("life-chart").getAttribute("aria-labelledby")`); got != "life-title life-desc" {
		t.Errorf("the chart is labelled by %q", got)
	}
	// The marks, counted in the DOM, each with its own shape and title.
	for kind, n := range map[string]int{"refresh": want.refreshes, "failure": want.failures, "reauth": want.reauths, "authorized": want.authorizations} {
		if got := b.count(`#life-chart g.mark[data-kind="` + kind + `"]`); got != n {
			t.Errorf("%d %s marks on the chart, want %d", got, kind, n)
		}
		if got := b.count(`#life-chart g.mark[data-kind="` + kind + `"] > title`); got != n {
			t.Errorf("%d of the %s marks have a title, want all %d", got, kind, n)
		}
	}
	if got := b.count(`#life-chart g[data-kind="refresh"] circle`); got != want.refreshes {
		t.Errorf("refresh marks drawn as %d circles, want %d", got, want.refreshes)
	}
	for _, shape := range []string{`g[data-kind="failure"] path`, `g[data-kind="reauth"] path`, `g[data-kind="authorized"] path`} {
		if b.count("#life-chart "+shape) != 1 {
			t.Errorf("no %s on the chart", shape)
		}
	}
	// Drawn, and styled by the stylesheet under the CSP: the line has a
	// length and a stroke; nothing on the page has a style attribute.
	if l := eval[float64](b, `document.getElementById("life-line").getTotalLength()`); l < 500 {
		t.Errorf("the validity line is %.0f units long: not drawn", l)
	}
	if stroke := eval[string](b, `getComputedStyle(document.getElementById("life-line")).stroke`); stroke == "" || stroke == "none" {
		t.Errorf("the validity line's stroke is %q: the stylesheet did not reach the SVG", stroke)
	}
	if fill := eval[string](b, `getComputedStyle(document.getElementById("life-line")).fill`); fill != "none" {
		t.Errorf("the validity line is filled (%q): the stylesheet did not reach the SVG", fill)
	}
	if box := eval[[]float64](b, `(function(){var r=document.getElementById("life-chart").getBoundingClientRect();return [r.width,r.height]})()`); box[0] < 600 || box[1] < 150 {
		t.Errorf("the chart is %v px: too small to read", box)
	}
	if n := b.count("[style]"); n != 0 {
		t.Errorf("%d elements have a style attribute, which the CSP refuses", n)
	}
	// The two lines are named on the chart and in the legend.
	if got := eval[string](b, `document.querySelector("#life-chart .threshold-label").textContent`); got != "refresh threshold 2 h" {
		t.Errorf("threshold line labelled %q", got)
	}
	legend := b.text("#life-legend")
	for _, want := range []string{"Refreshed (circle)", "Refresh failed (cross)", "Re-authorization needed (triangle)", "REFRESH_THRESHOLD, 2 h", "MIN_TOKEN_VALIDITY (5 min)"} {
		if !strings.Contains(legend, want) {
			t.Errorf("legend %q lacks %q", legend, want)
		}
	}
	t.Logf("chart screenshot: %s", b.shoot("#life", screenshotDir(), "console-chart.png"))
	clean("chart")

	// The Flow Designer panel: what to type, and no passphrase.
	for sel, want := range map[string]string{
		"#flow-url": w.base + "/?name=wallboard-feed", "#flow-header": "x-token-passphrase", "#flow-path": "$.token", "#flow-timeout": "1800",
	} {
		if got := b.text(sel); got != want {
			t.Errorf("Flow Designer panel: %s shows %q, want %q", sel, got, want)
		}
	}
	if got := b.text("#flow-passphrase"); !strings.Contains(got, "TOKEN_PASSPHRASE") {
		t.Errorf("the panel says the passphrase is %q, want TOKEN_PASSPHRASE named", got)
	}
	if strings.Contains(b.html(), w.Env["TOKEN_PASSPHRASE"]) {
		t.Error("the token page shows the passphrase")
	}
	if n := b.count("#flow-designer button.copy:not([hidden])"); n != 4 {
		t.Errorf("%d copy buttons shown, want 4 (the script shows them)", n)
	}
	b.run(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		for _, name := range []string{"clipboard-read", "clipboard-write"} {
			if _, err := cdp.Call(ctx, chromedp.FromContext(ctx).Browser, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
				Permission: &cdpbrowser.PermissionDescriptor{Name: name}, Setting: cdpbrowser.PermissionSettingGranted, Origin: w.base}); err != nil {
				return err
			}
		}
		return nil
	}), chromedp.Click(chromedp.CSS(`button.copy[data-copy="flow-url"]`)))
	b.waitText(`button.copy[data-copy="flow-url"]`, "Copied", 5*time.Second)
	if got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise)); err != nil || got != w.base+"/?name=wallboard-feed" {
		t.Errorf("Copy put %q on the clipboard (%v), want the URL", got, err)
	}
	t.Logf("Flow Designer panel screenshot: %s", b.shoot("#flow-designer", screenshotDir(), "console-flow-designer.png"))
	clean("flow designer panel")

	// Refresh now: the rotation's entry carries its expiry, and the chart
	// shows one more refresh (the record is written in the background).
	b.submit("#refresh")
	if got := b.text("#flash"); !strings.Contains(got, "Refreshed") {
		t.Fatalf("after Refresh now: message %q", got)
	}
	deadline := time.Now().Add(15 * time.Second)
	for b.count(`#life-chart g[data-kind="refresh"]`) != want.refreshes+1 {
		if time.Now().After(deadline) {
			t.Fatalf("after Refresh now the chart shows %d refreshes, want %d", b.count(`#life-chart g[data-kind="refresh"]`), want.refreshes+1)
		}
		time.Sleep(200 * time.Millisecond)
		b.open(w.base + "/admin/token/wallboard-feed")
	}
	if got := b.text("#life-summary"); !strings.Contains(got, fmt.Sprintf("%d refreshes", want.refreshes+1)) {
		t.Errorf("after Refresh now the summary says %q", got)
	}
	clean("refresh now")
	if foreign := b.foreignRequests(w.base); len(foreign) > 0 {
		t.Errorf("the console loaded from other origins: %q", foreign)
	}
}

// TestConsoleOverviewInBrowser: the overview says its order, sorts by a
// column on the server (keeping the filter), shows each token's last
// week from one read of the record, refreshes two ticked tokens at once
// (one Webex call each) and says per token what happened, reads well at
// 390 px with every expiry in view, and gives a viewer a bulk button
// that is off and says why.
func TestConsoleOverviewInBrowser(t *testing.T) {
	t.Parallel()
	w := newConsoleWorld(t, nil)
	w.seedStates()
	week := w.seedWeek("wallboard-feed")
	b := newBrowser(t, "")
	clean := func(step string, expected ...string) {
		t.Helper()
		if p := b.takeProblems(expected...); len(p) > 0 {
			t.Errorf("%s: the browser logged errors: %q", step, p)
		}
	}
	names := func() []string {
		t.Helper()
		return eval[[]string](b, `Array.from(document.querySelectorAll("#tokens tbody tr")).map(r => r.dataset.name)`)
	}
	w.signIn(b)

	// The order, said; the last week, per token.
	if got := b.text("#order"); !strings.HasPrefix(got, "Most urgent first:") || !strings.Contains(got, "access token ends first") {
		t.Errorf("the overview's order reads %q", got)
	}
	wantWeek := fmt.Sprintf("7 days: %d refreshes, %d failure, %d re-authorization needed", week.refreshes, week.failures, week.reauths)
	if got := b.text(`tr[data-name="wallboard-feed"] td.last .week`); got != wantWeek {
		t.Errorf("wallboard-feed's last 7 days read %q, want %q", got, wantWeek)
	}
	if got := b.count(`tr[data-name="wallboard-feed"] td.last .week svg[aria-hidden="true"] path.spark-failure`); got != 1 {
		t.Errorf("wallboard-feed's strip has %d failure paths, want 1", got)
	}
	if got := b.text(`tr[data-name="billing-flow"] td.last .week`); got != "7 days: 0 refreshes, 0 failures" {
		t.Errorf("billing-flow's last 7 days read %q, want none recorded", got)
	}
	if got := b.text("#sweep"); !strings.HasPrefix(got, "Last check ") || !strings.HasSuffix(got, ": 1 token refreshed, 1 failed.") || strings.Contains(got, "worker") {
		t.Errorf("sweep line %q", got)
	}
	// At 1360 px the table fits: no column hidden to the side.
	if sw, cw := eval[int](b, `document.querySelector(".table-wrap").scrollWidth`), eval[int](b, `document.querySelector(".table-wrap").clientWidth`); sw > cw {
		t.Errorf("at 1360 px the table is %d px wide in %d: columns are hidden (%v)", sw, cw,
			eval[[]string](b, `Array.from(document.querySelectorAll("#tokens th")).map(th=>th.textContent.trim()+" "+Math.round(th.getBoundingClientRect().width))`))
	}
	clean("overview")

	// Sort by name, then the other way round; the filter keeps the order.
	b.submit(`th a.sort[href*="sort=name"]`)
	got := names()
	if !slices.IsSorted(got) || len(got) != 8 {
		t.Errorf("sorted by name: %v", got)
	}
	if s := eval[string](b, `document.querySelector("th[aria-sort]").textContent.trim()`); !strings.HasPrefix(s, "Name") {
		t.Errorf("the sorted column is %q, want Name", s)
	}
	if o := b.text("#order"); !strings.HasPrefix(o, "Sorted by Name, A to Z.") {
		t.Errorf("order reads %q", o)
	}
	b.submit(`th a.sort[href*="sort=-name"]`)
	if got := names(); !slices.IsSortedFunc(got, func(a, b string) int { return strings.Compare(b, a) }) {
		t.Errorf("sorted by name, Z to A: %v", got)
	}
	b.run(chromedp.SendKeys(chromedp.ID("q"), "-"))
	b.submit("#filter")
	if got := names(); !slices.Equal(got, []string{"wallboard-feed", "queue-stats", "ivr-lookup", "crm-sync", "billing-flow"}) {
		t.Errorf("filtered on \"-\", Z to A: %v", got)
	}
	if u, _ := url.Parse(b.location()); u.Query().Get("sort") != "-name" || u.Query().Get("q") != "-" {
		t.Errorf("after filtering the address is %s: the order or the filter was lost", b.location())
	}
	b.submit(`th a.sort[href*="sort=access"]`)
	access := eval[[]string](b, `Array.from(document.querySelectorAll("#tokens tbody td.access time")).map(t => t.getAttribute("datetime"))`)
	if !slices.IsSorted(access) || len(access) != 5 {
		t.Errorf("sorted by access expiry, the expiries are %v", access)
	}
	if q, _ := url.Parse(b.location()); q.Query().Get("q") != "-" {
		t.Errorf("sorting lost the filter: %s", b.location())
	}
	b.submit("#urgent-first")
	clean("sorting")

	// Bulk refresh: two ticked tokens, one Webex call each, a result per token.
	b.open(w.base + "/admin/")
	if !b.has(`#pick-reporting[disabled]`) {
		t.Error("a token that must be authorized again can be ticked for a refresh")
	}
	before := w.Webex.Stats().Refreshes
	b.run(chromedp.Click(chromedp.ID("pick-billing-flow")), chromedp.Click(chromedp.ID("pick-queue-stats")))
	b.submit("#bulk-refresh")
	if got := b.text("#flash"); got != "2 tokens refreshed, 0 failed." {
		t.Errorf("after the bulk refresh: %q", got)
	}
	for _, name := range []string{"billing-flow", "queue-stats"} {
		if got := b.text(`#bulk-results tr[data-name="` + name + `"] td[data-label="Result"]`); got != "Refreshed Webex issued a new access token." {
			t.Errorf("bulk result of %s: %q", name, got)
		}
	}
	if n := b.count("#bulk-results tbody tr"); n != 2 {
		t.Errorf("%d results, want 2", n)
	}
	if calls := w.Webex.Stats().Refreshes - before; calls != 2 {
		t.Errorf("the bulk refresh made %d Webex calls, want 2", calls)
	}
	waitEvent(t, w.events, "billing-flow", "token.rotated", "manual")
	waitEvent(t, w.events, "queue-stats", "token.rotated", "manual")
	t.Logf("bulk result screenshot: %s", b.screenshot(screenshotDir(), "console-bulk-refresh.png"))
	clean("bulk refresh")

	// 390 px: every row a card, both expiries in view, nothing to scroll
	// sideways.
	b.run(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.open(w.base + "/admin/")
	if sw := eval[int](b, `document.documentElement.scrollWidth`); sw > 390 {
		wide := eval[[]string](b, `Array.from(document.querySelectorAll("body *")).filter(e=>e.getBoundingClientRect().right>391).slice(0,8).map(e=>e.tagName+"."+e.className+"#"+e.id+" "+Math.round(e.getBoundingClientRect().right))`)
		t.Errorf("at 390 px the page is %d px wide: it scrolls sideways (%v)", sw, wide)
	}
	for _, cell := range []string{"td.access", "td.refresh", "td.name", "td.status"} {
		out := eval[[]string](b, `Array.from(document.querySelectorAll("#tokens tbody `+cell+`")).filter(function(td){var r=td.getBoundingClientRect();return r.width<40||r.left<0||r.right>390||getComputedStyle(td).display==="none"}).map(td=>td.parentElement.dataset.name)`)
		if len(out) > 0 {
			t.Errorf("at 390 px, %s is hidden or cut off for %v", cell, out)
		}
	}
	if got := b.text(`tr[data-name="billing-flow"] td.access`); !strings.HasPrefix(got, "in 11 h") && !strings.HasPrefix(got, "in 12 h") {
		t.Errorf("at 390 px billing-flow's access cell reads %q", got)
	}
	t.Logf("390 px screenshot, whole page: %s", b.screenshot(screenshotDir(), "console-overview-390-full.png"))
	// What a phone shows once scrolled to the table.
	b.run(chromedp.Evaluate[chromedp.Void](`document.getElementById("order").scrollIntoView()`))
	t.Logf("390 px screenshot: %s", b.viewportShot(screenshotDir(), "console-overview-390.png"))
	clean("390 px")
	b.run(chromedp.EmulateViewport(1360, 900))

	// A viewer: the bulk button is off and says why; forcing it is refused.
	v := newBrowser(t, "")
	w.signInViewer(v)
	v.open(w.base + "/admin/")
	if !v.has("#bulk-refresh[disabled]") {
		t.Error("a viewer's bulk refresh button is on")
	}
	if got := v.text("#bulk-why"); !strings.Contains(got, "viewer") {
		t.Errorf("a viewer's bulk button says %q", got)
	}
	if n := v.count("#tokens input.pick:not([disabled])"); n != 0 {
		t.Errorf("a viewer can tick %d tokens", n)
	}
	before = w.Webex.Stats().Refreshes
	v.run(chromedp.Evaluate[chromedp.Void](`document.querySelectorAll("input.pick").forEach(c=>{c.disabled=false;c.checked=true});document.getElementById("bulk-refresh").disabled=false`))
	if resp := v.submit("#bulk-refresh"); resp.Status != http.StatusForbidden {
		t.Errorf("a viewer's forced bulk refresh: status %d, want 403", resp.Status)
	}
	if calls := w.Webex.Stats().Refreshes - before; calls != 0 {
		t.Errorf("a viewer's bulk refresh made %d Webex calls", calls)
	}
	v.takeProblems("status of 403")
}

// TestConsoleOverviewSortKeepsPaging: the sort links and the pages keep
// the filter and each other.
func TestConsoleOverviewSortKeepsPaging(t *testing.T) {
	t.Parallel()
	w := newConsoleWorld(t, nil)
	bw := w.Firestore.BulkWriter(context.Background())
	for i := range 60 {
		if _, err := bw.Set(w.Firestore.Collection(w.Collection).Doc(fmt.Sprintf("flow-%02d", i)), map[string]any{
			"clientId": "c", "clientSecret": "", "redirectUri": "", "accessToken": "", "refreshToken": ""}); err != nil {
			t.Fatal(err)
		}
	}
	bw.End()
	w.seed("other", 5*time.Hour, 30*24*time.Hour, nil)
	c := w.client()
	c.signIn()
	resp, body := c.send(http.MethodGet, "/admin/?q=flow&sort=-name", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("overview sorted: %d", resp.StatusCode)
	}
	first := func(body string) string {
		i := strings.Index(body, `<tr data-name="`)
		if i < 0 {
			return ""
		}
		rest := body[i+len(`<tr data-name="`):]
		return rest[:strings.IndexByte(rest, '"')]
	}
	if got := first(body); got != "flow-59" {
		t.Errorf("first row sorted Z to A: %q, want flow-59", got)
	}
	next := `href="/admin/?page=2&amp;q=flow&amp;sort=-name" rel="next"`
	if !strings.Contains(body, next) {
		t.Errorf("the next page link does not keep the filter and the order; want %s", next)
	}
	_, body = c.send(http.MethodGet, "/admin/?page=2&q=flow&sort=-name", nil, nil)
	if got := first(body); got != "flow-09" {
		t.Errorf("page 2 starts with %q, want flow-09", got)
	}
	if !strings.Contains(body, `href="/admin/?q=flow&amp;sort=name"`) {
		t.Error("the Name header on page 2 does not turn the order round, keeping the filter (and starting at page 1)")
	}
}

// TestConsoleScopesAndClientAdvice: the Scopes field shows an example as
// a hint, not as a value; the console refuses a new token without scopes
// while PUT /admin/tokens/N still accepts one; Webex's refusal of a
// client reads as advice in the console, the status agrees, and the log
// keeps the error itself.
func TestConsoleScopesAndClientAdvice(t *testing.T) {
	t.Parallel()
	w := newConsoleWorld(t, nil)
	w.seed("crm-feed", 10*time.Hour, 60*24*time.Hour, map[string]any{"scopes": []any{"spark:kms"}})
	b := newBrowser(t, "")
	w.signIn(b)

	b.open(w.base + "/admin/new")
	if b.has("#scopes[placeholder]") {
		t.Error("the Scopes field has a placeholder that looks like a value")
	}
	if !b.has("#scopes[required]") {
		t.Error("the New token form's Scopes field is not required")
	}
	if got := b.text("#scopes-hint"); !strings.Contains(got, "For example: spark:kms cjp:config_read") {
		t.Errorf("the Scopes hint reads %q", got)
	}
	// Without the browser's check, the console itself refuses.
	c := w.client()
	c.signIn()
	resp, body := c.send(http.MethodPost, "/admin/new", url.Values{"csrf": {c.csrf()}, "name": {"no-scopes"}, "clientId": {"c"},
		"clientSecret": {"s-" + randomHex(8)}, "redirectUri": {w.base + "/callback"}}, map[string]string{"Origin": "same"})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Scopes: type the scopes the integration has") {
		t.Errorf("a new token without scopes: %d, the page does not say why", resp.StatusCode)
	}
	if _, err := w.Firestore.Collection(w.Collection).Doc("no-scopes").Get(context.Background()); err == nil {
		t.Error("a token without scopes was created")
	}
	if r := do(t, http.MethodPut, w.base+"/admin/tokens/api-made", `{"clientId":"c","clientSecret":"s-`+randomHex(8)+`","redirectUri":"https://x.example.com/cb"}`,
		map[string]string{"x-admin-passphrase": adminPass}); r.code != http.StatusOK {
		t.Errorf("PUT without scopes: %d %s, want 200 as before", r.code, r.raw)
	}

	// Webex refuses the client: the secret changed there.
	w.Webex.AddClient(docString(w, "crm-feed", "clientId"), "changed-at-webex-"+randomHex(6))
	b.open(w.base + "/admin/token/crm-feed")
	b.submit("#refresh")
	const refused = "Webex refused this client ID and secret: copy the secret again from developer.webex.com and save it in the client config"
	if got := b.text("#flash"); !strings.HasPrefix(got, "Refresh failed: "+refused) {
		t.Errorf("Refresh now refused by Webex: %q", got)
	}
	if got := b.text("#token-status"); got != "Config error" {
		t.Errorf("status %q, want Config error", got)
	}
	for _, sel := range []string{"#advice", "#last-error"} {
		if got := b.text(sel); !strings.Contains(got, refused) {
			t.Errorf("%s reads %q, which does not agree with the message", sel, got)
		}
	}
	// The activity record below keeps Webex's words (it is the record);
	// the message and the status box give advice.
	for _, sel := range []string{"#flash", "#live-token"} {
		if strings.Contains(b.text(sel), "invalid_client") {
			t.Errorf("%s shows Webex's error code instead of advice", sel)
		}
	}
	if !strings.Contains(w.Logs.String(), "invalid_client") {
		t.Error("the log does not keep Webex's error")
	}
	b.open(w.base + "/admin/")
	if got := b.text(`tr[data-name="crm-feed"] td.lasterror`); !strings.Contains(got, refused) {
		t.Errorf("the overview's last error reads %q", got)
	}
	b.takeProblems("status of 503")
}
