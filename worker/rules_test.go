package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/testkit"
)

// TestLapsedRefreshTokensDoNotTripTheBrake: due tokens whose refresh
// tokens already expired are never sent to Webex, so they say nothing
// about Webex: they end in reauth_required with one event each, the other
// tokens are refreshed, and no sweep halts (issue 10, bug 1).
func TestLapsedRefreshTokensDoNotTripTheBrake(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	w := h.startWorker(nil)
	for i := 0; i < 6; i++ {
		h.seed(fmt.Sprintf("lapsed-%d", i), time.Hour, -time.Minute)
	}
	h.seed("healthy", time.Hour, 30*24*time.Hour)
	for sweep := 1; sweep <= 2; sweep++ {
		sum := w.mustRun(t)
		if sum.Halted || sum.Failed != 0 {
			t.Fatalf("sweep %d: got %+v, want no halt and no failure", sweep, sum)
		}
		if sweep == 1 && (sum.Refreshed != 1 || sum.Skipped != 6) {
			t.Fatalf("sweep 1: got %+v, want healthy refreshed and the 6 lapsed skipped", sum)
		}
	}
	stats := h.Webex.Stats()
	if stats.Refreshes != 1 {
		t.Fatalf("got %d webex calls, want 1 (healthy only)", stats.Refreshes)
	}
	for i := 0; i < 6; i++ {
		if st := h.Doc(fmt.Sprintf("lapsed-%d", i))["status"]; st != "reauth_required" {
			t.Errorf("lapsed-%d: status %v, want reauth_required", i, st)
		}
	}
	h.Secret(h.Doc("healthy")["accessToken"].(string))
	msgs := h.events.WaitFor(t, 7, time.Second)
	perType := map[string]int{}
	for _, m := range msgs {
		perType[m.Attributes["ce-type"]]++
	}
	if perType["token.reauthorization_required"] != 6 || perType["token.rotated"] != 1 || perType["token.sweep_halted"] != 0 {
		t.Fatalf("got %v (%s), want 6 reauthorization_required, 1 rotated, no sweep_halted", perType, testkit.Describe(msgs))
	}
}

// TestWorkerMetrics: the worker exports its own families only, and its
// expiry gauges cover every token, the fresh ones too; a deleted token's
// series goes away at the next sweep (issue 10, bug 4).
func TestWorkerMetrics(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	w := h.startWorker(nil)
	h.seed("due", time.Hour, 30*24*time.Hour)
	h.seed("fresh", 10*time.Hour, 30*24*time.Hour)
	h.seed("gone", 10*time.Hour, 30*24*time.Hour)
	w.mustRun(t)
	h.Secret(h.Doc("due")["accessToken"].(string))
	body := scrape(t, w.url)
	for _, family := range []string{"sweeps_total", "token_refreshes_total", "sweep_duration_seconds"} {
		if !strings.Contains(body, "\n"+family) {
			t.Errorf("worker /metrics lacks %s", family)
		}
	}
	for _, family := range []string{"token_cache_lookups_total", "http_requests_total"} {
		if strings.Contains(body, family) {
			t.Errorf("worker /metrics exports the api's %s", family)
		}
	}
	for _, name := range []string{"due", "fresh", "gone"} {
		if v := gauge(t, body, "token_access_expiry_seconds", name); v < 5*3600 {
			t.Errorf("%s: access expiry %v s, want the current expiry (refreshed or 10h)", name, v)
		}
		if v := gauge(t, body, "token_refresh_expiry_seconds", name); v < 29*24*3600 {
			t.Errorf("%s: refresh expiry %v s, want about 30 days", name, v)
		}
	}
	if _, err := h.Firestore.Collection(h.Collection).Doc("gone").Delete(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.mustRun(t)
	if body := scrape(t, w.url); strings.Contains(body, `name="gone"`) {
		t.Fatal("a deleted token keeps its expiry series")
	}
}

// TestSweepIsRecordedForTheAPI: each sweep's summary lands in
// META_COLLECTION, where the api reads it.
func TestSweepIsRecordedForTheAPI(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	w := h.startWorker(nil)
	h.seed("due", time.Hour, 30*24*time.Hour)
	before := time.Now()
	w.mustRun(t)
	h.Secret(h.Doc("due")["accessToken"].(string))
	snap, err := h.Firestore.Collection(h.Env["META_COLLECTION"]).Doc("sweeps").Get(context.Background())
	if err != nil {
		t.Fatalf("no sweep record: %v", err)
	}
	last, _ := snap.Data()["last"].(map[string]any)
	if last["refreshed"] != int64(1) || last["scanned"] != int64(1) || last["halted"] != false || last["instance"] == "" {
		t.Fatalf("got %v, want 1 scanned and refreshed, not halted, an instance", last)
	}
	if at := testkit.Millis(last["at"]); at < before.UnixMilli() {
		t.Fatalf("at %d is before the sweep", at)
	}
	if _, err := h.Firestore.Collection(h.Collection).Doc("sweeps").Get(context.Background()); err == nil {
		t.Fatal("the sweep record is in the tokens collection, which the sample's callers list")
	}
}

func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// gauge reads family{name="name"} from a Prometheus text exposition.
func gauge(t *testing.T, body, family, name string) float64 {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(family+`{name="`+name+`"} `) + `(\S+)`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s for %s", family, name)
	}
	var v float64
	fmt.Sscan(m[1], &v)
	return v
}
