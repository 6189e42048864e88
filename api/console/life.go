package console

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/token"
)

// A token's life at a glance: the remaining validity of its access token
// over the last week (a saw-tooth: it runs down, a refresh lifts it),
// drawn from the activity record's rotations, which carry the expiry
// they stored, with the refreshes, failures and re-authorizations marked.

// lifeWindow is how far back a token's chart looks.
const lifeWindow = 7 * 24 * time.Hour

// lifeLookback is read before the window too: the last rotation before
// it says where the line starts.
const lifeLookback = 24 * time.Hour

// lifePages bounds the entries read for one chart: pages of
// activity.MaxLimit. A token refreshed every 9.5 hours has about 20
// rotations a week; this leaves room for a noisy one.
const lifePages = 3

// Kinds of marks on the chart and its legend.
const (
	markRefresh    = "refresh"
	markAuthorized = "authorized"
	markFailure    = "failure"
	markReauth     = "reauth"
)

// lifeEvent is one entry of the record as the chart sees it.
type lifeEvent struct {
	At   time.Time
	Kind string
	// Expires is the access token's new end (refreshes, authorizations).
	Expires time.Time
	Detail  string
}

// lifeSegment is a span during which one access token was current: its
// validity at t is Expires - t, never below zero.
type lifeSegment struct {
	From, To time.Time
	Expires  time.Time
}

// lifeData is a token's last week, before it is drawn.
type lifeData struct {
	From, To time.Time
	Segments []lifeSegment
	Events   []lifeEvent // in the window, oldest first
	// Counts in the window; a rotation by an authorization counts as one,
	// not as a refresh.
	Refreshes, Failures, Reauths, Authorizations int
	// Lowest is the least validity seen in the window (LowestKnown: there
	// was a segment at all); Expired is how long it was zero.
	Lowest      time.Duration
	LowestKnown bool
	Expired     time.Duration
	// Truncated: the read stopped at its bound; older entries are missing.
	Truncated bool
}

// readLife reads name's entries of the last week (and a day before it)
// from the activity record, newest first, at most lifePages pages.
func (cs *Console) readLife(ctx context.Context, name string, now time.Time) ([]activity.Entry, bool, error) {
	f := activity.Filter{Token: name, Since: now.Add(-lifeWindow - lifeLookback), Limit: activity.MaxLimit}
	var out []activity.Entry
	for range lifePages {
		page, err := cs.d.Activity.List(ctx, f)
		if err != nil {
			return nil, false, err
		}
		out = append(out, page.Entries...)
		if page.Next == "" {
			return out, false, nil
		}
		f.Cursor = page.Next
	}
	return out, true, nil
}

// newLife works out the chart's data from entries (any order) and the
// token as stored now, whose current access token is the last segment
// even if its rotation was not recorded.
func newLife(entries []activity.Entry, t *token.Token, now time.Time, truncated bool) lifeData {
	d := lifeData{From: now.Add(-lifeWindow), To: now, Truncated: truncated}
	var rotations, authorized []lifeEvent
	for _, e := range entries {
		switch e.Action {
		case activity.Rotated, activity.Minted:
			if e.Outcome != activity.OK {
				continue
			}
			exp := e.AccessExpires
			if exp.IsZero() {
				exp = expiryInDetail(e.Detail) // entries recorded before the field existed
			}
			if !exp.IsZero() {
				rotations = append(rotations, lifeEvent{At: e.At, Kind: markRefresh, Expires: exp, Detail: e.Detail})
			}
		case activity.AuthCompleted:
			authorized = append(authorized, lifeEvent{At: e.At, Kind: markAuthorized, Detail: e.Detail})
		case activity.RefreshFailed:
			if !e.At.Before(d.From) {
				d.Events = append(d.Events, lifeEvent{At: e.At, Kind: markFailure, Detail: e.Detail})
				d.Failures++
			}
		case activity.ReauthRequired:
			if !e.At.Before(d.From) {
				d.Events = append(d.Events, lifeEvent{At: e.At, Kind: markReauth, Detail: e.Detail})
				d.Reauths++
			}
		}
	}
	byTime := func(a, b lifeEvent) int { return a.At.Compare(b.At) }
	slices.SortFunc(rotations, byTime)
	// An authorization stores its grant as a rotation just before it is
	// recorded: that rotation is the authorization's, not a refresh.
	for _, a := range authorized {
		for i := len(rotations) - 1; i >= 0; i-- {
			r := &rotations[i]
			if r.Kind == markRefresh && !r.At.After(a.At) && a.At.Sub(r.At) < 2*time.Minute {
				r.Kind, r.Detail = markAuthorized, a.Detail
				break
			}
		}
	}
	// The token as stored is the latest rotation, recorded or not.
	if t != nil && !t.AccessExpires.IsZero() && !t.LastRefresh.IsZero() {
		known := slices.ContainsFunc(rotations, func(r lifeEvent) bool {
			return r.Expires.Sub(t.AccessExpires).Abs() < 2*time.Second
		})
		if !known && t.LastRefresh.Before(now) {
			rotations = append(rotations, lifeEvent{At: t.LastRefresh, Kind: markRefresh, Expires: t.AccessExpires})
			slices.SortFunc(rotations, byTime)
		}
	}
	for i, r := range rotations {
		to := now
		if i+1 < len(rotations) {
			to = rotations[i+1].At
		}
		if !to.After(d.From) {
			continue
		}
		from := r.At
		if from.Before(d.From) {
			from = d.From
		} else {
			d.Events = append(d.Events, r)
			if r.Kind == markAuthorized {
				d.Authorizations++
			} else {
				d.Refreshes++
			}
		}
		if !to.After(from) {
			continue
		}
		s := lifeSegment{From: from, To: to, Expires: r.Expires}
		d.Segments = append(d.Segments, s)
		low := max(s.Expires.Sub(s.To), 0)
		if !d.LowestKnown || low < d.Lowest {
			d.Lowest, d.LowestKnown = low, true
		}
		if s.Expires.Before(s.To) {
			d.Expired += s.To.Sub(later(s.From, s.Expires))
		}
	}
	slices.SortStableFunc(d.Events, byTime)
	return d
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// expiryInDetail reads the expiry out of a rotation's detail as the
// refresh protocol wrote it before entries had a field for it
// ("..., access token valid until <RFC 3339>"); zero if it is not there.
func expiryInDetail(detail string) time.Time {
	const marker = "valid until "
	i := strings.LastIndex(detail, marker)
	if i < 0 {
		return time.Time{}
	}
	rest := detail[i+len(marker):]
	if j := strings.IndexAny(rest, " ,;"); j >= 0 {
		rest = rest[:j]
	}
	t, err := time.Parse(time.RFC3339, rest)
	if err != nil {
		return time.Time{}
	}
	return t
}

// validityAt is the remaining validity at t on the line of d, and
// whether t is on it.
func (d lifeData) validityAt(t time.Time) (time.Duration, bool) {
	for i := len(d.Segments) - 1; i >= 0; i-- {
		s := d.Segments[i]
		if !t.Before(s.From) && !t.After(s.To) {
			return max(s.Expires.Sub(t), 0), true
		}
	}
	return 0, false
}

// summary is the chart's text alternative in one sentence.
func (d lifeData) summary() string {
	parts := []string{plural(d.Refreshes, "refresh", "refreshes"), plural(d.Failures, "failure", "failures")}
	if d.Reauths > 0 {
		parts = append(parts, plural(d.Reauths, "re-authorization needed", "re-authorizations needed"))
	}
	if d.Authorizations > 0 {
		parts = append(parts, plural(d.Authorizations, "authorization", "authorizations"))
	}
	s := "Last 7 days: " + strings.Join(parts, ", ")
	switch {
	case !d.LowestKnown:
		s += "; the access token's validity is not known (nothing recorded)"
	case d.Expired > 0:
		s += ", lowest validity 0: the access token ran out for " + humanDuration(d.Expired)
	default:
		s += ", lowest validity " + humanDuration(d.Lowest)
	}
	if d.Truncated {
		s += " (only the latest " + fmt.Sprint(lifePages*activity.MaxLimit) + " entries were read)"
	}
	return s + "."
}

// plural is "1 refresh" or "3 refreshes".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
