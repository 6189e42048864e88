package firestore

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/people"
	"github.com/wxcc/tokenservice/shared/people/peopletest"
	"github.com/wxcc/tokenservice/shared/token"
)

func TestLinksContract(t *testing.T) {
	peopletest.RunLinks(t, func(t *testing.T, now func() time.Time) (people.LinkStore, people.LinkStore) {
		a, b, _ := twoInstances(t, now)
		return a.Links(), b.Links()
	})
}

// testKeys returns a TOKEN_ENCRYPTION_KEYS spec with one new key.
func testKeys(t *testing.T, id string) Option {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	opt, _, err := WithKeys(id + ":" + base64.StdEncoding.EncodeToString(k))
	if err != nil {
		t.Fatal(err)
	}
	return opt
}

func TestLinksContractSealed(t *testing.T) {
	peopletest.RunLinks(t, func(t *testing.T, now func() time.Time) (people.LinkStore, people.LinkStore) {
		keys := testKeys(t, "k1")
		a, b, _ := twoInstances(t, now, keys)
		return a.Links(), b.Links()
	})
}

// TestLinkDocument: a link is stored at
// <META_COLLECTION>/console/links/<hash of the ID>, with expireAt for the
// TTL policy; neither the ID nor, with encryption at rest, the verifier
// is stored as such; the verifier is gone once the link is used.
func TestLinkDocument(t *testing.T) {
	t.Parallel()
	clock := peopletest.NewClock()
	a, _, meta := twoInstances(t, clock.Now, testKeys(t, "k1"))
	ctx := ctxT(t)
	id, l, err := people.NewLink("flow-1", "bob@example.com", "ann@example.com", clock.Now(), 72*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Links().Create(ctx, l); err != nil {
		t.Fatal(err)
	}
	ref := a.client.Doc(meta + "/console/links/" + people.KeyOf(id))
	snap, err := ref.Get(ctx)
	if err != nil {
		t.Fatalf("link document: %v", err)
	}
	data := snap.Data()
	if exp, ok := data["expireAt"].(time.Time); !ok || !exp.After(l.Expires) {
		t.Errorf("expireAt = %v, want a timestamp after the link's expiry %v", data["expireAt"], l.Expires)
	}
	if v, _ := data["verifier"].(string); !strings.HasPrefix(v, "enc:v1:k1:") {
		t.Errorf("verifier stored as %.12q…, want sealed under k1", v)
	}
	assertAbsent(t, snap, id)
	assertAbsent(t, snap, l.Verifier)

	// A sealed verifier copied into another link does not open there.
	_, other, _ := people.NewLink("flow-2", "", "ann@example.com", clock.Now(), time.Hour)
	if err := a.Links().Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	otherRef := a.client.Doc(meta + "/console/links/" + other.Key)
	if _, err := otherRef.Set(ctx, map[string]any{"verifier": data["verifier"]}, gfs.MergeAll); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Links().Use(ctx, other.Key, "x@example.com"); !errors.Is(err, token.ErrSealed) {
		t.Errorf("Use of a link with a moved verifier = %v, want ErrSealed", err)
	}
	if err := a.Links().Revoke(ctx, other.Key, "ann@example.com"); err != nil {
		t.Errorf("Revoke of a link whose verifier does not open = %v, want success", err)
	}

	if _, err := a.Links().Use(ctx, l.Key, "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	snap, err = ref.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := snap.Data()["verifier"]; ok {
		t.Errorf("a used link's document still holds the verifier")
	}
	if snap.Data()["state"] != "used" || snap.Data()["usedBy"] != "bob@example.com" {
		t.Errorf("used link stored as state %v by %v", snap.Data()["state"], snap.Data()["usedBy"])
	}
}
