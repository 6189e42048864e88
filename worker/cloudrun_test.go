package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/pubsub"
	"github.com/wxcc/tokenservice/shared/testing/cloudrun"
	"github.com/wxcc/tokenservice/shared/testing/testkit"
	"github.com/wxcc/tokenservice/shared/token"
)

// Cloud Scheduler → Cloud Run IAM → worker, as deployed: the real worker
// (run, port 0, the emulators) behind the local imitation of Cloud Run's
// front end (shared/testing/cloudrun), which checks the ID token, removes
// its signature and forwards. This is the path that answered 401 to every
// Scheduler call while the worker verified signatures itself.

const pushSA = "pusher@proj.iam.gserviceaccount.com" // an invoker too, but not the scheduler

// frontedWorker is a worker started by run behind a front end.
type frontedWorker struct {
	h       *harness
	front   *cloudrun.Front
	direct  string // the worker itself, bypassing the front end (ingress would forbid it)
	running *testkit.Running
}

// startFronted starts the worker with env behind a front end whose IAM
// policy makes schedulerSA and pushSA invokers. RUN_OIDC_AUDIENCE is the
// front end's URL, as the deployment sets it.
func startFronted(t *testing.T, iss *cloudrun.Issuer, env map[string]string) *frontedWorker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, env)
	h.Env["PORT"] = "0"
	h.Env["RUN_OIDC_AUDIENCE"] = cloudrun.URLOf(ln)
	h.Env["RUN_OIDC_SERVICE_ACCOUNT"] = schedulerSA
	h.Env["TRUSTED_PROXY_HOPS"] = "1"
	running := testkit.StartRun(t, func(ctx context.Context, ready chan<- string) error {
		return run(ctx, nil, h.Getenv, h.Logs, h.Logs, ready)
	})
	t.Cleanup(func() { running.Stop(t) })
	f, err := cloudrun.Serve(ln, iss, cloudrun.Service{
		Upstream: running.Base, Invokers: []string{schedulerSA, pushSA},
		Log: slog.New(slog.NewJSONHandler(h.Logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &frontedWorker{h: h, front: f, direct: running.Base, running: running}
}

// mintFor returns a token for aud from email, registering its parts as
// values the logs must never show.
func (w *frontedWorker) mintFor(t *testing.T, iss *cloudrun.Issuer, aud, email string) string {
	t.Helper()
	tok, err := iss.Mint(aud, email)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Split(tok, ".") {
		w.h.Secret(p)
	}
	return tok
}

// stripped is tok as Cloud Run's front end passes it on.
func stripped(tok string) string {
	return tok[:strings.LastIndexByte(tok, '.')+1] + cloudrun.RemovedSignature
}

// post sends POST /run to base with the bearer token (none if empty),
// the canary due, and returns the status, the body, and the Webex calls
// it caused.
func (w *frontedWorker) post(t *testing.T, base, token string) (int, string, int) {
	t.Helper()
	w.h.seed(canaryTokenName, time.Hour, 30*24*time.Hour)
	before := w.h.Webex.Stats().Refreshes
	var header map[string]string
	if token != "" {
		header = map[string]string{"Authorization": "Bearer " + token}
	}
	resp := testkit.Do(t, http.MethodPost, base+"/run", "", header)
	if d := w.h.Doc(canaryTokenName); d["generation"] == int64(1) {
		w.h.Secret(d["accessToken"].(string), d["refreshToken"].(string))
	}
	return resp.Code, string(resp.Body), w.h.Webex.Stats().Refreshes - before
}

func TestSchedulerThroughCloudRunFront(t *testing.T) {
	t.Parallel()
	iss, err := cloudrun.NewIssuer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iss.Close() })
	w := startFronted(t, iss, map[string]string{"RUN_BEHIND_CLOUD_RUN_IAM": "true"})
	aud := w.front.URL

	// Cloud Scheduler's call: admitted by IAM, accepted on its claims.
	code, body, calls := w.post(t, w.front.URL, w.mintFor(t, iss, aud, schedulerSA))
	var sum map[string]any
	if err := json.Unmarshal([]byte(body), &sum); code != http.StatusOK || err != nil {
		t.Fatalf("Scheduler through the front end: got %d %s, want 200 with the summary", code, body)
	}
	if sum["scanned"] != 1.0 || sum["refreshed"] != 1.0 || sum["failed"] != 0.0 || calls != 1 {
		t.Fatalf("got summary %v and %d Webex calls, want the canary refreshed once", sum, calls)
	}

	// Refused by the front end: the worker is never reached.
	for _, tc := range []struct {
		name  string
		token string
		want  int
		page  string
	}{
		{"no token", "", http.StatusForbidden, "Error: Forbidden"},
		{"an account that is not an invoker", w.mintFor(t, iss, aud, "someone@proj.iam.gserviceaccount.com"), http.StatusForbidden, "Error: Forbidden"},
		{"the scheduler's token for another service", w.mintFor(t, iss, "https://other-abc123-ew.a.run.app", schedulerSA), http.StatusUnauthorized, "Error: Unauthorized"},
	} {
		before := w.front.Forwarded()
		code, body, calls := w.post(t, w.front.URL, tc.token)
		if code != tc.want || !strings.Contains(body, tc.page) {
			t.Errorf("%s: got %d %q, want the front end's %d", tc.name, code, body, tc.want)
		}
		if w.front.Forwarded() != before || calls != 0 {
			t.Errorf("%s: the worker was reached (%d Webex calls)", tc.name, calls)
		}
	}

	// Admitted by IAM (another invoker), refused by the worker's claims check.
	before := w.front.Forwarded()
	if code, body, calls := w.post(t, w.front.URL, w.mintFor(t, iss, aud, pushSA)); code != http.StatusUnauthorized || !strings.Contains(body, `"status":"401"`) || calls != 0 {
		t.Errorf("another invoker's token: got %d %s (%d Webex calls), want the worker's 401", code, body, calls)
	}
	if w.front.Forwarded() != before+1 {
		t.Errorf("another invoker's token did not reach the worker")
	}

	// Reached directly (what ingress prevents in production), the worker
	// still checks every claim of a token without signature.
	now := time.Now()
	expired := iss.IDClaims(aud, schedulerSA)
	expired.IssuedAt, expired.Expires = now.Add(-2*time.Hour).Unix(), now.Add(-time.Minute).Unix()
	expiredTok, err := iss.Sign(expired)
	if err != nil {
		t.Fatal(err)
	}
	w.h.Secret(strings.Split(expiredTok, ".")[1])
	for _, tc := range []struct{ name, token string }{
		{"wrong audience", stripped(w.mintFor(t, iss, "https://other-abc123-ew.a.run.app", schedulerSA))},
		{"audience with a path", stripped(w.mintFor(t, iss, aud+"/run", schedulerSA))},
		{"another account", stripped(w.mintFor(t, iss, aud, "someone@proj.iam.gserviceaccount.com"))},
		{"expired", stripped(expiredTok)},
	} {
		if code, body, calls := w.post(t, w.direct, tc.token); code != http.StatusUnauthorized || calls != 0 {
			t.Errorf("direct, %s: got %d %s (%d Webex calls), want 401", tc.name, code, body, calls)
		}
	}
	if code, _, _ := w.post(t, w.direct, stripped(w.mintFor(t, iss, aud, schedulerSA))); code != http.StatusOK {
		t.Errorf("direct, right claims: got %d, want 200 (ingress, not the worker, keeps others out)", code)
	}
}

// TestSchedulerThroughCloudRunFrontWithoutIAMFlag is the blocker as it
// was: with RUN_BEHIND_CLOUD_RUN_IAM=false the worker refuses what Cloud
// Run IAM admitted, because the signature is gone.
func TestSchedulerThroughCloudRunFrontWithoutIAMFlag(t *testing.T) {
	t.Parallel()
	iss, err := cloudrun.NewIssuer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iss.Close() })
	w := startFronted(t, iss, map[string]string{"RUN_BEHIND_CLOUD_RUN_IAM": "false"})
	tok := w.mintFor(t, iss, w.front.URL, schedulerSA)
	for _, base := range []string{w.front.URL, w.direct} {
		tk := tok
		if base == w.direct {
			tk = stripped(tok)
		}
		if code, body, calls := w.post(t, base, tk); code != http.StatusUnauthorized || calls != 0 {
			t.Errorf("%s: got %d %s (%d Webex calls), want the worker's 401", base, code, body, calls)
		}
	}
	if w.front.Forwarded() != 1 {
		t.Errorf("the front end forwarded %d requests, want 1 (IAM admits the Scheduler)", w.front.Forwarded())
	}
}

// TestNotifyThroughCloudRunFront: Pub/Sub's push of the service's own
// event reaches POST /notify through Cloud Run's IAM check with the push
// subscription's OIDC token, as deployed, and becomes one message in the
// Webex space; a duplicate delivery sends nothing twice; without a token
// the front end refuses it and nothing is sent.
func TestNotifyThroughCloudRunFront(t *testing.T) {
	t.Parallel()
	iss, err := cloudrun.NewIssuer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iss.Close() })
	const bot, room = "bot-token-for-the-test-space-0123456789", "room-ops"
	w := startFronted(t, iss, map[string]string{"RUN_BEHIND_CLOUD_RUN_IAM": "true",
		"NOTIFY_WEBEX_BOT_TOKEN": bot, "NOTIFY_WEBEX_ROOM_ID": room, "CONSOLE_URL": "https://console.example.com"})
	w.h.Secret(bot)
	w.h.Webex.AddBot(bot, room)
	w.h.seed("ivr-reports", 30*time.Minute, 30*24*time.Hour)
	if _, err := w.h.Firestore.Collection(w.h.Collection).Doc("ivr-reports").Set(context.Background(),
		map[string]any{"status": "reauth_required", "generation": 3}, gfs.MergeAll); err != nil {
		t.Fatal(err)
	}
	e := token.NewEvent(token.EventReauthorizationRequired, &token.Token{Name: "ivr-reports", Generation: 3}, token.TriggerScheduled, time.Now())
	e.Message = "webex refresh: HTTP 400 invalid_grant"
	body := string(testkit.PushEnvelope(pubsub.NewMessage(e, pubsub.Source("p", "tokens")), "4211", time.Now(),
		"projects/p/subscriptions/token-events-notify"))
	push := func(tok string) int {
		t.Helper()
		header := map[string]string{"Content-Type": "application/json"}
		if tok != "" {
			header["Authorization"] = "Bearer " + tok
		}
		return testkit.Do(t, http.MethodPost, w.front.URL+"/notify", body, header).Code
	}
	if code := push(""); code != http.StatusForbidden || len(w.h.Webex.Messages()) != 0 {
		t.Fatalf("push without a token: got %d and %d messages, want the front end's 403 and none", code, len(w.h.Webex.Messages()))
	}
	tok := w.mintFor(t, iss, w.front.URL, schedulerSA)
	for range 2 { // Pub/Sub delivers at least once
		if code := push(tok); code != http.StatusOK {
			t.Fatalf("push with the subscription's token: got %d, want 200", code)
		}
	}
	msgs := w.h.Webex.Messages()
	if len(msgs) != 1 || msgs[0].RoomID != room || !strings.Contains(msgs[0].Markdown, "ivr-reports") ||
		!strings.Contains(msgs[0].Markdown, "https://console.example.com/admin/token/ivr-reports") {
		t.Fatalf("got %d messages %+v, want one in %s about ivr-reports with its console link", len(msgs), msgs, room)
	}
}
