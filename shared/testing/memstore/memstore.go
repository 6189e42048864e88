// Package memstore is an in-memory token.Store for the refresh protocol's
// table tests. It keeps the semantics of the Firestore adapter (the same
// contract test suite, shared/testing/storetest, runs against both): conditional
// lease writes against a version, atomic updates with an outbox, deep
// copies in and out. It also counts document reads, so tests can assert
// how many store reads a code path costs.
package memstore

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/wxcc/tokenservice/shared/token"
)

var _ token.Store = (*Store)(nil)

// Store is a goroutine-safe in-memory token store. The zero value is not
// usable; call New.
type Store struct {
	mu      sync.Mutex
	docs    map[string]*token.Token
	outbox  []token.Event
	reads   int
	version time.Time
}

// New returns an empty store.
func New() *Store {
	return &Store{docs: map[string]*token.Token{}}
}

// nextVersion is a fake update time, strictly increasing across the store,
// with the microsecond resolution of Firestore's update times.
func (s *Store) nextVersion() time.Time {
	v := time.Now().Truncate(time.Microsecond)
	if !v.After(s.version) {
		v = s.version.Add(time.Microsecond)
	}
	s.version = v
	return v
}

// Get returns a copy of the named token, or token.ErrNotFound.
func (s *Store) Get(ctx context.Context, name string) (*token.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, wrapCtx(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	t, ok := s.docs[name]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", name, token.ErrNotFound)
	}
	return t.Clone(), nil
}

// TryLease sets the lease if the stored token is still at t.Version. A
// token that no longer exists is not at that version either: ErrConflict,
// as Firestore's precondition answers.
func (s *Store) TryLease(ctx context.Context, t *token.Token, lease token.Lease) (*token.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, wrapCtx(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.docs[t.Name]
	if !ok || !cur.Version.Equal(t.Version) {
		return nil, fmt.Errorf("lease %s: %w", t.Name, token.ErrConflict)
	}
	next := cur.Clone()
	next.Lease = lease
	normalize(next)
	next.Version = s.nextVersion()
	s.docs[t.Name] = next
	return next.Clone(), nil
}

// Update applies fn to a copy of the stored token and stores the result
// and fn's events atomically. If fn changes nothing and returns no events,
// nothing is written and the version stays, as in the Firestore adapter.
func (s *Store) Update(ctx context.Context, name string, fn func(t *token.Token) ([]token.Event, error)) (*token.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, wrapCtx(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	cur, ok := s.docs[name]
	if !ok {
		return nil, fmt.Errorf("update %s: %w", name, token.ErrNotFound)
	}
	next := cur.Clone()
	events, err := fn(next)
	if err != nil {
		return nil, err
	}
	// The name and the version are the store's, whatever fn did.
	next.Name, next.Version = cur.Name, cur.Version
	normalize(next)
	if len(events) == 0 && reflect.DeepEqual(next, cur) {
		return next.Clone(), nil
	}
	next.Version = s.nextVersion()
	s.docs[name] = next
	for _, e := range events {
		// An event ID written again replaces the pending one, as a
		// document ID does in Firestore.
		s.outbox = slices.DeleteFunc(s.outbox, func(p token.Event) bool { return p.ID == e.ID })
		e.AccessExpires, e.RefreshExpires, e.Time = ms(e.AccessExpires), ms(e.RefreshExpires), ms(e.Time)
		s.outbox = append(s.outbox, e)
	}
	return next.Clone(), nil
}

// Create stores a copy of t unless its name is taken.
func (s *Store) Create(ctx context.Context, t *token.Token) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, wrapCtx(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.docs[t.Name]; ok {
		return false, nil
	}
	c := t.Clone()
	normalize(c)
	c.Version = s.nextVersion()
	s.docs[t.Name] = c
	return true, nil
}

// Delete removes name's document and writes the event that event builds
// from it into the outbox, atomically.
func (s *Store) Delete(ctx context.Context, name string, event func(t *token.Token) token.Event) (token.Event, error) {
	if err := ctx.Err(); err != nil {
		return token.Event{}, wrapCtx(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	cur, ok := s.docs[name]
	if !ok {
		return token.Event{}, fmt.Errorf("delete %s: %w", name, token.ErrNotFound)
	}
	e := event(cur.Clone())
	delete(s.docs, name)
	s.outbox = slices.DeleteFunc(s.outbox, func(p token.Event) bool { return p.ID == e.ID })
	e.AccessExpires, e.RefreshExpires, e.Time = ms(e.AccessExpires), ms(e.RefreshExpires), ms(e.Time)
	s.outbox = append(s.outbox, e)
	return e, nil
}

// Outbox returns the pending events, oldest first.
func (s *Store) Outbox() []token.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.outbox)
}

// PendingEvents returns up to limit pending events, oldest first, as the
// Firestore adapter's method of the same name does.
func (s *Store) PendingEvents(ctx context.Context, limit int) ([]token.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, wrapCtx(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := min(limit, len(s.outbox))
	s.reads += max(n, 1) // a query costs at least one read
	return slices.Clone(s.outbox[:n]), nil
}

// DeleteEvent removes the event with id from the outbox; an unknown id is
// not an error.
func (s *Store) DeleteEvent(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return wrapCtx(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outbox = slices.DeleteFunc(s.outbox, func(e token.Event) bool { return e.ID == id })
	return nil
}

// Due calls fn with every token whose access token expires before before,
// in order of AccessExpires (then name), fetching pageSize tokens at a
// time as the Firestore adapter does. Tokens without an expiry are not
// due. fn runs without the store's lock held, so it may use the store; an
// error from fn stops the walk and is returned.
func (s *Store) Due(ctx context.Context, before time.Time, pageSize int, fn func(*token.Token) error) error {
	return s.walk(ctx, accessExpires, before, pageSize, fn)
}

// RefreshExpiring is Due over RefreshExpires.
func (s *Store) RefreshExpiring(ctx context.Context, before time.Time, pageSize int, fn func(*token.Token) error) error {
	return s.walk(ctx, refreshExpires, before, pageSize, fn)
}

func accessExpires(t *token.Token) time.Time  { return t.AccessExpires }
func refreshExpires(t *token.Token) time.Time { return t.RefreshExpires }

func (s *Store) walk(ctx context.Context, field func(*token.Token) time.Time, before time.Time, pageSize int, fn func(*token.Token) error) error {
	if pageSize <= 0 {
		return fmt.Errorf("page size %d must be positive", pageSize)
	}
	var last *token.Token
	for {
		if err := ctx.Err(); err != nil {
			return wrapCtx(err)
		}
		page := s.page(field, before, last, pageSize)
		for _, t := range page {
			if err := fn(t); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		last = page[len(page)-1]
	}
}

func (s *Store) page(field func(*token.Token) time.Time, before time.Time, after *token.Token, pageSize int) []*token.Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Ordered by field at millisecond resolution (what Firestore stores),
	// then by name.
	less := func(a, b *token.Token) bool {
		am, bm := field(a).UnixMilli(), field(b).UnixMilli()
		if am != bm {
			return am < bm
		}
		return a.Name < b.Name
	}
	var page []*token.Token
	for _, t := range s.docs {
		if field(t).IsZero() || !field(t).Before(before) {
			continue
		}
		if after != nil && !less(after, t) {
			continue
		}
		page = append(page, t)
	}
	sort.Slice(page, func(i, j int) bool { return less(page[i], page[j]) })
	page = page[:min(pageSize, len(page))]
	s.reads += max(len(page), 1)
	for i, t := range page {
		page[i] = t.Clone()
	}
	return page
}

// Reads is the number of documents read so far, counted as Firestore bills
// them: one per Get and per Update attempt, one per document a query
// returns and one for a query that returns none.
func (s *Store) Reads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

func wrapCtx(err error) error {
	if err == context.DeadlineExceeded {
		return fmt.Errorf("%w: %w", token.ErrUnavailable, err)
	}
	return err
}

// normalize truncates t's times to milliseconds, the resolution at which
// the Firestore document stores them.
func normalize(t *token.Token) {
	t.AccessExpires = ms(t.AccessExpires)
	t.RefreshExpires = ms(t.RefreshExpires)
	t.LastRefresh = ms(t.LastRefresh)
	t.Lease.Until = ms(t.Lease.Until)
	t.NextAttempt = ms(t.NextAttempt)
	t.ExpiryWarned = ms(t.ExpiryWarned)
	if t.LastError != nil {
		t.LastError.At = ms(t.LastError.At)
	}
}

func ms(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMilli(t.UnixMilli())
}

// PendingFor returns up to limit pending events of one token, in commit
// order, as the Firestore adapter's method of the same name does.
func (s *Store) PendingFor(ctx context.Context, name string, limit int) ([]token.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, wrapCtx(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []token.Event
	for _, e := range s.outbox {
		if e.Name == name && len(out) < limit {
			out = append(out, e)
		}
	}
	s.reads += max(len(out), 1)
	return out, nil
}

// ServiceApps calls fn with every token of kind service_app, in name
// order, fetching pageSize tokens at a time as the Firestore adapter
// does; fn runs without the store's lock held.
func (s *Store) ServiceApps(ctx context.Context, pageSize int, fn func(*token.Token) error) error {
	if pageSize <= 0 {
		return fmt.Errorf("page size %d must be positive", pageSize)
	}
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return wrapCtx(err)
		}
		page := s.serviceAppPage(after, pageSize)
		for _, t := range page {
			if err := fn(t); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		after = page[len(page)-1].Name
	}
}

func (s *Store) serviceAppPage(after string, pageSize int) []*token.Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	var page []*token.Token
	for name, t := range s.docs {
		if t.IsServiceApp() && name > after {
			page = append(page, t)
		}
	}
	sort.Slice(page, func(i, j int) bool { return page[i].Name < page[j].Name })
	page = page[:min(pageSize, len(page))]
	s.reads += max(len(page), 1)
	for i, t := range page {
		page[i] = t.Clone()
	}
	return page
}
