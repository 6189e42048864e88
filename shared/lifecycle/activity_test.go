package lifecycle_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/lifecycle"
)

// entries is an activity.Recorder that keeps what it is given.
type entries struct {
	mu sync.Mutex
	es []activity.Entry
}

func (r *entries) Record(_ context.Context, e activity.Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.es = append(r.es, e)
}

// TestRotationRecordsItsExpiry: the activity entry of a rotation carries
// the generation stored and the new access token's expiry in fields of
// their own, which the console's chart reads (not the detail sentence).
func TestRotationRecordsItsExpiry(t *testing.T) {
	f := newFixture(t)
	rec := &entries{}
	r := lifecycle.NewRefresher(lifecycle.RefresherConfig{
		Store: f.store, Issuer: f.issuer, Now: f.clock.Now, Holder: "holder-a", Activity: rec,
		Threshold: 2 * time.Hour, WebexTimeout: 2 * time.Second, PollInterval: 5 * time.Millisecond,
	})
	f.seed(t, "due", 90*time.Minute)
	res, err := r.Refresh(context.Background(), "due", scheduled)
	if err != nil || res.Outcome != lifecycle.Refreshed {
		t.Fatalf("Refresh = %v, %v; want refreshed", res.Outcome, err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.es) != 1 {
		t.Fatalf("recorded %d entries, want the rotation only: %+v", len(rec.es), rec.es)
	}
	e := rec.es[0]
	if e.Action != activity.Rotated || e.Token != "due" || e.ActorKind != activity.ByService {
		t.Errorf("recorded %s of %q by %s, want rotated of due by the service", e.Action, e.Token, e.ActorKind)
	}
	if e.Generation != res.Token.Generation || e.Generation == 0 {
		t.Errorf("entry's generation %d, want the stored %d", e.Generation, res.Token.Generation)
	}
	if want := f.clock.Now().Add(12 * time.Hour); !e.AccessExpires.Equal(res.Token.AccessExpires) || !e.AccessExpires.Equal(want) {
		t.Errorf("entry's access expiry %v, want the stored %v (now + 12h)", e.AccessExpires, res.Token.AccessExpires)
	}
}
