package firestore

import (
	"strings"
	"testing"
	"time"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/people"
	"github.com/wxcc/tokenservice/shared/people/peopletest"
	"github.com/wxcc/tokenservice/shared/testing/emulator"
	"github.com/wxcc/tokenservice/shared/token"
)

// twoInstances returns two stores on one set of collections of this
// test's own, each with its own client, as two api instances are.
func twoInstances(t *testing.T, now func() time.Time, opts ...Option) (a, b *Store, meta string) {
	t.Helper()
	name := emulator.Collection(t)
	meta = name + "_meta"
	opts = append(opts, WithMetaCollection(meta), WithClock(now))
	return New(emulator.FirestoreClient(t), name, opts...), New(emulator.FirestoreClient(t), name, opts...), meta
}

func TestSessionsContract(t *testing.T) {
	peopletest.RunSessions(t, func(t *testing.T, now func() time.Time) (people.SessionStore, people.SessionStore) {
		a, b, _ := twoInstances(t, now)
		return a.Sessions(), b.Sessions()
	})
}

// TestSessionDocument: a session is stored at
// <META_COLLECTION>/console/sessions/<hash of the ID>, with expireAt for
// the TTL policy, and the browser's ID appears nowhere in it.
func TestSessionDocument(t *testing.T) {
	t.Parallel()
	clock := peopletest.NewClock()
	a, _, meta := twoInstances(t, clock.Now)
	ctx := ctxT(t)
	id, sess, err := people.NewSession(token.Person{ID: "p1", Email: "ann@example.com"}, people.Operator, people.ViaWebex,
		"192.0.2.1", clock.Now(), 8*time.Hour, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Sessions().Create(ctx, sess); err != nil {
		t.Fatal(err)
	}
	snap, err := a.client.Doc(meta + "/console/sessions/" + people.KeyOf(id)).Get(ctx)
	if err != nil {
		t.Fatalf("session document: %v", err)
	}
	exp, ok := snap.Data()["expireAt"].(time.Time)
	if !ok || !exp.Equal(clock.Now().Add(8*time.Hour)) {
		t.Errorf("expireAt = %v, want the absolute expiry %v as a timestamp", snap.Data()["expireAt"], clock.Now().Add(8*time.Hour))
	}
	assertAbsent(t, snap, id)
	if err := a.Sessions().Create(ctx, sess); err == nil {
		t.Errorf("a second Create of the same key succeeded")
	}
}

// assertAbsent fails t if any string field of snap, or its ID, holds
// secret.
func assertAbsent(t *testing.T, snap *gfs.DocumentSnapshot, secret string) {
	t.Helper()
	if strings.Contains(snap.Ref.Path, secret) {
		t.Errorf("the document path holds the secret")
	}
	for k, v := range snap.Data() {
		if s, ok := v.(string); ok && strings.Contains(s, secret) {
			t.Errorf("field %s holds the secret", k)
		}
	}
}
