package testkit

import (
	"testing"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/testing/emulator"
	"github.com/wxcc/tokenservice/shared/testing/webexfake"
)

// World is one test's share of the emulators, common to the api's and the
// worker's tests: its own tokens collection, a fake Webex, the environment
// the binaries read (extend Env before starting one), and a log that fails
// the test if it ever shows a value registered with Secret.
type World struct {
	T          testing.TB
	Collection string
	Firestore  *gfs.Client
	Webex      *webexfake.Server
	Env        map[string]string
	Logs       *LogBuffer
	// Clock is the clock to give the binaries' parts (bootstrap.Options.Now).
	Clock   *Clock
	secrets Secrets
}

// NewWorld sets up a World; its log is checked when the test ends.
func NewWorld(t testing.TB) *World {
	t.Helper()
	w := &World{
		T:          t,
		Collection: emulator.Collection(t),
		Firestore:  emulator.FirestoreClient(t),
		Webex:      webexfake.Start(t),
		Logs:       &LogBuffer{},
		Clock:      &Clock{},
	}
	w.Env = map[string]string{
		"GOOGLE_CLOUD_PROJECT": emulator.Project(),
		"TOKENS_COLLECTION":    w.Collection,
		"META_COLLECTION":      w.Collection + "_meta",
		"ACTIVITY_COLLECTION":  w.Collection + "_activity",
		"WEBEX_TOKEN_URL":      w.Webex.TokenURL,
		"WEBEX_AUTHORIZE_URL":  w.Webex.AuthorizeURL,
		"WEBEX_API_URL":        w.Webex.URL,
		"WEBEX_TIMEOUT":        "3s",
		"LOG_LEVEL":            "debug",
	}
	t.Cleanup(func() { w.secrets.CheckLog(t, w.Logs.String()) })
	return w
}

// Secret registers values that must never appear in a log line.
func (w *World) Secret(v ...string) { w.secrets.Add(v...) }

// Getenv reads Env, as the binaries' configuration does.
func (w *World) Getenv(k string) string { return w.Env[k] }

// Doc reads a document of the collection as raw fields.
func (w *World) Doc(name string) map[string]any { return Doc(w.T, w.Firestore, w.Collection, name) }

// Secrets lists the values registered with Secret.
func (w *World) Secrets() []string { return w.secrets.All() }
