package firestore

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/testing/emulator"
	"github.com/wxcc/tokenservice/shared/token"
)

func randomKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// keyed returns a store over collection with TOKEN_ENCRYPTION_KEYS spec.
func keyed(t *testing.T, c *gfs.Client, collection, spec string) *Store {
	t.Helper()
	opt, _, err := WithKeys(spec)
	if err != nil {
		t.Fatal(err)
	}
	return New(c, collection, opt)
}

// rawSecrets reads the stored form of a document's secret fields.
func rawSecrets(t *testing.T, coll *gfs.CollectionRef, name string) []string {
	t.Helper()
	snap, err := coll.Doc(name).Get(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range secretFields {
		v, _ := snap.Data()[f].(string)
		out = append(out, v)
	}
	return out
}

// TestReseal rotates from k1 to k2 as the README's runbook does: after
// phase 2 (TOKEN_ENCRYPTION_KEYS=k2,k1) a re-seal leaves no value under
// k1 or in plain text, so that k1 can be removed; a value no key opens
// is counted as failed and left as it is; a second run writes nothing.
func TestReseal(t *testing.T) {
	t.Parallel()
	c := emulator.FirestoreClient(t)
	name := emulator.Collection(t)
	coll := c.Collection(name)
	k1, k2 := "k1:"+randomKey(), "k2:"+randomKey()
	old := keyed(t, c, name, k1)
	rotated := keyed(t, c, name, k2+","+k1)
	ctx := ctxT(t)

	for _, n := range []string{"a-under-k1", "b-under-k1"} {
		if _, err := old.Create(ctx, sampleToken(n)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rotated.Create(ctx, sampleToken("c-under-k2")); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.Doc("d-plain").Set(ctx, sampleDoc()); err != nil { // the Node sample's
		t.Fatal(err)
	}
	lost := sampleDoc()
	lost["accessToken"] = "enc:v1:k0:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	if _, err := coll.Doc("e-lost-key").Set(ctx, lost); err != nil {
		t.Fatal(err)
	}
	pending := map[string]any{"clientId": "", "clientSecret": "", "redirectUri": ""} // as /init creates
	if _, err := coll.Doc("f-pending").Set(ctx, pending); err != nil {
		t.Fatal(err)
	}
	currentC := rawSecrets(t, coll, "c-under-k2")

	var failed []string
	got, err := rotated.Reseal(ctx, 2, func(name string, err error) { failed = append(failed, name) })
	if err != nil {
		t.Fatal(err)
	}
	want := ResealCounts{Scanned: 6, Resealed: 3, Current: 2, Failed: 1}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if len(failed) != 1 || failed[0] != "e-lost-key" {
		t.Fatalf("failed %v, want [e-lost-key]", failed)
	}
	for _, n := range []string{"a-under-k1", "b-under-k1", "c-under-k2", "d-plain"} {
		for i, v := range rawSecrets(t, coll, n) {
			if !strings.HasPrefix(v, "enc:v1:k2:") {
				t.Errorf("%s.%s = %.12q…, want sealed under k2", n, secretFields[i], v)
			}
		}
	}
	if after := rawSecrets(t, coll, "c-under-k2"); strings.Join(after, ",") != strings.Join(currentC, ",") {
		t.Error("a document already under k2 was rewritten")
	}
	if v := rawSecrets(t, coll, "e-lost-key")[1]; v != lost["accessToken"] {
		t.Errorf("a value no key opens was changed to %q", v)
	}
	// Phase 3: k1 is gone, every re-sealed document still opens.
	onlyK2 := keyed(t, c, name, k2)
	for _, n := range []string{"a-under-k1", "b-under-k1", "d-plain"} {
		tok, err := onlyK2.Get(ctx, n)
		if err != nil {
			t.Fatalf("%s with k2 only: %v", n, err)
		}
		if tok.AccessToken != "AT" || tok.RefreshToken != "RT" || tok.ClientSecret != "S1" {
			t.Errorf("%s opened to other values", n)
		}
	}

	again, err := rotated.Reseal(ctx, 100, func(string, error) {})
	if err != nil {
		t.Fatal(err)
	}
	if want := (ResealCounts{Scanned: 6, Current: 5, Failed: 1}); again != want {
		t.Fatalf("second run: got %+v, want %+v", again, want)
	}
}

// TestResealNeverOverwritesAConcurrentWrite: a refresh that commits
// between the re-seal's read and its write (here an old instance that
// still seals under k1) wins; the re-seal reads again and seals the new
// tokens, not the ones it read.
func TestResealNeverOverwritesAConcurrentWrite(t *testing.T) {
	t.Parallel()
	c := emulator.FirestoreClient(t)
	name := emulator.Collection(t)
	k1, k2 := "k1:"+randomKey(), "k2:"+randomKey()
	old := keyed(t, c, name, k1)
	rotated := keyed(t, c, name, k2+","+k1)
	ctx := ctxT(t)
	if _, err := old.Create(ctx, sampleToken("busy")); err != nil {
		t.Fatal(err)
	}
	stale, err := c.Collection(name).Doc("busy").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Update(ctx, "busy", func(t *token.Token) ([]token.Event, error) {
		t.AccessToken, t.Generation = "AT-new", t.Generation+1
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	resealed, err := rotated.resealDocument(ctx, stale)
	if err != nil || !resealed {
		t.Fatalf("got %v, %v; want a re-seal", resealed, err)
	}
	tok, err := rotated.Get(ctx, "busy")
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "AT-new" || tok.Generation != 1 {
		t.Fatalf("the concurrent refresh was overwritten: access token %q, generation %d", tok.AccessToken, tok.Generation)
	}
	for i, v := range rawSecrets(t, c.Collection(name), "busy") {
		if !strings.HasPrefix(v, "enc:v1:k2:") {
			t.Errorf("%s not sealed under k2", secretFields[i])
		}
	}
}

func TestResealNeedsKeys(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	if _, err := s.Reseal(ctxT(t), 10, func(string, error) {}); err == nil || !strings.Contains(err.Error(), "TOKEN_ENCRYPTION_KEYS") {
		t.Fatalf("got %v, want an error naming TOKEN_ENCRYPTION_KEYS", err)
	}
}

func TestSealedKeyID(t *testing.T) {
	for in, want := range map[string]string{
		"enc:v1:k2:abc": "k2", "plain": "", "enc:v2:k2:abc": "", "enc:v1:k2": "", "": "",
	} {
		if got := sealedKeyID(in); got != want {
			t.Errorf("sealedKeyID(%q) = %q, want %q", in, got, want)
		}
	}
}
