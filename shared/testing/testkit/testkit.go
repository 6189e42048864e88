// Package testkit is shared test support for the binaries' tests: seeding
// documents exactly as the Node sample writes them, reading them back raw,
// waiting for conditions, and Pub/Sub topics with an ordered subscription
// whose messages a test can collect. It talks to the real emulators.
package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	gfs "cloud.google.com/go/firestore"
	gps "cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/wxcc/tokenservice/shared/testing/webexfake"
)

// RandomHex returns 2n random hex characters.
func RandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Seeded is what Seed wrote; every string in it is a secret.
type Seeded struct {
	ClientID, ClientSecret, AccessToken, RefreshToken string
}

// Secrets lists the values that must never show in logs or events.
func (s Seeded) Secrets() []string {
	return []string{s.ClientSecret, s.AccessToken, s.RefreshToken}
}

// Seed writes tokens/name as the Node sample does (the eight sample fields,
// integer milliseconds, nothing else) and registers its client and refresh
// token with the fake Webex.
func Seed(t testing.TB, c *gfs.Client, collection, name string, fake *webexfake.Fake, accessLeft, refreshLeft time.Duration) Seeded {
	t.Helper()
	now := time.Now()
	s := Seeded{
		ClientID:     "client-" + RandomHex(4),
		ClientSecret: "csecret-" + RandomHex(8),
		AccessToken:  "at-" + RandomHex(12),
		RefreshToken: "rt-" + RandomHex(12),
	}
	fake.AddClient(s.ClientID, s.ClientSecret)
	fake.AddRefreshToken(s.ClientID, s.RefreshToken, now.Add(refreshLeft))
	doc := map[string]any{
		"clientId":       s.ClientID,
		"clientSecret":   s.ClientSecret,
		"redirectUri":    "https://flows.example.com/callback",
		"accessToken":    s.AccessToken,
		"refreshToken":   s.RefreshToken,
		"accessExpires":  now.Add(accessLeft).UnixMilli(),
		"refreshExpires": now.Add(refreshLeft).UnixMilli(),
		"lastRefresh":    now.Add(-10 * time.Hour).UnixMilli(),
	}
	if _, err := c.Collection(collection).Doc(name).Set(context.Background(), doc); err != nil {
		t.Fatalf("seed %s: %v", name, err)
	}
	return s
}

// Doc reads a document's raw fields.
func Doc(t testing.TB, c *gfs.Client, collection, name string) map[string]any {
	t.Helper()
	snap, err := c.Collection(collection).Doc(name).Get(context.Background())
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return snap.Data()
}

// Millis reads a Firestore number field as milliseconds.
func Millis(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	}
	return 0
}

// Eventually polls cond until it holds or d passes.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// CreateTopic creates topic and an ordered subscription on it.
func CreateTopic(t testing.TB, c *gps.Client, topicID, subID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/" + c.Project() + "/topics/" + topicID})
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	if _, err := c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:                  "projects/" + c.Project() + "/subscriptions/" + subID,
		Topic:                 topic.GetName(),
		EnableMessageOrdering: true,
		AckDeadlineSeconds:    60,
	}); err != nil {
		t.Fatalf("create subscription: %v", err)
	}
}

// Receiver collects the messages of a subscription in arrival order.
type Receiver struct {
	mu     sync.Mutex
	got    []*gps.Message
	cancel context.CancelFunc
	done   chan struct{}
}

// Receive starts collecting subID's messages until the test ends.
func Receive(t testing.TB, c *gps.Client, subID string) *Receiver {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Receiver{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		_ = c.Subscriber(subID).Receive(ctx, func(_ context.Context, m *gps.Message) {
			m.Ack()
			r.mu.Lock()
			r.got = append(r.got, m)
			r.mu.Unlock()
		})
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// Messages returns what arrived so far.
func (r *Receiver) Messages() []*gps.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*gps.Message(nil), r.got...)
}

// WaitFor waits until at least n messages arrived, then for quiet more so
// that extra ones would show, and returns them all.
func (r *Receiver) WaitFor(t testing.TB, n int, quiet time.Duration) []*gps.Message {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(r.Messages()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d messages, want %d: %s", len(r.Messages()), n, Describe(r.Messages()))
		}
		time.Sleep(25 * time.Millisecond)
	}
	time.Sleep(quiet)
	return r.Messages()
}

// Distinct drops redelivered and republished messages, keeping the first
// of each ce-id, as DESIGN asks subscribers to do: delivery is
// at-least-once.
func Distinct(ms []*gps.Message) []*gps.Message {
	seen := map[string]bool{}
	var out []*gps.Message
	for _, m := range ms {
		if id := m.Attributes["ce-id"]; !seen[id] {
			seen[id] = true
			out = append(out, m)
		}
	}
	return out
}

// Describe lists messages by ce-id, for failure messages.
func Describe(ms []*gps.Message) string {
	s := ""
	for _, m := range ms {
		s += fmt.Sprintf("%s ", m.Attributes["ce-id"])
	}
	return s
}

// LogBuffer collects log output written from many goroutines.
type LogBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Secrets are values that must never appear in a log line.
type Secrets struct {
	mu   sync.Mutex
	list []string
}

// Add registers values.
func (s *Secrets) Add(v ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, v...)
}

// All returns the registered values.
func (s *Secrets) All() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.list...)
}

// CheckLog fails t for every registered value that log contains.
func (s *Secrets) CheckLog(t testing.TB, log string) {
	t.Helper()
	for _, v := range s.All() {
		if v != "" && strings.Contains(log, v) {
			t.Errorf("a secret (%.6s…) appears in the log output", v)
		}
	}
}

// Running is a binary's run function started in the background on port 0.
type Running struct {
	// Base is the URL it listens on, http://127.0.0.1:port.
	Base   string
	cancel context.CancelFunc
	done   chan error
}

// StartRun calls run(ctx, ready) in the background and waits until it
// listens; the test fails if it ends or takes longer than 30 s first.
func StartRun(t testing.TB, run func(ctx context.Context, ready chan<- string) error) *Running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{cancel: cancel, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() { r.done <- run(ctx, ready) }()
	select {
	case addr := <-ready:
		r.Base = "http://" + strings.Replace(addr, "[::]", "127.0.0.1", 1)
	case err := <-r.done:
		cancel()
		t.Fatalf("run ended early: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("run did not start listening")
	}
	return r
}

// Stop cancels run's context, as SIGTERM does, and fails the test unless
// run returns nil within 10 s (Cloud Run's grace period).
func (r *Running) Stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("run returned %v after shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop within 10s of SIGTERM")
	}
}

// Response is what Do got back.
type Response struct {
	Code   int
	Header http.Header
	Body   []byte
}

// Do sends a request with a method, body (none if empty) and headers, and
// fails the test if it cannot.
func Do(t testing.TB, method, url, body string, headers map[string]string) Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return Response{Code: resp.StatusCode, Header: resp.Header, Body: raw}
}

// LoggedMetricsAddr finds the address of a binary's metrics listener
// (METRICS_ADDR) in its JSON log.
func LoggedMetricsAddr(t testing.TB, logs string) string {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		var l struct{ Message, Addr string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Message == "serving /metrics" {
			return l.Addr
		}
	}
	t.Fatalf("no \"serving /metrics\" line in the log:\n%s", logs)
	return ""
}
