package notify_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/firestore"
	"github.com/wxcc/tokenservice/shared/notify"
	"github.com/wxcc/tokenservice/shared/pubsub"
	"github.com/wxcc/tokenservice/shared/testing/emulator"
	"github.com/wxcc/tokenservice/shared/testing/testkit"
	"github.com/wxcc/tokenservice/shared/testing/webexfake"
	"github.com/wxcc/tokenservice/shared/token"
	"github.com/wxcc/tokenservice/shared/webex"
)

func TestMain(m *testing.M) { os.Exit(emulator.Main(m, emulator.Firestore, emulator.PubSub)) }

const (
	botToken   = "bot-ZmFrZS1ib3QtdG9rZW4tbm90LWEtcmVhbC1vbmU"
	roomID     = "Y2lzY29zcGFyazovL3VzL1JPT00vb3Bz"
	consoleURL = "https://console.example.test"
	// hookSecret is a Standard Webhooks secret: whsec_ and base64 of 24
	// random bytes.
	hookSecret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
)

// secrets of the seeded tokens: never in a message.
const (
	clientSecret = "cs-VERY-SECRET-client-secret-value-0001"
	accessToken  = "at-VERY-SECRET-access-token-value-0001"
	refreshToken = "rt-VERY-SECRET-refresh-token-value-0001"
)

// world is one notifier over its own collections, the fake Webex, a
// webhook receiver, an activity recorder and a test clock.
type world struct {
	t      *testing.T
	clock  *testkit.Clock
	tokens *firestore.Store
	webex  *webexfake.Server
	hook   *hook
	rec    *recorder
	logs   *bytes.Buffer
	n      *notify.Notifier
	msgSeq atomic.Int64
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, clock: &testkit.Clock{}, rec: &recorder{}, logs: &bytes.Buffer{}}
	w.webex = webexfake.Start(t)
	w.webex.AddBot(botToken, roomID)
	w.hook = newHook(t)
	client := emulator.FirestoreClient(t)
	w.tokens = firestore.New(client, emulator.Collection(t), firestore.WithMetaCollection(emulator.Collection(t)+"_meta"))
	wx, err := webex.New(webex.Options{TokenURL: w.webex.TokenURL, AuthorizeURL: w.webex.AuthorizeURL, APIURL: w.webex.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w.n, err = notify.New(notify.Config{
		WebexBotToken: botToken, WebexRoomID: roomID, Webex: wx,
		WebhookURL: w.hook.srv.URL + "/hooks/tokenservice", WebhookSecret: hookSecret,
		ConsoleURL: consoleURL, Reminder: 24 * time.Hour, GiveUp: 24 * time.Hour, WebexTimeout: 5 * time.Second,
		Conditions: w.tokens, Tokens: w.tokens, Sweeps: w.tokens,
		Activity: w.rec, Instance: "worker-test",
		Logger: slog.New(slog.NewJSONHandler(w.logs, nil)),
		Now:    w.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// seed stores a token that needs re-authorization, authorized by Jane.
func (w *world) seed(name string) *token.Token {
	w.t.Helper()
	now := w.clock.Now()
	t := &token.Token{
		Name: name, ClientID: "client-1", ClientSecret: clientSecret, RedirectURI: "https://api.example.test/callback",
		AccessToken: accessToken, RefreshToken: refreshToken,
		AccessExpires: now.Add(90 * time.Minute).Truncate(time.Millisecond), RefreshExpires: now.Add(-time.Hour).Truncate(time.Millisecond),
		LastRefresh: now.Add(-10 * time.Hour).Truncate(time.Millisecond), Generation: 3, Status: token.StatusReauthRequired,
		LastError:    &token.LastError{At: now, Message: "refresh token expired", Permanent: true},
		AuthorizedBy: &token.Person{ID: "person-1", DisplayName: "Jane Doe", Email: "jane_doe@example.com", OrgID: "org-1"},
	}
	if ok, err := w.tokens.Create(ctxT(w.t), t); err != nil || !ok {
		w.t.Fatalf("seed %s: %v, %v", name, ok, err)
	}
	got, err := w.tokens.Get(ctxT(w.t), name)
	if err != nil {
		w.t.Fatal(err)
	}
	return got
}

// change applies fn to the stored token (no event written).
func (w *world) change(name string, fn func(t *token.Token)) *token.Token {
	w.t.Helper()
	t, err := w.tokens.Update(ctxT(w.t), name, func(t *token.Token) ([]token.Event, error) {
		fn(t)
		return nil, nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return t
}

// reauthorize stores a new grant (generation+1, active) and returns the
// token.rotated event it makes.
func (w *world) reauthorize(name string) token.Event {
	w.t.Helper()
	now := w.clock.Now()
	t := w.change(name, func(t *token.Token) {
		t.Generation++
		t.Status = token.StatusActive
		t.AccessToken, t.RefreshToken = "at-NEW-SECRET-access-token-value-0002", "rt-NEW-SECRET-refresh-token-value-0002"
		t.AccessExpires = now.Add(12 * time.Hour).Truncate(time.Millisecond)
		t.RefreshExpires = now.Add(60 * 24 * time.Hour).Truncate(time.Millisecond)
		t.LastError = nil
	})
	return token.NewEvent(token.EventRotated, t, token.TriggerAuthorization, now)
}

// event is what the service publishes about t now.
func (w *world) event(typ token.EventType, t *token.Token, message string) token.Event {
	e := token.NewEvent(typ, t, token.TriggerScheduled, w.clock.Now())
	e.Message = message
	return e
}

// envelope wraps e as Pub/Sub pushes it: the message the relay publishes
// (pubsub.NewMessage), base64 data, a fresh message ID.
func (w *world) envelope(e token.Event) []byte {
	m := pubsub.NewMessage(e, pubsub.Source("test-project", "tokens"))
	id := strconv.FormatInt(1_000_000+w.msgSeq.Add(1), 10)
	return testkit.PushEnvelope(m, id, w.clock.Now(), "projects/test-project/subscriptions/token-events-notify")
}

// push hands e to the notifier as one push request and returns the status.
func (w *world) push(e token.Event) int {
	w.t.Helper()
	return w.pushBody(w.envelope(e))
}

func (w *world) pushBody(body []byte) int {
	w.t.Helper()
	status, err := w.n.HandlePush(ctxT(w.t), body)
	if (status == http.StatusOK) != (err == nil) {
		w.t.Errorf("HandlePush = %d, %v: an error goes with every status but 200", status, err)
	}
	return status
}

func (w *world) mustPush(e token.Event, want int) {
	w.t.Helper()
	if got := w.push(e); got != want {
		w.t.Fatalf("push %s: status %d, want %d", e.ID, got, want)
	}
}

func (w *world) remind() {
	w.t.Helper()
	if err := w.n.Remind(ctxT(w.t)); err != nil {
		w.t.Fatalf("Remind: %v", err)
	}
}

// expect checks how many messages each channel has received in all.
func (w *world) expect(webexN, hookN int) {
	w.t.Helper()
	if got := len(w.webex.Messages()); got != webexN {
		w.t.Errorf("webex messages: got %d, want %d", got, webexN)
	}
	if got := len(w.hook.delivered()); got != hookN {
		w.t.Errorf("webhook deliveries: got %d, want %d", got, hookN)
	}
}

func (w *world) lastWebex() webexfake.Message {
	w.t.Helper()
	ms := w.webex.Messages()
	if len(ms) == 0 {
		w.t.Fatal("no webex message")
	}
	return ms[len(ms)-1]
}

// noSecrets fails if a secret of a seeded token, the bot's token or the
// webhook secret shows in anything sent or logged.
func (w *world) noSecrets() {
	w.t.Helper()
	var sent []string
	for _, m := range w.webex.Messages() {
		sent = append(sent, m.Markdown, m.Text)
	}
	for _, r := range w.hook.all() {
		sent = append(sent, string(r.body))
	}
	sent = append(sent, w.logs.String())
	for _, e := range w.rec.all() {
		sent = append(sent, e.Detail)
	}
	all := strings.Join(sent, "\n")
	for _, s := range []string{clientSecret, accessToken, refreshToken, "NEW-SECRET", botToken, strings.TrimPrefix(hookSecret, "whsec_")} {
		if strings.Contains(all, s) {
			w.t.Errorf("a secret (%.12s…) was sent or logged", s)
		}
	}
}

// hook is a webhook receiver that records every request and answers
// failStatus (0: 204) on command.
type hook struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []hookRequest
	fail int
}

type hookRequest struct {
	header http.Header
	body   []byte
	status int
}

func newHook(t *testing.T) *hook {
	h := &hook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		status := http.StatusNoContent
		if h.fail != 0 {
			status = h.fail
		}
		h.reqs = append(h.reqs, hookRequest{header: r.Header.Clone(), body: body, status: status})
		h.mu.Unlock()
		rw.WriteHeader(status)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) failWith(status int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fail = status
}

func (h *hook) all() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookRequest(nil), h.reqs...)
}

// delivered are the requests answered 2xx.
func (h *hook) delivered() []hookRequest {
	var out []hookRequest
	for _, r := range h.all() {
		if r.status/100 == 2 {
			out = append(out, r)
		}
	}
	return out
}

// verifyStandardWebhook checks a request as a Standard Webhooks receiver
// does, written here from the specification rather than taken from the
// sender: the key is the base64 after whsec_; the signature header lists
// "v1,<base64 HMAC-SHA256 of id.timestamp.body>" entries, space
// separated; the timestamp is within five minutes of now.
func verifyStandardWebhook(secret string, r hookRequest, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	id, ts, sigs := r.header.Get("webhook-id"), r.header.Get("webhook-timestamp"), r.header.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return fmt.Errorf("missing headers: id %q, timestamp %q, signature %q", id, ts, sigs)
	}
	if strings.Contains(id, ".") {
		return fmt.Errorf("webhook-id %q holds a full stop", id)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q: %w", ts, err)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("webhook-timestamp %s is %s from now", ts, d)
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, r.body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		version, sig, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("no v1 signature in %q verifies", sigs)
}

// recorder is an in-memory activity.Recorder.
type recorder struct {
	mu      sync.Mutex
	entries []activity.Entry
}

func (r *recorder) Record(_ context.Context, e activity.Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, e)
}

func (r *recorder) all() []activity.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]activity.Entry(nil), r.entries...)
}

func (r *recorder) count(a activity.Action) int {
	n := 0
	for _, e := range r.all() {
		if e.Action == a {
			n++
		}
	}
	return n
}
