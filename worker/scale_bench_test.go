package main

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/testkit"
)

// BenchmarkSweepAtScale sweeps a collection of 10 000 and one of 100 000
// documents, each with the same 1 000 due, on the emulator, and reports
// for each: the seeding time (batched writes, apart from the sweep), the
// sweep's time, the documents it read and its Webex calls (exactly 1 000),
// and the ratio of the two sweep times (issue 12: within 1.5×). Run it
// once: go test -run '^$' -bench SweepAtScale -benchtime 1x ./worker
func BenchmarkSweepAtScale(b *testing.B) {
	const due = 1000
	var took [2]time.Duration
	for i, total := range []int{10_000, 100_000} {
		h := newHarness(b, map[string]string{"LOG_LEVEL": "info"})
		w := h.startWorker(nil)
		start := time.Now()
		seedScale(b, h, total, due)
		seeding := time.Since(start)

		before, calls := w.store.Reads(), h.Webex.Stats().Refreshes
		start = time.Now()
		sum := w.mustRun(b)
		took[i] = time.Since(start)
		reads, webex := w.store.Reads()-before, h.Webex.Stats().Refreshes-calls
		if sum.Refreshed != due || webex != due || sum.Scanned != total {
			b.Fatalf("%d documents: got %+v and %d Webex calls, want %d scanned, %d refreshed with one call each", total, sum, webex, total, due)
		}
		fmt.Printf("sweep over %6d documents, %d due: seeding %6.1f s; sweep %5.2f s, %5d document reads, %d Webex calls\n",
			total, due, seeding.Seconds(), took[i].Seconds(), reads, webex)
		b.ReportMetric(took[i].Seconds(), fmt.Sprintf("sweep-s/%dk", total/1000))
		b.ReportMetric(float64(reads), fmt.Sprintf("reads/%dk", total/1000))
	}
	ratio := took[1].Seconds() / took[0].Seconds()
	fmt.Printf("sweep time 100 000 / 10 000 documents: %.2f× (target ≤ 1.5×)\n", ratio)
	b.ReportMetric(ratio, "ratio-100k/10k")
}

// seedScale writes total documents as the Node sample does, the first
// due of them due (an hour left, a refresh token the fake knows), the
// rest with ten hours left, 500 per batch.
func seedScale(b *testing.B, h *harness, total, due int) {
	b.Helper()
	ctx := context.Background()
	now := time.Now()
	const client, secret = "scale-client", "scale-client-secret"
	h.Webex.AddClient(client, secret)
	bw := h.Firestore.BulkWriter(ctx)
	for i := 0; i < total; i++ {
		name := "tok-" + strconv.Itoa(i)
		left, rt := 10*time.Hour, "rt-"+name+"-"+testkit.RandomHex(8)
		if i < due {
			left = time.Hour
			h.Webex.AddRefreshToken(client, rt, now.Add(30*24*time.Hour))
		}
		if _, err := bw.Set(h.Firestore.Collection(h.Collection).Doc(name), map[string]any{
			"clientId": client, "clientSecret": secret, "redirectUri": "https://flows.example.com/callback",
			"accessToken": "at-" + name, "refreshToken": rt,
			"accessExpires": now.Add(left).UnixMilli(), "refreshExpires": now.Add(30 * 24 * time.Hour).UnixMilli(),
			"lastRefresh": now.Add(-2 * time.Hour).UnixMilli(),
		}); err != nil {
			b.Fatal(err)
		}
		if i%500 == 499 {
			bw.Flush()
		}
	}
	bw.End()
	h.Secret(secret)
}
