package firestore

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/activity"
)

// defaultActivityRetention keeps the entries of a store made without
// WithActivity (tests) for a day; the binaries pass ACTIVITY_RETENTION,
// whose default lives in the configuration.
const defaultActivityRetention = 24 * time.Hour

// WithActivity names the collection of the activity record
// (ACTIVITY_COLLECTION) and how long entries are kept
// (ACTIVITY_RETENTION): each entry's expireAt, for a Firestore TTL policy.
func WithActivity(collection string, retention time.Duration) Option {
	return func(s *Store) { s.activityName, s.activityRetention = collection, retention }
}

// Fields of an activity document. Times are Firestore timestamps (the TTL
// policy needs one in expireAt), unlike the token documents' milliseconds.
const (
	fActorKind = "actorKind"
	fActor     = "actor"
	fAction    = "action"
	fToken     = "token"
	fAddr      = "addr"
	fOutcome   = "outcome"
	fDetail    = "detail"
	fExpireAt  = "expireAt"
	// A rotation's entry also has fGeneration and fAccessExpires, named
	// as in a token document; accessExpires is a timestamp here, like
	// every time of this collection.
)

// Activity is the activity record: one document per entry, with an
// automatic ID, in the activity collection.
type Activity struct {
	coll      *gfs.CollectionRef
	name      string
	retention time.Duration
	log       *slog.Logger
	reads     *atomic.Int64
}

var _ activity.Store = (*Activity)(nil)

// Activity returns the store of the activity record.
func (s *Store) Activity() *Activity {
	return &Activity{
		coll: s.client.Collection(s.activityName), name: s.activityName,
		retention: s.activityRetention, log: s.log, reads: &s.reads,
	}
}

// Add stores e as a new document; expireAt is e.At + the retention.
func (a *Activity) Add(ctx context.Context, e activity.Entry) error {
	at := e.At.UTC()
	doc := map[string]any{
		fAt: at, fActorKind: string(e.ActorKind), fActor: e.Actor, fAction: string(e.Action),
		fToken: e.Token, fAddr: e.Addr, fOutcome: string(e.Outcome), fDetail: e.Detail,
		fExpireAt: at.Add(a.retention),
	}
	if e.Generation != 0 {
		doc[fGeneration] = e.Generation
	}
	if !e.AccessExpires.IsZero() {
		doc[fAccessExpires] = e.AccessExpires.UTC()
	}
	if _, err := a.coll.NewDoc().Create(ctx, doc); err != nil {
		return fmt.Errorf("add activity %s: %w", e.Action, translate(err, false))
	}
	return nil
}

// Batches of a listing that filters in memory: at most maxScanned
// documents are read for one page; a page may then hold fewer entries
// than asked and still have a next one.
const (
	scanBatch  = 200
	maxScanned = 1000
)

// List returns a page of entries, newest first, ties by document ID
// descending. The query uses at most two equality filters, from the
// pairs the deployment indexes (see activityQuery); a third filter is
// applied in memory.
func (a *Activity) List(ctx context.Context, f activity.Filter) (activity.Page, error) {
	f, err := f.Normalize()
	if err != nil {
		return activity.Page{}, fmt.Errorf("list activity: %w", err)
	}
	var (
		afterAt time.Time
		afterID string
	)
	if f.Cursor != "" {
		if afterAt, afterID, err = activity.DecodeCursor(f.Cursor); err != nil {
			return activity.Page{}, fmt.Errorf("list activity: %w", err)
		}
	}
	plan := activityQuery(f)
	q := a.coll.Query
	for _, w := range plan.where {
		q = q.Where(w.field, "==", w.value)
	}
	if !f.Since.IsZero() {
		// A range on at, the field the listing orders by: the same
		// indexes serve it.
		q = q.Where(fAt, ">=", f.Since.UTC())
	}
	q = q.OrderBy(fAt, gfs.Desc).OrderBy(gfs.DocumentID, gfs.Desc)

	var page activity.Page
	if !plan.inMemory {
		// One read of limit+1 tells whether there is a next page.
		if afterID != "" {
			q = q.StartAfter(afterAt, afterID)
		}
		docs, err := q.Limit(f.Limit + 1).Documents(ctx).GetAll()
		a.reads.Add(int64(max(len(docs), 1)))
		if err != nil {
			return activity.Page{}, fmt.Errorf("list activity: %w", translate(err, false))
		}
		for i, d := range docs {
			if i == f.Limit {
				last := page.Entries[len(page.Entries)-1]
				page.Next = activity.EncodeCursor(last.At, last.ID)
				break
			}
			page.Entries = append(page.Entries, a.decode(d))
		}
		return page, nil
	}
	for scanned := 0; ; {
		qq := q
		if afterID != "" {
			qq = q.StartAfter(afterAt, afterID)
		}
		docs, err := qq.Limit(scanBatch).Documents(ctx).GetAll()
		a.reads.Add(int64(max(len(docs), 1)))
		if err != nil {
			return activity.Page{}, fmt.Errorf("list activity: %w", translate(err, false))
		}
		for _, d := range docs {
			e := a.decode(d)
			afterAt, afterID = e.At, e.ID
			scanned++
			if !f.Matches(e) {
				continue
			}
			if len(page.Entries) == f.Limit {
				last := page.Entries[len(page.Entries)-1]
				page.Next = activity.EncodeCursor(last.At, last.ID)
				return page, nil
			}
			page.Entries = append(page.Entries, e)
		}
		if len(docs) < scanBatch {
			return page, nil
		}
		if scanned >= maxScanned {
			// Continue after the last document read, matching or not.
			page.Next = activity.EncodeCursor(afterAt, afterID)
			return page, nil
		}
	}
}

// queryPlan is what a listing asks Firestore: equality filters (besides
// the order by at, descending), and whether f needs more in memory.
type queryPlan struct {
	where    []equality
	inMemory bool
}

type equality struct {
	field string
	value string
}

// activityQuery picks the equality filters for f among what the
// deployment's composite indexes serve, each followed by at DESC:
// (token), (actor), (action), (token, action), (actor, action). No filter
// at all uses at's automatic single-field index. Token with actor asks
// for the token only and checks the actor in memory.
func activityQuery(f activity.Filter) queryPlan {
	var p queryPlan
	switch {
	case f.Token != "":
		p.where = append(p.where, equality{fToken, f.Token})
		p.inMemory = f.Actor != ""
	case f.Actor != "":
		p.where = append(p.where, equality{fActor, f.Actor})
	}
	if f.Action != "" {
		p.where = append(p.where, equality{fAction, string(f.Action)})
	}
	return p
}

// decode reads an activity document. A field of the wrong type is read
// as empty and logged; reading never fails.
func (a *Activity) decode(snap *gfs.DocumentSnapshot) activity.Entry {
	var bad []string
	d := decoder{data: snap.Data(), bad: &bad}
	e := activity.Entry{
		At: d.timestamp(fAt), ActorKind: activity.ActorKind(d.string(fActorKind)), Actor: d.string(fActor),
		Action: activity.Action(d.string(fAction)), Token: d.string(fToken), Addr: d.string(fAddr),
		Outcome: activity.Outcome(d.string(fOutcome)), Detail: d.string(fDetail), ID: snap.Ref.ID,
		AccessExpires: d.timestamp(fAccessExpires),
	}
	if g, ok := d.int(fGeneration); ok {
		e.Generation = g
	}
	if len(bad) > 0 {
		a.log.Warn("ignoring malformed fields of an activity entry", "collection", a.name, "id", snap.Ref.ID, "fields", bad)
	}
	return e
}

// timestamp reads a Firestore timestamp exactly (to the microsecond); a
// cursor made from it must match the stored value.
func (d decoder) timestamp(f string) time.Time {
	v, ok := d.field(f)
	if !ok {
		return time.Time{}
	}
	t, ok := v.(time.Time)
	if !ok {
		d.malformed(f, v)
		return time.Time{}
	}
	return t.UTC()
}
