package console

import (
	"slices"
	"strings"
	"time"

	"github.com/wxcc/tokenservice/api/listing"
)

// The overview's orders: most urgent first (the listing's own, by
// health, then by the access token that ends first), or by one column,
// sorted on the server so that paging and filtering keep it. The query
// says sort=<column>, or sort=-<column> for the other direction.

// sortOrder is one order; the zero value is most urgent first.
type sortOrder struct {
	key  string
	desc bool
}

// sortColumns are the columns that sort; desc is the direction a first
// click asks for.
var sortColumns = map[string]struct {
	label string
	desc  bool
}{
	"name":    {"Name", false},
	"status":  {"Status", false},
	"access":  {"Access token expires", false},
	"refresh": {"Refresh token expires", false},
	"last":    {"Last refresh", true},
}

// sortColumn is a column header: the link that sorts by it (or turns
// its order round), and how it sorts now (Sorted, for aria-sort).
type sortColumn struct {
	URL, Label    string
	Sorted, Arrow string
}

type sortOption struct {
	Value, Label string
	Selected     bool
}

// parseSort reads the query's sort; anything unknown is the default.
func parseSort(s string) sortOrder {
	o := sortOrder{key: strings.TrimPrefix(s, "-"), desc: strings.HasPrefix(s, "-")}
	if _, ok := sortColumns[o.key]; !ok {
		return sortOrder{}
	}
	return o
}

func (o sortOrder) String() string {
	switch {
	case o.key == "":
		return ""
	case o.desc:
		return "-" + o.key
	}
	return o.key
}

// next is the order a click on key's header asks for.
func (o sortOrder) next(key string) sortOrder {
	if o.key == key {
		return sortOrder{key, !o.desc}
	}
	return sortOrder{key, sortColumns[key].desc}
}

// sortChoices are the orders the menu offers.
func sortChoices() []sortOrder {
	out := []sortOrder{{}}
	for _, k := range []string{"name", "status", "access", "refresh", "last"} {
		first := sortColumns[k].desc
		out = append(out, sortOrder{k, first}, sortOrder{k, !first})
	}
	return out
}

// words says the order for people.
func (o sortOrder) words() string {
	type pair struct{ asc, desc string }
	w := map[string]pair{
		"":        {"Most urgent first", ""},
		"name":    {"Name, A to Z", "Name, Z to A"},
		"status":  {"Status, the most urgent first", "Status, the healthiest first"},
		"access":  {"Access token expires, soonest first", "Access token expires, latest first"},
		"refresh": {"Refresh token expires, soonest first", "Refresh token expires, latest first"},
		"last":    {"Last refresh, oldest first", "Last refresh, most recent first"},
	}[o.key]
	if o.desc {
		return w.desc
	}
	return w.asc
}

// apply sorts rows, which are most urgent first, by o; ties keep that
// order. Times not known go last either way.
func (o sortOrder) apply(rows []listing.Row) {
	if o.key == "" {
		return
	}
	var cmp func(a, b listing.Row) int
	byTime := func(at func(listing.Row) time.Time) func(a, b listing.Row) int {
		return func(a, b listing.Row) int {
			ta, tb := at(a), at(b)
			switch {
			case ta.IsZero() || tb.IsZero():
				return boolCmp(ta.IsZero(), tb.IsZero())
			case o.desc:
				return tb.Compare(ta)
			}
			return ta.Compare(tb)
		}
	}
	switch o.key {
	case "name":
		cmp = func(a, b listing.Row) int { return dir(o.desc, strings.Compare(a.Name, b.Name)) }
	case "status":
		cmp = func(a, b listing.Row) int { return dir(o.desc, a.Health.Urgency()-b.Health.Urgency()) }
	case "access":
		cmp = byTime(func(r listing.Row) time.Time { return r.AccessExpires })
	case "refresh":
		cmp = byTime(func(r listing.Row) time.Time { return r.RefreshExpires })
	case "last":
		cmp = byTime(func(r listing.Row) time.Time { return r.LastRefresh })
	}
	slices.SortStableFunc(rows, cmp)
}

func dir(desc bool, c int) int {
	if desc {
		return -c
	}
	return c
}

// boolCmp orders false before true.
func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
