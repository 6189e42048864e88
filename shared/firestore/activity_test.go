package firestore

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	gfs "cloud.google.com/go/firestore"
	"github.com/google/go-cmp/cmp"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/activity/activitytest"
	"github.com/wxcc/tokenservice/shared/testing/emulator"
)

// newActivity returns a store whose tokens, meta and activity collections
// are this test's own, the activity collection, and the store.
func newActivity(t *testing.T, retention time.Duration) (*Activity, *gfs.CollectionRef, *Store) {
	t.Helper()
	c := emulator.FirestoreClient(t)
	name := emulator.Collection(t)
	s := New(c, name, WithMetaCollection(name+"_meta"), WithActivity(name+"_activity", retention))
	return s.Activity(), c.Collection(name + "_activity"), s
}

func TestActivityContract(t *testing.T) {
	activitytest.Run(t, func(t *testing.T) activity.Store {
		a, _, _ := newActivity(t, defaultActivityRetention)
		return a
	})
}

// TestActivityDocument pins the stored fields (DESIGN 2b; the deployment's
// indexes and TTL policy name them) and that nothing lands in the tokens
// or meta collections.
func TestActivityDocument(t *testing.T) {
	t.Parallel()
	a, raw, s := newActivity(t, 48*time.Hour)
	ctx := ctxT(t)
	at := time.Date(2026, 3, 1, 12, 30, 0, 123456000, time.UTC)
	e := activity.Entry{
		At: at, ActorKind: activity.ByPerson, Actor: "ann@example.com", Action: activity.ConfigSaved,
		Token: "flow-1", Addr: "192.0.2.1", Outcome: activity.OK, Detail: "clientSecret changed",
	}
	if err := a.Add(ctx, e); err != nil {
		t.Fatal(err)
	}
	docs, err := raw.Documents(ctx).GetAll()
	if err != nil || len(docs) != 1 {
		t.Fatalf("activity collection: %d documents, %v; want 1", len(docs), err)
	}
	want := map[string]any{
		"at": at, "actorKind": "person", "actor": "ann@example.com", "action": "config_saved", "token": "flow-1",
		"addr": "192.0.2.1", "outcome": "ok", "detail": "clientSecret changed", "expireAt": at.Add(48 * time.Hour),
	}
	if diff := cmp.Diff(want, docs[0].Data()); diff != "" {
		t.Errorf("stored entry (-want +got):\n%s", diff)
	}
	for _, coll := range []*gfs.CollectionRef{s.coll, s.meta} {
		if n, _ := coll.Documents(ctx).GetAll(); len(n) != 0 {
			t.Errorf("collection %s holds %d documents, want none", coll.ID, len(n))
		}
	}
}

// TestActivityRotationDocument pins a rotation's own fields: the
// generation as an integer and the access expiry as a timestamp, both
// absent from entries that are not rotations (TestActivityDocument).
func TestActivityRotationDocument(t *testing.T) {
	t.Parallel()
	a, raw, _ := newActivity(t, 48*time.Hour)
	ctx := ctxT(t)
	at := time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)
	e := activity.Entry{
		At: at, ActorKind: activity.ByService, Actor: "worker-1", Action: activity.Rotated, Token: "flow-1",
		Outcome: activity.OK, Detail: "generation 9, trigger scheduled", Generation: 9, AccessExpires: at.Add(12 * time.Hour),
	}
	if err := a.Add(ctx, e); err != nil {
		t.Fatal(err)
	}
	docs, err := raw.Documents(ctx).GetAll()
	if err != nil || len(docs) != 1 {
		t.Fatalf("activity collection: %d documents, %v; want 1", len(docs), err)
	}
	data := docs[0].Data()
	if got := data["generation"]; got != int64(9) {
		t.Errorf("generation stored as %#v, want int64 9", got)
	}
	if got, ok := data["accessExpires"].(time.Time); !ok || !got.Equal(at.Add(12*time.Hour)) {
		t.Errorf("accessExpires stored as %#v, want the timestamp %v", data["accessExpires"], at.Add(12*time.Hour))
	}
}

// TestActivityQueriesUseDeployedIndexes: every filter combination asks
// Firestore only what the deployment's composite indexes serve, (token),
// (actor), (action), (token, action), (actor, action), each with at
// descending, or nothing but at; the emulator does not check indexes.
func TestActivityQueriesUseDeployedIndexes(t *testing.T) {
	deployed := [][]string{nil, {"token"}, {"actor"}, {"action"}, {"token", "action"}, {"actor", "action"}}
	for _, tok := range []string{"", "flow-1"} {
		for _, actor := range []string{"", "ann@example.com"} {
			for _, action := range []activity.Action{"", activity.Rotated} {
				f := activity.Filter{Token: tok, Actor: actor, Action: action}
				p := activityQuery(f)
				var fields []string
				asked := activity.Filter{}
				for _, w := range p.where {
					fields = append(fields, w.field)
					switch w.field {
					case fToken:
						asked.Token = w.value
					case fActor:
						asked.Actor = w.value
					case fAction:
						asked.Action = activity.Action(w.value)
					}
				}
				if !slices.ContainsFunc(deployed, func(d []string) bool { return slices.Equal(d, fields) }) {
					t.Errorf("filter %+v queries %v: no deployed index serves it", f, fields)
				}
				if got := asked != f; got != p.inMemory {
					t.Errorf("filter %+v: asks %+v, in memory %v; want in memory exactly when the query does not cover the filter", f, asked, p.inMemory)
				}
			}
		}
	}
}

// TestActivityRecordedNoSecret runs the recorder on Firestore: Close
// flushes every entry into the collection, and no stored field holds a
// secret, although a caller passed one.
func TestActivityRecordedNoSecret(t *testing.T) {
	t.Parallel()
	a, raw, _ := newActivity(t, defaultActivityRetention)
	secrets := []string{
		"ZDI3MGEyYzQtNmFlNS00ZTY2LWE3OTYtYjA0ZjIyOTFhZWM3ZmQ1MDFlNDItYjA0_PF84_1eb65fdf-9643-417f-9974-ad72cae0e10f",
		"c4e1f5d6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4",
	}
	var logs strings.Builder
	r := activity.NewAsync(a, activity.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), FlushTimeout: 20 * time.Second})
	const n = 30
	for i := range n {
		e := activity.Entry{
			ActorKind: activity.ByService, Actor: "worker/rev-7/1/QX4T2ZPA", Action: activity.Rotated,
			Token: fmt.Sprintf("flow-%d", i), Outcome: activity.OK, Detail: "new access token expires in 12h",
		}
		switch i {
		case 3:
			e.Detail = "stored access token " + secrets[0] // a bug a caller might have
		case 4:
			e.Detail = "client secret " + secrets[1] + " rejected"
			e.Outcome = activity.Failed
		}
		r.Record(context.Background(), e)
	}
	r.Close()
	if st := r.Stats(); st.Stored != n || st.Redacted != 2 {
		t.Errorf("stats %+v, want %d stored and 2 redacted", st, n)
	}
	docs, err := raw.Documents(ctxT(t)).GetAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != n {
		t.Errorf("collection holds %d entries after Close, want %d", len(docs), n)
	}
	for _, d := range docs {
		for k, v := range d.Data() {
			if s, ok := v.(string); ok {
				activitytest.AssertNoSecretText(t, "document "+d.Ref.ID+" field "+k, s, secrets...)
			}
		}
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		activitytest.AssertNoSecretText(t, "a log line", line, secrets...)
	}
	p, err := a.List(ctxT(t), activity.Filter{Limit: activity.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	activitytest.AssertNoSecrets(t, p.Entries, secrets...)
}
