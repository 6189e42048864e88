// Package activitytest is test support for the activity record: the
// contract suite every activity.Store passes (the in-memory one here and
// the Firestore adapter on the emulator), an in-memory Store for the use
// cases' table tests, and a scan for secrets in recorded entries.
package activitytest

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/wxcc/tokenservice/shared/activity"
)

// Memory is an activity.Store in memory, with the Firestore adapter's
// ordering, filters, limits and cursors. Times are kept to the
// microsecond, as Firestore keeps them. Safe for concurrent use.
type Memory struct {
	mu      sync.Mutex
	entries []activity.Entry
}

var _ activity.Store = (*Memory)(nil)

// Add stores e under a new ID.
func (m *Memory) Add(ctx context.Context, e activity.Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.ID = newID()
	e.At = e.At.Truncate(time.Microsecond).UTC()
	if !e.AccessExpires.IsZero() {
		e.AccessExpires = e.AccessExpires.Truncate(time.Microsecond).UTC()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries = append(m.entries, e)
	return nil
}

// List returns entries newest first (ties: ID descending).
func (m *Memory) List(ctx context.Context, f activity.Filter) (activity.Page, error) {
	f, err := f.Normalize()
	if err != nil {
		return activity.Page{}, fmt.Errorf("list activity: %w", err)
	}
	m.mu.Lock()
	all := slices.Clone(m.entries)
	m.mu.Unlock()
	slices.SortFunc(all, func(a, b activity.Entry) int { return after(b, a) })
	start := 0
	if f.Cursor != "" {
		at, id, err := activity.DecodeCursor(f.Cursor)
		if err != nil {
			return activity.Page{}, fmt.Errorf("list activity: %w", err)
		}
		mark := activity.Entry{At: at, ID: id}
		start = len(all)
		for i, e := range all {
			if after(mark, e) > 0 {
				start = i
				break
			}
		}
	}
	var page activity.Page
	for i := start; i < len(all); i++ {
		e := all[i]
		if !f.Matches(e) {
			continue
		}
		if len(page.Entries) == f.Limit {
			last := page.Entries[len(page.Entries)-1]
			page.Next = activity.EncodeCursor(last.At, last.ID)
			break
		}
		page.Entries = append(page.Entries, e)
	}
	return page, nil
}

// after compares a and b in time, then ID: > 0 when a is later.
func after(a, b activity.Entry) int {
	if c := a.At.Compare(b.At); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// newID is 20 random letters and digits, like Firestore's document IDs.
func newID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 20)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
