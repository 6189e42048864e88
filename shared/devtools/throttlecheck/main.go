// Command throttlecheck measures what Cloud Run's request-based CPU would
// do to the api's work after a response: the api (bin/api) runs against
// the emulators and a fake Webex, and is stopped with SIGSTOP right after
// a response and resumed with SIGCONT later, which is what throttling
// outside requests looks like to the process. For each scenario it prints
// when the refresh was committed and when its event arrived on Pub/Sub,
// counted from the response. The README's "Background work" section quotes
// its numbers.
//
//	make build && go run ./shared/devtools/throttlecheck [scenario numbers]
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	gfs "cloud.google.com/go/firestore"
	gps "cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/wxcc/tokenservice/shared/testing/emulator"
	"github.com/wxcc/tokenservice/shared/testing/freeport"
	"github.com/wxcc/tokenservice/shared/testing/webexfake"
)

const (
	project    = "throttle-check"
	passphrase = "throttle-check-passphrase"
	topicID    = "token-events"
	subID      = "token-events-check"
)

// scenario is one measurement.
type scenario struct {
	name string
	// webexLatency > INLINE_REFRESH_TIMEOUT (1.5 s) makes the refresh
	// finish after the response; 0 finishes it inside the request, so that
	// only the event's publishing is left after it.
	webexLatency time.Duration
	rotation     bool
	stopFor      time.Duration
	// workerEvery, if not 0, runs bin/worker sweeping at that interval.
	workerEvery time.Duration
}

var scenarios = []scenario{
	{"refresh after response, stopped 5s", 3 * time.Second, false, 5 * time.Second, 0},
	{"refresh after response, stopped 20s", 3 * time.Second, false, 20 * time.Second, 0},
	{"refresh after response, stopped 60s, worker every 10s", 3 * time.Second, false, 60 * time.Second, 10 * time.Second},
	{"refresh after response, stopped 60s, worker every 10s, rotating refresh tokens", 3 * time.Second, true, 60 * time.Second, 10 * time.Second},
	{"event after response, stopped 60s", 0, false, 60 * time.Second, 0},
	{"event after response, stopped 120s, worker every 10s", 0, false, 120 * time.Second, 10 * time.Second},
}

// waitAfterResume is how long the api gets after SIGCONT.
const waitAfterResume = 60 * time.Second

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "throttlecheck:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx := context.Background()
	os.Setenv("GOOGLE_CLOUD_PROJECT", project)
	procs, err := emulator.StartMissing(emulator.Firestore, emulator.PubSub)
	defer emulator.StopAll(procs)
	if err != nil {
		return err
	}
	fs, err := gfs.NewClient(ctx, project)
	if err != nil {
		return err
	}
	defer fs.Close()
	ps, err := gps.NewClient(ctx, project)
	if err != nil {
		return err
	}
	defer ps.Close()
	topic, err := ps.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/" + project + "/topics/" + topicID})
	if err != nil {
		return err
	}
	if _, err := ps.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/" + project + "/subscriptions/" + subID, Topic: topic.GetName(), EnableMessageOrdering: true,
	}); err != nil {
		return err
	}
	events := &arrivals{at: map[string]time.Time{}}
	go ps.Subscriber(subID).Receive(ctx, func(_ context.Context, m *gps.Message) {
		m.Ack()
		events.add(m.Attributes["name"]+" "+m.Attributes["ce-type"], time.Now())
	})

	fmt.Println("| scenario | response | Webex calls | committed after response | event after response | token afterwards | api log |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for i, sc := range scenarios {
		if len(os.Args) > 1 && !slices.Contains(os.Args[1:], strconv.Itoa(i+1)) {
			continue // throttlecheck 3 5: only those scenarios
		}
		row, err := measure(ctx, fs, events, fmt.Sprintf("t%d", i), sc)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		fmt.Println(row)
	}
	return nil
}

func measure(ctx context.Context, fs *gfs.Client, events *arrivals, name string, sc scenario) (string, error) {
	fake := webexfake.NewServer(webexfake.New())
	defer fake.Close()
	fake.SetLatency(sc.webexLatency)
	fake.SetRotation(sc.rotation)
	clientID, secret := "client-"+name, "secret-"+name
	fake.AddClient(clientID, secret)
	rt := fake.IssueRefreshToken(clientID, 60*24*time.Hour)
	now := time.Now()
	if _, err := fs.Collection("tokens").Doc(name).Set(ctx, map[string]any{
		"clientId": clientID, "clientSecret": secret, "redirectUri": "https://example.com/cb",
		"accessToken": "at-old-" + name, "refreshToken": rt,
		"accessExpires": now.Add(time.Hour).UnixMilli(), "refreshExpires": now.Add(60 * 24 * time.Hour).UnixMilli(),
		"lastRefresh": now.Add(-11 * time.Hour).UnixMilli(),
	}); err != nil {
		return "", err
	}
	env := append(os.Environ(), "WEBEX_TOKEN_URL="+fake.TokenURL, "WEBEX_AUTHORIZE_URL="+fake.AuthorizeURL,
		"TOKEN_PASSPHRASE="+passphrase, "LOG_LEVEL=info", "EVENTS_TOPIC="+topicID)
	logs := &logBuffer{}
	api, base, err := start("bin/api", env, logs)
	if err != nil {
		return "", err
	}
	defer stop(api)
	req, _ := http.NewRequest(http.MethodGet, base+"/?name="+name, nil)
	req.Header.Set("x-token-passphrase", passphrase)
	sent := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	var body struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	answered := time.Now()
	logs.mark()
	api.Process.Signal(syscall.SIGSTOP)
	stopped := time.Now()
	if sc.workerEvery > 0 {
		// Started only now, so that the api, not the worker, is the one
		// holding the lease when it stops.
		worker, _, err := start("bin/worker", append(env, "SWEEP_INTERVAL="+sc.workerEvery.String()), &logBuffer{})
		if err != nil {
			return "", err
		}
		defer stop(worker)
	}
	time.Sleep(sc.stopFor - time.Since(stopped))
	api.Process.Signal(syscall.SIGCONT)

	committed := waitFor(func() (time.Time, bool) {
		snap, err := fs.Collection("tokens").Doc(name).Get(ctx)
		if err != nil {
			return time.Time{}, false
		}
		if g, _ := snap.Data()["generation"].(int64); g > 0 {
			return snap.UpdateTime, true
		}
		return time.Time{}, false
	}, waitAfterResume)
	event := waitFor(func() (time.Time, bool) { return events.get(name + " token.rotated") }, waitAfterResume)
	final := "?"
	if snap, err := fs.Collection("tokens").Doc(name).Get(ctx); err == nil {
		d := snap.Data()
		final = fmt.Sprintf("generation %v, status %v", d["generation"], d["status"])
		if le, ok := d["lastError"].(map[string]any); ok {
			final += fmt.Sprintf(", lastError %q", le["message"])
		}
	}
	served := "old token"
	if body.Token != "at-old-"+name {
		served = "new token"
	}
	return fmt.Sprintf("| %s | %d %s after %s | %d | %s | %s | %s | %s |", sc.name, resp.StatusCode, served,
		answered.Sub(sent).Round(10*time.Millisecond), fake.Stats().Refreshes, since(answered, committed),
		since(answered, event), final, logs.notable()), nil
}

func since(from, to time.Time) string {
	if to.IsZero() {
		return "not within " + waitAfterResume.String() + " of SIGCONT"
	}
	return to.Sub(from).Round(100 * time.Millisecond).String()
}

// waitFor polls f until it reports a time or d passes (zero time then).
func waitFor(f func() (time.Time, bool), d time.Duration) time.Time {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if t, ok := f(); ok {
			return t
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Time{}
}

// start runs bin with env on a free port and waits until /health answers.
func start(bin string, env []string, logs *logBuffer) (*exec.Cmd, string, error) {
	port, err := freeport.Pick()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(env, fmt.Sprintf("PORT=%d", port))
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start %s (run make build first): %w", bin, err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	ok := waitFor(func() (time.Time, bool) {
		resp, err := http.Get(base + "/health")
		if err != nil {
			return time.Time{}, false
		}
		resp.Body.Close()
		return time.Now(), resp.StatusCode == 200
	}, 20*time.Second)
	if ok.IsZero() {
		cmd.Process.Kill()
		return nil, "", fmt.Errorf("%s did not come up:\n%s", bin, logs.String())
	}
	return cmd, base, nil
}

func stop(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGCONT)
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
	}
}

type arrivals struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (a *arrivals) add(k string, t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.at[k]; !ok {
		a.at[k] = t
	}
}

func (a *arrivals) get(k string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.at[k]
	return t, ok
}

type logBuffer struct {
	mu   sync.Mutex
	b    []byte
	from int // notable looks from here on
}

// mark makes notable ignore what was logged so far (start-up warnings).
func (l *logBuffer) mark() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.from = len(l.b)
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// notable lists the api's warnings and errors, by message.
func (l *logBuffer) notable() string {
	l.mu.Lock()
	since := string(l.b[l.from:])
	l.mu.Unlock()
	var out []string
	for _, line := range splitLines(since) {
		var e struct{ Severity, Message, Error string }
		if json.Unmarshal([]byte(line), &e) == nil && (e.Severity == "WARNING" || e.Severity == "ERROR") {
			msg := e.Message
			if e.Error != "" {
				msg += " (" + e.Error + ")"
			}
			out = append(out, msg)
		}
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, "; ")
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}
