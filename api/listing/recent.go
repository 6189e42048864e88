package listing

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/wxcc/tokenservice/shared/activity"
)

// Recent is the last week of the activity record, summed up per token,
// for the overview's "last 7 days" strip. It costs no query per token:
// the first overview reads the whole week once, newest first, in pages
// of activity.MaxLimit up to RecentMaxPages (one query for every 200
// entries: about 18 a week for a token refreshed every 9.5 hours); after
// that, at most once per TTL, only what was recorded since (one query,
// with an overlap of RecentOverlap for entries that reach the store
// late). Entries that are not rotations, failures or re-authorizations
// are dropped at once; a week of rotations for 1 000 tokens is about
// 20 000 small structs.
type Recent struct {
	store Lister
	now   func() time.Time

	mu sync.Mutex
	// events, oldest first, and the IDs already counted.
	events []recentEvent
	seen   map[string]bool
	// readAt is when the record was last read; from where the counted
	// span begins (later than a week ago when the first read stopped at
	// its bound).
	readAt, from time.Time
}

// Lister lists the activity record (activity.Store's List).
type Lister interface {
	List(ctx context.Context, f activity.Filter) (activity.Page, error)
}

// Bounds of what Recent reads.
const (
	RecentWindow   = 7 * 24 * time.Hour
	RecentMaxPages = 25 // 5 000 entries for the first read
	RecentOverlap  = 2 * time.Minute
)

type recentEvent struct {
	at     time.Time
	token  string
	id     string
	action activity.Action
}

// NewRecent sums up the record of store; now is the clock.
func NewRecent(store Lister, now func() time.Time) *Recent {
	return &Recent{store: store, now: now, seen: map[string]bool{}}
}

// Week is one token's last week.
type Week struct {
	// Refreshes are rotations and mints, those of authorizations aside;
	// Failures refresh failures; Reauths re-authorizations needed.
	Refreshes, Failures, Reauths int
	// Marks place them in the week, 0 (a week ago) to 1 (now).
	Marks []WeekMark
}

// WeekMark is one event of a Week.
type WeekMark struct {
	Pos  float64
	Kind string // refresh, authorized, failure, reauth
}

// Weeks is every token's last week; From is when the counted span
// begins (a week ago, unless the first read stopped at its bound).
type Weeks struct {
	From    time.Time
	ByToken map[string]*Week
}

// Weeks sums up the record's last week per token, reading what is new
// first if the last read is older than TTL.
func (r *Recent) Weeks(ctx context.Context) (Weeks, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.readAt.IsZero() || now.Sub(r.readAt) >= TTL || now.Before(r.readAt) {
		if err := r.read(ctx, now); err != nil {
			return Weeks{}, err
		}
	}
	return r.sum(now), nil
}

// read brings the events up to now: the whole week the first time (or
// after a read that fell behind), what is new otherwise.
func (r *Recent) read(ctx context.Context, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	weekAgo := now.Add(-RecentWindow)
	full := r.readAt.IsZero() || r.readAt.Before(weekAgo)
	// Entries are stamped when the action happened and stored a moment
	// later, by whichever instance: read again a little before the last
	// read (the IDs say what was counted already).
	since := r.readAt.Add(-RecentOverlap)
	if full {
		since = weekAgo
	}
	f := activity.Filter{Since: since, Limit: activity.MaxLimit}
	var (
		got      []recentEvent
		complete bool
		oldest   = now
	)
	for range RecentMaxPages {
		page, err := r.store.List(ctx, f)
		if err != nil {
			return err
		}
		for _, e := range page.Entries {
			if e.At.Before(oldest) {
				oldest = e.At
			}
			if kept(e.Action) {
				got = append(got, recentEvent{at: e.At, token: e.Token, id: e.ID, action: e.Action})
			}
		}
		if page.Next == "" {
			complete = true
			break
		}
		f.Cursor = page.Next
	}
	if full {
		r.events, r.seen, r.from = nil, map[string]bool{}, weekAgo
		if !complete {
			r.from = oldest // the bound cut the week short
		}
	} else if !complete {
		// More arrived within one TTL than a first read takes: start
		// again next time rather than leave a hole.
		r.readAt = time.Time{}
		return nil
	}
	for _, e := range got {
		if !r.seen[e.id] {
			r.seen[e.id] = true
			r.events = append(r.events, e)
		}
	}
	slices.SortStableFunc(r.events, func(a, b recentEvent) int { return a.at.Compare(b.at) })
	// Forget what left the week.
	cut := 0
	for cut < len(r.events) && r.events[cut].at.Before(weekAgo) {
		delete(r.seen, r.events[cut].id)
		cut++
	}
	r.events = r.events[cut:]
	r.from = later(r.from, weekAgo)
	r.readAt = now
	return nil
}

// kept are the actions the strip counts.
func kept(a activity.Action) bool {
	switch a {
	case activity.Rotated, activity.Minted, activity.RefreshFailed, activity.ReauthRequired, activity.AuthCompleted:
		return true
	}
	return false
}

// sum counts the events per token as of now.
func (r *Recent) sum(now time.Time) Weeks {
	w := Weeks{From: r.from, ByToken: map[string]*Week{}}
	span := float64(RecentWindow)
	for i, e := range r.events {
		if e.at.Before(now.Add(-RecentWindow)) || e.token == "" {
			continue
		}
		wk := w.ByToken[e.token]
		if wk == nil {
			wk = &Week{}
			w.ByToken[e.token] = wk
		}
		pos := min(max(1-float64(now.Sub(e.at))/span, 0), 1)
		switch e.action {
		case activity.Rotated, activity.Minted:
			if authorizes(r.events, i) {
				wk.Marks = append(wk.Marks, WeekMark{pos, "authorized"})
				continue
			}
			wk.Refreshes++
			wk.Marks = append(wk.Marks, WeekMark{pos, "refresh"})
		case activity.RefreshFailed:
			wk.Failures++
			wk.Marks = append(wk.Marks, WeekMark{pos, "failure"})
		case activity.ReauthRequired:
			wk.Reauths++
			wk.Marks = append(wk.Marks, WeekMark{pos, "reauth"})
		}
	}
	return w
}

// authorizes reports whether the rotation events[i] stored an
// authorization: one of the same token completed within two minutes
// after it.
func authorizes(events []recentEvent, i int) bool {
	r := events[i]
	for _, e := range events[i+1:] {
		if e.at.Sub(r.at) > 2*time.Minute {
			return false
		}
		if e.token == r.token && e.action == activity.AuthCompleted {
			return true
		}
	}
	return false
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
