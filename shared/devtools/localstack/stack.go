package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/cloudrun"
)

// stackInfo is what a running stack took: what the banner and
// bin/localstack.env tell.
type stackInfo struct {
	bind                      string
	apiURL, workerURL         string
	webexURL, issuerURL       string
	fsHost, psHost            string
	apiMetrics, workerMetrics string
}

// envVar is one line of bin/localstack.env.
type envVar struct{ name, value, comment string }

// vars are the variables of bin/localstack.env, with a fresh Scheduler
// token from iss.
func (s stackInfo) vars(iss *cloudrun.Issuer) []envVar {
	tok, err := iss.Mint(s.workerURL, schedulerSA)
	if err != nil {
		tok = ""
	}
	return []envVar{
		{"API_URL", s.apiURL, "the api (tokens, /admin/ console)"},
		{"WORKER_URL", s.workerURL, "the worker's Cloud Run service: the local front end (IAM), the worker's only way in"},
		{"WEBEX_URL", s.webexURL, "the fake Webex (token, authorize, people/me, applications)"},
		{"TOKEN_PASSPHRASE", tokenPassphrase, "demo value"},
		{"ADMIN_PASSPHRASE", adminPassphrase, "demo value"},
		{"DEMO_TOKEN", demoName, "the demo token's name"},
		{"DEMO_MANAGER", managerName, "the demo Service App's manager integration"},
		{"DEMO_SERVICE_APP", serviceAppName, "the demo Service App"},
		{"WEBEX_CLIENT_ID", demoClientID, "the fake Webex integration, to onboard another token"},
		{"WEBEX_CLIENT_SECRET", demoClientSecret, ""},
		{"SCHEDULER_SERVICE_ACCOUNT", schedulerSA, "the worker's only invoker"},
		{"SCHEDULER_TOKEN", tok, "an ID token as Cloud Scheduler sends (aud WORKER_URL), valid 1h, renewed in this file every 30 min"},
		{"ID_TOKEN_ISSUER_URL", s.issuerURL, "the fake Google issuer: JWKS at /oauth2/v3/certs"},
		{"API_METRICS_URL", s.apiMetrics, ""},
		{"WORKER_METRICS_URL", s.workerMetrics, ""},
		{"GOOGLE_CLOUD_PROJECT", project, "for tools that talk to the emulators"},
		{"FIRESTORE_EMULATOR_HOST", s.fsHost, ""},
		{"PUBSUB_EMULATOR_HOST", s.psHost, ""},
		{"TOKENS_COLLECTION", collection, ""},
		{"EVENTS_TOPIC", topicID, ""},
		{"EVENTS_SUBSCRIPTION", subscriptionID, "an ordered subscription localstack prints as [events]"},
		{"LOCALSTACK_PID", strconv.Itoa(os.Getpid()), "the stack this file describes"},
	}
}

// writeEnvFile writes vars to path as `export NAME='value'` lines,
// readable by the owner only (it holds a bearer token), replacing the
// file at once.
func writeEnvFile(path string, vars []envVar) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# The running local stack (make run), written %s. Source it: . %s\n", time.Now().Format(time.RFC3339), path)
	fmt.Fprintf(&b, "# It is removed when that stack stops.\n")
	for _, v := range vars {
		if v.comment != "" {
			fmt.Fprintf(&b, "# %s: %s\n", v.name, v.comment)
		}
		fmt.Fprintf(&b, "export %s=%s\n", v.name, shellQuote(v.value))
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".localstack-env-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.WriteString(tmp, b.String()); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// shellQuote quotes s for sh: in single quotes, each single quote in s
// closing the quoted part, escaped, and opening the next.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// refreshEnvFile writes the file again every 30 minutes, so that its
// SCHEDULER_TOKEN (valid for an hour) stays usable.
func refreshEnvFile(ctx context.Context, path string, s stackInfo, iss *cloudrun.Issuer, con *console) {
	t := time.NewTicker(30 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := writeEnvFile(path, s.vars(iss)); err != nil {
				con.say("warning: %v", err)
			}
		}
	}
}

// removeEnvFile removes path if it still describes this stack (another
// stack started from the same directory may have written it since).
func removeEnvFile(path string, con *console) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	if !strings.Contains(string(b), "export LOCALSTACK_PID="+shellQuote(strconv.Itoa(os.Getpid()))+"\n") {
		return
	}
	if os.Remove(path) == nil {
		con.say("removed %s", path)
	}
}

// schedule is the local Cloud Scheduler job: POST /run through the front
// end now and every scheduleEvery, each time with a fresh ID token for the
// worker's URL from schedulerSA, as Cloud Scheduler's HTTP target with an
// OIDC token does.
func schedule(ctx context.Context, iss *cloudrun.Issuer, workerURL string, con *console) {
	client := &http.Client{Timeout: 3 * time.Minute}
	t := time.NewTicker(scheduleEvery)
	defer t.Stop()
	for {
		trigger(ctx, client, iss, workerURL, con)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// trigger sends one scheduled POST /run and prints what came back.
func trigger(ctx context.Context, client *http.Client, iss *cloudrun.Issuer, workerURL string, con *console) {
	tok, err := iss.Mint(workerURL, schedulerSA)
	if err != nil {
		con.line("[scheduler]", fmt.Sprintf("cannot mint a token: %v", err))
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, workerURL+"/run", nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("User-Agent", "Google-Cloud-Scheduler")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			con.line("[scheduler]", fmt.Sprintf("POST %s/run: %v", workerURL, err))
		}
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var sum map[string]any
	summary := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &sum) == nil {
		var parts []string
		for _, k := range []string{"scanned", "due", "refreshed", "skipped", "failed", "halted", "error"} {
			if v, ok := sum[k]; ok {
				parts = append(parts, fmt.Sprintf("%s=%v", k, v))
			}
		}
		summary = strings.Join(parts, " ")
	}
	con.line("[scheduler]", fmt.Sprintf("POST /run with %s's ID token via the front end: %s %s", schedulerSA, resp.Status, summary))
}

// printTryThis is the banner once everything answers.
func printTryThis(con *console, s stackInfo) {
	bindNote := "everything listens on 127.0.0.1 only; " + bindVar + "=0.0.0.0 make run opens the api and the front end to your network (the passphrases below are public demo values)"
	if s.bind != "127.0.0.1" {
		bindNote = fmt.Sprintf("the api and the front end listen on %s (%s): anyone who can reach it can use the public demo passphrases below", s.bind, bindVar)
	}
	con.say(`ready: api at %[1]s, worker at %[2]s (the local Cloud Run front end; the worker itself listens on loopback behind it)
  %[3]s
  Addresses, passphrases and a Scheduler-style token are in %[4]s:  . %[4]s
  TOKEN_PASSPHRASE=%[5]s  ADMIN_PASSPHRASE=%[6]s  (demo values)
Admin console: %[1]s/admin/  Sign in with Webex: the fake Webex offers olivia.ops@example.com (operator),
  victor@viewers.example.com (viewer), and mallory@elsewhere.example.net (refused); or the ADMIN_PASSPHRASE above.
  To onboard a second token there: New token, any name (say queue-stats), and the
  fake Webex integration's client config:
    Client ID      %[7]s
    Client secret  %[8]s
    Redirect URI   %[1]s/callback
    Scopes         spark:kms cjp:config_read
  then Authorize with Webex and Approve on the fake Webex page (%[9]s).
The worker's sweeps come from a local Cloud Scheduler job ([scheduler] lines, every %[10]s):
  POST $WORKER_URL/run with an ID token for %[11]s, through the front end ([front] lines),
  which checks it as Cloud Run IAM does and passes it on with its signature removed.
Try:
  . %[4]s
  curl -s -H "x-token-passphrase: $TOKEN_PASSPHRASE" "$API_URL/?name=$DEMO_TOKEN"
  curl -s -H "x-token-passphrase: $TOKEN_PASSPHRASE" "$API_URL/?name=$DEMO_SERVICE_APP"   # the Service App, with its orgId
  curl -s -X POST -H "Authorization: Bearer $SCHEDULER_TOKEN" "$WORKER_URL/run"   # a sweep, as the Scheduler
  curl -s -X POST "$WORKER_URL/run"                                              # refused by the front end (403)
  curl -s "$API_METRICS_URL" | grep token_
  curl -s -H "x-admin-passphrase: $ADMIN_PASSPHRASE" "$API_URL/admin/tokens"
  curl -s -H "x-admin-passphrase: $ADMIN_PASSPHRASE" "$API_URL/admin/status"
Firestore data is kept in %[12]s between runs (exported every minute and at stop); rm -rf .localstack starts afresh.
Events on %[13]s arrive below as [events] lines (subscription %[14]s); the worker's POST /notify gets them
  through the front end as a Pub/Sub push would, and tells the Webex space ([webex space] lines) when a person must act.
Ctrl-C stops everything.`,
		s.apiURL, s.workerURL, bindNote, envFile, tokenPassphrase, adminPassphrase,
		demoClientID, demoClientSecret, s.webexURL, scheduleEvery, schedulerSA, dataDir, topicID, subscriptionID)
}
