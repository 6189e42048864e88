package notify_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/notify"
	"github.com/wxcc/tokenservice/shared/testing/webexfake"
	"github.com/wxcc/tokenservice/shared/token"
)

// webhookJSON is the documented body of a webhook (shared/docs/notifications.md).
type webhookJSON struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Text      string `json:"text"`
	Data      struct {
		ID             string `json:"id"`
		Condition      string `json:"condition"`
		Token          string `json:"token"`
		Generation     int64  `json:"generation"`
		Since          string `json:"since"`
		Reminder       int    `json:"reminder"`
		AccessExpires  string `json:"accessExpires"`
		RefreshExpires string `json:"refreshExpires"`
		Reason         string `json:"reason"`
		Trigger        string `json:"trigger"`
		AuthorizedBy   *struct {
			DisplayName string `json:"displayName"`
			Email       string `json:"email"`
		} `json:"authorizedBy"`
		ConsoleURL string `json:"consoleUrl"`
	} `json:"data"`
}

func decodeHook(t *testing.T, r hookRequest) webhookJSON {
	t.Helper()
	var b webhookJSON
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("webhook body %s: %v", r.body, err)
	}
	return b
}

func TestReauthorizationNotifiesRemindsAndRecovers(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.seed("wxcc-prod")

	// A token made to need re-authorization: one Webex message, one
	// signed webhook.
	w.mustPush(w.event(token.EventReauthorizationRequired, tok, `webex refresh: HTTP 400 invalid_grant: "The refresh token provided is expired."`), http.StatusOK)
	w.expect(1, 1)
	m := w.lastWebex()
	if m.RoomID != roomID || m.Bearer != botToken {
		t.Errorf("posted to room %q as %q, want %q as the bot", m.RoomID, m.Bearer, roomID)
	}
	for _, want := range []string{"`wxcc-prod` needs re-authorization", "Jane Doe (jane\\_doe@example.com)",
		"(" + consoleURL + "/admin/token/wxcc-prod)", "Authorize with Webex", "The refresh token provided is expired"} {
		if !strings.Contains(m.Markdown, want) {
			t.Errorf("markdown lacks %q:\n%s", want, m.Markdown)
		}
	}
	t.Logf("the Webex message, as posted:\n%s", m.Markdown)

	first := w.hook.delivered()[0]
	if err := verifyStandardWebhook(hookSecret, first, w.clock.Now()); err != nil {
		t.Fatalf("webhook signature: %v", err)
	}
	if ct := first.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("webhook Content-Type %q", ct)
	}
	body := decodeHook(t, first)
	if body.Type != "condition.opened" || body.Data.Condition != "reauthorization_required" || body.Data.Token != "wxcc-prod" ||
		body.Data.Generation != 3 || body.Data.ConsoleURL != consoleURL+"/admin/token/wxcc-prod" ||
		body.Data.AuthorizedBy == nil || body.Data.AuthorizedBy.Email != "jane_doe@example.com" || body.Data.ID != first.header.Get("webhook-id") {
		t.Errorf("webhook body: %s", first.body)
	}
	if n := w.rec.count(activity.NotifySent); n != 1 {
		t.Errorf("%d notification_sent entries, want 1", n)
	}

	// Nothing more until the reminder is due.
	w.remind()
	w.clock.Advance(23 * time.Hour)
	w.remind()
	w.expect(1, 1)

	// A reminder after NOTIFY_REMINDER, once.
	w.clock.Advance(time.Hour + time.Minute)
	w.remind()
	w.remind()
	w.expect(2, 2)
	if md := w.lastWebex().Markdown; !strings.Contains(md, "Reminder: token `wxcc-prod` still needs re-authorization") || !strings.Contains(md, "(reminder 1)") {
		t.Errorf("reminder markdown:\n%s", md)
	}
	reminder := w.hook.delivered()[1]
	if err := verifyStandardWebhook(hookSecret, reminder, w.clock.Now()); err != nil {
		t.Errorf("reminder's signature: %v", err)
	}
	if b := decodeHook(t, reminder); b.Type != "condition.reminder" || b.Data.Reminder != 1 || reminder.header.Get("webhook-id") == first.header.Get("webhook-id") {
		t.Errorf("reminder webhook: %s", reminder.body)
	}

	// Re-authorized: one recovery message, and a copy of the event sends
	// nothing more.
	rotated := w.reauthorize("wxcc-prod")
	w.mustPush(rotated, http.StatusOK)
	w.mustPush(rotated, http.StatusOK)
	w.expect(3, 3)
	if md := w.lastWebex().Markdown; !strings.Contains(md, "✅ **Resolved: token `wxcc-prod` is active again**") || !strings.Contains(md, "It was authorized again") {
		t.Errorf("recovery markdown:\n%s", md)
	}
	if b := decodeHook(t, w.hook.delivered()[2]); b.Type != "condition.resolved" || b.Data.Trigger != "authorization" || b.Data.Generation != 4 {
		t.Errorf("recovery webhook: %s", w.hook.delivered()[2].body)
	}

	// Resolved: no more reminders, and a late copy of the opening event
	// alarms nobody.
	w.mustPush(w.event(token.EventReauthorizationRequired, tok, "late copy"), http.StatusOK)
	w.clock.Advance(48 * time.Hour)
	w.remind()
	w.expect(3, 3)
	if n := w.rec.count(activity.NotifySent); n != 3 {
		t.Errorf("%d notification_sent entries, want 3 (opened, reminder, resolved)", n)
	}
	for _, e := range w.rec.all() {
		if e.Token != "wxcc-prod" || e.ActorKind != activity.ByService || e.Actor != "worker-test" {
			t.Errorf("activity entry %+v: want the token, by the service instance", e)
		}
	}
	w.noSecrets()
}

func TestWebexDownThenBack(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.seed("flow-token")
	e := w.event(token.EventReauthorizationRequired, tok, "")

	w.webex.FailMessagesAlways(webexfake.ServerError(http.StatusServiceUnavailable))
	w.mustPush(e, http.StatusServiceUnavailable) // Pub/Sub delivers it again
	w.clock.Advance(10 * time.Second)
	w.mustPush(e, http.StatusServiceUnavailable)
	w.clock.Advance(time.Minute)
	w.expect(0, 1) // the webhook has it, once
	if got := w.webex.MessageAttempts(); got != 2 {
		t.Errorf("%d attempts at Webex, want 2", got)
	}
	if n := w.rec.count(activity.NotifySent); n != 0 {
		t.Errorf("%d notification_sent entries while Webex lacks it, want 0", n)
	}

	w.webex.ClearMessagesFaults()
	w.mustPush(e, http.StatusOK)
	w.mustPush(e, http.StatusOK) // and again: nothing more
	w.expect(1, 1)
	if n := w.rec.count(activity.NotifySent); n != 1 {
		t.Errorf("%d notification_sent entries, want 1", n)
	}
}

func TestDuplicateDeliveriesSendOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.seed("dup-token")
	e := w.event(token.EventReauthorizationRequired, tok, "")

	// Pub/Sub delivers the same message to two instances at once, and the
	// api's and the worker's relays both published the event (same ce-id,
	// other message IDs).
	body := w.envelope(e)
	bodies := [][]byte{body, body, w.envelope(e), w.envelope(e)}
	var wg sync.WaitGroup
	statuses := make([]int, len(bodies))
	for i, b := range bodies {
		wg.Go(func() { statuses[i] = w.pushBody(b) })
	}
	wg.Wait()
	for _, s := range statuses {
		if s != http.StatusOK && s != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 200, or 503 while another instance sends", s)
		}
	}
	w.mustPush(e, http.StatusOK) // a later redelivery finds it done
	w.expect(1, 1)
	if n := w.rec.count(activity.NotifySent); n != 1 {
		t.Errorf("%d notification_sent entries, want 1", n)
	}
}

func TestGiveUpIsRecorded(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.seed("hook-down")
	e := w.event(token.EventReauthorizationRequired, tok, "")

	w.hook.failWith(http.StatusInternalServerError)
	w.mustPush(e, http.StatusServiceUnavailable)
	w.clock.Advance(12 * time.Hour)
	w.mustPush(e, http.StatusServiceUnavailable)
	w.clock.Advance(12 * time.Hour) // NOTIFY_GIVE_UP after the event
	w.mustPush(e, http.StatusOK)
	w.mustPush(e, http.StatusOK) // settled: not tried again
	w.expect(1, 0)
	if got := len(w.hook.all()); got != 3 {
		t.Errorf("%d webhook attempts, want 3", got)
	}
	var given []activity.Entry
	for _, en := range w.rec.all() {
		if en.Action == activity.NotifyGivenUp {
			given = append(given, en)
		}
	}
	if len(given) != 1 || given[0].Outcome != activity.Failed || !strings.Contains(given[0].Detail, "given up after 24h on webhook") ||
		!strings.Contains(given[0].Detail, "HTTP 500") || !strings.Contains(given[0].Detail, "sent to webex") || given[0].Token != "hook-down" {
		t.Errorf("notification_given_up entries: %+v, want one naming the webhook's failure and what Webex got", given)
	}
	if !strings.Contains(w.logs.String(), `"msg":"notify: notification given up"`) {
		t.Errorf("no log line for the give-up:\n%s", w.logs.String())
	}

	// The recovery goes only where the alarm arrived.
	w.hook.failWith(0)
	w.mustPush(w.reauthorize("hook-down"), http.StatusOK)
	w.expect(2, 0)
}

func TestReminderRetriedByRemind(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.seed("remind-retry")
	w.mustPush(w.event(token.EventReauthorizationRequired, tok, ""), http.StatusOK)

	w.clock.Advance(25 * time.Hour)
	w.webex.FailMessagesAlways(webexfake.ServerError(http.StatusBadGateway))
	if err := w.n.Remind(ctxT(t)); err != nil {
		t.Fatalf("Remind with Webex down: %v (a channel not delivered yet is no error)", err)
	}
	w.expect(1, 2)
	w.webex.ClearMessagesFaults()
	w.clock.Advance(5 * time.Minute) // the next sweep
	w.remind()
	w.remind()
	w.expect(2, 2)
	if md := w.lastWebex().Markdown; !strings.Contains(md, "Reminder") {
		t.Errorf("retried message is not the reminder:\n%s", md)
	}
}

func TestDeletedTokenClosesQuietly(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.seed("to-delete")
	tok, _ := w.tokens.Get(ctxT(t), "to-delete")
	w.mustPush(w.event(token.EventReauthorizationRequired, tok, ""), http.StatusOK)
	w.expect(1, 1)

	w.clock.Advance(time.Minute)
	deleted, err := w.tokens.Delete(ctxT(t), "to-delete", func(t *token.Token) token.Event {
		return token.NewEvent(token.EventDeleted, t, token.TriggerManual, w.clock.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
	w.mustPush(deleted, http.StatusOK)
	w.clock.Advance(25 * time.Hour)
	w.remind()
	w.expect(1, 1)
}

func TestResolvedWithoutEvent(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.seed("quiet-fix")
	w.mustPush(w.event(token.EventReauthorizationRequired, tok, ""), http.StatusOK)

	w.reauthorize("quiet-fix") // its token.rotated never reaches us
	w.clock.Advance(25 * time.Hour)
	w.remind()
	w.expect(2, 2)
	if md := w.lastWebex().Markdown; !strings.Contains(md, "Resolved: token `quiet-fix` is active again") {
		t.Errorf("want a recovery, not a reminder:\n%s", md)
	}
	w.clock.Advance(25 * time.Hour)
	w.remind()
	w.expect(2, 2)
}

func TestStaleEventsAlarmNobody(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.seed("moved-on")
	old := w.event(token.EventReauthorizationRequired, tok, "")
	rotated := w.reauthorize("moved-on")

	// Arrival out of order: the rotation first, then the older failure.
	w.mustPush(rotated, http.StatusOK)
	w.mustPush(old, http.StatusOK)
	failed := old
	failed.Type, failed.ID = token.EventRefreshFailed, "moved-on/3/token.refresh_failed"
	w.mustPush(failed, http.StatusOK)
	w.expect(0, 0)
}

func TestExpiringThenReauthorizationThenOneRecovery(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	now := w.clock.Now()
	tok := w.seed("aging")
	tok = w.change("aging", func(t *token.Token) {
		t.Status, t.RefreshExpires = token.StatusActive, now.Add(6*24*time.Hour).Truncate(time.Millisecond)
	})
	w.mustPush(w.event(token.EventRefreshExpiring, tok, ""), http.StatusOK)
	w.expect(1, 1)
	if md := w.lastWebex().Markdown; !strings.Contains(md, "🟠 **The refresh token of `aging` expires on") {
		t.Errorf("expiring markdown:\n%s", md)
	}

	w.clock.Advance(7 * 24 * time.Hour)
	tok = w.change("aging", func(t *token.Token) { t.Status = token.StatusReauthRequired })
	w.mustPush(w.event(token.EventReauthorizationRequired, tok, "refresh token expired"), http.StatusOK)
	w.expect(2, 2)

	w.mustPush(w.reauthorize("aging"), http.StatusOK)
	w.expect(3, 3) // one recovery: the expiry warning was superseded
	w.clock.Advance(25 * time.Hour)
	w.remind()
	w.expect(3, 3)
}

func TestSweepHaltedAndRecovered(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	halt := token.Event{ID: "sweep/1/token.sweep_halted", Type: token.EventSweepHalted, Trigger: token.TriggerScheduled,
		Time: w.clock.Now(), Message: "sweep halted: 5 tokens failed the same permanent way (client)"}
	w.mustPush(halt, http.StatusOK)
	w.expect(1, 1)
	if md := w.lastWebex().Markdown; !strings.Contains(md, "The token service halted a sweep") || !strings.Contains(md, "("+consoleURL+"/admin/)") {
		t.Errorf("sweep markdown:\n%s", md)
	}
	if b := decodeHook(t, w.hook.delivered()[0]); b.Data.Condition != "sweep_halted" || b.Data.Token != "" {
		t.Errorf("sweep webhook: %s", w.hook.delivered()[0].body)
	}

	w.clock.Advance(5 * time.Minute)
	if err := w.tokens.RecordSweep(ctxT(t), token.SweepRecord{At: w.clock.Now(), Instance: "worker-1"}); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(24 * time.Hour)
	w.remind()
	w.expect(2, 2)
	if md := w.lastWebex().Markdown; !strings.Contains(md, "Resolved: sweeps complete again") {
		t.Errorf("sweep recovery markdown:\n%s", md)
	}
}

func TestEnvelopes(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.seed("env")
	valid := func() map[string]any {
		var m map[string]any
		_ = json.Unmarshal(w.envelope(w.event(token.EventReauthorizationRequired, tok, "")), &m)
		return m
	}
	msg := func(m map[string]any) map[string]any { return m["message"].(map[string]any) }
	attrs := func(m map[string]any) map[string]any { return msg(m)["attributes"].(map[string]any) }
	enc := func(m map[string]any) []byte { b, _ := json.Marshal(m); return b }
	with := func(f func(m map[string]any)) []byte { m := valid(); f(m); return enc(m) }

	tests := []struct {
		name string
		body []byte
		want int
	}{
		{"not JSON", []byte("hello"), http.StatusBadRequest},
		{"empty", nil, http.StatusBadRequest},
		{"JSON array", []byte(`[]`), http.StatusBadRequest},
		{"two objects", append(enc(valid()), enc(valid())...), http.StatusBadRequest},
		{"no message", []byte(`{"subscription":"projects/p/subscriptions/s"}`), http.StatusBadRequest},
		{"no messageId", with(func(m map[string]any) { delete(msg(m), "messageId") }), http.StatusBadRequest},
		{"no subscription", with(func(m map[string]any) { delete(m, "subscription") }), http.StatusBadRequest},
		{"data not base64", with(func(m map[string]any) { msg(m)["data"] = "%%%" }), http.StatusBadRequest},
		{"attribute not a string", with(func(m map[string]any) { attrs(m)["generation"] = 3 }), http.StatusBadRequest},
		{"publishTime not a time", with(func(m map[string]any) { msg(m)["publishTime"] = "yesterday" }), http.StatusBadRequest},
		{"too large", with(func(m map[string]any) { m["padding"] = strings.Repeat("x", 9000) }), http.StatusRequestEntityTooLarge},
		// Well-formed envelopes with messages that are not our events are
		// acknowledged: delivering them again cannot help.
		{"no ce-type", with(func(m map[string]any) { delete(attrs(m), "ce-type") }), http.StatusOK},
		{"name disagrees", with(func(m map[string]any) { attrs(m)["name"] = "other" }), http.StatusOK},
		{"data not JSON", with(func(m map[string]any) { msg(m)["data"] = "bm90IGpzb24=" }), http.StatusOK},
		{"invalid name", with(func(m map[string]any) {
			attrs(m)["name"] = "../x"
			msg(m)["data"] = "eyJuYW1lIjoiLi4veCIsImdlbmVyYXRpb24iOjN9"
		}), http.StatusOK},
		{"unknown type", with(func(m map[string]any) { attrs(m)["ce-type"] = "token.renamed" }), http.StatusOK},
	}
	for _, tt := range tests {
		if got := w.pushBody(tt.body); got != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, got, tt.want)
		}
	}
	w.expect(0, 0)
}

func TestRemindGivesUpBehindADeadChannel(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.hook.failWith(http.StatusBadGateway)
	for _, name := range []string{"dead-a", "dead-b"} {
		w.mustPush(w.event(token.EventReauthorizationRequired, w.seed(name), ""), http.StatusServiceUnavailable)
	}
	w.clock.Advance(24*time.Hour + time.Minute)
	w.remind()
	// One attempt at the dead webhook in the round; both messages given up.
	if got := len(w.hook.all()); got != 3 {
		t.Errorf("%d webhook attempts, want 3 (one per push, one in the round)", got)
	}
	if n := w.rec.count(activity.NotifyGivenUp); n != 2 {
		t.Errorf("%d notification_given_up entries, want 2", n)
	}
	w.expect(2, 0)
}

// An instance that claimed a channel and died holds the message back only
// until its claim lapses; meanwhile nobody else sends to that channel.
func TestClaimOfADeadInstanceLapses(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.seed("claimed")
	e := w.event(token.EventReauthorizationRequired, tok, "")
	w.webex.FailMessagesNext(1, webexfake.ServerError(http.StatusBadGateway))
	w.mustPush(e, http.StatusServiceUnavailable)

	id := notify.ConditionID(notify.KindReauthRequired, "claimed")
	got, err := w.tokens.Conditions(ctxT(t), id)
	if err != nil || got[id] == nil || got[id].Pending == nil {
		t.Fatalf("condition %s: %+v, %v; want one with its message pending", id, got[id], err)
	}
	c := got[id]
	c.Pending.Claims = map[string]time.Time{notify.ChannelWebex: w.clock.Now().Add(30 * time.Second)}
	if err := w.tokens.SaveCondition(ctxT(t), c); err != nil {
		t.Fatal(err)
	}
	w.mustPush(e, http.StatusServiceUnavailable)
	w.expect(0, 1)

	w.clock.Advance(31 * time.Second)
	w.mustPush(e, http.StatusOK)
	w.expect(1, 1)
}
