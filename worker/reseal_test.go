package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/firestore"
	"github.com/wxcc/tokenservice/shared/token"
)

func newKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// TestReseal runs worker -reseal after phase 2 of a key rotation
// (TOKEN_ENCRYPTION_KEYS=k2,k1): a token sealed under k1 and one in plain
// text (the sample's) end up under k2, including one in reauth_required
// that refreshing would never rewrite; one under a lost key is counted as
// failed, and fails the command (non-zero exit) after the others were
// re-sealed; the counts are JSON on stdout either way.
func TestReseal(t *testing.T) {
	t.Parallel()
	k1, k2 := "k1:"+newKey(), "k2:"+newKey()
	h := newHarness(t, map[string]string{"TOKEN_ENCRYPTION_KEYS": k2 + "," + k1})
	h.Secret(k1, k2)
	opt, _, err := firestore.WithKeys(k1)
	if err != nil {
		t.Fatal(err)
	}
	old := firestore.New(h.Firestore, h.Collection, opt)
	ctx := context.Background()
	if _, err := old.Create(ctx, &token.Token{Name: "dead", ClientID: "c", ClientSecret: "cs-" + newKey(),
		AccessToken: "at-" + newKey(), RefreshToken: "rt-" + newKey(), Status: token.StatusReauthRequired,
		AccessExpires: time.Now().Add(-time.Hour), RefreshExpires: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	h.seed("plain", 6*time.Hour, 30*24*time.Hour)
	lost := h.seed("lost", 6*time.Hour, 30*24*time.Hour)
	if _, err := h.Firestore.Collection(h.Collection).Doc("lost").Update(ctx, []gfsUpdate{
		{Path: "accessToken", Value: "enc:v1:k0:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := run(ctx, []string{"-reseal"}, h.Getenv, &out, h.Logs, nil); err == nil || !strings.Contains(err.Error(), "1 of 3 tokens failed") {
		t.Fatalf("-reseal with a token under a lost key: got %v, want an error counting it", err)
	}
	var got resealSummary
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("stdout %q: %v", out.String(), err)
	}
	if want := (resealSummary{Scanned: 3, Resealed: 2, AlreadyCurrent: 0, Failed: 1}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, name := range []string{"dead", "plain"} {
		d := h.Doc(name)
		for _, f := range []string{"clientSecret", "accessToken", "refreshToken"} {
			if v, _ := d[f].(string); !strings.HasPrefix(v, "enc:v1:k2:") {
				t.Errorf("%s.%s is not sealed under k2", name, f)
			}
		}
	}
	if d := h.Doc("lost"); d["clientSecret"] != lost.ClientSecret {
		t.Error("a document with a value no key opens was rewritten")
	}
	if !strings.Contains(h.Logs.String(), `"token":"lost"`) {
		t.Errorf("the log does not name the token that failed:\n%s", h.Logs.String())
	}

	out.Reset()
	if err := run(ctx, []string{"-reseal"}, h.Getenv, &out, h.Logs, nil); err == nil {
		t.Fatal("a second -reseal succeeded although a token still fails")
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got != (resealSummary{Scanned: 3, AlreadyCurrent: 2, Failed: 1}) {
		t.Fatalf("second run: got %+v (%v)", got, err)
	}

	// Repaired (here: the lost token deleted), the command succeeds.
	if _, err := h.Firestore.Collection(h.Collection).Doc("lost").Delete(ctx); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(ctx, []string{"-reseal"}, h.Getenv, &out, h.Logs, nil); err != nil {
		t.Fatalf("-reseal with every token current: %v", err)
	}
}

// TestResealFailsWhenTheWalkFails: no keys configured, or a collection
// that cannot be queried, is a non-zero exit.
func TestResealFailsWhenTheWalkFails(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-reseal"}, h.Getenv, &out, h.Logs, nil); err == nil ||
		!strings.Contains(err.Error(), "TOKEN_ENCRYPTION_KEYS") {
		t.Fatalf("without keys: got %v, want an error naming TOKEN_ENCRYPTION_KEYS", err)
	}
	h.Env["TOKEN_ENCRYPTION_KEYS"] = "k1:" + newKey()
	h.Env["TOKENS_COLLECTION"] = "__bad__"
	if err := run(context.Background(), []string{"-reseal"}, h.Getenv, &out, h.Logs, nil); err == nil {
		t.Fatal("-reseal over an unusable collection succeeded")
	}
	if err := run(context.Background(), []string{"-reseal", "-once"}, h.Getenv, &out, h.Logs, nil); err == nil {
		t.Fatal("-reseal -once was accepted")
	}
}
