package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/config"
	"github.com/wxcc/tokenservice/shared/emulator"
	"github.com/wxcc/tokenservice/shared/firestore"
	"github.com/wxcc/tokenservice/shared/logging"
	"github.com/wxcc/tokenservice/shared/metrics"
	"github.com/wxcc/tokenservice/shared/testkit"
	"github.com/wxcc/tokenservice/shared/token"
	"github.com/wxcc/tokenservice/shared/webex"
	"github.com/wxcc/tokenservice/shared/webexfake"
)

func TestMain(m *testing.M) { os.Exit(emulator.Main(m, emulator.Firestore, emulator.PubSub)) }

// harness is one test's world: its own collection, a fake Webex, and any
// number of api instances ("processes") over the same collection.
type harness struct {
	t          testing.TB
	collection string
	client     *gfs.Client
	webex      *webexfake.Server
	env        map[string]string
	logs       *testkit.LogBuffer
	secrets    testkit.Secrets
}

func newHarness(t testing.TB, env map[string]string) *harness {
	t.Helper()
	h := &harness{
		t:          t,
		collection: emulator.Collection(t),
		client:     emulator.FirestoreClient(t),
		webex:      webexfake.Start(t),
		logs:       &testkit.LogBuffer{},
	}
	h.env = map[string]string{
		"GOOGLE_CLOUD_PROJECT": emulator.Project(),
		"TOKENS_COLLECTION":    h.collection,
		"TOKEN_PASSPHRASE":     "flow-pass-" + randomHex(8),
		"WEBEX_TOKEN_URL":      h.webex.TokenURL,
		"WEBEX_AUTHORIZE_URL":  h.webex.AuthorizeURL,
		"WEBEX_TIMEOUT":        "3s",
		"LOG_LEVEL":            "debug",
	}
	for k, v := range env {
		h.env[k] = v
	}
	h.secret(h.env["TOKEN_PASSPHRASE"])
	t.Cleanup(h.checkLogs)
	return h
}

// secret registers values that must never appear in a log line.
func (h *harness) secret(v ...string) { h.secrets.Add(v...) }

func (h *harness) checkLogs() { h.secrets.CheckLog(h.t, h.logs.String()) }

// api is one running api instance.
type api struct {
	url   string
	srv   *server
	store *firestore.Store
}

// startAPI starts an api instance with its own Firestore client, cache and
// refresher, as a separate process would have.
func (h *harness) startAPI(client *gfs.Client) *api {
	h.t.Helper()
	cfg, err := config.Load(config.API, func(k string) string { return h.env[k] })
	if err != nil {
		h.t.Fatal(err)
	}
	if client == nil {
		client = emulator.FirestoreClient(h.t)
	}
	log := logging.New(h.logs, logging.ParseLevel(h.env["LOG_LEVEL"]))
	sealer, _, err := firestore.WithKeys(cfg.EncryptionKeys)
	if err != nil {
		h.t.Fatal(err)
	}
	store := firestore.New(client, cfg.Collection, sealer, firestore.WithLogger(log))
	issuer, err := webex.New(webex.Options{TokenURL: cfg.WebexTokenURL, AuthorizeURL: cfg.WebexAuthorizeURL, Timeout: cfg.WebexTimeout})
	if err != nil {
		h.t.Fatal(err)
	}
	m := metrics.New()
	r := token.NewRefresher(token.RefresherOptions{
		Store: store, Issuer: issuer, Holder: "api-" + randomHex(4), Threshold: cfg.RefreshThreshold,
		WebexTimeout: cfg.WebexTimeout, Logger: log, OnRefresh: m.Refresh,
	})
	srv := newServer(deps{cfg: cfg, store: store, refresher: r, ping: store.Ping,
		admin: store, authorizeURL: issuer.AuthorizeURL, logger: log, metrics: m})
	hs := httptest.NewServer(srv)
	h.t.Cleanup(func() { hs.Close(); r.Close() })
	return &api{url: hs.URL, srv: srv, store: store}
}

// seed writes a document as the Node sample does (testkit.Seed), plus
// extra fields, and remembers its secrets.
func (h *harness) seed(name string, accessLeft, refreshLeft time.Duration, extra map[string]any) (accessToken, refreshToken string) {
	h.t.Helper()
	s := testkit.Seed(h.t, h.client, h.collection, name, h.webex.Fake, accessLeft, refreshLeft)
	h.secret(s.Secrets()...)
	if len(extra) > 0 {
		if _, err := h.client.Collection(h.collection).Doc(name).Set(context.Background(), extra, gfs.MergeAll); err != nil {
			h.t.Fatal(err)
		}
	}
	return s.AccessToken, s.RefreshToken
}

// doc reads a document's raw fields.
func (h *harness) doc(name string) map[string]any {
	h.t.Helper()
	snap, err := h.client.Collection(h.collection).Doc(name).Get(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return snap.Data()
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
	h.t.Helper()
	return get(h.t, a.url+"/?name="+name, map[string]string{"x-token-passphrase": h.env["TOKEN_PASSPHRASE"]})
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

func (h *harness) getenv(k string) string { return h.env[k] }
