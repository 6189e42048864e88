package firestore

import (
	"errors"
	"maps"
	"testing"
	"time"

	gfs "cloud.google.com/go/firestore"
	"github.com/google/go-cmp/cmp"

	"github.com/wxcc/tokenservice/shared/token"
)

// These tests plan writes from documents in memory: no emulator needed.

const planPath = "tokens/a"

// sealedAs is what fakeSealer makes of a value of field in planPath.
func sealedAs(field, plain string) string { return "enc:v1:k1:" + planPath + "#" + field + ":" + plain }

// planFor decodes doc the way Update does, lets fn change the token and
// plans the write.
func planFor(t *testing.T, doc map[string]any, sealer Sealer, now time.Time, fn func(*token.Token) []token.Event) (writePlan, error) {
	t.Helper()
	cur, bad := decode(doc)
	cur.Name = "a"
	if len(bad) > 0 {
		t.Logf("ignored malformed fields %v", bad)
	}
	in := writeInput{Data: doc, Current: cur, Sealer: sealer, DocPath: planPath, Now: now}
	var sealed *token.SealedError
	if err := (&Store{sealer: sealer}).open(cur, planPath); errors.As(err, &sealed) {
		in.Unopened = sealed.Fields
	} else if err != nil {
		t.Fatal(err)
	}
	in.Next = cur.Clone()
	in.Events = fn(in.Next)
	return planWrite(in)
}

// updates returns the planned field updates by path.
func updates(p writePlan) map[string]any {
	m := map[string]any{}
	for _, u := range p.Updates {
		m[u.Path] = u.Value
	}
	return m
}

func with(doc map[string]any, fields map[string]any) map[string]any {
	doc = maps.Clone(doc)
	maps.Copy(doc, fields)
	return doc
}

func TestPlanWrite(t *testing.T) {
	t.Parallel()
	now := ms.Add(time.Minute)
	setStatus := func(tok *token.Token) []token.Event { tok.Status = token.StatusActive; return nil }
	unopened := with(sampleDoc(), map[string]any{"accessToken": "enc:v1:lost:AAAA"})
	tests := []struct {
		name   string
		doc    map[string]any
		sealer Sealer
		fn     func(*token.Token) []token.Event
		want   map[string]any // updates by path; nil: nothing written
	}{
		{
			name: "nothing changed: nothing written", doc: sampleDoc(), sealer: fakeSealer{},
			fn: func(*token.Token) []token.Event { return nil },
		},
		{
			name: "nothing changed, encryption off: nothing written", doc: sampleDoc(),
			fn: func(*token.Token) []token.Event { return nil },
		},
		{
			name: "plain text of the Node sample is sealed on any write", doc: sampleDoc(), sealer: fakeSealer{}, fn: setStatus,
			want: map[string]any{
				"status":       "active",
				"clientSecret": sealedAs("clientSecret", "S1"),
				"accessToken":  sealedAs("accessToken", "AT"),
				"refreshToken": sealedAs("refreshToken", "RT"),
			},
		},
		{
			name: "encryption off: only what changed", doc: sampleDoc(), fn: setStatus,
			want: map[string]any{"status": "active"},
		},
		{
			name: "a secret no key opens is kept as stored", doc: unopened, sealer: fakeSealer{}, fn: setStatus,
			want: map[string]any{
				"status":       "active",
				"clientSecret": sealedAs("clientSecret", "S1"),
				"refreshToken": sealedAs("refreshToken", "RT"),
			},
		},
		{
			name: "a secret no key opens is replaced when set", doc: unopened, sealer: fakeSealer{},
			fn: func(tok *token.Token) []token.Event { tok.AccessToken = "AT2"; return nil },
			want: map[string]any{
				"clientSecret": sealedAs("clientSecret", "S1"),
				"accessToken":  sealedAs("accessToken", "AT2"),
				"refreshToken": sealedAs("refreshToken", "RT"),
			},
		},
		{
			name: "a sealed value without keys is kept as stored", doc: unopened, fn: setStatus,
			want: map[string]any{"status": "active"},
		},
		{
			name: "fields of other writers are not touched",
			doc: with(sampleDoc(), map[string]any{
				"note":      "kept by an operator",
				"lastError": "not a map", // malformed: ignored on read, left alone on write
			}),
			fn:   setStatus,
			want: map[string]any{"status": "active"},
		},
		{
			name: "a cleared field is deleted",
			doc:  with(sampleDoc(), map[string]any{"status": "reauth_required", "lastError": map[string]any{"message": "x", "permanent": true}}),
			fn: func(tok *token.Token) []token.Event {
				tok.Status, tok.LastError = "", nil
				return nil
			},
			want: map[string]any{"status": gfs.Delete, "lastError": gfs.Delete},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := planFor(t, tt.doc, tt.sealer, now, tt.fn)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if len(p.Updates) > 0 {
				got = updates(p)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("updates (-want +got):\n%s", diff)
			}
			if len(p.Outbox) != 0 {
				t.Errorf("%d outbox documents planned, want none", len(p.Outbox))
			}
		})
	}
}

// TestPlanWriteOutbox: events are planned as outbox documents whose seq
// follows the token's last one, or the clock when that is later, so that
// a token's events stay in commit order even when clocks go backwards.
func TestPlanWriteOutbox(t *testing.T) {
	t.Parallel()
	now := ms.Add(time.Minute)
	rotate := func(tok *token.Token) []token.Event {
		tok.Generation++
		return []token.Event{
			token.NewEvent(token.EventRotated, tok, token.TriggerScheduled, now),
			token.NewEvent(token.EventRefreshExpiring, tok, token.TriggerScheduled, now),
		}
	}
	tests := []struct {
		name    string
		lastSeq any // the document's outboxSeq; nil: none
		first   int64
	}{
		{"first events: from the clock", nil, now.UnixMicro()},
		{"clock ahead of the last seq", now.UnixMicro() - 5, now.UnixMicro()},
		{"clock behind the last seq", now.UnixMicro() + 1000, now.UnixMicro() + 1001},
		{"last seq stored as a double", float64(now.UnixMicro() + 1000), now.UnixMicro() + 1001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc := sampleDoc()
			if tt.lastSeq != nil {
				doc["outboxSeq"] = tt.lastSeq
			}
			p, err := planFor(t, doc, nil, now, rotate)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"generation": int64(1), "outboxSeq": tt.first + 1}
			if diff := cmp.Diff(want, updates(p)); diff != "" {
				t.Errorf("updates (-want +got):\n%s", diff)
			}
			if len(p.Outbox) != 2 {
				t.Fatalf("%d outbox documents, want 2", len(p.Outbox))
			}
			wantFirst := outboxWrite{ID: "a%2F1%2Ftoken.rotated", Data: map[string]any{
				"id": "a/1/token.rotated", "type": "token.rotated", "name": "a", "generation": int64(1),
				"trigger": "scheduled", "seq": tt.first, "time": now.UnixMilli(),
				"accessExpires": doc["accessExpires"], "refreshExpires": doc["refreshExpires"],
			}}
			if diff := cmp.Diff(wantFirst, p.Outbox[0], cmp.AllowUnexported(outboxWrite{})); diff != "" {
				t.Errorf("first outbox document (-want +got):\n%s", diff)
			}
			if got := p.Outbox[1].Data["seq"]; got != tt.first+1 {
				t.Errorf("second event's seq %v, want %d", got, tt.first+1)
			}
		})
	}
}

type failingSealer struct{ fakeSealer }

func (failingSealer) Seal(field, docPath, plain string) (string, error) {
	return "", errors.New("no primary key")
}

func TestPlanWriteSealFailure(t *testing.T) {
	t.Parallel()
	_, err := planFor(t, sampleDoc(), failingSealer{}, ms, func(tok *token.Token) []token.Event {
		tok.Status = token.StatusActive
		return nil
	})
	if err == nil {
		t.Fatal("planWrite succeeded although sealing failed")
	}
}
