package main

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	gfs "cloud.google.com/go/firestore"
	gps "cloud.google.com/go/pubsub/v2"

	"github.com/wxcc/tokenservice/shared/bootstrap"
	"github.com/wxcc/tokenservice/shared/config"
	"github.com/wxcc/tokenservice/shared/firestore"
	"github.com/wxcc/tokenservice/shared/logging"
	"github.com/wxcc/tokenservice/shared/testing/emulator"
	"github.com/wxcc/tokenservice/shared/testing/testkit"
	"github.com/wxcc/tokenservice/shared/token"
)

func TestMain(m *testing.M) { os.Exit(emulator.Main(m, emulator.Firestore, emulator.PubSub)) }

// harness is one test's world (testkit.World) with any number of api
// instances ("processes") over the same collection.
type harness struct {
	*testkit.World
	ps *gps.Client
	// events receives what the api instances publish, on an ordered
	// subscription of the harness's own topic.
	events *testkit.Receiver
}

func newHarness(t testing.TB, env map[string]string) *harness {
	t.Helper()
	h := &harness{World: testkit.NewWorld(t)}
	h.Env["TOKEN_PASSPHRASE"] = "flow-pass-" + randomHex(8)
	h.Env["EVENTS_TOPIC"] = "t-" + h.Collection
	maps.Copy(h.Env, env)
	h.Secret(h.Env["TOKEN_PASSPHRASE"])
	h.ps = pubsubClient(t)
	testkit.CreateTopic(t, h.ps, h.Env["EVENTS_TOPIC"], "s-"+h.Collection)
	h.events = testkit.Receive(t, h.ps, "s-"+h.Collection)
	return h
}

func pubsubClient(t testing.TB) *gps.Client {
	t.Helper()
	c, err := gps.NewClient(context.Background(), emulator.Project())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// api is one running api instance.
type api struct {
	url   string
	srv   *server
	store *firestore.Store
}

// startAPI starts an api instance with its own Firestore client (nil: a
// new one), cache and refresher, as a separate process would have, built
// as run builds it, on the harness's clock.
func (h *harness) startAPI(client *gfs.Client) *api { return h.startAPIWith(client, nil) }

// startAPIWith is startAPI with prepare (if not nil) called on the server
// before it serves.
func (h *harness) startAPIWith(client *gfs.Client, prepare func(*server)) *api {
	h.T.Helper()
	cfg, err := config.Load(config.API, h.Getenv)
	if err != nil {
		h.T.Fatal(err)
	}
	if client == nil {
		client = emulator.FirestoreClient(h.T)
	}
	log := logging.New(h.Logs, logging.ParseLevel(h.Env["LOG_LEVEL"]))
	core, err := bootstrap.Open(context.Background(), cfg, bootstrap.Options{
		Kind: "api", Logger: log, Getenv: h.Getenv, Firestore: client, PubSub: h.ps, Now: h.Clock.Now,
	})
	if err != nil {
		h.T.Fatal(err)
	}
	srv, err := newAPI(cfg, core, log, h.Clock.Now)
	if err != nil {
		h.T.Fatal(err)
	}
	if prepare != nil {
		prepare(srv)
	}
	stopFollowing := srv.startFollowing(context.Background(), core.Store)
	hs := httptest.NewServer(srv)
	h.T.Cleanup(func() { hs.Close(); stopFollowing(); core.Close() })
	return &api{url: hs.URL, srv: srv, store: core.Store}
}

// seed writes a document as the Node sample does (testkit.Seed), plus
// extra fields, and remembers its secrets.
func (h *harness) seed(name string, accessLeft, refreshLeft time.Duration, extra map[string]any) (accessToken, refreshToken string) {
	h.T.Helper()
	s := testkit.Seed(h.T, h.Firestore, h.Collection, name, h.Webex.Fake, accessLeft, refreshLeft)
	h.Secret(s.Secrets()...)
	if len(extra) > 0 {
		if _, err := h.Firestore.Collection(h.Collection).Doc(name).Set(context.Background(), extra, gfs.MergeAll); err != nil {
			h.T.Fatal(err)
		}
	}
	return s.AccessToken, s.RefreshToken
}

// reply is a decoded api answer.
type reply struct {
	code   int
	header http.Header
	body   map[string]any
	raw    string
}

func (r reply) str(k string) string { s, _ := r.body[k].(string); return s }

// get sends a GET and insists on what every answer of the api carries: a
// JSON body whose status matches, and a message on failures.
func get(t testing.TB, url string, headers map[string]string) reply {
	t.Helper()
	r := do(t, http.MethodGet, url, "", headers)
	if r.body == nil {
		t.Fatalf("body is not a JSON object: %q", r.raw)
	}
	if r.code >= 400 && r.str("message") == "" {
		t.Fatalf("failure without a message: %s", r.raw)
	}
	return r
}

// token asks api a for name's token with the harness passphrase.
func (h *harness) token(a *api, name string) reply {
	h.T.Helper()
	return get(h.T, a.url+"/?name="+name, map[string]string{"x-token-passphrase": h.Env["TOKEN_PASSPHRASE"]})
}

func randomHex(n int) string { return testkit.RandomHex(n) }

// gfsUpdate is a Firestore field update, for tests that edit documents as
// an operator would in the console.
type gfsUpdate = gfs.Update

// do sends a request with a method, body and headers and decodes the answer.
func do(t testing.TB, method, url, body string, headers map[string]string) reply {
	t.Helper()
	resp := testkit.Do(t, method, url, body, headers)
	raw := resp.Body
	r := reply{code: resp.Code, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("body is not JSON: %q", raw)
		}
		if got, want := r.str("status"), strconv.Itoa(resp.Code); got != want {
			t.Fatalf("body status %q, want %q: %s", got, want, raw)
		}
	}
	return r
}

type (
	tokenT = token.Token
	eventT = token.Event
)
