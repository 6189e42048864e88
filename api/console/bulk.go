package console

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/token"
)

// Refresh now for several tokens at once, from the overview: the tokens
// ticked there, each through the same use case as its own page's button
// (one Webex call per token across all instances), a few at a time.

// bulkRefreshPath is where the overview's form posts.
const bulkRefreshPath = "/admin/refresh-selected"

// bulkParallel is how many of the chosen tokens are refreshed at once.
const bulkParallel = 4

// bulkResult is what happened to one token.
type bulkResult struct {
	Name string
	OK   bool
	// Text says it in words: the new expiry, or why not.
	Text    string
	Expires time.Time
}

type bulkView struct {
	Results   []bulkResult
	Refreshed int
	Failed    int
}

// refreshSelected refreshes the tokens ticked on the overview and says
// per token what happened. Viewers never get here (requireSession).
func (cs *Console) refreshSelected(c echo.Context) error {
	if err := c.Request().ParseForm(); err != nil {
		return cs.renderMessage(c, http.StatusBadRequest, "Refresh now", &flash{"error", "The form could not be read."})
	}
	var names []string
	for _, n := range c.Request().PostForm["name"] {
		if token.ValidateName(n) != nil {
			return cs.renderMessage(c, http.StatusBadRequest, "Refresh now", &flash{"error", "Not refreshed: the form named a token that cannot exist."})
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	switch {
	case len(names) == 0:
		return cs.renderMessage(c, http.StatusBadRequest, "Refresh now", &flash{"error", "Nothing refreshed: tick the tokens to refresh first."})
	case len(names) > OverviewPageSize:
		return cs.renderMessage(c, http.StatusBadRequest, "Refresh now",
			&flash{"error", "Nothing refreshed: choose at most one page of tokens at a time."})
	}
	since := cs.now().Add(-time.Second)
	actor := cs.actor(c)
	results := make([]bulkResult, len(names))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(bulkParallel, len(names)) {
		wg.Go(func() {
			for i := range work {
				results[i] = cs.refreshOne(c.Request().Context(), actor, names[i], since)
			}
		})
	}
	for i := range names {
		work <- i
	}
	close(work)
	wg.Wait()
	v := bulkView{Results: results}
	for _, r := range results {
		if r.OK {
			v.Refreshed++
		} else {
			v.Failed++
		}
	}
	p := cs.signedPage(c, "Refresh now")
	p.Data = v
	p.Flash = &flash{"ok", plural(v.Refreshed, "token refreshed", "tokens refreshed") + ", " + plural(v.Failed, "failed", "failed") + "."}
	if v.Failed > 0 {
		p.Flash.Kind = "warning"
		if v.Refreshed == 0 {
			p.Flash.Kind = "error"
		}
	}
	return cs.render(c, http.StatusOK, "bulk", p)
}

// refreshOne is Refresh now on one of the chosen tokens.
func (cs *Console) refreshOne(ctx context.Context, actor lifecycle.Actor, name string, since time.Time) bulkResult {
	res, err := cs.d.Service.RefreshNow(ctx, actor, name)
	cs.changed(name)
	if err != nil {
		// The badge says "Not refreshed" already.
		return bulkResult{Name: name, Text: strings.TrimPrefix(cs.refreshFailure(name, res, err, since), "Refresh failed: ")}
	}
	r := bulkResult{Name: name, OK: true, Text: "Webex issued a new access token."}
	if res.Token != nil {
		r.Expires = res.Token.AccessExpires
		if res.Token.IsServiceApp() {
			r.Text = "A new token pair was minted with the manager's token."
		}
	}
	return r
}
