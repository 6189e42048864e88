package firestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/token"
)

// Fields of an outbox document. Times are milliseconds since the epoch.
const (
	eID             = "id"
	eType           = "type"
	eName           = "name"
	eGeneration     = "generation"
	eAccessExpires  = "accessExpires"
	eRefreshExpires = "refreshExpires"
	eTrigger        = "trigger"
	eTime           = "time"
	eMessage        = "message"
	// eSeq orders the outbox: per token it increases with every commit
	// (see fOutboxSeq); across tokens it follows the committers' clocks
	// (microseconds since the epoch).
	eSeq = "seq"
)

// outboxID is the document ID of an event: its ID with '%' and '/'
// escaped, so that equal events share one document. An ID that would
// still not be a valid document ID is hashed.
func outboxID(eventID string) string {
	id := strings.NewReplacer("%", "%25", "/", "%2F").Replace(eventID)
	if id == "" || id == "." || id == ".." || len(id) > 1000 ||
		(strings.HasPrefix(id, "__") && strings.HasSuffix(id, "__")) {
		sum := sha256.Sum256([]byte(eventID))
		return "h-" + hex.EncodeToString(sum[:])
	}
	return id
}

func encodeEvent(e token.Event, seq int64) map[string]any {
	m := map[string]any{
		eID:         e.ID,
		eType:       string(e.Type),
		eName:       e.Name,
		eGeneration: e.Generation,
		eTrigger:    string(e.Trigger),
		eSeq:        seq,
	}
	putMillis(m, eAccessExpires, e.AccessExpires)
	putMillis(m, eRefreshExpires, e.RefreshExpires)
	putMillis(m, eTime, e.Time)
	putString(m, eMessage, e.Message)
	return m
}

func decodeEvent(data map[string]any) (token.Event, []string) {
	var bad []string
	d := decoder{data: data, bad: &bad}
	e := token.Event{
		ID:             d.string(eID),
		Type:           token.EventType(d.string(eType)),
		Name:           d.string(eName),
		AccessExpires:  d.millis(eAccessExpires),
		RefreshExpires: d.millis(eRefreshExpires),
		Trigger:        token.Trigger(d.string(eTrigger)),
		Time:           d.millis(eTime),
		Message:        d.string(eMessage),
	}
	e.Generation, _ = d.int(eGeneration)
	return e, bad
}

// PendingEvents returns up to limit events of the outbox, oldest first;
// the events of one token in the order they were committed.
func (s *Store) PendingEvents(ctx context.Context, limit int) ([]token.Event, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("pending events: limit %d must be positive", limit)
	}
	snaps, err := s.outbox.OrderBy(eSeq, gfs.Asc).Limit(limit).Documents(ctx).GetAll()
	s.reads.Add(int64(max(len(snaps), 1)))
	if err != nil {
		return nil, fmt.Errorf("pending events: %w", translate(err, false))
	}
	events := make([]token.Event, 0, len(snaps))
	for _, snap := range snaps {
		e, bad := decodeEvent(snap.Data())
		if e.ID == "" {
			bad = append(bad, eID+" (missing)")
			// Still deliverable and deletable by its document's ID.
			e.ID = snap.Ref.ID
		}
		if len(bad) > 0 {
			s.log.Warn("ignoring malformed fields of outbox document", "id", snap.Ref.ID, "collection", s.outbox.ID, "fields", bad)
		}
		events = append(events, e)
	}
	return events, nil
}

// DeleteEvent removes a delivered event from the outbox. Deleting one that
// is gone already is not an error.
func (s *Store) DeleteEvent(ctx context.Context, id string) error {
	if _, err := s.outbox.Doc(outboxID(id)).Delete(ctx); err != nil {
		return fmt.Errorf("delete event %s: %w", id, translate(err, false))
	}
	return nil
}

// PendingFor returns the oldest limit pending events of one token, in
// commit order. It needs only Firestore's automatic single-field index:
// the equality filter is indexed, and the token's events (a few, unless
// Pub/Sub was down for many of its rotations) are all read and sorted
// here, since a limit in the query would pick by document ID, not age.
func (s *Store) PendingFor(ctx context.Context, name string, limit int) ([]token.Event, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("pending events of %s: limit %d must be positive", name, limit)
	}
	snaps, err := s.outbox.Where(eName, "==", name).Documents(ctx).GetAll()
	s.reads.Add(int64(max(len(snaps), 1)))
	if err != nil {
		return nil, fmt.Errorf("pending events of %s: %w", name, translate(err, false))
	}
	type seqEvent struct {
		seq int64
		e   token.Event
	}
	list := make([]seqEvent, 0, len(snaps))
	for _, snap := range snaps {
		e, _ := decodeEvent(snap.Data())
		if e.ID == "" {
			e.ID = snap.Ref.ID
		}
		seq, _ := decoder{data: snap.Data(), bad: new([]string)}.int(eSeq)
		list = append(list, seqEvent{seq, e})
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].seq < list[j].seq })
	list = list[:min(limit, len(list))]
	events := make([]token.Event, len(list))
	for i := range list {
		events[i] = list[i].e
	}
	return events, nil
}
