package firestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	gfs "cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wxcc/tokenservice/shared/people"
	"github.com/wxcc/tokenservice/shared/token"
)

// Console records live under one document of the meta collection:
// <META_COLLECTION>/console/sessions/<key> and .../links/<key>. Their
// collection groups, "sessions" and "links", carry Firestore TTL policies
// on expireAt.
const (
	consoleDoc      = "console"
	sessionsColl    = "sessions"
	linksColl       = "links"
	maxConsoleDocs  = 1000 // bound of a listing: sessions and links are few
	fRole           = "role"
	fVia            = "via"
	fCreated        = "created"
	fLastSeen       = "lastSeen"
	fIdleMs         = "idleMs"
	fSessionExpires = fExpireAt // the absolute end is also the TTL
)

// Sessions keeps console sessions (people.SessionStore).
type Sessions struct {
	coll *gfs.CollectionRef
	now  func() time.Time
	log  *slog.Logger
}

var _ people.SessionStore = (*Sessions)(nil)

// Sessions returns the store of console sessions.
func (s *Store) Sessions() *Sessions {
	return &Sessions{coll: s.meta.Doc(consoleDoc).Collection(sessionsColl), now: s.now, log: s.log}
}

// Create stores a new session under its key.
func (s *Sessions) Create(ctx context.Context, in *people.Session) error {
	if !people.ValidKey(in.Key) {
		return errors.New("create session: malformed key")
	}
	doc := map[string]any{
		fPersonID: in.Person.ID, fEmail: people.NormalizeEmail(in.Person.Email), fDisplayName: in.Person.DisplayName,
		fOrgID: in.Person.OrgID, fRole: string(in.Role), fVia: string(in.Via),
		fCreated: in.Created.UTC(), fLastSeen: in.LastSeen.UTC(), fAddr: in.Addr,
		fIdleMs: in.Idle.Milliseconds(), fSessionExpires: in.Expires.UTC(),
	}
	if _, err := s.coll.Doc(in.Key).Create(ctx, doc); err != nil {
		return fmt.Errorf("create session: %w", translate(err, false))
	}
	return nil
}

// Get returns the open session of the browser's id.
func (s *Sessions) Get(ctx context.Context, id string) (*people.Session, error) {
	if !people.ValidID(id) {
		return nil, people.ErrNoSession
	}
	snap, err := s.coll.Doc(people.KeyOf(id)).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return nil, people.ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("get session: %w", translate(err, false))
	}
	sess := s.decode(snap)
	if !sess.Open(s.now()) {
		return nil, people.ErrNoSession
	}
	return sess, nil
}

// Touch writes last seen (now) and the address; an ended session stays
// ended (the update needs the document).
func (s *Sessions) Touch(ctx context.Context, key, addr string) error {
	if !people.ValidKey(key) {
		return people.ErrNoSession
	}
	_, err := s.coll.Doc(key).Update(ctx, []gfs.Update{{Path: fLastSeen, Value: s.now().UTC()}, {Path: fAddr, Value: addr}})
	if status.Code(err) == codes.NotFound {
		return people.ErrNoSession
	}
	if err != nil {
		return fmt.Errorf("touch session: %w", translate(err, false))
	}
	return nil
}

// End deletes the session: every instance's next Get fails.
func (s *Sessions) End(ctx context.Context, key string) error {
	if !people.ValidKey(key) {
		return errors.New("end session: malformed key")
	}
	if _, err := s.coll.Doc(key).Delete(ctx); err != nil {
		return fmt.Errorf("end session: %w", translate(err, false))
	}
	return nil
}

// List returns the open sessions, most recently seen first. Expired ones
// wait for the TTL policy and are skipped.
func (s *Sessions) List(ctx context.Context) ([]people.Session, error) {
	docs, err := s.coll.Limit(maxConsoleDocs).Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", translate(err, false))
	}
	now := s.now()
	var out []people.Session
	for _, d := range docs {
		if sess := s.decode(d); sess.Open(now) {
			out = append(out, *sess)
		}
	}
	slices.SortFunc(out, func(a, b people.Session) int { return b.LastSeen.Compare(a.LastSeen) })
	return out, nil
}

// EndAllOf deletes every session of the e-mail address.
func (s *Sessions) EndAllOf(ctx context.Context, email string) (int, error) {
	email = people.NormalizeEmail(email)
	if email == "" {
		return 0, errors.New("end sessions: no e-mail address")
	}
	docs, err := s.coll.Where(fEmail, "==", email).Limit(maxConsoleDocs).Documents(ctx).GetAll()
	if err != nil {
		return 0, fmt.Errorf("end sessions: %w", translate(err, false))
	}
	n := 0
	for _, d := range docs {
		if _, err := d.Ref.Delete(ctx); err != nil {
			return n, fmt.Errorf("end sessions: %w", translate(err, false))
		}
		n++
	}
	return n, nil
}

func (s *Sessions) decode(snap *gfs.DocumentSnapshot) *people.Session {
	var bad []string
	d := decoder{data: snap.Data(), bad: &bad}
	idle, _ := d.int(fIdleMs)
	sess := &people.Session{
		Key: snap.Ref.ID,
		Person: token.Person{
			ID: d.string(fPersonID), Email: d.string(fEmail), DisplayName: d.string(fDisplayName), OrgID: d.string(fOrgID),
		},
		Role: people.Role(d.string(fRole)), Via: people.Via(d.string(fVia)),
		Created: d.timestamp(fCreated), LastSeen: d.timestamp(fLastSeen), Addr: d.string(fAddr),
		Expires: d.timestamp(fSessionExpires), Idle: time.Duration(idle) * time.Millisecond,
	}
	if len(bad) > 0 {
		s.log.Warn("ignoring malformed fields of a console session", "fields", bad)
	}
	if !sess.Role.Valid() || !sess.Via.Valid() {
		// Nothing valid to grant: read as already over.
		sess.Expires = time.Time{}
	}
	return sess
}
