package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/testkit"
)

// TestRunServesAndStops starts the real binary's run on port 0: it wires
// Firestore, Pub/Sub and Webex from the environment, serves, exposes
// metrics, and returns soon after its context ends (SIGTERM).
func TestRunServesAndStops(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"PORT": "0"})
	at, _ := h.seed("e2e", 6*time.Hour, 30*24*time.Hour, nil)
	running := testkit.StartRun(t, func(ctx context.Context, ready chan<- string) error {
		return run(ctx, h.Getenv, h.Logs, ready)
	})
	base := running.Base
	r := get(t, base+"/?name=e2e", map[string]string{"x-token-passphrase": h.Env["TOKEN_PASSPHRASE"]})
	if r.code != 200 || r.str("token") != at {
		t.Fatalf("got %d %s", r.code, r.raw)
	}
	if r := get(t, base+"/readyz", nil); r.code != 200 {
		t.Fatalf("readyz: %d", r.code)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`http_requests_total{code="200",route="/"}`, `token_cache_lookups_total{result="miss"}`, "events_published_total"} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("metrics lack %s", m)
		}
	}
	// The worker's families are the worker's: an api exporting all-zero
	// sweep metrics or partial expiry gauges misleads the alert rules.
	for _, m := range []string{"sweeps_total", "sweep_duration_seconds", "token_access_expiry_seconds", "events_outbox_depth", "events_topic_missing"} {
		if strings.Contains(string(metrics), m) {
			t.Errorf("the api exports the worker's %s", m)
		}
	}
	running.Stop(t)
}

func TestRunRefusesIncompleteConfig(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), func(k string) string {
		if k == "GOOGLE_CLOUD_PROJECT" {
			return "p"
		}
		return ""
	}, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "TOKEN_PASSPHRASE") {
		t.Fatalf("got %v, want an error naming TOKEN_PASSPHRASE", err)
	}
}
