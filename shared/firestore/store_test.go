package firestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gfs "cloud.google.com/go/firestore"
	"github.com/google/go-cmp/cmp"

	"github.com/wxcc/tokenservice/shared/testing/emulator"
	"github.com/wxcc/tokenservice/shared/testing/storetest"
	"github.com/wxcc/tokenservice/shared/token"
)

func TestMain(m *testing.M) { os.Exit(emulator.Main(m, emulator.Firestore)) }

// newStore returns a store on a collection of its own, and the raw
// collection for writing documents as other writers do.
func newStore(t *testing.T, opts ...Option) (*Store, *gfs.CollectionRef) {
	t.Helper()
	c := emulator.FirestoreClient(t)
	name := emulator.Collection(t)
	return New(c, name, opts...), c.Collection(name)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) token.Store {
		s, _ := newStore(t)
		return s
	})
}

// ms is a time at millisecond resolution.
var ms = time.UnixMilli(1_760_000_000_456)

// sampleDoc is a document as the Node sample writes it: its eight fields,
// times as integer milliseconds.
func sampleDoc() map[string]any {
	return map[string]any{
		"clientId":       "C1",
		"clientSecret":   "S1",
		"redirectUri":    "https://example.com/cb",
		"accessToken":    "AT",
		"refreshToken":   "RT",
		"accessExpires":  ms.Add(12 * time.Hour).UnixMilli(),
		"refreshExpires": ms.Add(90 * 24 * time.Hour).UnixMilli(),
		"lastRefresh":    ms.UnixMilli(),
	}
}

func sampleToken(name string) *token.Token {
	return &token.Token{
		Name:           name,
		ClientID:       "C1",
		ClientSecret:   "S1",
		RedirectURI:    "https://example.com/cb",
		AccessToken:    "AT",
		RefreshToken:   "RT",
		AccessExpires:  ms.Add(12 * time.Hour),
		RefreshExpires: ms.Add(90 * 24 * time.Hour),
		LastRefresh:    ms,
	}
}

func TestReadOtherWriters(t *testing.T) {
	t.Parallel()
	doubles := sampleDoc()
	for _, f := range []string{"accessExpires", "refreshExpires", "lastRefresh"} {
		doubles[f] = float64(doubles[f].(int64))
	}
	timestamps := sampleDoc()
	for _, f := range []string{"accessExpires", "refreshExpires", "lastRefresh"} {
		timestamps[f] = time.UnixMilli(timestamps[f].(int64))
	}
	initDoc := map[string]any{"clientId": "", "clientSecret": "", "redirectUri": ""}
	tests := []struct {
		name string
		doc  map[string]any
		want *token.Token
	}{
		{"node sample, integer ms", sampleDoc(), sampleToken("")},
		{"older writer, double ms", doubles, sampleToken("")},
		{"timestamps", timestamps, sampleToken("")},
		{"node sample /init", initDoc, &token.Token{}},
	}
	s, raw := newStore(t)
	ctx := ctxT(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("doc-%d", i)
			if _, err := raw.Doc(name).Set(ctx, tt.doc); err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(ctx, name)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			want := tt.want.Clone()
			want.Name = name
			want.Version = got.Version
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Get (-want +got):\n%s", diff)
			}
			if got.State() != want.State() {
				t.Errorf("State() = %v, want %v", got.State(), want.State())
			}
		})
	}
}

// TestWrittenDocument pins the document layout of DESIGN section 3: field
// names, integer milliseconds, maps for lease and lastError.
func TestWrittenDocument(t *testing.T) {
	t.Parallel()
	s, raw := newStore(t)
	ctx := ctxT(t)
	reported := int64(4)
	tok := &token.Token{
		Name: "full", ClientID: "C", ClientSecret: "S", RedirectURI: "R",
		Scopes: []string{"a", "b"}, AccessToken: "AT", RefreshToken: "RT",
		AccessExpires: ms.Add(time.Hour), RefreshExpires: ms.Add(2 * time.Hour), LastRefresh: ms,
		Generation: 5, Lease: token.Lease{Holder: "h", Until: ms.Add(time.Minute)},
		Status: token.StatusActive, LastError: &token.LastError{At: ms, Message: "m", Permanent: true},
		PassphraseHash: "$argon2id$x", NextAttempt: ms.Add(3 * time.Minute), Failures: 2,
		ConfigFingerprint: "fp", FailureReported: &reported, ExpiryWarned: ms.Add(4 * time.Minute),
	}
	if _, err := s.Create(ctx, tok); err != nil {
		t.Fatal(err)
	}
	snap, err := raw.Doc("full").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"clientId": "C", "clientSecret": "S", "redirectUri": "R",
		"scopes": []any{"a", "b"}, "accessToken": "AT", "refreshToken": "RT",
		"accessExpires": ms.Add(time.Hour).UnixMilli(), "refreshExpires": ms.Add(2 * time.Hour).UnixMilli(),
		"lastRefresh": ms.UnixMilli(), "generation": int64(5),
		"lease":  map[string]any{"holder": "h", "until": ms.Add(time.Minute).UnixMilli()},
		"status": "active", "lastError": map[string]any{"at": ms.UnixMilli(), "message": "m", "permanent": true},
		"passphraseHash": "$argon2id$x", "nextAttempt": ms.Add(3 * time.Minute).UnixMilli(), "failures": int64(2),
		"configFingerprint": "fp", "failureReported": int64(4), "expiryWarned": ms.Add(4 * time.Minute).UnixMilli(),
	}
	if diff := cmp.Diff(want, snap.Data()); diff != "" {
		t.Errorf("stored document (-want +got):\n%s", diff)
	}
	if _, err := s.Create(ctx, &token.Token{Name: "init"}); err != nil {
		t.Fatal(err)
	}
	snap, err = raw.Doc("init").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]any{"clientId": "", "clientSecret": "", "redirectUri": "", "accessToken": "", "refreshToken": "", "generation": int64(0)}
	if diff := cmp.Diff(want, snap.Data()); diff != "" {
		t.Errorf("stored document of an empty token (-want +got):\n%s", diff)
	}
}

func TestMalformedFields(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	var mu sync.Mutex
	s, raw := newStore(t, WithLogger(slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &mu}, nil))))
	ctx := ctxT(t)
	doc := sampleDoc()
	bad := map[string]any{
		"accessExpires":   "tomorrow",
		"lease":           "held",
		"lastError":       map[string]any{"at": "noon", "message": int64(42), "permanent": "yes"},
		"scopes":          []any{"ok", int64(7)},
		"generation":      1.5,
		"failures":        "many",
		"failureReported": true,
		"clientSecret":    int64(12),
		"status":          map[string]any{"x": int64(1)},
		"nextAttempt":     []any{int64(1)},
	}
	for k, v := range bad {
		doc[k] = v
	}
	if _, err := raw.Doc("bad").Set(ctx, doc); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "bad")
	if err != nil {
		t.Fatalf("Get of a malformed document: %v", err)
	}
	want := sampleToken("bad")
	want.AccessExpires = time.Time{}
	want.ClientSecret = ""
	want.LastError = &token.LastError{}
	want.Version = got.Version
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Get of a malformed document (-want +got):\n%s", diff)
	}
	mu.Lock()
	logged := logs.String()
	mu.Unlock()
	for _, f := range []string{"accessExpires", "lease", "lastError.at", "lastError.message", "lastError.permanent", "scopes", "generation", "failures", "failureReported", "clientSecret", "status", "nextAttempt"} {
		if !strings.Contains(logged, f+" (") {
			t.Errorf("log does not name malformed field %s: %s", f, logged)
		}
	}

	// An update leaves malformed fields it did not change as they are.
	if _, err := s.Update(ctx, "bad", func(tok *token.Token) ([]token.Event, error) {
		tok.AccessToken = "AT2"
		return nil, nil
	}); err != nil {
		t.Fatalf("Update of a malformed document: %v", err)
	}
	snap, err := raw.Doc("bad").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data := snap.Data()
	for k, v := range bad {
		if diff := cmp.Diff(v, data[k]); diff != "" {
			t.Errorf("Update changed malformed field %s (-before +after):\n%s", k, diff)
		}
	}
	if data["accessToken"] != "AT2" {
		t.Errorf("accessToken = %v, want AT2", data["accessToken"])
	}
	// Replacing a malformed value heals it.
	if _, err := s.Update(ctx, "bad", func(tok *token.Token) ([]token.Event, error) {
		tok.AccessExpires = ms
		tok.Lease = token.Lease{Holder: "h"}
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err = s.Get(ctx, "bad")
	if err != nil {
		t.Fatal(err)
	}
	if !got.AccessExpires.Equal(ms) || got.Lease.Holder != "h" {
		t.Errorf("after replacing malformed fields: accessExpires %v lease %+v", got.AccessExpires, got.Lease)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestUnknownFieldsSurvive(t *testing.T) {
	t.Parallel()
	s, raw := newStore(t)
	ctx := ctxT(t)
	doc := sampleDoc()
	doc["addedByOthers"] = map[string]any{"note": "keep me"}
	doc["orgId"] = "org-1"
	if _, err := raw.Doc("a").Set(ctx, doc); err != nil {
		t.Fatal(err)
	}
	tok, err := s.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TryLease(ctx, tok, token.Lease{Holder: "h", Until: ms}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, "a", func(tok *token.Token) ([]token.Event, error) {
		tok.AccessToken, tok.AccessExpires, tok.Generation = "AT2", ms.Add(24*time.Hour), 1
		tok.Lease, tok.Status = token.Lease{}, token.StatusActive
		return []token.Event{token.NewEvent(token.EventRotated, tok, token.TriggerScheduled, ms)}, nil
	}); err != nil {
		t.Fatal(err)
	}
	snap, err := raw.Doc("a").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data := snap.Data()
	if diff := cmp.Diff(map[string]any{"note": "keep me"}, data["addedByOthers"]); diff != "" {
		t.Errorf("addedByOthers after Update (-want +got):\n%s", diff)
	}
	if data["orgId"] != "org-1" {
		t.Errorf("orgId after Update = %v, want org-1", data["orgId"])
	}
	if _, ok := data["lease"]; ok {
		t.Errorf("released lease still stored: %v", data["lease"])
	}
	if v, ok := data["accessExpires"].(int64); !ok || v != ms.Add(24*time.Hour).UnixMilli() {
		t.Errorf("accessExpires = %#v, want integer ms", data["accessExpires"])
	}
}

// TestOutboxOrderAgainstClock checks that a token's events stay in commit
// order even if the committer's clock goes backwards.
func TestOutboxOrderAgainstClock(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := ctxT(t)
	if _, err := s.Create(ctx, sampleToken("a")); err != nil {
		t.Fatal(err)
	}
	clock := ms
	s.now = func() time.Time { return clock }
	var want []string
	for i := range 3 {
		clock = clock.Add(-time.Hour) // every commit an hour earlier
		_, err := s.Update(ctx, "a", func(tok *token.Token) ([]token.Event, error) {
			tok.Generation++
			a := token.NewEvent(token.EventRotated, tok, token.TriggerScheduled, clock)
			b := token.NewEvent(token.EventRefreshExpiring, tok, token.TriggerScheduled, clock)
			want = append(want, a.ID, b.ID)
			return []token.Event{a, b}, nil
		})
		if err != nil {
			t.Fatalf("Update %d: %v", i, err)
		}
	}
	events, err := s.PendingEvents(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		got = append(got, e.ID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("event order (-want +got):\n%s", diff)
	}
}

// TestDueNumberTypes checks that the range query finds integer and double
// milliseconds alike, in numeric order, and skips timestamps.
func TestDueNumberTypes(t *testing.T) {
	t.Parallel()
	s, raw := newStore(t)
	ctx := ctxT(t)
	docs := map[string]any{
		"int-1":     ms.Add(1 * time.Minute).UnixMilli(),
		"double-2":  float64(ms.Add(2 * time.Minute).UnixMilli()),
		"int-3":     ms.Add(3 * time.Minute).UnixMilli(),
		"double-4":  float64(ms.Add(4*time.Minute).UnixMilli()) + 0.5,
		"timestamp": ms.Add(time.Minute),
		"int-late":  ms.Add(time.Hour).UnixMilli(),
	}
	for name, v := range docs {
		d := sampleDoc()
		d["accessExpires"] = v
		if _, err := raw.Doc(name).Set(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	before := s.Reads()
	var got []string
	if err := s.Due(ctx, ms.Add(30*time.Minute), 3, func(tok *token.Token) error {
		got = append(got, tok.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"int-1", "double-2", "int-3", "double-4"}, got); diff != "" {
		t.Errorf("Due (-want +got):\n%s", diff)
	}
	if reads := s.Reads() - before; reads != 4 {
		t.Errorf("Due read %d documents, want 4", reads)
	}
}

// fakeSealer marks values instead of encrypting them.
type fakeSealer struct{}

func (fakeSealer) Seal(field, docPath, plain string) (string, error) {
	return "enc:v1:k1:" + docPath + "#" + field + ":" + plain, nil
}

func (fakeSealer) Open(field, docPath, stored string) (string, error) {
	prefix := "enc:v1:k1:" + docPath + "#" + field + ":"
	switch {
	case strings.HasPrefix(stored, prefix):
		return strings.TrimPrefix(stored, prefix), nil
	case strings.HasPrefix(stored, "enc:"):
		return "", fmt.Errorf("%w: key or place does not match", token.ErrSealed)
	default:
		return stored, nil
	}
}

func TestSealer(t *testing.T) {
	t.Parallel()
	s, raw := newStore(t, WithSealer(fakeSealer{}))
	ctx := ctxT(t)
	sealed := func(name, field, v string) string {
		return "enc:v1:k1:" + s.name + "/" + name + "#" + field + ":" + v
	}

	// Created documents are sealed; reading opens them.
	if _, err := s.Create(ctx, sampleToken("new")); err != nil {
		t.Fatal(err)
	}
	snap, err := raw.Doc("new").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := snap.Data()["accessToken"], sealed("new", "accessToken", "AT"); got != want {
		t.Errorf("stored accessToken = %v, want %v", got, want)
	}
	got, err := s.Get(ctx, "new")
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessToken != "AT" || got.ClientSecret != "S1" || got.RefreshToken != "RT" {
		t.Errorf("Get did not open the secrets: %+v", got)
	}

	// The Node sample's plain text is read as it is and sealed at the
	// next write, even one that changes other fields only.
	if _, err := raw.Doc("plain").Set(ctx, sampleDoc()); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "plain"); err != nil || got.AccessToken != "AT" {
		t.Fatalf("Get of plain text = %v, %v", got, err)
	}
	if _, err := s.Update(ctx, "plain", func(tok *token.Token) ([]token.Event, error) {
		tok.Failures++
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	snap, err = raw.Doc("plain").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for f, v := range map[string]string{"clientSecret": "S1", "accessToken": "AT", "refreshToken": "RT"} {
		if got, want := snap.Data()[f], sealed("plain", f, v); got != want {
			t.Errorf("%s after Update = %v, want %v", f, got, want)
		}
	}

	// A value sealed for another document does not open.
	moved := sampleDoc()
	moved["accessToken"] = sealed("new", "accessToken", "AT")
	if _, err := raw.Doc("moved").Set(ctx, moved); err != nil {
		t.Fatal(err)
	}
	_, err = s.Get(ctx, "moved")
	var sealedErr *token.SealedError
	if !errors.Is(err, token.ErrSealed) || !errors.As(err, &sealedErr) ||
		!slices.Equal(sealedErr.Fields, []string{"accessToken"}) || sealedErr.Token.RefreshToken != "RT" || sealedErr.Token.AccessToken != "" {
		t.Errorf("Get of a value sealed elsewhere: error = %v, want a SealedError naming accessToken only", err)
	}
	// Update sees it empty and keeps it as stored, neither cleared nor
	// sealed again, unless fn replaces it.
	if _, err := s.Update(ctx, "moved", func(tok *token.Token) ([]token.Event, error) {
		if tok.AccessToken != "" || tok.RefreshToken != "RT" {
			t.Errorf("Update's fn got access %q refresh %q, want empty and RT", tok.AccessToken, tok.RefreshToken)
		}
		tok.ClientSecret = "S2"
		return nil, nil
	}); err != nil {
		t.Fatalf("Update of a document with a value sealed elsewhere: %v", err)
	}
	snap, err = raw.Doc("moved").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := snap.Data()["accessToken"], sealed("new", "accessToken", "AT"); got != want {
		t.Errorf("accessToken that does not open, after Update = %v, want it kept as %v", got, want)
	}
	if got, want := snap.Data()["clientSecret"], sealed("moved", "clientSecret", "S2"); got != want {
		t.Errorf("clientSecret after Update = %v, want %v", got, want)
	}
	if _, err := s.Update(ctx, "moved", func(tok *token.Token) ([]token.Event, error) {
		tok.AccessToken = "AT2"
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "moved"); err != nil || got.AccessToken != "AT2" {
		t.Fatalf("after replacing the value that did not open: %v, %v", got, err)
	}
	if _, err := raw.Doc("moved").Set(ctx, moved); err != nil { // sealed elsewhere again, for Due
		t.Fatal(err)
	}
	// A sweep skips it, goes on and reports it.
	var swept []string
	err = s.Due(ctx, ms.Add(24*time.Hour), 10, func(tok *token.Token) error {
		swept = append(swept, tok.Name)
		return nil
	})
	if !errors.Is(err, token.ErrSealed) || len(swept) != 2 {
		t.Errorf("Due over a document that does not open: swept %v, error %v; want the 2 others and ErrSealed", swept, err)
	}

	// List shows every token, two per page, the one that does not open
	// with only that secret empty.
	listed := map[string]*token.Token{}
	if err := s.List(ctx, 2, func(tok *token.Token) error {
		listed[tok.Name] = tok
		return nil
	}); err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(listed) != 3 || listed["moved"] == nil || listed["moved"].AccessToken != "" || listed["moved"].RefreshToken != "RT" || listed["new"].AccessToken != "AT" {
		t.Errorf("List gave %v, want new, plain and moved, moved without its access token", listed)
	}

	// Without a sealer, a sealed value is not served as a token.
	plainStore := New(s.client, s.name)
	if _, err := plainStore.Get(ctx, "new"); !errors.Is(err, token.ErrSealed) {
		t.Errorf("Get of a sealed value without keys: error = %v, want ErrSealed", err)
	}
}

func TestInvalidName(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := ctxT(t)
	for _, name := range []string{"", "a/b", "__x__", ".."} {
		if _, err := s.Get(ctx, name); !errors.Is(err, token.ErrInvalidName) {
			t.Errorf("Get(%q) error = %v, want ErrInvalidName", name, err)
		}
		if _, err := s.Create(ctx, &token.Token{Name: name}); !errors.Is(err, token.ErrInvalidName) {
			t.Errorf("Create(%q) error = %v, want ErrInvalidName", name, err)
		}
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	if err := s.Ping(ctxT(t)); err != nil {
		t.Errorf("Ping: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping with a canceled context succeeded")
	}
}

func TestOutboxID(t *testing.T) {
	tests := []struct{ name, id, want string }{
		{"plain", "a/3/token.rotated", "a%2F3%2Ftoken.rotated"},
		{"percent", "a%2F", "a%252F"},
		{"reserved", "__x__", "h-"},
		{"empty", "", "h-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := outboxID(tt.id); got != tt.want && !(tt.want == "h-" && strings.HasPrefix(got, "h-")) {
				t.Errorf("outboxID(%q) = %q, want %q", tt.id, got, tt.want)
			}
		})
	}
}
