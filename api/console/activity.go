package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/shared/activity"
)

// activityPageSize is how many entries one Activity page shows.
const activityPageSize = 50

type activityView struct {
	Entries []activity.Entry
	Token   string
	Actor   string
	Action  activity.Action
	Actions []actionOption
	// NextURL continues the listing; FirstURL starts it again.
	NextURL  string
	FirstURL string
	Filtered bool
	Off      bool
}

type actionOption struct {
	Value    activity.Action
	Selected bool
}

// activityPage is the activity record, newest first, filtered by token,
// person and kind of action, a page at a time.
func (cs *Console) activityPage(c echo.Context) error {
	f := activity.Filter{
		Token:  strings.TrimSpace(c.QueryParam("token")),
		Actor:  strings.TrimSpace(c.QueryParam("actor")),
		Action: activity.Action(strings.TrimSpace(c.QueryParam("action"))),
		Limit:  activityPageSize,
		Cursor: c.QueryParam("cursor"),
	}
	v := activityView{Token: f.Token, Actor: f.Actor, Action: f.Action, Filtered: f.Token != "" || f.Actor != "" || f.Action != ""}
	for _, a := range activity.Actions() {
		v.Actions = append(v.Actions, actionOption{a, a == f.Action})
	}
	link := func(cursor string) string {
		u := url.Values{}
		for k, val := range map[string]string{"token": f.Token, "actor": f.Actor, "action": string(f.Action), "cursor": cursor} {
			if val != "" {
				u.Set(k, val)
			}
		}
		if len(u) == 0 {
			return "/admin/activity-log"
		}
		return "/admin/activity-log?" + u.Encode()
	}
	v.FirstURL = link("")
	p := cs.signedPage(c, "Activity")
	p.Data, p.Canonical = &v, link(f.Cursor)
	if cs.d.Activity == nil {
		v.Off = true
		return cs.render(c, http.StatusOK, "activity", p)
	}
	page, err := cs.d.Activity.List(c.Request().Context(), f)
	switch {
	case errors.Is(err, activity.ErrBadFilter), errors.Is(err, activity.ErrBadCursor):
		p.Flash = &flash{"error", "That filter cannot be used: " + err.Error() + "."}
		return cs.render(c, http.StatusBadRequest, "activity", p)
	case err != nil:
		cs.log.Warn("console activity not listed", "error", err.Error())
		p.Flash = &flash{"error", "The activity record could not be read right now: reload in a minute."}
		return cs.render(c, http.StatusServiceUnavailable, "activity", p)
	}
	v.Entries = page.Entries
	if page.Next != "" {
		v.NextURL = link(page.Next)
	}
	return cs.render(c, http.StatusOK, "activity", p)
}
