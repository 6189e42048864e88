// Package listing is the api's read model of every token: one listing
// (rows without secrets, their health, the last sweep) that the console
// and GET /admin/status share, made at most once per TTL so that an open
// console polling every few seconds does not cost a read per token each
// time. A change made through this instance invalidates it at once.
package listing

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wxcc/tokenservice/shared/token"
)

// TTL is how long one listing serves.
const TTL = 10 * time.Second

// timeout bounds one listing's store calls.
const timeout = 10 * time.Second

// Store is what a listing reads.
type Store interface {
	ListChecked(ctx context.Context, pageSize int, fn func(t *token.Token, unreadable []string) error) error
	LastSweep(ctx context.Context) (*token.SweepRecord, error)
}

// Listing lists every token for the console and /admin/status.
type Listing struct {
	store Store
	// Windows are the spans a row's health looks ahead.
	Windows token.HealthWindows
	now     func() time.Time

	mu   sync.Mutex
	snap *Snapshot
}

// New returns a listing over store.
func New(store Store, w token.HealthWindows, now func() time.Time) *Listing {
	return &Listing{store: store, Windows: w, now: now}
}

// Snapshot is one listing of every token, without secrets.
type Snapshot struct {
	// Holders are the people several tokens act as, most tokens first:
	// the day one of them leaves, all their tokens stop.
	Holders []Holder
	// At is when the listing was made.
	At    time.Time
	Rows  []Row // most urgent first
	Sweep *token.SweepRecord
	// SweepUnknown: the last sweep could not be read.
	SweepUnknown bool
}

// Overview lists every token, most urgent first, at most once per TTL.
func (l *Listing) Overview(ctx context.Context) (*Snapshot, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.snap != nil && now.Sub(l.snap.At) < TTL && !now.Before(l.snap.At) {
		return l.snap, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	snap := &Snapshot{At: now}
	err := l.store.ListChecked(ctx, 300, func(t *token.Token, unreadable []string) error {
		snap.Rows = append(snap.Rows, NewRow(t, unreadable, now, l.Windows))
		return nil
	})
	if err != nil {
		return nil, err
	}
	countBlocked(snap.Rows)
	snap.Holders = holders(snap.Rows)
	slices.SortStableFunc(snap.Rows, urgentFirst)
	snap.Sweep, err = l.store.LastSweep(ctx)
	if err != nil && !errors.Is(err, token.ErrNotFound) {
		snap.SweepUnknown = true
	}
	l.snap = snap
	return snap, nil
}

// countBlocked sets each manager's count of the Service Apps waiting for it.
func countBlocked(rows []Row) {
	waiting := map[string]int{}
	for _, r := range rows {
		if r.WaitsForManager {
			waiting[r.Manager]++
		}
	}
	if len(waiting) == 0 {
		return
	}
	for i := range rows {
		if !rows[i].ServiceApp {
			rows[i].Blocked = waiting[rows[i].Name]
		}
	}
}

// Invalidate makes the next overview list again: after a change made
// here, the page the admin lands on shows it.
func (l *Listing) Invalidate() {
	l.mu.Lock()
	l.snap = nil
	l.mu.Unlock()
}

// Row is what the console and GET /admin/status show of a token: never a secret, only
// whether one is set.
type Row struct {
	Name   string
	Status token.Status
	Health token.Health
	// ServiceApp: a Service App (DESIGN 5a), minted with the access token
	// of Manager for TargetOrgID; else an integration.
	ServiceApp  bool
	AppID       string
	TargetOrgID string
	Manager     string
	// WaitsForManager: a Service App that cannot be minted until its
	// manager is authorized again.
	WaitsForManager bool
	// OrgID is the Webex org of its tokens, "" if unknown.
	OrgID string
	// AuthorizedBy is who an integration's grant acts as (nil: unknown).
	AuthorizedBy *token.Person
	// Blocked counts, for an integration, the Service Apps that wait for
	// it to be authorized again (set by the overview's listing).
	Blocked         int
	ClientID        string
	RedirectURI     string
	Scopes          []string
	ClientSecretSet bool
	HasPassphrase   bool
	AccessExpires   time.Time
	RefreshExpires  time.Time
	LastRefresh     time.Time
	LastError       *token.LastError
	Generation      int64
	// Unreadable names the secrets that no configured key opens.
	Unreadable []string
	// held is why the protocol would not send it to Webex now (nil: it would).
	held error
}

// Held is why the refresh protocol would not send the token to Webex
// now (Token.HeldBack), or nil.
func (r Row) Held() error { return r.held }

// NewRow is the row of t, whose secrets named unreadable did not open.
func NewRow(t *token.Token, unreadable []string, now time.Time, w token.HealthWindows) Row {
	r := Row{
		Name: t.Name, Status: t.StoredState(len(unreadable) > 0), Health: t.Health(now, w, len(unreadable) > 0),
		ClientID: t.ClientID, RedirectURI: t.RedirectURI, Scopes: slices.Clone(t.Scopes),
		ClientSecretSet: t.ClientSecret != "" || slices.Contains(unreadable, "clientSecret"),
		HasPassphrase:   t.PassphraseHash != "",
		AccessExpires:   t.AccessExpires, RefreshExpires: t.RefreshExpires, LastRefresh: t.LastRefresh,
		Generation: t.Generation, Unreadable: unreadable, held: t.HeldBack(now),
		ServiceApp: t.IsServiceApp(), OrgID: t.Org(), WaitsForManager: t.WaitsForManager(),
	}
	if r.ServiceApp {
		r.AppID, r.TargetOrgID, r.Manager = t.AppID, t.TargetOrgID, t.Manager
	}
	if t.LastError != nil {
		le := *t.LastError
		r.LastError = &le
	}
	if t.AuthorizedBy != nil && !r.ServiceApp {
		p := *t.AuthorizedBy
		r.AuthorizedBy = &p
	}
	return r
}

// urgentFirst orders rows by health, then by the access token that ends
// first, then by name.
func urgentFirst(a, b Row) int {
	if d := a.Health.Urgency() - b.Health.Urgency(); d != 0 {
		return d
	}
	switch {
	case a.AccessExpires.IsZero() != b.AccessExpires.IsZero():
		if a.AccessExpires.IsZero() {
			return 1
		}
		return -1
	case !a.AccessExpires.Equal(b.AccessExpires):
		return a.AccessExpires.Compare(b.AccessExpires)
	}
	return strings.Compare(a.Name, b.Name)
}

// Holder is a person several integration tokens act as.
type Holder struct {
	Person token.Person
	Tokens []string
}

// holders lists the people at least two tokens act as.
func holders(rows []Row) []Holder {
	byEmail := map[string]*Holder{}
	var order []string
	for _, r := range rows {
		if r.AuthorizedBy == nil || r.AuthorizedBy.Email == "" {
			continue
		}
		k := strings.ToLower(r.AuthorizedBy.Email)
		h, ok := byEmail[k]
		if !ok {
			h = &Holder{Person: *r.AuthorizedBy}
			byEmail[k] = h
			order = append(order, k)
		}
		h.Tokens = append(h.Tokens, r.Name)
	}
	var out []Holder
	for _, k := range order {
		if h := byEmail[k]; len(h.Tokens) >= 2 {
			slices.Sort(h.Tokens)
			out = append(out, *h)
		}
	}
	slices.SortStableFunc(out, func(a, b Holder) int { return len(b.Tokens) - len(a.Tokens) })
	return out
}
