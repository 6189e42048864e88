package activitytest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wxcc/tokenservice/shared/activity"
)

// Run runs the contract suite of activity.Store. newStore must return an
// empty store of its own (for Firestore: its own collection); subtests
// run in parallel.
func Run(t *testing.T, newStore func(t *testing.T) activity.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s activity.Store)
	}{
		{"Empty", testEmpty},
		{"RoundTrip", testRoundTrip},
		{"RoundTripRotation", testRoundTripRotation},
		{"Since", testSince},
		{"NewestFirst", testNewestFirst},
		{"Filters", testFilters},
		{"Pages", testPages},
		{"PagesFilteredInMemory", testPagesFilteredInMemory},
		{"DefaultLimit", testDefaultLimit},
		{"BadFilter", testBadFilter},
		{"BadCursor", testBadCursor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

// Base is a time at millisecond resolution, which every store keeps.
var Base = time.UnixMilli(1_800_000_000_123).UTC()

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func add(t *testing.T, s activity.Store, entries ...activity.Entry) {
	t.Helper()
	for _, e := range entries {
		if err := s.Add(ctxT(t), e); err != nil {
			t.Fatalf("Add(%s %s): %v", e.Action, e.Token, err)
		}
	}
}

func list(t *testing.T, s activity.Store, f activity.Filter) activity.Page {
	t.Helper()
	p, err := s.List(ctxT(t), f)
	if err != nil {
		t.Fatalf("List(%+v): %v", f, err)
	}
	return p
}

// all follows Next to the end and returns every entry, and the size of
// each page.
func all(t *testing.T, s activity.Store, f activity.Filter) ([]activity.Entry, []int) {
	t.Helper()
	var (
		out   []activity.Entry
		sizes []int
	)
	for range 100 {
		p := list(t, s, f)
		out = append(out, p.Entries...)
		sizes = append(sizes, len(p.Entries))
		if p.Next == "" {
			return out, sizes
		}
		f.Cursor = p.Next
	}
	t.Fatalf("List(%+v): still a next page after 100 pages", f)
	return nil, nil
}

// ignoreID compares entries without the store's ID.
var ignoreID = cmpopts.IgnoreFields(activity.Entry{}, "ID")

func entry(i int, tok, actor string, action activity.Action) activity.Entry {
	return activity.Entry{
		At: Base.Add(time.Duration(i) * time.Second), ActorKind: activity.ByPerson, Actor: actor,
		Action: action, Token: tok, Addr: "192.0.2.1", Outcome: activity.OK, Detail: fmt.Sprintf("entry %d", i),
	}
}

func testEmpty(t *testing.T, s activity.Store) {
	p := list(t, s, activity.Filter{})
	if len(p.Entries) != 0 || p.Next != "" {
		t.Errorf("empty store listed %d entries, next %q", len(p.Entries), p.Next)
	}
}

func testRoundTrip(t *testing.T, s activity.Store) {
	want := activity.Entry{
		At: Base, ActorKind: activity.ByVisitor, Actor: "ann@example.com", Action: activity.LinkUsed,
		Token: "flow-1", Addr: "2001:db8::7", Outcome: activity.Refused, Detail: "the link was for someone else; ünïcode kept",
	}
	add(t, s, want)
	p := list(t, s, activity.Filter{})
	if len(p.Entries) != 1 {
		t.Fatalf("listed %d entries, want 1", len(p.Entries))
	}
	got := p.Entries[0]
	if diff := cmp.Diff(want, got, ignoreID); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
	if !activity.ValidID(got.ID) {
		t.Errorf("ID = %q, want 1-64 letters and digits", got.ID)
	}
}

func testRoundTripRotation(t *testing.T, s activity.Store) {
	want := activity.Entry{
		At: Base, ActorKind: activity.ByService, Actor: "worker-1", Action: activity.Rotated, Token: "flow-1",
		Outcome: activity.OK, Detail: "generation 7, trigger scheduled", Generation: 7,
		AccessExpires: Base.Add(12*time.Hour + 345*time.Millisecond),
	}
	plain := entry(1, "flow-1", "ann@example.com", activity.ConfigSaved)
	add(t, s, want, plain)
	got := list(t, s, activity.Filter{Token: "flow-1"}).Entries
	if len(got) != 2 {
		t.Fatalf("listed %d entries, want 2", len(got))
	}
	if diff := cmp.Diff([]activity.Entry{plain, want}, got, ignoreID); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
}

func testSince(t *testing.T, s activity.Store) {
	var es []activity.Entry
	for i := range 10 {
		es = append(es, entry(i, "a", "ann@example.com", activity.Rotated), entry(i, "b", "bob@example.com", activity.Rotated))
	}
	add(t, s, es...)
	since := Base.Add(6 * time.Second)
	tests := []struct {
		name string
		f    activity.Filter
		want func(activity.Entry) bool
	}{
		{"token", activity.Filter{Token: "a", Since: since, Limit: 2},
			func(e activity.Entry) bool { return e.Token == "a" && !e.At.Before(since) }},
		{"no other filter", activity.Filter{Since: since, Limit: 3},
			func(e activity.Entry) bool { return !e.At.Before(since) }},
		{"token and actor", activity.Filter{Token: "b", Actor: "bob@example.com", Since: since, Limit: 1},
			func(e activity.Entry) bool { return e.Token == "b" && !e.At.Before(since) }},
		{"token and action", activity.Filter{Token: "a", Action: activity.Rotated, Since: since},
			func(e activity.Entry) bool { return e.Token == "a" && !e.At.Before(since) }},
		{"after every entry", activity.Filter{Token: "a", Since: Base.Add(time.Hour)}, func(activity.Entry) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []activity.Entry
			for i := len(es) - 1; i >= 0; i-- { // newest first; a and b share each instant
				if tt.want(es[i]) {
					want = append(want, es[i])
				}
			}
			got, _ := all(t, s, tt.f)
			sortTies(got)
			sortTies(want)
			if diff := cmp.Diff(want, got, ignoreID, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("List(%+v) (-want +got):\n%s", tt.f, diff)
			}
		})
	}
}

// sortTies orders entries of one instant by token, so that lists whose
// ties the store broke by ID compare.
func sortTies(es []activity.Entry) {
	slices.SortStableFunc(es, func(a, b activity.Entry) int {
		if c := b.At.Compare(a.At); c != 0 {
			return c
		}
		return strings.Compare(a.Token, b.Token)
	})
}

func testNewestFirst(t *testing.T, s activity.Store) {
	// Added out of order; two share a time, so the ID breaks the tie.
	add(t, s, entry(2, "a", "x", activity.ConfigSaved), entry(5, "a", "x", activity.ConfigSaved),
		entry(1, "a", "x", activity.ConfigSaved), entry(5, "b", "x", activity.ConfigSaved))
	got := list(t, s, activity.Filter{}).Entries
	if len(got) != 4 {
		t.Fatalf("listed %d entries, want 4", len(got))
	}
	for i := 1; i < len(got); i++ {
		prev, cur := got[i-1], got[i]
		if cur.At.After(prev.At) || cur.At.Equal(prev.At) && cur.ID >= prev.ID {
			t.Errorf("entry %d (%v %s) listed after entry %d (%v %s): want newest first, then ID descending",
				i, cur.At, cur.ID, i-1, prev.At, prev.ID)
		}
	}
}

// population is a mix of tokens, actors and actions for the filters.
func population() []activity.Entry {
	var es []activity.Entry
	i := 0
	for _, tok := range []string{"a", "b", ""} {
		for _, actor := range []string{"ann@example.com", "bob@example.com"} {
			for _, action := range []activity.Action{activity.ConfigSaved, activity.RefreshNow} {
				es = append(es, entry(i, tok, actor, action))
				i++
			}
		}
	}
	return es
}

func testFilters(t *testing.T, s activity.Store) {
	pop := population()
	add(t, s, pop...)
	tests := []struct {
		name string
		f    activity.Filter
		want func(activity.Entry) bool
	}{
		{"none", activity.Filter{}, func(activity.Entry) bool { return true }},
		{"token", activity.Filter{Token: "a"}, func(e activity.Entry) bool { return e.Token == "a" }},
		{"actor", activity.Filter{Actor: "bob@example.com"}, func(e activity.Entry) bool { return e.Actor == "bob@example.com" }},
		{"action", activity.Filter{Action: activity.RefreshNow}, func(e activity.Entry) bool { return e.Action == activity.RefreshNow }},
		{"token and action", activity.Filter{Token: "b", Action: activity.ConfigSaved},
			func(e activity.Entry) bool { return e.Token == "b" && e.Action == activity.ConfigSaved }},
		{"actor and action", activity.Filter{Actor: "ann@example.com", Action: activity.RefreshNow},
			func(e activity.Entry) bool { return e.Actor == "ann@example.com" && e.Action == activity.RefreshNow }},
		{"token and actor", activity.Filter{Token: "a", Actor: "ann@example.com"},
			func(e activity.Entry) bool { return e.Token == "a" && e.Actor == "ann@example.com" }},
		{"all three", activity.Filter{Token: "b", Actor: "bob@example.com", Action: activity.RefreshNow},
			func(e activity.Entry) bool {
				return e.Token == "b" && e.Actor == "bob@example.com" && e.Action == activity.RefreshNow
			}},
		{"no match", activity.Filter{Token: "c"}, func(activity.Entry) bool { return false }},
		{"actor is exact", activity.Filter{Actor: "ANN@example.com"}, func(activity.Entry) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []activity.Entry
			for i := len(pop) - 1; i >= 0; i-- { // newest first
				if tt.want(pop[i]) {
					want = append(want, pop[i])
				}
			}
			got, _ := all(t, s, tt.f)
			if diff := cmp.Diff(want, got, ignoreID, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("List(%+v) (-want +got):\n%s", tt.f, diff)
			}
		})
	}
}

func testPages(t *testing.T, s activity.Store) {
	// Seven entries, three of them at one instant: the cursor must
	// continue inside the tie without skipping or repeating.
	var es []activity.Entry
	for i := range 7 {
		e := entry(i, "a", "ann@example.com", activity.ConfigSaved)
		if i >= 2 && i <= 4 {
			e.At = Base.Add(3 * time.Second)
		}
		es = append(es, e)
	}
	add(t, s, es...)
	add(t, s, entry(10, "other", "ann@example.com", activity.ConfigSaved))
	whole := list(t, s, activity.Filter{Token: "a", Limit: 7})
	if len(whole.Entries) != 7 || whole.Next != "" {
		t.Fatalf("one page of 7: got %d entries, next %q; want 7 and no next page", len(whole.Entries), whole.Next)
	}
	for _, limit := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			got, sizes := all(t, s, activity.Filter{Token: "a", Limit: limit})
			if diff := cmp.Diff(whole.Entries, got); diff != "" {
				t.Errorf("pages joined (-one page +pages):\n%s", diff)
			}
			for i, n := range sizes[:len(sizes)-1] {
				if n != limit {
					t.Errorf("page %d has %d entries, want %d (pages: %v)", i, n, limit, sizes)
				}
			}
		})
	}
}

func testPagesFilteredInMemory(t *testing.T, s activity.Store) {
	// Token and actor together: a store may filter one of them in memory;
	// the pages must still hold every match once, newest first.
	var es []activity.Entry
	for i := range 15 {
		actor := "bob@example.com"
		if i%3 == 0 {
			actor = "ann@example.com"
		}
		es = append(es, entry(i, "a", actor, activity.RefreshNow))
	}
	add(t, s, es...)
	var want []activity.Entry
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].Actor == "ann@example.com" {
			want = append(want, es[i])
		}
	}
	got, _ := all(t, s, activity.Filter{Token: "a", Actor: "ann@example.com", Limit: 2})
	if diff := cmp.Diff(want, got, ignoreID); diff != "" {
		t.Errorf("pages joined (-want +got):\n%s", diff)
	}
}

func testDefaultLimit(t *testing.T, s activity.Store) {
	var es []activity.Entry
	for i := range activity.DefaultLimit + 1 {
		es = append(es, entry(i, "a", "ann@example.com", activity.Rotated))
	}
	add(t, s, es...)
	p := list(t, s, activity.Filter{})
	if len(p.Entries) != activity.DefaultLimit || p.Next == "" {
		t.Errorf("no limit: %d entries, next %q; want %d and a next page", len(p.Entries), p.Next, activity.DefaultLimit)
	}
	p = list(t, s, activity.Filter{Limit: activity.MaxLimit})
	if len(p.Entries) != activity.DefaultLimit+1 || p.Next != "" {
		t.Errorf("limit %d: %d entries, next %q; want all %d and no next page", activity.MaxLimit, len(p.Entries), p.Next, activity.DefaultLimit+1)
	}
}

func testBadFilter(t *testing.T, s activity.Store) {
	add(t, s, entry(0, "a", "ann@example.com", activity.Rotated))
	for _, f := range []activity.Filter{
		{Limit: -1}, {Limit: activity.MaxLimit + 1}, {Token: "../x"}, {Token: "__x__"},
		{Action: "dropped_tables"}, {Actor: "ann\n@example.com"},
	} {
		_, err := s.List(ctxT(t), f)
		if !errors.Is(err, activity.ErrBadFilter) {
			t.Errorf("List(%+v) = %v, want ErrBadFilter", f, err)
		}
	}
}

func testBadCursor(t *testing.T, s activity.Store) {
	add(t, s, entry(0, "a", "ann@example.com", activity.Rotated))
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, c := range []string{
		"%%%", "not a cursor", b64("2.1.abc"), b64("1.x.abc"), b64("1.-5.abc"), b64("1.5.ab/c"),
		b64("1.5."), b64("1.5"), b64("1.99999999999999999999.abc"), string(make([]byte, 300)),
	} {
		_, err := s.List(ctxT(t), activity.Filter{Cursor: c})
		if !errors.Is(err, activity.ErrBadCursor) {
			t.Errorf("List(cursor %q) = %v, want ErrBadCursor", c, err)
		}
	}
}
