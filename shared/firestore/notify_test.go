package firestore

import (
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/notify"
	"github.com/wxcc/tokenservice/shared/notify/notifytest"
	"github.com/wxcc/tokenservice/shared/testing/emulator"
)

// newNotifyStore returns a store whose meta collection is the test's own.
func newNotifyStore(t *testing.T) *Store {
	t.Helper()
	c := emulator.FirestoreClient(t)
	return New(c, emulator.Collection(t), WithMetaCollection(emulator.Collection(t)+"_meta"))
}

func TestNotifyContract(t *testing.T) {
	notifytest.Run(t, func(t *testing.T) notify.Store { return newNotifyStore(t) })
}

// The deployment's TTL policy is on the collection group "conditions",
// field expireAt: it must be a timestamp, and the documents must sit
// under META_COLLECTION/notify/conditions.
func TestConditionDocumentForTTL(t *testing.T) {
	t.Parallel()
	s := newNotifyStore(t)
	ctx := ctxT(t)
	expire := time.UnixMilli(1_900_000_000_000)
	c := &notify.Condition{ID: "refresh_failed.ttl", Kind: notify.KindRefreshFailed, Token: "ttl", Open: true, ExpireAt: expire}
	if err := s.SaveCondition(ctx, c); err != nil {
		t.Fatal(err)
	}
	snap, err := s.meta.Doc("notify").Collection("conditions").Doc("refresh_failed.ttl").Get(ctx)
	if err != nil {
		t.Fatalf("condition not at META_COLLECTION/notify/conditions/<id>: %v", err)
	}
	got, ok := snap.Data()["expireAt"].(time.Time)
	if !ok || !got.Equal(expire) {
		t.Fatalf("expireAt = %#v, want the timestamp %v", snap.Data()["expireAt"], expire)
	}
}
