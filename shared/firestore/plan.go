package firestore

import (
	"time"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/token"
)

// A write plan is what Update writes in its transaction, worked out from
// the document as read, without Firestore: the field updates of the
// token's document and the outbox documents of its events.

// writeInput is what planWrite needs.
type writeInput struct {
	// Data is the stored document's data, as read.
	Data map[string]any
	// Current is Data decoded, its secrets opened; the secret fields that
	// no key opens are empty and named in Unopened.
	Current  *token.Token
	Unopened []string
	// Next is the token as the caller left it, and Events what the caller
	// returned with it.
	Next   *token.Token
	Events []token.Event
	// Sealer seals the secret fields (nil: encryption off); DocPath is
	// "<collection>/<name>", part of what a sealed value is bound to.
	Sealer  Sealer
	DocPath string
	// Now is the committer's clock, which orders outbox events across
	// tokens.
	Now time.Time
}

// writePlan is what to write: nothing when Updates is empty.
type writePlan struct {
	// Updates are the changes of the token's document: only owned fields
	// that changed, so that fields added by other writers survive; with a
	// sealer, all secret fields present, re-sealed.
	Updates []gfs.Update
	// Outbox holds one document per event, in commit order.
	Outbox []outboxWrite
}

type outboxWrite struct {
	ID   string // document ID
	Data map[string]any
}

// planWrite plans the write that turns the document in in.Data into
// in.Next and commits in.Events:
//   - only owned fields that changed are written; nothing is written when
//     nothing changed and there are no events;
//   - secret fields that no key opens (in.Unopened) are kept as stored,
//     neither re-sealed nor cleared, unless in.Next sets them: a new
//     client secret or authorization repairs a token whose key was lost;
//   - with a sealer, every write re-seals the secrets, so that plain text
//     left by the Node sample, or a value sealed under an old key, ends
//     up sealed under the current primary key;
//   - events get outbox sequence numbers after the token's last one
//     (outboxSeq), or from the clock (microseconds) if that is later, so
//     that a token's events stay in commit order whatever the clocks do,
//     and outboxSeq records the last one.
//
// It normalizes in.Next (times at millisecond resolution, as stored).
func planWrite(in writeInput) (writePlan, error) {
	normalize(in.Next)
	after := encode(in.Next)
	ups := changes(encode(in.Current), after)
	for _, f := range in.Unopened {
		if v, _ := after[f].(string); v == "" {
			delete(after, f)
		}
	}
	var seq int64
	if len(in.Events) > 0 {
		last, _ := decoder{data: in.Data, bad: new([]string)}.int(fOutboxSeq)
		seq = max(in.Now.UnixMicro(), last+1)
		ups = append(ups, gfs.Update{Path: fOutboxSeq, Value: seq + int64(len(in.Events)) - 1})
	}
	if len(ups) > 0 && in.Sealer != nil {
		if err := seal(in.Sealer, after, in.DocPath); err != nil {
			return writePlan{}, err
		}
		ups = withSecrets(ups, after)
	}
	if len(ups) == 0 {
		return writePlan{}, nil
	}
	p := writePlan{Updates: ups}
	for i, e := range in.Events {
		p.Outbox = append(p.Outbox, outboxWrite{ID: outboxID(e.ID), Data: encodeEvent(e, seq+int64(i))})
	}
	return p, nil
}

// withSecrets replaces or adds the updates of the secret fields with their
// values in sealed, so that all three are written.
func withSecrets(ups []gfs.Update, sealed map[string]any) []gfs.Update {
	out := ups[:0:0]
	for _, u := range ups {
		if !isSecret(u.Path) {
			out = append(out, u)
		}
	}
	for _, f := range secretFields {
		if v, ok := sealed[f]; ok {
			out = append(out, gfs.Update{Path: f, Value: v})
		}
	}
	return out
}

func isSecret(field string) bool {
	for _, f := range secretFields {
		if f == field {
			return true
		}
	}
	return false
}
