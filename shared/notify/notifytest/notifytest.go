// Package notifytest is the contract test suite of notify.Store: what the
// notifier relies on (conditional saves that exactly one writer wins, a
// faithful round trip, the listing of active conditions). The Firestore
// adapter runs it on the emulator.
package notifytest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wxcc/tokenservice/shared/notify"
	"github.com/wxcc/tokenservice/shared/token"
)

// Run runs the suite. newStore must return an empty store of its own;
// subtests run in parallel.
func Run(t *testing.T, newStore func(t *testing.T) notify.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s notify.Store)
	}{
		{"Missing", testMissing},
		{"RoundTrip", testRoundTrip},
		{"CreateOnlyOnce", testCreateOnlyOnce},
		{"SaveIfUnchanged", testSaveIfUnchanged},
		{"OneOfConcurrentSavesWins", testConcurrentSaves},
		{"ActiveConditions", testActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

// base is a time at millisecond resolution, which is what stores keep.
var base = time.UnixMilli(1_800_000_000_123)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// full returns a condition with every field set.
func full(id string) *notify.Condition {
	return &notify.Condition{
		ID: id, Kind: notify.KindReauthRequired, Token: "wxcc-prod", Open: true,
		Generation: 7, RefreshExpires: base.Add(time.Hour), OpenedAt: base, Reason: "webex said invalid_grant",
		ClosedAt: base.Add(2 * time.Hour), ClosedBy: notify.ClosedResolved,
		Alarmed: []string{notify.ChannelWebex}, LastAlarm: base.Add(time.Minute), Reminders: 2,
		ExpireAt: base.Add(800 * time.Hour),
		Pending: &notify.Message{
			ID: "msg_0123456789abcdef", At: base.Add(24 * time.Hour),
			To:        []string{notify.ChannelWebex, notify.ChannelWebhook},
			Delivered: []string{notify.ChannelWebex},
			Claims:    map[string]time.Time{notify.ChannelWebhook: base.Add(25 * time.Hour)},
			Failures:  map[string]string{notify.ChannelWebhook: "post webhook: HTTP 503"},
			Notice: notify.Notice{
				Kind: notify.KindReauthRequired, Phase: notify.PhaseReminder, Token: "wxcc-prod", Generation: 7,
				AccessExpires: base.Add(3 * time.Hour), RefreshExpires: base.Add(time.Hour),
				Since: base, At: base.Add(24 * time.Hour), Reminder: 2, Reason: "webex said invalid_grant",
				Trigger: "authorization", AuthorizedBy: "Jane Doe", AuthorizedEmail: "jane@example.com", Manager: "manager-1",
			},
		},
	}
}

func mustSave(t *testing.T, s notify.Store, c *notify.Condition) {
	t.Helper()
	if err := s.SaveCondition(ctxT(t), c); err != nil {
		t.Fatalf("SaveCondition(%s): %v", c.ID, err)
	}
}

func read(t *testing.T, s notify.Store, id string) *notify.Condition {
	t.Helper()
	got, err := s.Conditions(ctxT(t), id)
	if err != nil {
		t.Fatalf("Conditions(%s): %v", id, err)
	}
	return got[id]
}

func testMissing(t *testing.T, s notify.Store) {
	got, err := s.Conditions(ctxT(t), "refresh_expiring.nobody", "sweep_halted")
	if err != nil || len(got) != 0 {
		t.Fatalf("Conditions of absent ids = %v, %v; want an empty map", got, err)
	}
}

func testRoundTrip(t *testing.T, s notify.Store) {
	for _, c := range []*notify.Condition{
		full("reauthorization_required.wxcc-prod"),
		{ID: "sweep_halted", Kind: notify.KindSweepHalted, Open: true, OpenedAt: base, LastAlarm: base},
	} {
		want := c.Clone()
		mustSave(t, s, c)
		if c.Version.IsZero() {
			t.Fatalf("SaveCondition left Version zero")
		}
		got := read(t, s, c.ID)
		want.Version = c.Version
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("read back (-want +got):\n%s", diff)
		}
	}
	// Two at once, one of them absent.
	got, err := s.Conditions(ctxT(t), "reauthorization_required.wxcc-prod", "refresh_failed.wxcc-prod", "sweep_halted")
	if err != nil || len(got) != 2 || got["refresh_failed.wxcc-prod"] != nil {
		t.Errorf("Conditions of three ids, two stored = %d found, %v; want those two", len(got), err)
	}
}

func testCreateOnlyOnce(t *testing.T, s notify.Store) {
	mustSave(t, s, full("refresh_failed.a"))
	again := full("refresh_failed.a")
	again.Reason = "second writer"
	if err := s.SaveCondition(ctxT(t), again); !errors.Is(err, token.ErrConflict) {
		t.Fatalf("creating an existing condition: %v, want token.ErrConflict", err)
	}
	if got := read(t, s, "refresh_failed.a"); got.Reason == "second writer" {
		t.Errorf("the losing create overwrote the condition")
	}
}

func testSaveIfUnchanged(t *testing.T, s notify.Store) {
	c := full("refresh_expiring.b")
	mustSave(t, s, c)
	stale := c.Clone()

	c.Open, c.Pending, c.Alarmed, c.ClosedBy = false, nil, nil, notify.ClosedDeleted
	before := c.Version
	mustSave(t, s, c)
	if !c.Version.After(before) {
		t.Errorf("Version %v after a save, want later than %v", c.Version, before)
	}
	got := read(t, s, c.ID)
	if got.Open || got.Pending != nil || len(got.Alarmed) != 0 || got.ClosedBy != notify.ClosedDeleted {
		t.Errorf("after closing and clearing: %+v, want closed, no message, no alarmed channels", got)
	}

	stale.Reason = "stale writer"
	if err := s.SaveCondition(ctxT(t), stale); !errors.Is(err, token.ErrConflict) {
		t.Fatalf("saving from a stale version: %v, want token.ErrConflict", err)
	}
	if got := read(t, s, c.ID); got.Reason == "stale writer" || got.Open {
		t.Errorf("a stale save changed the condition: %+v", got)
	}
}

func testConcurrentSaves(t *testing.T, s notify.Store) {
	c := full("reauthorization_required.c")
	mustSave(t, s, c)
	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		mine := c.Clone()
		mine.Reminders = 100 + i
		wg.Go(func() { errs[i] = s.SaveCondition(ctxT(t), mine) })
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
			if got := read(t, s, c.ID); got.Reminders != 100+i {
				t.Errorf("stored Reminders = %d, want the winner's %d", got.Reminders, 100+i)
			}
		case !errors.Is(err, token.ErrConflict):
			t.Errorf("writer %d: %v, want nil or token.ErrConflict", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d saves from one version won, want exactly 1", won, writers)
	}
}

func testActive(t *testing.T, s notify.Store) {
	open := &notify.Condition{ID: "refresh_failed.open", Kind: notify.KindRefreshFailed, Token: "open", Open: true, OpenedAt: base}
	recovering := full("reauthorization_required.recovering")
	recovering.Open = false
	recovering.Pending.Notice.Phase = notify.PhaseResolved
	closed := &notify.Condition{ID: "refresh_failed.closed", Kind: notify.KindRefreshFailed, Token: "closed", ClosedAt: base}
	for _, c := range []*notify.Condition{open, recovering, closed} {
		mustSave(t, s, c)
	}
	var got []string
	if err := s.ActiveConditions(ctxT(t), func(c *notify.Condition) error {
		got = append(got, c.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"reauthorization_required.recovering", "refresh_failed.open"}
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("active conditions (-want +got):\n%s", diff)
	}

	// Closing the open one takes it off the list.
	open.Open = false
	mustSave(t, s, open)
	got = nil
	_ = s.ActiveConditions(ctxT(t), func(c *notify.Condition) error {
		got = append(got, c.ID)
		return nil
	})
	if len(got) != 1 || got[0] != "reauthorization_required.recovering" {
		t.Errorf("after closing refresh_failed.open: %v, want only the one with a message pending", got)
	}
}
