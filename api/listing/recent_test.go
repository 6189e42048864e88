package listing

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/activity/activitytest"
)

// countingStore counts the listings asked of an activity store.
type countingStore struct {
	activity.Store
	mu    sync.Mutex
	calls []activity.Filter
}

func (s *countingStore) List(ctx context.Context, f activity.Filter) (activity.Page, error) {
	s.mu.Lock()
	s.calls = append(s.calls, f)
	s.mu.Unlock()
	return s.Store.List(ctx, f)
}

type counts struct{ Refreshes, Failures, Reauths int }

func weekCounts(w Weeks) map[string]counts {
	out := map[string]counts{}
	for name, wk := range w.ByToken {
		out[name] = counts{wk.Refreshes, wk.Failures, wk.Reauths}
	}
	return out
}

// TestRecentReadsTheWeekOnceThenWhatIsNew: the first overview reads the
// week; later ones read only what is new (with an overlap that counts
// nothing twice), at most once per TTL; entries leave the count once a
// week old; a rotation that stored an authorization is no refresh.
func TestRecentReadsTheWeekOnceThenWhatIsNew(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	store := &countingStore{Store: &activitytest.Memory{}}
	add := func(at time.Time, name string, action activity.Action) {
		t.Helper()
		if err := store.Add(ctx, activity.Entry{At: at, Token: name, Action: action, ActorKind: activity.ByService, Actor: "w", Outcome: activity.OK}); err != nil {
			t.Fatal(err)
		}
	}
	var weekA counts // as a person counts the week's entries
	for _, e := range activitytest.Week("a", now.Add(-time.Hour), 12*time.Hour) {
		if err := store.Add(ctx, e); err != nil {
			t.Fatal(err)
		}
		if e.At.Before(now.Add(-RecentWindow)) {
			continue
		}
		switch e.Action {
		case activity.Rotated:
			weekA.Refreshes++
		case activity.AuthCompleted:
			weekA.Refreshes--
		case activity.RefreshFailed:
			weekA.Failures++
		case activity.ReauthRequired:
			weekA.Reauths++
		}
	}
	if weekA.Refreshes < 10 || weekA.Failures != 1 || weekA.Reauths != 1 {
		t.Fatalf("activitytest.Week's last 7 days hold %+v", weekA)
	}
	add(now.Add(-8*24*time.Hour), "b", activity.Rotated) // too old
	add(now.Add(-2*time.Hour), "b", activity.Rotated)
	add(now.Add(-90*time.Minute), "b", activity.ConfigSaved) // not counted
	r := NewRecent(store, clock)

	w, err := r.Weeks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]counts{"a": weekA, "b": {1, 0, 0}}
	if diff := cmp.Diff(want, weekCounts(w)); diff != "" {
		t.Errorf("first read (-want +got):\n%s", diff)
	}
	if !w.From.Equal(now.Add(-RecentWindow)) {
		t.Errorf("counted since %v, want a week ago", w.From)
	}
	if n := len(store.calls); n != 1 || !store.calls[0].Since.Equal(now.Add(-RecentWindow)) {
		t.Errorf("first read: %d listings, first since %v; want one since a week ago", n, store.calls[0].Since)
	}

	// Within the TTL: no read at all.
	now = now.Add(TTL / 2)
	add(now.Add(-time.Second), "b", activity.RefreshFailed)
	if _, err := r.Weeks(ctx); err != nil || len(store.calls) != 1 {
		t.Errorf("within the TTL: %d listings (%v), want still 1", len(store.calls), err)
	}
	// After it: only what is new, from a little before the last read; an
	// entry stamped before that read but stored after it still counts.
	now = now.Add(TTL)
	add(now.Add(-30*time.Second), "b", activity.Rotated)
	w, err = r.Weeks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := store.calls[len(store.calls)-1]
	if len(store.calls) != 2 || !last.Since.Equal(now.Add(-TTL-TTL/2).Add(-RecentOverlap)) {
		t.Errorf("second read: %d listings, since %v; want one since the first read less the overlap", len(store.calls), last.Since)
	}
	want = map[string]counts{"a": weekA, "b": {2, 1, 0}}
	if diff := cmp.Diff(want, weekCounts(w)); diff != "" {
		t.Errorf("after the second read (-want +got):\n%s", diff)
	}

	// A week on, what is older than a week is no longer counted.
	now = now.Add(6*24*time.Hour + 23*time.Hour)
	w, err = r.Weeks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := weekCounts(w)["b"]; got != (counts{1, 1, 0}) {
		t.Errorf("a week later b counts %+v, want only the latest rotation and failure", got)
	}
}
