package main

import (
	"context"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/firestore"
	"github.com/wxcc/tokenservice/shared/testing/testkit"
	"github.com/wxcc/tokenservice/shared/token"
)

// consoleWorld is the real api (run, as main starts it) with the console
// on, over the emulators, a topic with an ordered subscription, and the
// fake Webex.
type consoleWorld struct {
	*harness
	base    string // http://127.0.0.1:port
	store   *firestore.Store
	events  *testkit.Receiver
	running *testkit.Running
}

func newConsoleWorld(t *testing.T, env map[string]string, prepare ...func(*harness)) *consoleWorld {
	t.Helper()
	h := newHarness(t, map[string]string{"ADMIN_PASSPHRASE": adminPass, "PORT": "0"})
	h.Secret(adminPass)
	maps.Copy(h.Env, env) // the harness has its own topic and subscription
	for _, p := range prepare {
		p(h)
	}
	w := &consoleWorld{harness: h, events: h.events,
		store: firestore.New(h.Firestore, h.Collection, firestore.WithMetaCollection(h.Env["META_COLLECTION"]),
			firestore.WithActivity(h.Env["ACTIVITY_COLLECTION"], time.Hour))}
	w.running = testkit.StartRun(t, func(ctx context.Context, ready chan<- string) error {
		return run(ctx, h.Getenv, h.Logs, ready)
	})
	t.Cleanup(func() { w.running.Stop(t) })
	w.base = w.running.Base
	return w
}

// raw writes a document as another writer would (merged into what is there).
func (w *consoleWorld) raw(name string, fields map[string]any) {
	w.T.Helper()
	if _, err := w.Firestore.Collection(w.Collection).Doc(name).Set(context.Background(), fields, gfs.MergeAll); err != nil {
		w.T.Fatal(err)
	}
}

// seedStates writes one token in each state the console tells apart and
// a last sweep; it returns the expected badge of each name.
func (w *consoleWorld) seedStates() map[string]string {
	w.T.Helper()
	now := time.Now()
	w.seed("billing-flow", 11*time.Hour, 60*24*time.Hour, map[string]any{"status": "active"})
	w.seed("queue-stats", 90*time.Minute, 60*24*time.Hour, nil)
	w.seed("ivr-lookup", 9*time.Hour, 3*24*time.Hour, map[string]any{"passphraseHash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"})
	w.seed("reporting", 40*time.Minute, 20*24*time.Hour, map[string]any{"status": "reauth_required",
		"lastError": map[string]any{"at": now.Add(-25 * time.Minute).UnixMilli(), "message": "webex refresh: HTTP 400 invalid_grant: \"The refresh token provided is expired, revoked, malformed, or invalid.\"", "permanent": true}})
	w.seed("crm-sync", 5*time.Hour, 50*24*time.Hour, map[string]any{"status": "config_error", "configFingerprint": "0123456789abcdef0123456789abcdef",
		"lastError": map[string]any{"at": now.Add(-2 * time.Hour).UnixMilli(), "message": "webex refresh: HTTP 401 invalid_client: \"The client authentication failed.\"", "permanent": true}})
	w.raw("wallboard", map[string]any{"clientId": "C-wallboard", "clientSecret": "wallboard-secret-" + randomHex(6), "redirectUri": "https://tokens.example.com/callback", "status": "pending"})
	w.Secret(w.Doc("wallboard")["clientSecret"].(string))
	w.seed("archive", 8*time.Hour, 40*24*time.Hour, map[string]any{"accessToken": "enc:v1:retired:" + strings.Repeat("A", 40), "status": "active"})
	if err := w.store.RecordSweep(context.Background(), token.SweepRecord{At: now.Add(-90 * time.Second), Instance: "worker-7d9f",
		Scanned: 7, Due: 2, Refreshed: 1, Failed: 1, Duration: 1400 * time.Millisecond}); err != nil {
		w.T.Fatal(err)
	}
	return map[string]string{
		"billing-flow": "Active", "queue-stats": "Refreshing soon", "ivr-lookup": "Refresh token expiring",
		"reporting": "Re-authorization required", "crm-sync": "Config error", "wallboard": "Pending authorization",
		"archive": "Secrets unreadable",
	}
}

// client is an HTTP client with a cookie jar that does not follow
// redirects, as a script would use the console.
type client struct {
	t    testing.TB
	base string
	hc   *http.Client
}

func (w *consoleWorld) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: w.T, base: w.base, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// send sends a request; form (if not nil) is the url-encoded body.
// headers "Origin: same" stands for this console's own origin.
func (c *client) send(method, path string, form url.Values, headers map[string]string) (*http.Response, string) {
	c.t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range headers {
		if k == "Origin" && v == "same" {
			v = c.base
		}
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, b.String()
}

// signIn signs in through the form, as a browser would.
func (c *client) signIn() {
	c.t.Helper()
	resp, body := c.send(http.MethodPost, "/admin/signin", url.Values{"passphrase": {adminPass}, "next": {"/admin/"}},
		map[string]string{"Origin": "same", "Sec-Fetch-Site": "same-origin"})
	if resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("sign in: got %d, want 303: %s", resp.StatusCode, body)
	}
}

// cookie is the value of the client's cookie name for the console.
func (c *client) cookie(name string) string {
	c.t.Helper()
	u, _ := url.Parse(c.base)
	for _, ck := range c.hc.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	c.t.Fatalf("no %s cookie", name)
	return ""
}

// csrf reads the CSRF token from a console page.
func (c *client) csrf() string {
	c.t.Helper()
	_, body := c.send(http.MethodGet, "/admin/", nil, nil)
	const marker = `name="csrf" value="`
	i := strings.Index(body, marker)
	if i < 0 {
		c.t.Fatalf("no CSRF token on the overview: %.300s", body)
	}
	rest := body[i+len(marker):]
	return rest[:strings.IndexByte(rest, '"')]
}

// waitEvent waits for a distinct event of type typ for name with trigger.
func waitEvent(t *testing.T, r *testkit.Receiver, name, typ, trigger string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, m := range testkit.Distinct(r.Messages()) {
			if m.Attributes["name"] == name && m.Attributes["ce-type"] == typ && strings.Contains(string(m.Data), `"trigger":"`+trigger+`"`) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event (trigger %s) for %s; got %s", typ, trigger, name, testkit.Describe(r.Messages()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
