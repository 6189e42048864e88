// Package peopletest is test support for console sessions and
// authorization links: the contract suites every people.SessionStore and
// people.LinkStore passes (the in-memory ones here and the Firestore
// adapters on the emulator), and the in-memory stores for the use cases'
// table tests.
package peopletest

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/wxcc/tokenservice/shared/people"
)

// Sessions is a people.SessionStore in memory. Now is its clock
// (time.Now if nil). Safe for concurrent use.
type Sessions struct {
	Now func() time.Time
	mu  sync.Mutex
	m   map[string]people.Session
}

var _ people.SessionStore = (*Sessions)(nil)

func (s *Sessions) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// Create stores a new session.
func (s *Sessions) Create(_ context.Context, in *people.Session) error {
	if !people.ValidKey(in.Key) {
		return errors.New("create session: malformed key")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]people.Session{}
	}
	if _, ok := s.m[in.Key]; ok {
		return errors.New("create session: exists")
	}
	s.m[in.Key] = *in
	return nil
}

// Get returns the open session of the browser's id.
func (s *Sessions) Get(_ context.Context, id string) (*people.Session, error) {
	if !people.ValidID(id) {
		return nil, people.ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	got, ok := s.m[people.KeyOf(id)]
	if !ok || !got.Open(s.now()) {
		return nil, people.ErrNoSession
	}
	return &got, nil
}

// Touch records that the session was seen now from addr.
func (s *Sessions) Touch(_ context.Context, key, addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	got, ok := s.m[key]
	if !ok {
		return people.ErrNoSession
	}
	got.LastSeen, got.Addr = s.now(), addr
	s.m[key] = got
	return nil
}

// End ends one session.
func (s *Sessions) End(_ context.Context, key string) error {
	if !people.ValidKey(key) {
		return errors.New("end session: malformed key")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// List returns the open sessions, most recently seen first.
func (s *Sessions) List(context.Context) ([]people.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []people.Session
	for _, v := range s.m {
		if v.Open(now) {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b people.Session) int { return b.LastSeen.Compare(a.LastSeen) })
	return out, nil
}

// EndAllOf ends every session of email.
func (s *Sessions) EndAllOf(_ context.Context, email string) (int, error) {
	email = people.NormalizeEmail(email)
	if email == "" {
		return 0, errors.New("end sessions: no e-mail address")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, v := range s.m {
		if v.Person.Email == email {
			delete(s.m, k)
			n++
		}
	}
	return n, nil
}

// Links is a people.LinkStore in memory. Now is its clock (time.Now if
// nil). Safe for concurrent use.
type Links struct {
	Now func() time.Time
	mu  sync.Mutex
	m   map[string]people.Link
}

var _ people.LinkStore = (*Links)(nil)

func (s *Links) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// Create stores a new link.
func (s *Links) Create(_ context.Context, l *people.Link) error {
	if !people.ValidKey(l.Key) {
		return errors.New("create link: malformed key")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]people.Link{}
	}
	if _, ok := s.m[l.Key]; ok {
		return errors.New("create link: exists")
	}
	s.m[l.Key] = *l
	return nil
}

// Get returns the link of the URL's id.
func (s *Links) Get(_ context.Context, id string) (*people.Link, error) {
	if !people.ValidID(id) {
		return nil, people.ErrLinkNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.m[people.KeyOf(id)]
	if !ok {
		return nil, people.ErrLinkNotFound
	}
	return &l, nil
}

// Use marks a pending link used by by.
func (s *Links) Use(_ context.Context, key, by string) (*people.Link, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.m[key]
	if !ok {
		return nil, people.ErrLinkNotFound
	}
	now := s.now()
	if err := l.Check(now, by); err != nil {
		return nil, err
	}
	used := l
	used.UsedAt, used.UsedBy = now, by
	l = used
	l.Verifier = ""
	s.m[key] = l
	return &used, nil
}

// Revoke ends a pending link.
func (s *Links) Revoke(_ context.Context, key, by string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.m[key]
	if !ok {
		return people.ErrLinkNotFound
	}
	if err := l.Check(s.now(), l.Email); err != nil {
		return err
	}
	l.RevokedAt, l.RevokedBy, l.Verifier = s.now(), by, ""
	s.m[key] = l
	return nil
}

// Pending returns the pending links of name ("" for all), oldest first.
func (s *Links) Pending(_ context.Context, name string) ([]people.Link, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []people.Link
	for _, l := range s.m {
		if (name == "" || l.Token == name) && l.State(now) == people.LinkPending {
			l.Verifier = ""
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b people.Link) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Key, b.Key))
	})
	return out, nil
}
