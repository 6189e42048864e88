package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/api/option"

	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/testing/netfault"
	"github.com/wxcc/tokenservice/shared/testing/testkit"
	"github.com/wxcc/tokenservice/shared/token"
)

func TestSweepRefreshesDueTokensAndPublishes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	w := h.startWorker(nil)
	due := map[string]bool{}
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("tok-%02d", i)
		left := 6 * time.Hour
		if i%4 == 0 {
			left, due[name] = time.Hour, true
		}
		h.seed(name, left, 30*24*time.Hour)
	}
	sum := w.mustRun(t)
	if sum.Scanned != 20 || sum.Due != 5 || sum.Refreshed != 5 || sum.Failed != 0 {
		t.Fatalf("got summary %+v, want 20 scanned, 5 due and refreshed", sum)
	}
	if n := h.Webex.Stats().Refreshes; n != 5 {
		t.Fatalf("got %d webex calls, want 5", n)
	}
	msgs := h.events.WaitFor(t, 5, time.Second)
	if len(msgs) != 5 {
		t.Fatalf("got %d events, want 5: %s", len(msgs), testkit.Describe(msgs))
	}
	for _, m := range msgs {
		name := m.Attributes["name"]
		d := h.Doc(name)
		h.Secret(d["accessToken"].(string))
		want := map[string]string{
			"ce-specversion": "1.0",
			"ce-type":        "token.rotated",
			"ce-id":          name + "/1/token.rotated",
			"generation":     "1",
		}
		for k, v := range want {
			if m.Attributes[k] != v {
				t.Errorf("%s: attribute %s = %q, want %q", name, k, m.Attributes[k], v)
			}
		}
		if !due[name] || m.OrderingKey != name || m.Attributes["ce-source"] == "" {
			t.Errorf("event for %q: ordering key %q source %q", name, m.OrderingKey, m.Attributes["ce-source"])
		}
		if _, err := time.Parse(time.RFC3339Nano, m.Attributes["ce-time"]); err != nil {
			t.Errorf("ce-time %q: %v", m.Attributes["ce-time"], err)
		}
		var data map[string]any
		if err := json.Unmarshal(m.Data, &data); err != nil {
			t.Fatalf("data is not JSON: %q", m.Data)
		}
		if data["name"] != name || data["generation"] != 1.0 || data["trigger"] != "scheduled" ||
			int64(data["accessExpires"].(float64)) != testkit.Millis(d["accessExpires"]) || data["refreshExpires"] == nil {
			t.Errorf("data %v does not describe %s", data, name)
		}
		for _, s := range []string{d["accessToken"].(string), d["refreshToken"].(string), d["clientSecret"].(string)} {
			if strings.Contains(string(m.Data), s) || strings.Contains(fmt.Sprint(m.Attributes), s) {
				t.Errorf("event for %s carries a secret", name)
			}
		}
	}
	// Nothing is due any more: no call, no event.
	if sum := w.mustRun(t); sum.Refreshed != 0 {
		t.Fatalf("second sweep: %+v, want nothing refreshed", sum)
	}
	if n := h.Webex.Stats().Refreshes; n != 5 {
		t.Fatalf("got %d webex calls after the second sweep, want 5", n)
	}
	if msgs := h.events.WaitFor(t, 5, time.Second); len(msgs) != 5 {
		t.Fatalf("got %d events after the second sweep, want 5", len(msgs))
	}
}

func TestTwoWorkersAndInlineCallersRefreshOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.Webex.SetLatency(200 * time.Millisecond)
	a, b := h.startWorker(nil), h.startWorker(nil)
	// The api's inline path is the same protocol with WaitForOthers.
	api := h.startWorker(nil).refresher
	var seeded []testkit.Seeded
	for i := 0; i < 10; i++ {
		seeded = append(seeded, h.seed(fmt.Sprintf("due-%d", i), time.Hour, 30*24*time.Hour))
	}
	var wg sync.WaitGroup
	for _, w := range []*workerUnderTest{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); w.mustRun(t) }()
	}
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			defer cancel()
			api.Refresh(ctx, fmt.Sprintf("due-%d", rand.IntN(10)), lifecycle.RefreshOptions{Trigger: token.TriggerInline, WaitForOthers: true})
		}()
	}
	wg.Wait()
	stats := h.Webex.Stats()
	for i, s := range seeded {
		if n := stats.ByRefreshToken[s.RefreshToken]; n != 1 {
			t.Errorf("due-%d: refreshed %d times, want exactly once", i, n)
		}
		if g := h.Doc(fmt.Sprintf("due-%d", i))["generation"]; g != int64(1) {
			t.Errorf("due-%d: generation %v, want 1", i, g)
		}
	}
	for i := range seeded {
		h.Secret(h.Doc(fmt.Sprintf("due-%d", i))["accessToken"].(string))
	}
}

func TestRefreshExpiringWarnedOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	w := h.startWorker(nil)
	h.seed("ending", 6*time.Hour, 3*24*time.Hour)
	h.seed("fine", 6*time.Hour, 30*24*time.Hour)
	for i := 0; i < 3; i++ {
		w.mustRun(t)
	}
	msgs := h.events.WaitFor(t, 1, time.Second)
	if len(msgs) != 1 || msgs[0].Attributes["ce-type"] != "token.refresh_expiring" || msgs[0].Attributes["name"] != "ending" {
		t.Fatalf("got %s, want one token.refresh_expiring for ending", testkit.Describe(msgs))
	}
	if n := h.Webex.Stats().Calls; n != 0 {
		t.Fatalf("got %d webex calls, want 0", n)
	}
}

func TestPermanentFailureStopsCalls(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	w := h.startWorker(nil)
	s := h.seed("revoked", time.Hour, 30*24*time.Hour)
	h.Webex.RevokeRefreshToken(s.RefreshToken)
	if sum := w.mustRun(t); sum.Failed != 1 {
		t.Fatalf("got %+v, want 1 failed", sum)
	}
	for i := 0; i < 2; i++ {
		if sum := w.mustRun(t); sum.Failed != 0 || sum.Refreshed != 0 {
			t.Fatalf("later sweep %+v, want the token skipped", sum)
		}
	}
	if n := h.Webex.Stats().Refreshes; n != 1 {
		t.Fatalf("got %d webex calls, want 1", n)
	}
	msgs := h.events.WaitFor(t, 1, time.Second)
	if len(msgs) != 1 || msgs[0].Attributes["ce-type"] != "token.reauthorization_required" {
		t.Fatalf("got %s, want one token.reauthorization_required", testkit.Describe(msgs))
	}
	if st := h.Doc("revoked")["status"]; st != "reauth_required" {
		t.Fatalf("status %v, want reauth_required", st)
	}
}

func TestBrakeStopsSweepOnMassPermanentFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"REFRESH_CONCURRENCY": "1"})
	w := h.startWorker(nil)
	for i := 0; i < 8; i++ {
		s := h.seed(fmt.Sprintf("tok-%d", i), time.Hour, 30*24*time.Hour)
		h.Webex.RemoveClient(s.ClientID) // Webex: invalid_client for every token
	}
	sum := w.mustRun(t)
	if !sum.Halted || sum.Failed != 5 {
		t.Fatalf("got %+v, want the sweep halted after 5 failures", sum)
	}
	if n := h.Webex.Stats().Refreshes; n != 5 {
		t.Fatalf("got %d webex calls, want 5", n)
	}
	marked := 0
	for i := 0; i < 8; i++ {
		if h.Doc(fmt.Sprintf("tok-%d", i))["status"] == "config_error" {
			marked++
		}
	}
	if marked != 5 {
		t.Fatalf("%d tokens marked config_error, want 5: the brake must stop marking", marked)
	}
	if !strings.Contains(h.Logs.String(), "sweep halted") {
		t.Fatal("the halt is not in the log")
	}
	msgs := h.events.WaitFor(t, 1, time.Second)
	var halts int
	for _, m := range msgs {
		if m.Attributes["ce-type"] == "token.sweep_halted" {
			halts++
			if !strings.Contains(string(m.Data), "client rejected") {
				t.Errorf("halt event data %s does not say why", m.Data)
			}
		}
	}
	if halts != 1 {
		t.Fatalf("got %d token.sweep_halted events, want 1: %s", halts, testkit.Describe(msgs))
	}
}

func TestPubSubOutageLosesNoEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	proxy, err := netfault.Start(os.Getenv("PUBSUB_EMULATOR_HOST"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	w := h.startWorker(h.pubsubClient(option.WithEndpoint(proxy.Addr())))
	names := []string{"a", "b", "c"}
	for _, n := range names {
		h.seed(n, time.Hour, 30*24*time.Hour)
	}
	proxy.Refuse()
	// Two rotations per token while Pub/Sub is down.
	for round := 1; round <= 2; round++ {
		start := time.Now()
		sum := w.mustRun(t)
		if sum.Refreshed != 3 {
			t.Fatalf("round %d: %+v, want 3 refreshed during the outage", round, sum)
		}
		if took := time.Since(start); took > 20*time.Second {
			t.Fatalf("round %d took %s", round, took)
		}
		for _, n := range names {
			d := h.Doc(n)
			h.Secret(d["accessToken"].(string))
			if round == 2 {
				continue
			}
			if _, err := h.Firestore.Collection(h.Collection).Doc(n).Update(context.Background(),
				[]gfsUpdate{{Path: "accessExpires", Value: time.Now().Add(time.Hour).UnixMilli()}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Deliveries run after the commits; wait until they gave up.
	testkit.Eventually(t, 30*time.Second, "6 events wait in the outbox, no delivery in flight", func() bool {
		evs, err := w.store.PendingEvents(context.Background(), 100)
		return err == nil && len(evs) == 6 && w.relay.Stats().Delivering == 0
	})
	if got := h.events.Messages(); len(got) != 0 {
		t.Fatalf("got %d messages during the outage", len(got))
	}

	proxy.Restore()
	testkit.Eventually(t, 90*time.Second, "the outbox is drained", func() bool {
		_, _ = w.sweeper.Run(context.Background())
		evs, err := w.store.PendingEvents(context.Background(), 100)
		return err == nil && len(evs) == 0
	})
	// The worker's own retries and its sweeps' drains share the work.
	if n := w.relay.Stats().Published; n != 6 {
		t.Errorf("the worker published %d events, want all 6", n)
	}
	msgs := h.events.WaitFor(t, 6, time.Second)
	if len(msgs) != 6 {
		// In contract (at-least-once), but worth seeing when it happens.
		t.Logf("%d messages arrived, duplicates included: %s", len(msgs), testkit.Describe(msgs))
	}
	gens := map[string][]string{}
	for _, m := range testkit.Distinct(msgs) {
		gens[m.Attributes["name"]] = append(gens[m.Attributes["name"]], m.Attributes["generation"])
	}
	for _, n := range names {
		if strings.Join(gens[n], ",") != "1,2" {
			t.Errorf("%s: generations arrived as %v, want 1,2", n, gens[n])
		}
	}
}

func TestKilledWorkerLeaseExpires(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"WEBEX_TIMEOUT": "1s"})
	h.seed("orphan", time.Hour, 30*24*time.Hour)
	h.Webex.SetLatency(time.Minute) // the child holds the lease while it waits

	child := h.startChild("-once")
	var leaseUntil int64
	testkit.Eventually(t, 20*time.Second, "the child takes the lease", func() bool {
		lease, _ := h.Doc("orphan")["lease"].(map[string]any)
		leaseUntil = testkit.Millis(lease["until"])
		return leaseUntil > 0
	})
	child.Process.Kill() // SIGKILL: no chance to release the lease
	child.Wait()
	h.Webex.SetLatency(0)

	w := h.startWorker(nil)
	h.Clock.Set(time.UnixMilli(leaseUntil).Add(-time.Second)) // the lease still lives
	if sum := w.mustRun(t); sum.Refreshed != 0 {
		t.Fatalf("refreshed under a live lease: %+v", sum)
	}
	h.Clock.Set(time.UnixMilli(leaseUntil).Add(100 * time.Millisecond)) // it has expired
	if sum := w.mustRun(t); sum.Refreshed != 0 {
		t.Fatalf("at first sight of the expired lease got %+v, want it left for the takeover grace", sum)
	}
	h.Clock.Advance(lifecycle.TakeoverGrace)
	if sum := w.mustRun(t); sum.Refreshed != 1 {
		t.Fatalf("after the lease TTL and the takeover grace got %+v, want the token refreshed", sum)
	}
	h.Secret(h.Doc("orphan")["accessToken"].(string))
	if g := h.Doc("orphan")["generation"]; g != int64(1) {
		t.Fatalf("generation %v, want 1", g)
	}
}

func TestSweepReadsOnlyDueDocuments(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	w := h.startWorker(nil)
	ctx := context.Background()
	bw := h.Firestore.BulkWriter(ctx)
	now := time.Now()
	for i := 0; i < 9900; i++ {
		ref := h.Firestore.Collection(h.Collection).Doc("idle-" + strconv.Itoa(i))
		if _, err := bw.Set(ref, map[string]any{
			"clientId": "c", "clientSecret": "s", "redirectUri": "https://x/cb",
			"accessToken": "at", "refreshToken": "rt",
			"accessExpires": now.Add(10 * time.Hour).UnixMilli(), "refreshExpires": now.Add(50 * 24 * time.Hour).UnixMilli(),
			"lastRefresh": now.UnixMilli(),
		}); err != nil {
			t.Fatal(err)
		}
	}
	bw.End()
	for i := 0; i < 100; i++ {
		h.seed("due-"+strconv.Itoa(i), time.Hour, 30*24*time.Hour)
	}
	before := w.store.Reads()
	sum := w.mustRun(t)
	reads := w.store.Reads() - before
	t.Logf("sweep over 10000 documents, 100 due: %d document reads, summary %+v", reads, sum)
	if sum.Refreshed != 100 || sum.Due != 100 || sum.Scanned != 10000 {
		t.Fatalf("got %+v, want 10000 scanned, 100 due and refreshed", sum)
	}
	// Per due token: one from the due query, one in the commit
	// transaction, one outbox lookup before publishing its event. None for
	// the 9900 others.
	if reads > 3*100+30 {
		t.Fatalf("the sweep read %d documents, want O(100), not O(10000)", reads)
	}
}
