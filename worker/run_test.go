package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/testkit"
)

// TestRunServesAndStops starts the real binary's run on port 0 and
// triggers a sweep over HTTP, then stops it as SIGTERM would.
func TestRunServesAndStops(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"PORT": "0"})
	h.seed("due", time.Hour, 30*24*time.Hour)
	running := testkit.StartRun(t, func(ctx context.Context, ready chan<- string) error {
		return run(ctx, nil, h.Getenv, h.Logs, h.Logs, ready)
	})
	base := running.Base
	resp, err := http.Post(base+"/run", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var sum map[string]any
	json.NewDecoder(resp.Body).Decode(&sum)
	resp.Body.Close()
	if resp.StatusCode != 200 || sum["refreshed"] != 1.0 || sum["scanned"] != 1.0 || sum["failed"] != 0.0 {
		t.Fatalf("POST /run: %d %v", resp.StatusCode, sum)
	}
	h.Secret(h.Doc("due")["accessToken"].(string))
	if msgs := h.events.WaitFor(t, 1, 500*time.Millisecond); msgs[0].Attributes["ce-type"] != "token.rotated" {
		t.Fatalf("got %s", testkit.Describe(msgs))
	}
	for _, path := range []string{"/healthz", "/metrics"} {
		resp, err := http.Get(base + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	body := scrape(t, base)
	for _, family := range []string{"sweeps_total", "events_outbox_depth", "events_published_total", "token_access_expiry_soonest_seconds"} {
		if !strings.Contains(body, family) {
			t.Errorf("worker /metrics lacks %s", family)
		}
	}
	// On the public port: no token names (they appear only on METRICS_ADDR).
	if strings.Contains(body, `name="due"`) {
		t.Error("the worker's public /metrics names a token")
	}
	if strings.Contains(body, "token_cache_lookups_total") {
		t.Error("worker /metrics exports the api's cache metrics")
	}
	running.Stop(t)
}

func TestOnceRunsOneSweep(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.seed("due", time.Hour, 30*24*time.Hour)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-once"}, h.Getenv, &out, h.Logs, nil); err != nil {
		t.Fatalf("-once: %v", err)
	}
	h.Secret(h.Doc("due")["accessToken"].(string))
	var sum Summary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil || sum.Refreshed != 1 {
		t.Fatalf("stdout %q: %v", out.String(), err)
	}
	// A token failing is not the sweep failing.
	s := h.seed("revoked", time.Hour, 30*24*time.Hour)
	h.Webex.RevokeRefreshToken(s.RefreshToken)
	if err := run(context.Background(), []string{"-once"}, h.Getenv, &out, h.Logs, nil); err != nil {
		t.Fatalf("-once with a failing token: %v, want success", err)
	}
	// A sweep that cannot query Firestore fails.
	h.Env["TOKENS_COLLECTION"] = "__bad__"
	if err := run(context.Background(), []string{"-once"}, h.Getenv, &out, h.Logs, nil); err == nil {
		t.Fatal("-once over an unusable collection succeeded")
	}
}

// TestSIGTERMReleasesLease runs the worker as its own process, lets it take
// a lease and wait on a slow Webex, and sends SIGTERM: it must exit 0
// within 10 s and leave the token free for the next sweep, with nothing
// recorded against it.
func TestSIGTERMReleasesLease(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"PORT": "0", "SWEEP_INTERVAL": "1h", "WEBEX_TIMEOUT": "20s"})
	h.seed("busy", time.Hour, 30*24*time.Hour)
	h.Webex.SetLatency(time.Minute)
	child := h.startChild()
	testkit.Eventually(t, 30*time.Second, "the worker takes the lease", func() bool {
		lease, _ := h.Doc("busy")["lease"].(map[string]any)
		return lease["holder"] != nil
	})
	start := time.Now()
	child.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("worker exited with %v, want 0", err)
		}
	case <-time.After(10 * time.Second):
		child.Process.Kill()
		t.Fatal("worker did not exit within 10s of SIGTERM")
	}
	t.Logf("exited %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	d := h.Doc("busy")
	if _, leased := d["lease"]; leased {
		t.Fatalf("lease left behind: %v\nworker log:\n%s", d["lease"], h.Logs.String())
	}
	if _, failed := d["lastError"]; failed {
		t.Fatalf("shutdown recorded as a failure: %v", d["lastError"])
	}
}
