package firestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	gfs "cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wxcc/tokenservice/shared/people"
	"github.com/wxcc/tokenservice/shared/token"
)

// Fields of a link document. state is pending, used or revoked (expiry is
// read from expires): it lets Pending ask for equality only, which
// Firestore serves from single-field indexes.
const (
	fState     = "state"
	fCreatedBy = "createdBy"
	fExpires   = "expires"
	fVerifier  = "verifier"
	fUsedAt    = "usedAt"
	fUsedBy    = "usedBy"
	fRevokedAt = "revokedAt"
	fRevokedBy = "revokedBy"
)

// linkKeep is how long a link document outlives its expiry before the TTL
// policy may delete it, so that someone opening an old link is told it
// expired or was used rather than that it never existed.
const linkKeep = 7 * 24 * time.Hour

// maxLinkAttempts bounds Use's and Revoke's read-then-write rounds; a
// round is lost only to another writer of the same link.
const maxLinkAttempts = 5

// Links keeps authorization links (people.LinkStore). The PKCE verifier
// is sealed like a token's secrets when encryption at rest is on, and
// deleted once the link is used or revoked.
type Links struct {
	coll   *gfs.CollectionRef
	path   string // "<META_COLLECTION>/console/links", for the sealing's associated data
	sealer Sealer
	now    func() time.Time
	log    *slog.Logger
}

var _ people.LinkStore = (*Links)(nil)

// Links returns the store of authorization links.
func (s *Store) Links() *Links {
	return &Links{
		coll: s.meta.Doc(consoleDoc).Collection(linksColl), path: s.meta.ID + "/" + consoleDoc + "/" + linksColl,
		sealer: s.sealer, now: s.now, log: s.log,
	}
}

func (l *Links) docPath(key string) string { return l.path + "/" + key }

// Create stores a new link under its key.
func (l *Links) Create(ctx context.Context, in *people.Link) error {
	if !people.ValidKey(in.Key) {
		return errors.New("create link: malformed key")
	}
	if in.Verifier == "" {
		return errors.New("create link: no PKCE verifier")
	}
	verifier := in.Verifier
	if l.sealer != nil {
		var err error
		if verifier, err = l.sealer.Seal(fVerifier, l.docPath(in.Key), in.Verifier); err != nil {
			return fmt.Errorf("create link: seal verifier: %w", err)
		}
	}
	doc := map[string]any{
		fToken: in.Token, fEmail: people.NormalizeEmail(in.Email), fCreatedBy: in.CreatedBy,
		fCreated: in.Created.UTC(), fExpires: in.Expires.UTC(), fVerifier: verifier,
		fState: string(people.LinkPending), fExpireAt: in.Expires.UTC().Add(linkKeep),
	}
	if _, err := l.coll.Doc(in.Key).Create(ctx, doc); err != nil {
		return fmt.Errorf("create link: %w", translate(err, false))
	}
	return nil
}

// Get returns the link of the URL's id, with its verifier while pending.
func (l *Links) Get(ctx context.Context, id string) (*people.Link, error) {
	if !people.ValidID(id) {
		return nil, people.ErrLinkNotFound
	}
	snap, err := l.read(ctx, people.KeyOf(id))
	if err != nil {
		return nil, err
	}
	return l.decode(snap, true)
}

// read fetches the link document of key.
func (l *Links) read(ctx context.Context, key string) (*gfs.DocumentSnapshot, error) {
	if !people.ValidKey(key) {
		return nil, people.ErrLinkNotFound
	}
	snap, err := l.coll.Doc(key).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return nil, people.ErrLinkNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read link: %w", translate(err, false))
	}
	return snap, nil
}

// Use marks the link used by by. It reads the link, checks it, and
// writes with the precondition that the document is unchanged since the
// read: of concurrent uses exactly one write lands; the others read again
// and find the link used. No transaction (DESIGN 5: conditional writes
// are faster and do not retry behind our back).
func (l *Links) Use(ctx context.Context, key, by string) (*people.Link, error) {
	var out *people.Link
	err := l.change(ctx, key, "use link", true, func(cur *people.Link, now time.Time) ([]gfs.Update, error) {
		if err := cur.Check(now, by); err != nil {
			return nil, err
		}
		out = cur
		out.UsedAt, out.UsedBy = now, by
		return []gfs.Update{
			{Path: fState, Value: string(people.LinkUsed)}, {Path: fUsedAt, Value: now.UTC()},
			{Path: fUsedBy, Value: by}, {Path: fVerifier, Value: gfs.Delete},
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Revoke ends a pending link, by the same conditional write as Use.
func (l *Links) Revoke(ctx context.Context, key, by string) error {
	return l.change(ctx, key, "revoke link", false, func(cur *people.Link, now time.Time) ([]gfs.Update, error) {
		if err := cur.Check(now, cur.Email); err != nil {
			return nil, err
		}
		return []gfs.Update{
			{Path: fState, Value: string(people.LinkRevoked)}, {Path: fRevokedAt, Value: now.UTC()},
			{Path: fRevokedBy, Value: by}, {Path: fVerifier, Value: gfs.Delete},
		}, nil
	})
}

// change reads the link of key, asks decide for the updates, and writes
// them if the document did not change since the read, else starts over.
// decide's error is returned as it is. Only a use needs the verifier
// opened: a link whose verifier no key opens can still be revoked.
func (l *Links) change(ctx context.Context, key, what string, withVerifier bool, decide func(*people.Link, time.Time) ([]gfs.Update, error)) error {
	for range maxLinkAttempts {
		snap, err := l.read(ctx, key)
		if err != nil {
			return err
		}
		cur, err := l.decode(snap, withVerifier)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		updates, err := decide(cur, l.now())
		if err != nil {
			return err
		}
		_, err = snap.Ref.Update(ctx, updates, gfs.LastUpdateTime(snap.UpdateTime))
		switch status.Code(err) {
		case codes.OK:
			return nil
		case codes.FailedPrecondition, codes.Aborted:
			continue // another writer changed it: read again
		case codes.NotFound:
			return people.ErrLinkNotFound
		}
		return fmt.Errorf("%s: %w", what, translate(err, true))
	}
	return fmt.Errorf("%s: %w", what, token.ErrConflict)
}

// Pending returns the pending links of name, or of every token for "",
// oldest first, without their verifiers. Expired links wait for the TTL
// policy and are skipped.
func (l *Links) Pending(ctx context.Context, name string) ([]people.Link, error) {
	q := l.coll.Where(fState, "==", string(people.LinkPending))
	if name != "" {
		q = q.Where(fToken, "==", name)
	}
	docs, err := q.Limit(maxConsoleDocs).Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", translate(err, false))
	}
	now := l.now()
	var out []people.Link
	for _, d := range docs {
		link, _ := l.decode(d, false)
		if link.State(now) == people.LinkPending {
			out = append(out, *link)
		}
	}
	slices.SortFunc(out, func(a, b people.Link) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out, nil
}

// decode reads a link document, opening the verifier if withVerifier.
func (l *Links) decode(snap *gfs.DocumentSnapshot, withVerifier bool) (*people.Link, error) {
	var bad []string
	d := decoder{data: snap.Data(), bad: &bad}
	link := &people.Link{
		Key: snap.Ref.ID, Token: d.string(fToken), Email: d.string(fEmail), CreatedBy: d.string(fCreatedBy),
		Created: d.timestamp(fCreated), Expires: d.timestamp(fExpires),
		UsedAt: d.timestamp(fUsedAt), UsedBy: d.string(fUsedBy),
		RevokedAt: d.timestamp(fRevokedAt), RevokedBy: d.string(fRevokedBy),
	}
	// A link whose state says used or revoked without the time still is.
	switch people.LinkState(d.string(fState)) {
	case people.LinkUsed:
		if link.UsedAt.IsZero() {
			link.UsedAt = link.Created
		}
	case people.LinkRevoked:
		if link.RevokedAt.IsZero() {
			link.RevokedAt = link.Created
		}
	}
	stored := d.string(fVerifier)
	if len(bad) > 0 {
		l.log.Warn("ignoring malformed fields of an authorization link", "fields", bad)
	}
	if !withVerifier || stored == "" {
		return link, nil
	}
	switch {
	case l.sealer != nil:
		v, err := l.sealer.Open(fVerifier, l.docPath(link.Key), stored)
		if err != nil {
			return nil, fmt.Errorf("open link verifier: %w", err)
		}
		link.Verifier = v
	case strings.HasPrefix(stored, sealedPrefix):
		return nil, fmt.Errorf("open link verifier: %w: encrypted, but no encryption keys are configured", token.ErrSealed)
	default:
		link.Verifier = stored
	}
	return link, nil
}
