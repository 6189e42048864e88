package firestore

import (
	"context"
	"errors"
	"fmt"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/token"
)

// errNoDocument stops the delete transaction when there is nothing to delete.
var errNoDocument = errors.New("no document")

// Delete removes name's document and, in the same transaction, writes
// into the outbox the event that event builds from the document as it
// was (token.deleted), so that the deletion is reported even if the
// process dies before publishing. The document is read without opening
// its secrets: a token whose secrets no configured key opens can be
// deleted too. ErrNotFound if there is no document.
func (s *Store) Delete(ctx context.Context, name string, event func(t *token.Token) token.Event) (token.Event, error) {
	ref, err := s.ref(name)
	if err != nil {
		return token.Event{}, fmt.Errorf("delete %q: %w", name, err)
	}
	var e token.Event
	err = s.client.RunTransaction(ctx, func(ctx context.Context, tx *gfs.Transaction) error {
		snap, err := tx.Get(ref)
		s.reads.Add(1)
		if err != nil {
			return err
		}
		if !snap.Exists() {
			return errNoDocument
		}
		t, _ := decode(snap.Data())
		t.Name = name
		e = event(t)
		last, _ := decoder{data: snap.Data(), bad: new([]string)}.int(fOutboxSeq)
		seq := max(s.now().UnixMicro(), last+1)
		if err := tx.Delete(ref, gfs.Exists); err != nil {
			return err
		}
		return tx.Set(s.outbox.Doc(outboxID(e.ID)), encodeEvent(e, seq))
	})
	if errors.Is(err, errNoDocument) {
		return token.Event{}, fmt.Errorf("delete %s: %w", name, token.ErrNotFound)
	}
	if err != nil {
		return token.Event{}, fmt.Errorf("delete %s: %w", name, translate(err, false))
	}
	return e, nil
}
