package firestore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	gfs "cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ResealCounts is what Reseal did: documents scanned, re-sealed, already
// sealed under the primary key (or gone meanwhile), and failed.
type ResealCounts struct {
	Scanned, Resealed, Current, Failed int
}

// resealAttempts bounds how often one document is read again because it
// changed between the read and the conditional write.
const resealAttempts = 5

// Reseal walks every token document in name order, pageSize at a time,
// and seals each secret field under the primary key now where it is not
// already (plain text, or sealed under another configured key), so that
// a retired key can be removed without waiting for refreshes: tokens in
// reauth_required or config_error are never rewritten by refreshing.
//
// Each document is written with one conditional write (precondition: the
// update time it was read at) that touches only the secret fields and
// keeps their plain text: a refresh, lease or edit that lands in between
// is never overwritten; the document is read again and retried instead.
// A document whose secrets no configured key opens (or that keeps
// changing) counts as failed and goes to onFail; the walk goes on. The
// error is the walk's own: a query failed or ctx ended.
func (s *Store) Reseal(ctx context.Context, pageSize int, onFail func(name string, err error)) (ResealCounts, error) {
	var n ResealCounts
	if s.sealer == nil {
		return n, errors.New("reseal: encryption at rest is off (TOKEN_ENCRYPTION_KEYS is unset)")
	}
	if pageSize <= 0 {
		return n, fmt.Errorf("reseal: page size %d must be positive", pageSize)
	}
	q := s.coll.OrderBy(gfs.DocumentID, gfs.Asc)
	err := s.eachDocument(ctx, q, pageSize, func(snap *gfs.DocumentSnapshot) error {
		n.Scanned++
		resealed, err := s.resealDocument(ctx, snap)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			n.Failed++
			onFail(snap.Ref.ID, err)
		case resealed:
			n.Resealed++
		default:
			n.Current++
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("reseal: %w", err)
	}
	return n, nil
}

// resealDocument re-seals snap's document if it needs it and reports
// whether it wrote.
func (s *Store) resealDocument(ctx context.Context, snap *gfs.DocumentSnapshot) (bool, error) {
	ref := snap.Ref
	for attempt := 0; attempt < resealAttempts; attempt++ {
		ups, err := s.resealUpdates(snap)
		if err != nil || len(ups) == 0 {
			return false, err
		}
		_, err = ref.Update(ctx, ups, gfs.LastUpdateTime(snap.UpdateTime))
		if err == nil {
			return true, nil
		}
		if c := status.Code(err); c != codes.FailedPrecondition && c != codes.NotFound {
			return false, fmt.Errorf("reseal %s: %w", ref.ID, translate(err, true))
		}
		// Changed (or deleted) since it was read: look again.
		snap, err = ref.Get(ctx)
		s.reads.Add(1)
		if status.Code(err) == codes.NotFound {
			return false, nil // gone: nothing left under an old key
		}
		if err != nil {
			return false, fmt.Errorf("reseal %s: %w", ref.ID, translate(err, false))
		}
	}
	return false, fmt.Errorf("reseal %s: the document kept changing; run again", ref.ID)
}

// resealUpdates are the writes that seal snap's secret fields under the
// primary key, none when every one already is. A value that does not
// open is an error (it names the field and key id, never the value).
func (s *Store) resealUpdates(snap *gfs.DocumentSnapshot) ([]gfs.Update, error) {
	data := snap.Data()
	path := s.docPath(snap.Ref.ID)
	var ups []gfs.Update
	for _, f := range secretFields {
		stored, ok := data[f].(string)
		if !ok || stored == "" {
			continue // absent, empty or malformed: nothing to seal
		}
		plain, err := s.sealer.Open(f, path, stored)
		if err != nil {
			return nil, fmt.Errorf("reseal %s: %w", snap.Ref.ID, err)
		}
		fresh, err := s.sealer.Seal(f, path, plain)
		if err != nil {
			return nil, fmt.Errorf("reseal %s: seal %s: %w", snap.Ref.ID, f, err)
		}
		if id := sealedKeyID(stored); id != "" && id == sealedKeyID(fresh) {
			continue // already under the primary key
		}
		ups = append(ups, gfs.Update{Path: f, Value: fresh})
	}
	return ups, nil
}

// sealedKeyID is the key id of a value in the format
// "enc:v1:<keyId>:<payload>" (DESIGN section 6), "" for anything else.
func sealedKeyID(v string) string {
	rest, ok := strings.CutPrefix(v, sealedPrefix+"v1:")
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, ":")
	if !ok {
		return ""
	}
	return id
}
