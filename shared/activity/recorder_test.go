package activity_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/activity/activitytest"
	"github.com/wxcc/tokenservice/shared/logging"
)

// gate is a store whose Add waits until the gate opens (or the write's
// context ends), then stores into Memory: a stalled Firestore.
type gate struct {
	activitytest.Memory
	open    chan struct{}
	started chan struct{} // one value per Add that began
}

func newGate() *gate {
	return &gate{open: make(chan struct{}), started: make(chan struct{}, 100)}
}

func (g *gate) Add(ctx context.Context, e activity.Entry) error {
	g.started <- struct{}{}
	select {
	case <-g.open:
		return g.Memory.Add(ctx, e)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// syncBuffer is a log destination safe for the writers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the logged JSON objects.
func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %v", err)
		}
		out = append(out, m)
	}
	return out
}

func (s *syncBuffer) count(t *testing.T, message string) int {
	n := 0
	for _, l := range s.lines(t) {
		if strings.HasPrefix(l["message"].(string), message) {
			n++
		}
	}
	return n
}

func entry(i int) activity.Entry {
	return activity.Entry{
		ActorKind: activity.ByPerson, Actor: "ann@example.com", Action: activity.ConfigSaved,
		Token: "flow-" + string(rune('a'+i)), Addr: "192.0.2.1", Outcome: activity.OK, Detail: "clientId changed",
	}
}

// TestRecordNeverBlocks: with the store stalled, Record keeps returning;
// what does not fit in the queue is dropped, counted and logged, and every
// entry is still in the log. When the store recovers, the queued entries
// are stored.
func TestRecordNeverBlocks(t *testing.T) {
	g := newGate()
	var logs syncBuffer
	r := activity.NewAsync(g, activity.Options{Logger: logging.New(&logs, slog.LevelInfo), Queue: 2, Writers: 1, WriteTimeout: time.Hour})
	ctx := context.Background()
	r.Record(ctx, entry(0))
	<-g.started // the writer holds entry 0 in a stalled Add
	for i := 1; i < 10; i++ {
		r.Record(ctx, entry(i))
	}
	st := r.Stats()
	if st.Recorded != 10 || st.Dropped != 7 || st.Stored != 0 {
		t.Errorf("with the store stalled: %+v, want 10 recorded, 7 dropped (queue of 2), none stored", st)
	}
	if n := logs.count(t, "activity: config_saved"); n != 10 {
		t.Errorf("%d activity log entries, want 10: every entry is logged at Record", n)
	}
	if n := logs.count(t, "activity queue full"); n != 7 {
		t.Errorf("%d queue-full log entries, want 7: no drop is silent", n)
	}
	close(g.open)
	r.Close()
	st = r.Stats()
	if st.Stored != 3 || st.Dropped != 7 || st.Failed != 0 {
		t.Errorf("after the store recovered and Close: %+v, want 3 stored", st)
	}
	p, err := g.List(ctx, activity.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) != 3 {
		t.Errorf("store holds %d entries, want 3", len(p.Entries))
	}
}

// TestCloseFlushes: Close returns after the queue is stored.
func TestCloseFlushes(t *testing.T) {
	g := newGate()
	r := activity.NewAsync(g, activity.Options{Queue: 100, Writers: 2, FlushTimeout: time.Minute})
	for i := range 20 {
		r.Record(context.Background(), entry(i))
	}
	close(g.open)
	r.Close()
	if st := r.Stats(); st.Stored != 20 || st.Dropped != 0 {
		t.Errorf("after Close: %+v, want all 20 stored", st)
	}
	p, _ := g.List(context.Background(), activity.Filter{})
	if len(p.Entries) != 20 {
		t.Errorf("store holds %d entries, want 20", len(p.Entries))
	}
}

// TestCloseGivesUp: a store that never answers does not hold Close past
// its deadline; what was not stored is counted and logged.
func TestCloseGivesUp(t *testing.T) {
	g := newGate() // never opens
	var logs syncBuffer
	r := activity.NewAsync(g, activity.Options{Logger: logging.New(&logs, slog.LevelInfo), Queue: 10, Writers: 1,
		WriteTimeout: time.Hour, FlushTimeout: 10 * time.Millisecond})
	for i := range 5 {
		r.Record(context.Background(), entry(i))
	}
	r.Close() // returns: the test would time out otherwise
	st := r.Stats()
	if st.Stored != 0 || st.Dropped+st.Failed != 5 {
		t.Errorf("after Close: %+v, want the 5 entries counted as dropped or failed", st)
	}
	if logs.count(t, "activity record closed before the queue was stored") != 1 {
		t.Errorf("Close did not log that entries were left")
	}
	r.Record(context.Background(), entry(9)) // after Close: no panic, counted
	if got := r.Stats().Dropped; got != st.Dropped+1 {
		t.Errorf("Record after Close: dropped %d, want %d", got, st.Dropped+1)
	}
	r.Close() // twice is fine
}

type failing struct{}

func (failing) Add(context.Context, activity.Entry) error { return errors.New("permission denied") }

func TestStoreFailureIsLogged(t *testing.T) {
	var logs syncBuffer
	r := activity.NewAsync(failing{}, activity.Options{Logger: logging.New(&logs, slog.LevelInfo)})
	r.Record(context.Background(), entry(0))
	r.Close()
	if st := r.Stats(); st.Failed != 1 {
		t.Errorf("stats %+v, want 1 failed", st)
	}
	if logs.count(t, "activity entry not stored") != 1 {
		t.Errorf("the failure was not logged")
	}
}

// TestLogEntry pins the keys a Cloud Logging sink or log-based metric
// routes on, and the severity by outcome.
func TestLogEntry(t *testing.T) {
	var logs syncBuffer
	r := activity.NewAsync(nil, activity.Options{Logger: logging.New(&logs, slog.LevelInfo)})
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r.Record(context.Background(), activity.Entry{
		At: at, ActorKind: activity.ByService, Actor: "worker/rev-1/7/ABCD2345", Action: activity.RefreshFailed,
		Token: "flow-1", Outcome: activity.Failed, Detail: "webex answered 503",
	})
	r.Record(context.Background(), activity.Entry{ActorKind: activity.ByPassphrase, Actor: activity.PassphraseActor,
		Action: activity.TokenDeleted, Token: "flow-2", Addr: "192.0.2.9", Outcome: activity.OK})
	r.Close()
	lines := logs.lines(t)
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2", len(lines))
	}
	want := map[string]any{
		"severity": "WARNING", "message": "activity: refresh_failed", "activity": true, "actorKind": "service",
		"actor": "worker/rev-1/7/ABCD2345", "action": "refresh_failed", "token": "flow-1", "addr": "",
		"outcome": "failed", "detail": "webex answered 503", "at": "2026-03-01T12:00:00Z",
		"logging.googleapis.com/labels": map[string]any{"activity": "true", "action": "refresh_failed"},
	}
	got := lines[0]
	delete(got, "time")
	for k, v := range want {
		gv, _ := json.Marshal(got[k])
		wv, _ := json.Marshal(v)
		if string(gv) != string(wv) {
			t.Errorf("log key %q = %s, want %s", k, gv, wv)
		}
	}
	if lines[1]["severity"] != "INFO" || lines[1]["at"] == "" {
		t.Errorf("an ok entry: severity %v at %v, want INFO and the time Record stamped", lines[1]["severity"], lines[1]["at"])
	}
}

// TestRecordRedacts: an entry carrying a credential is stored and logged
// without it, and the attempt is logged.
func TestRecordRedacts(t *testing.T) {
	const secret = "ZDI3MGEyYzQtNmFlNS00ZTY2LWE3OTYtYjA0ZjIyOTFhZWM3ZmQ1MDFlNDItYjA0_PF84_1eb65fdf"
	var (
		logs syncBuffer
		mem  activitytest.Memory
	)
	r := activity.NewAsync(&mem, activity.Options{Logger: logging.New(&logs, slog.LevelInfo)})
	e := entry(0)
	e.Detail = "refreshed, new access token " + secret
	r.Record(context.Background(), e)
	r.Close()
	p, err := mem.List(context.Background(), activity.Filter{})
	if err != nil || len(p.Entries) != 1 {
		t.Fatalf("List: %d entries, %v; want 1", len(p.Entries), err)
	}
	activitytest.AssertNoSecrets(t, p.Entries, secret)
	activitytest.AssertNoSecretText(t, "the log", func() string { logs.mu.Lock(); defer logs.mu.Unlock(); return logs.b.String() }(), secret)
	if !strings.Contains(p.Entries[0].Detail, activity.Redacted) {
		t.Errorf("detail %q, want the secret replaced by %s", p.Entries[0].Detail, activity.Redacted)
	}
	if r.Stats().Redacted != 1 || logs.count(t, "activity entry held what looks like a secret") != 1 {
		t.Errorf("the attempt was not counted and logged: %+v", r.Stats())
	}
}

// TestRecordBounds: over-long fields are cut, so an entry stays a short
// record whatever a caller passes.
func TestRecordBounds(t *testing.T) {
	var mem activitytest.Memory
	r := activity.NewAsync(&mem, activity.Options{})
	e := entry(0)
	e.Detail = strings.Repeat("é", 2000)
	e.Addr = strings.Repeat("1", 500)
	r.Record(context.Background(), e)
	r.Close()
	p, _ := mem.List(context.Background(), activity.Filter{})
	if len(p.Entries) != 1 {
		t.Fatalf("%d entries, want 1", len(p.Entries))
	}
	got := p.Entries[0]
	if len(got.Detail) > 520 || len(got.Addr) > 80 || !strings.HasPrefix(got.Detail, "éé") {
		t.Errorf("detail of %d bytes, addr of %d bytes: want both cut", len(got.Detail), len(got.Addr))
	}
	if !utf8Valid(got.Detail) {
		t.Errorf("detail cut inside a character")
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }
