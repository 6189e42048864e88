// Package firestore is the Firestore adapter of the token service: it
// implements token.Store over one collection of token documents (DESIGN
// section 3), with an outbox of events in a sibling collection, the range
// query a sweep needs and a readiness probe. Firestore types stay inside
// this package: documents are converted to and from token.Token, and gRPC
// codes are translated into the model's sentinel errors.
//
// Reading is tolerant: integer and floating-point milliseconds and
// Firestore timestamps are accepted for times, and a field of the wrong
// type is ignored (treated as absent) and logged, never a panic or a
// failed read. Writes touch only the fields this package owns that
// changed, so fields added by other writers survive.
package firestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	gfs "cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wxcc/tokenservice/shared/token"
)

var _ token.Store = (*Store)(nil)

// Store keeps tokens in one Firestore collection and their pending events
// in "<collection>_outbox".
type Store struct {
	client *gfs.Client
	coll   *gfs.CollectionRef
	outbox *gfs.CollectionRef
	meta   *gfs.CollectionRef
	name   string
	sealer Sealer
	log    *slog.Logger
	now    func() time.Time
	reads  atomic.Int64
	// The activity record (activity.go).
	activityName      string
	activityRetention time.Duration
}

// Option configures a Store.
type Option func(*Store)

// WithSealer encrypts the secret fields at rest with sealer.
func WithSealer(sealer Sealer) Option { return func(s *Store) { s.sealer = sealer } }

// WithMetaCollection names the collection of the service's own records
// (META_COLLECTION: the last sweep, console sessions, links, notification
// state), apart from the tokens collection, which the sample's callers
// may list. Without it a store uses "<collection>_meta"; the binaries
// always pass META_COLLECTION, whose default lives in the configuration.
func WithMetaCollection(name string) Option {
	return func(s *Store) { s.meta = s.client.Collection(name) }
}

// WithClock sets the clock (time.Now by default) that stamps outbox
// events' order and used state nonces.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithLogger logs malformed documents to l (default: no logging).
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// New returns a store of the tokens in collection.
func New(client *gfs.Client, collection string, opts ...Option) *Store {
	s := &Store{
		client: client,
		coll:   client.Collection(collection),
		outbox: client.Collection(collection + "_outbox"),
		meta:   client.Collection(collection + "_meta"),
		name:   collection,
		log:    slog.New(slog.DiscardHandler),
		now:    time.Now,

		activityName:      collection + "_activity",
		activityRetention: defaultActivityRetention,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Reads is the number of documents this store has read, counted as
// Firestore bills reads: one per document fetched (found or not) and one
// for a query that returns nothing.
func (s *Store) Reads() int { return int(s.reads.Load()) }

// ref returns the document of a token name, or an error for a name that
// is not a safe document ID.
func (s *Store) ref(name string) (*gfs.DocumentRef, error) {
	if err := token.ValidateName(name); err != nil {
		return nil, err
	}
	return s.coll.Doc(name), nil
}

func (s *Store) docPath(name string) string { return s.name + "/" + name }

// Get reads one token.
func (s *Store) Get(ctx context.Context, name string) (*token.Token, error) {
	ref, err := s.ref(name)
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", name, err)
	}
	snap, err := ref.Get(ctx)
	s.reads.Add(1)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", name, translate(err, false))
	}
	t, err := s.fromSnapshot(snap)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", name, err)
	}
	return t, nil
}

// fromSnapshot converts an existing document to a token with its secrets
// opened.
func (s *Store) fromSnapshot(snap *gfs.DocumentSnapshot) (*token.Token, error) {
	return s.fromData(snap.Ref.ID, snap.Data(), snap.UpdateTime)
}

// fromData converts the data of the document name, stored at updated, to
// a token with its secrets opened.
func (s *Store) fromData(name string, data map[string]any, updated time.Time) (*token.Token, error) {
	t, bad := decode(data)
	t.Name = name
	t.Version = updated
	if len(bad) > 0 {
		s.log.Warn("ignoring malformed fields of token document", "token", t.Name, "collection", s.name, "fields", bad)
	}
	if err := s.open(t, s.docPath(t.Name)); err != nil {
		return nil, err
	}
	return t, nil
}

// TryLease writes only the lease, with the precondition that the document
// is still at t.Version: a single conditional write, no transaction. It
// returns t with the lease and the new Version, or token.ErrConflict.
func (s *Store) TryLease(ctx context.Context, t *token.Token, lease token.Lease) (*token.Token, error) {
	ref, err := s.ref(t.Name)
	if err != nil {
		return nil, fmt.Errorf("lease %q: %w", t.Name, err)
	}
	next := t.Clone()
	next.Lease = lease
	normalize(next)
	var value any = gfs.Delete
	if v, ok := encode(next)[fLease]; ok {
		value = v
	}
	wr, err := ref.Update(ctx, []gfs.Update{{Path: fLease, Value: value}}, gfs.LastUpdateTime(t.Version))
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w", t.Name, translate(err, true))
	}
	next.Version = wr.UpdateTime
	return next, nil
}

// Update runs fn in a transaction on the current token and writes the
// fields fn changed together with one outbox document per event, as
// planWrite plans them. If fn changes nothing and returns no events,
// nothing is written. fn's error is returned as it is. Secrets that no
// configured key opens reach fn empty and are kept as stored unless fn
// sets them: unlike Get, Update works on such a token, so that it can be
// repaired.
func (s *Store) Update(ctx context.Context, name string, fn func(t *token.Token) ([]token.Event, error)) (*token.Token, error) {
	ref, err := s.ref(name)
	if err != nil {
		return nil, fmt.Errorf("update %q: %w", name, err)
	}
	var (
		result  *token.Token
		wrote   bool
		fnErr   error // returned as it is
		ownErr  error // ours, not Firestore's: not translated
		commitR gfs.CommitResponse
	)
	err = s.client.RunTransaction(ctx, func(ctx context.Context, tx *gfs.Transaction) error {
		fnErr, ownErr = nil, nil
		snap, err := tx.Get(ref)
		s.reads.Add(1)
		if err != nil {
			return err
		}
		in := writeInput{Data: snap.Data(), Sealer: s.sealer, DocPath: s.docPath(name), Now: s.now()}
		in.Current, err = s.fromSnapshot(snap)
		var sealed *token.SealedError
		if errors.As(err, &sealed) {
			in.Current, in.Unopened, err = sealed.Token, sealed.Fields, nil
		}
		if err != nil {
			ownErr = err
			return err
		}
		in.Next = in.Current.Clone()
		if in.Events, err = fn(in.Next); err != nil {
			fnErr = err
			return err
		}
		in.Next.Name, in.Next.Version = in.Current.Name, in.Current.Version
		plan, err := planWrite(in)
		if err != nil {
			ownErr = err
			return err
		}
		result, wrote = in.Next, len(plan.Updates) > 0
		if !wrote {
			return nil
		}
		// The token's write comes first: its result carries the Version.
		if err := tx.Update(ref, plan.Updates); err != nil {
			return err
		}
		for _, o := range plan.Outbox {
			if err := tx.Set(s.outbox.Doc(o.ID), o.Data); err != nil {
				return err
			}
		}
		return nil
	}, gfs.WithCommitResponseTo(&commitR))
	if fnErr != nil {
		return nil, fnErr
	}
	if ownErr != nil {
		return nil, fmt.Errorf("update %s: %w", name, ownErr)
	}
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", name, translate(err, true))
	}
	if wrote {
		wrs, err := commitR.WriteResults()
		if err != nil || len(wrs) == 0 {
			return nil, fmt.Errorf("update %s: no write result (%v)", name, err)
		}
		result.Version = wrs[0].UpdateTime
	}
	return result, nil
}

// Create stores t if no document has its name and reports whether it did.
func (s *Store) Create(ctx context.Context, t *token.Token) (bool, error) {
	ref, err := s.ref(t.Name)
	if err != nil {
		return false, fmt.Errorf("create %q: %w", t.Name, err)
	}
	c := t.Clone()
	normalize(c)
	data := encode(c)
	if err := seal(s.sealer, data, s.docPath(t.Name)); err != nil {
		return false, fmt.Errorf("create %s: %w", t.Name, err)
	}
	if _, err := ref.Create(ctx, data); err != nil {
		if status.Code(err) == codes.AlreadyExists {
			return false, nil
		}
		return false, fmt.Errorf("create %s: %w", t.Name, translate(err, false))
	}
	return true, nil
}

// pingID is the document Ping reads. It need not exist.
const pingID = ".readyz"

// Ping checks that Firestore answers: it reads one document, which need
// not exist (one billed read).
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.coll.Doc(pingID).Get(ctx)
	s.reads.Add(1)
	if err != nil && status.Code(err) != codes.NotFound {
		return fmt.Errorf("ping firestore: %w", translate(err, false))
	}
	return nil
}
