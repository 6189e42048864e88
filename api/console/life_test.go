package console

import (
	"strings"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/activity/activitytest"
	"github.com/wxcc/tokenservice/shared/token"
)

var lifeNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func rotation(at time.Time, lifetime time.Duration) activity.Entry {
	return activity.Entry{At: at, Action: activity.Rotated, Outcome: activity.OK, Token: "t", AccessExpires: at.Add(lifetime)}
}

func TestLifeSummary(t *testing.T) {
	tests := []struct {
		name    string
		entries []activity.Entry
		tok     *token.Token
		want    string
	}{
		{
			name: "refreshed in time",
			// Every 9h30 a new 12h token: the lowest is 2h30, just before each.
			entries: func() []activity.Entry {
				var es []activity.Entry
				for at := lifeNow.Add(-8 * 24 * time.Hour); at.Before(lifeNow); at = at.Add(9*time.Hour + 30*time.Minute) {
					es = append(es, rotation(at, 12*time.Hour))
				}
				return es
			}(),
			want: "Last 7 days: 18 refreshes, 0 failures, lowest validity 2 h 30 min.",
		},
		{
			name: "ran out",
			entries: []activity.Entry{rotation(lifeNow.Add(-30*time.Hour), 12*time.Hour), rotation(lifeNow.Add(-6*time.Hour), 12*time.Hour),
				{At: lifeNow.Add(-20 * time.Hour), Action: activity.ReauthRequired, Outcome: activity.Failed},
				{At: lifeNow.Add(-6 * time.Hour).Add(time.Second), Action: activity.AuthCompleted, Outcome: activity.OK}},
			want: "Last 7 days: 1 refresh, 0 failures, 1 re-authorization needed, 1 authorization, lowest validity 0: the access token ran out for 12 h.",
		},
		{
			name: "an entry from before the field, read from its detail",
			entries: []activity.Entry{{At: lifeNow.Add(-3 * time.Hour), Action: activity.Rotated, Outcome: activity.OK,
				Detail: "generation 4, trigger scheduled, access token valid until " + lifeNow.Add(9*time.Hour).Format(time.RFC3339)}},
			want: "Last 7 days: 1 refresh, 0 failures, lowest validity 9 h.",
		},
		{
			name: "nothing recorded: the token as stored",
			tok:  &token.Token{AccessExpires: lifeNow.Add(4 * time.Hour), LastRefresh: lifeNow.Add(-8 * time.Hour)},
			want: "Last 7 days: 1 refresh, 0 failures, lowest validity 4 h.",
		},
		{
			name: "nothing at all",
			want: "Last 7 days: 0 refreshes, 0 failures; the access token's validity is not known (nothing recorded).",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newLife(tt.entries, tt.tok, lifeNow, false).summary(); got != tt.want {
				t.Errorf("summary\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestLifeChartMarks: every event in the window is one mark of its kind,
// the stored token is not counted twice when its rotation is recorded,
// and the line has no gap.
func TestLifeChartMarks(t *testing.T) {
	entries := activitytest.Week("t", lifeNow.Add(-time.Hour), 12*time.Hour)
	last := entries[len(entries)-1]
	tok := &token.Token{AccessExpires: last.AccessExpires, LastRefresh: last.At}
	d := newLife(entries, tok, lifeNow, false)
	c := drawLife(d, 2*time.Hour, 5*time.Minute)
	kinds := map[string]int{}
	for _, m := range c.Marks {
		kinds[m.Kind]++
	}
	if kinds[markRefresh] != d.Refreshes || kinds[markFailure] != 1 || kinds[markReauth] != 1 || kinds[markAuthorized] != 1 {
		t.Errorf("marks %v for %d refreshes, want one per event", kinds, d.Refreshes)
	}
	if strings.Count(c.Line, "M") != 1 {
		t.Errorf("the line has %d pieces, want one: %s", strings.Count(c.Line, "M"), c.Line)
	}
	if !d.Segments[0].From.Equal(lifeNow.Add(-lifeWindow)) || !d.Segments[len(d.Segments)-1].To.Equal(lifeNow) {
		t.Errorf("the line runs %v to %v, want the whole week", d.Segments[0].From, d.Segments[len(d.Segments)-1].To)
	}
}
