package activitytest

import (
	"fmt"
	"time"

	"github.com/wxcc/tokenservice/shared/activity"
)

// Week is eight days of a token's life as the service records it, for
// the console's chart in demos and tests: a rotation whenever the access
// token (valid for lifetime) has 2h30m left (REFRESH_THRESHOLD 2h +
// REFRESH_LEAD 30m), one refresh that failed and worked 20 minutes
// later, and one refresh token that Webex rejected:
// the access token ran out until a person authorized the token again, 14
// hours after. The last entry is a rotation at last, whose access token
// ends at last + lifetime, so that a token document written with those
// times agrees with it. Entries are oldest first, without IDs.
func Week(name string, last time.Time, lifetime time.Duration) []activity.Entry {
	const (
		span    = 8 * 24 * time.Hour
		actor   = "worker-demo"
		person  = "supervisor@example.com"
		retry   = 20 * time.Minute
		reauthd = 14 * time.Hour
	)
	every := max(lifetime-2*time.Hour-30*time.Minute, time.Hour)
	// Built forwards from an arbitrary start, then moved so that the last
	// rotation falls at last; a rotation's detail is written once moved.
	start := time.Unix(0, 0).UTC()
	var (
		es       []activity.Entry
		triggers       = map[int]string{}
		gen      int64 = 100
	)
	rotate := func(at time.Time, trigger string) {
		gen++
		triggers[len(es)] = trigger
		es = append(es, activity.Entry{At: at, ActorKind: activity.ByService, Actor: actor, Action: activity.Rotated,
			Token: name, Outcome: activity.OK, Generation: gen, AccessExpires: at.Add(lifetime)})
	}
	failAt, reauthAt := start.Add(span*3/4), start.Add(span*3/8)
	failed, reauthed := false, false
	for t := start; t.Before(start.Add(span)); {
		rotate(t, "scheduled")
		next := t.Add(every)
		switch {
		case !reauthed && !next.Before(reauthAt):
			reauthed = true
			es = append(es, activity.Entry{At: next, ActorKind: activity.ByService, Actor: actor, Action: activity.ReauthRequired,
				Token: name, Outcome: activity.Failed,
				Detail: `grant rejected: webex refresh: HTTP 400 invalid_grant: "The refresh token provided is expired, revoked, malformed, or invalid."`})
			auth := next.Add(reauthd)
			rotate(auth, "authorization")
			es = append(es, activity.Entry{At: auth.Add(time.Second), ActorKind: activity.ByPerson, Actor: person,
				Action: activity.AuthCompleted, Token: name, Addr: "198.51.100.7", Outcome: activity.OK, Detail: "acts as " + person})
			next = auth.Add(every)
		case !failed && !next.Before(failAt):
			failed = true
			es = append(es, activity.Entry{At: next, ActorKind: activity.ByService, Actor: actor, Action: activity.RefreshFailed,
				Token: name, Outcome: activity.Failed, Detail: "transient: webex refresh: HTTP 503: upstream unavailable"})
			next = next.Add(retry)
		}
		t = next
	}
	end := len(es)
	for end > 0 && es[end-1].Action != activity.Rotated {
		end--
	}
	shift := last.Sub(es[end-1].At)
	out := es[:end]
	for i := range out {
		out[i].At = out[i].At.Add(shift)
		if trigger, ok := triggers[i]; ok {
			out[i].AccessExpires = out[i].AccessExpires.Add(shift)
			out[i].Detail = fmt.Sprintf("generation %d, trigger %s, access token valid until %s",
				out[i].Generation, trigger, out[i].AccessExpires.UTC().Format(time.RFC3339))
		}
	}
	return out
}
