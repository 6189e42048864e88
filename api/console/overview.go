package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/api/listing"
	"github.com/wxcc/tokenservice/shared/httpapi"
	"github.com/wxcc/tokenservice/shared/token"
)

// OverviewPageSize is how many tokens one overview page shows; with
// filtering by name and status, that keeps 1 000 tokens usable.
const OverviewPageSize = 50

type overviewView struct {
	// Holders are the people several tokens act as.
	Holders      []listing.Holder
	Total        int
	Counts       []healthCount
	Sweep        *token.SweepRecord
	SweepStale   bool
	SweepUnknown bool
	Warnings     []string
	Rows         []overviewRow
	Query        string
	Health       token.Health
	Options      []healthOption
	Filtered     bool
	Matched      int
	From, To     int
	PrevURL      string
	NextURL      string
	Updated      time.Time
	// Sort is the order asked for ("" most urgent first); Columns are the
	// table's headers, with the links that sort by them; SortOptions the
	// same choice as a menu (for narrow screens, where headers are off);
	// Order says the order in words; UrgentURL goes back to the default.
	Sort        string
	Columns     map[string]sortColumn
	SortOptions []sortOption
	Order       string
	UrgentURL   string
	// Weeks: each row's last 7 days could be read; WeeksFrom is
	// when its counts begin when that is later than a week ago.
	Weeks     bool
	WeeksFrom time.Time
	// BulkWhy is why the bulk refresh button does nothing ("" it works).
	BulkWhy string
}

// overviewRow is a row with its last week and whether it may be chosen
// for a bulk refresh (PickWhy says why not).
type overviewRow struct {
	listing.Row
	Week    *weekStrip
	PickWhy string
}

type healthCount struct {
	Health token.Health
	N      int
}

type healthOption struct {
	Value    token.Health
	Label    string
	Selected bool
}

// overviewPage lists every token, most urgent first unless another
// order is asked for, filtered and paged.
func (cs *Console) overviewPage(c echo.Context) error {
	snap, err := cs.d.Listing.Overview(c.Request().Context())
	if err != nil {
		cs.log.Warn("console overview failed", "error", err.Error())
		ae := httpapi.StatusOf(err, "", cs.now())
		p := cs.signedPage(c, "Tokens")
		p.Flash = &flash{"error", "The tokens could not be listed: " + ae.Message}
		return cs.render(c, ae.Code, "message", p)
	}
	now := cs.now()
	v := overviewView{Total: len(snap.Rows), Sweep: snap.Sweep, SweepUnknown: snap.SweepUnknown, Holders: snap.Holders,
		Warnings: cs.d.Warnings, Updated: snap.At}
	if v.Sweep != nil {
		interval := cs.cfg.SweepInterval
		if interval <= 0 {
			interval = 5 * time.Minute
		}
		v.SweepStale = now.Sub(v.Sweep.At) > 3*interval+time.Minute
	}
	counts := map[token.Health]int{}
	for _, r := range snap.Rows {
		counts[r.Health]++
	}
	for _, h := range token.Healths {
		if counts[h] > 0 {
			v.Counts = append(v.Counts, healthCount{h, counts[h]})
		}
	}
	v.Query = strings.TrimSpace(c.QueryParam("q"))
	if h := token.Health(c.QueryParam("status")); h.Urgency() < len(token.Healths) {
		v.Health = h
	}
	for _, h := range token.Healths {
		v.Options = append(v.Options, healthOption{h, healthLabels[h], h == v.Health})
	}
	order := parseSort(c.QueryParam("sort"))
	v.Sort = order.String()
	v.Filtered = v.Query != "" || v.Health != ""
	q := strings.ToLower(v.Query)
	var matched []listing.Row
	for _, r := range snap.Rows {
		if (v.Health == "" || r.Health == v.Health) && strings.Contains(strings.ToLower(r.Name), q) {
			matched = append(matched, r)
		}
	}
	order.apply(matched) // the listing is most urgent first already
	v.Matched = len(matched)
	pages := max((len(matched)+OverviewPageSize-1)/OverviewPageSize, 1)
	n, _ := strconv.Atoi(c.QueryParam("page"))
	n = min(max(n, 1), pages)
	v.From, v.To = (n-1)*OverviewPageSize, min(n*OverviewPageSize, len(matched))
	p := cs.signedPage(c, "Tokens")
	if !p.CanChange {
		v.BulkWhy = viewerWhy
	}
	weeks := cs.weeks(c)
	if weeks != nil {
		v.Weeks = true
		if weeks.From.After(now.Add(-listing.RecentWindow + time.Minute)) {
			v.WeeksFrom = weeks.From
		}
	}
	for _, r := range matched[v.From:v.To] {
		row := overviewRow{Row: r, PickWhy: heldReason(r)}
		if !p.CanChange {
			row.PickWhy = viewerWhy
		}
		if weeks != nil {
			row.Week = newWeekStrip(weeks.ByToken[r.Name])
		}
		v.Rows = append(v.Rows, row)
	}
	if len(matched) > 0 {
		v.From++
	}
	link := func(page int, o sortOrder) string {
		u := url.Values{}
		if v.Query != "" {
			u.Set("q", v.Query)
		}
		if v.Health != "" {
			u.Set("status", string(v.Health))
		}
		if s := o.String(); s != "" {
			u.Set("sort", s)
		}
		if page > 1 {
			u.Set("page", strconv.Itoa(page))
		}
		if len(u) == 0 {
			return "/admin/"
		}
		return "/admin/?" + u.Encode()
	}
	if n > 1 {
		v.PrevURL = link(n-1, order)
	}
	if n < pages {
		v.NextURL = link(n+1, order)
	}
	v.Columns = map[string]sortColumn{}
	for key, col := range sortColumns {
		sc := sortColumn{URL: link(1, order.next(key)), Label: col.label}
		if order.key == key {
			sc.Sorted = "ascending"
			if order.desc {
				sc.Sorted = "descending"
			}
			sc.Arrow = map[bool]string{false: "▲", true: "▼"}[order.desc]
		}
		v.Columns[key] = sc
	}
	for _, o := range sortChoices() {
		v.SortOptions = append(v.SortOptions, sortOption{Value: o.String(), Label: o.words(), Selected: o == order})
	}
	v.Order = order.words()
	v.UrgentURL = link(1, sortOrder{})
	p.Poll, p.Data, p.Canonical = true, v, link(n, order)
	if d := c.QueryParam("deleted"); d != "" && token.ValidateName(d) == nil {
		p.Flash = &flash{"ok", "Token " + d + " deleted."}
	}
	return cs.render(c, http.StatusOK, "overview", p)
}

// weeks is every token's last week from the activity record, or nil
// when there is none here or it could not be read (the column then
// says so; the overview itself does not fail).
func (cs *Console) weeks(c echo.Context) *listing.Weeks {
	if cs.recent == nil {
		return nil
	}
	w, err := cs.recent.Weeks(c.Request().Context())
	if err != nil {
		cs.log.Warn("console overview: the last week not read", "error", err.Error())
		return nil
	}
	return &w
}

// weekStrip is a token's last week on the overview: a tiny strip of its
// events (aria-hidden: the text says the same) and the counts in words.
type weekStrip struct {
	Refresh, Authorized, Failure, Reauth string // SVG paths, one per kind
	Text                                 string
	Bad                                  bool // a failure or a re-authorization
}

func newWeekStrip(w *listing.Week) *weekStrip {
	if w == nil {
		w = &listing.Week{}
	}
	s := &weekStrip{Bad: w.Failures > 0 || w.Reauths > 0}
	var refresh, authorized, failure, reauth strings.Builder
	for _, m := range w.Marks {
		x := 3 + m.Pos*94
		switch m.Kind {
		case "refresh":
			fmt.Fprintf(&refresh, "M%s 4v8", num(x))
		case "authorized":
			fmt.Fprintf(&authorized, "M%s 3l5 5l-5 5l-5 -5Z", num(x))
		case "failure":
			fmt.Fprintf(&failure, "M%s 4l8 8m0 -8l-8 8", num(x-4))
		case "reauth":
			fmt.Fprintf(&reauth, "M%s 3l5 10h-10Z", num(x))
		}
	}
	s.Refresh, s.Authorized, s.Failure, s.Reauth = refresh.String(), authorized.String(), failure.String(), reauth.String()
	parts := []string{plural(w.Refreshes, "refresh", "refreshes"), plural(w.Failures, "failure", "failures")}
	if w.Reauths > 0 {
		parts = append(parts, plural(w.Reauths, "re-authorization needed", "re-authorizations needed"))
	}
	s.Text = "7 days: " + strings.Join(parts, ", ")
	return s
}

// sweepCounts says what the last sweep did, for the overview's line.
func sweepCounts(s *token.SweepRecord) string {
	if s.Refreshed == 0 && s.Failed == 0 {
		if s.Due == 0 {
			return "no token needed a refresh"
		}
		return plural(s.Due, "token was due and waits for the next check", "tokens were due and wait for the next check")
	}
	out := plural(s.Refreshed, "token refreshed", "tokens refreshed")
	if s.Failed == 0 {
		return out + ", none failed"
	}
	return out + ", " + plural(s.Failed, "failed", "failed")
}

// sweepProblem is a halted or failed sweep's reason, without the words
// the line says already.
func sweepProblem(s *token.SweepRecord) string {
	return strings.TrimPrefix(strings.TrimPrefix(s.Error, "sweep halted: "), "sweep ")
}
