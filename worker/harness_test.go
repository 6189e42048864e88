package main

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	gfs "cloud.google.com/go/firestore"
	gps "cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"

	"github.com/wxcc/tokenservice/shared/bootstrap"
	"github.com/wxcc/tokenservice/shared/config"
	"github.com/wxcc/tokenservice/shared/firestore"
	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/logging"
	"github.com/wxcc/tokenservice/shared/metrics"
	"github.com/wxcc/tokenservice/shared/pubsub"
	"github.com/wxcc/tokenservice/shared/testing/emulator"
	"github.com/wxcc/tokenservice/shared/testing/testkit"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main() // re-executed as the real worker binary by a test
		return
	}
	os.Exit(emulator.Main(m, emulator.Firestore, emulator.PubSub))
}

// childEnv makes the test binary run main(), so tests can start the real
// worker as a separate process (and SIGKILL it).
const childEnv = "TOKENSERVICE_TEST_RUN_WORKER"

// harness is one test's world (testkit.World) with a topic, an ordered
// subscription, and any number of workers over them.
type harness struct {
	*testkit.World
	ps     *gps.Client
	topic  string
	sub    string
	events *testkit.Receiver
}

func newHarness(t testing.TB, env map[string]string) *harness {
	t.Helper()
	h := &harness{World: testkit.NewWorld(t)}
	h.ps = h.pubsubClient()
	h.topic, h.sub = "t-"+h.Collection, "s-"+h.Collection
	testkit.CreateTopic(t, h.ps, h.topic, h.sub)
	h.events = testkit.Receive(t, h.ps, h.sub)
	h.Env["EVENTS_TOPIC"] = h.topic
	h.Env["SWEEP_INTERVAL"] = "0"
	maps.Copy(h.Env, env)
	return h
}

func (h *harness) pubsubClient(opts ...option.ClientOption) *gps.Client {
	h.T.Helper()
	c, err := gps.NewClient(context.Background(), emulator.Project(), opts...)
	if err != nil {
		h.T.Fatal(err)
	}
	h.T.Cleanup(func() { c.Close() })
	return c
}

// startChild starts the real worker binary (this test binary re-executed,
// see TestMain) as its own process with the harness's environment and
// log; the caller waits for it.
func (h *harness) startChild(args ...string) *exec.Cmd {
	h.T.Helper()
	child := exec.Command(os.Args[0], args...)
	child.Env = append(os.Environ(), childEnv+"=1")
	for k, v := range h.Env {
		child.Env = append(child.Env, k+"="+v)
	}
	child.Stdout, child.Stderr = h.Logs, h.Logs
	if err := child.Start(); err != nil {
		h.T.Fatal(err)
	}
	return child
}

// seed writes a Node-sample document and remembers its secrets.
func (h *harness) seed(name string, accessLeft, refreshLeft time.Duration) testkit.Seeded {
	h.T.Helper()
	s := testkit.Seed(h.T, h.Firestore, h.Collection, name, h.Webex.Fake, accessLeft, refreshLeft)
	h.Secret(s.Secrets()...)
	return s
}

// workerUnderTest is one in-process worker ("instance") with its HTTP handler.
type workerUnderTest struct {
	url       string
	sweeper   *sweeper
	store     *firestore.Store
	relay     *pubsub.Relay
	refresher *lifecycle.Refresher
}

// startWorker starts a worker instance, built as run builds it on the
// harness's clock; ps is the Pub/Sub client its relay uses (nil: the
// harness's).
func (h *harness) startWorker(ps *gps.Client) *workerUnderTest {
	h.T.Helper()
	cfg, err := config.Load(config.Worker, h.Getenv)
	if err != nil {
		h.T.Fatal(err)
	}
	if ps == nil {
		ps = h.ps
	}
	log := logging.New(h.Logs, logging.ParseLevel("debug"))
	core, err := bootstrap.Open(context.Background(), cfg, bootstrap.Options{
		Kind: "worker", Metrics: metrics.New(metrics.Worker), Logger: log, Getenv: h.Getenv, Firestore: emulator.FirestoreClient(h.T), PubSub: ps,
		Now: h.Clock.Now, Relay: pubsub.Options{PublishTimeout: 2 * time.Second},
	})
	if err != nil {
		h.T.Fatal(err)
	}
	sw := newSweeperFor(cfg, core, log, h.Clock.Now)
	guard, err := newTriggerGuard(context.Background(), cfg, log)
	if err != nil {
		h.T.Fatal(err)
	}
	notifier, err := newNotifier(cfg, core, log, h.Clock.Now)
	if err != nil {
		h.T.Fatal(err)
	}
	sw.reminders = &reminders{n: notifier, log: log}
	srv := httptest.NewServer(newHandler(sw, guard, notifier, core.Metrics.Handler(), log))
	h.T.Cleanup(func() { srv.Close(); core.Close() })
	return &workerUnderTest{url: srv.URL, sweeper: sw, store: core.Store, relay: core.Relay, refresher: core.Service.Refresher}
}

// run triggers one sweep over HTTP and returns the summary.
func (w *workerUnderTest) run(t testing.TB, header map[string]string) (int, Summary) {
	t.Helper()
	resp := testkit.Do(t, http.MethodPost, w.url+"/run", "", header)
	var sum Summary
	if resp.Code == 200 {
		if err := json.Unmarshal(resp.Body, &sum); err != nil {
			t.Fatalf("summary is not JSON: %q", resp.Body)
		}
	}
	return resp.Code, sum
}

// mustRun triggers a sweep and fails the test unless it answered 200.
func (w *workerUnderTest) mustRun(t testing.TB) Summary {
	t.Helper()
	code, sum := w.run(t, nil)
	if code != 200 {
		t.Fatalf("POST /run got %d", code)
	}
	return sum
}

type gfsUpdate = gfs.Update
