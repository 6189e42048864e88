// Command localstack runs the whole token service on one machine; it is
// what `make run` starts. It checks the prerequisites (gcloud, the Firestore
// and Pub/Sub emulator components, java), then starts:
//
//   - the Firestore and Pub/Sub emulators on free loopback ports;
//   - a fake Webex token and authorize endpoint with a demo client, whose
//     authorize page a person approves with one click;
//   - the topic token-events with an ordered subscription token-events-demo;
//   - a token "demo" in collection tokens, written as the Node sample writes
//     it, whose access token has 2h05m left, so the worker's first sweep
//     (threshold 2h + lead 30m) refreshes it within seconds;
//   - a manager integration "demo-manager" whose grants hold
//     spark:applications_token, and a Service App "demo-serviceapp"
//     (authorized for a demo org at the fake Webex) without tokens, which
//     the worker's first sweep mints with the manager's token;
//   - bin/api (port 8080, or the first free one after it) and bin/worker
//     (the next free port from 8081, sweeping every 30s), their log lines
//     prefixed [api] and [worker].
//
// Every event arriving on token-events-demo is printed as an [events] line.
//
// Ctrl-C (SIGINT or SIGTERM) stops the children (SIGTERM, SIGKILL after
// 10s), then the emulators' whole process groups, and exits 0. If a child
// exits by itself, localstack reports how, stops everything and exits 1.
//
//	make build && go run ./shared/devtools/localstack
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	gfs "cloud.google.com/go/firestore"
	gps "cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wxcc/tokenservice/shared/pubsub"
	"github.com/wxcc/tokenservice/shared/testing/emulator"
	"github.com/wxcc/tokenservice/shared/testing/webexfake"
)

// The demo deployment. The passphrases are demo values, printed on purpose.
const (
	project          = emulator.DefaultProject // demo-tokens
	collection       = "tokens"
	topicID          = "token-events"
	subscriptionID   = "token-events-demo"
	demoName         = "demo"
	tokenPassphrase  = "demo-passphrase-123456"
	adminPassphrase  = "demo-admin-passphrase"
	demoClientID     = "demo-client"
	demoClientSecret = "demo-client-secret"
	// accessLeft puts the demo token inside the worker's window (threshold
	// 2h + lead 30m) but outside the api's (2h): the worker refreshes it.
	accessLeft  = 2*time.Hour + 5*time.Minute
	refreshLeft = 60 * 24 * time.Hour

	// The demo Service App and its manager.
	managerName         = "demo-manager"
	managerClientID     = "demo-manager-client"
	managerClientSecret = "demo-manager-client-secret"
	serviceAppName      = "demo-serviceapp"
	serviceAppID        = "Y2lzY29zcGFyazovL3VzL0FQUExJQ0FUSU9OL2RlbW8"
	serviceAppClientID  = "demo-serviceapp-client"
	serviceAppSecret    = "demo-serviceapp-client-secret"
	demoOrgID           = "00000000-0000-4000-8000-00000000d3e0"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, newConsole(os.Stdout))
	interrupted := ctx.Err() != nil
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "localstack:", err)
		if !interrupted { // after Ctrl-C, an error is mostly the interruption's
			os.Exit(1)
		}
	}
}

// run starts the stack, waits for ctx to end or a child to exit, and
// stops everything it started before returning.
func run(ctx context.Context, con *console) error {
	if err := checkPrerequisites(); err != nil {
		return err
	}
	apiBin, workerBin, err := binaries()
	if err != nil {
		return err
	}

	con.say("starting the Firestore and Pub/Sub emulators (this takes a few seconds)...")
	fsEmu, psEmu, err := startEmulators(ctx)
	defer func() {
		for _, p := range []*emulator.Process{fsEmu, psEmu} {
			if p == nil {
				continue
			}
			if err := p.Stop(); err != nil {
				con.say("%v", err)
			} else {
				con.say("%s emulator stopped", p.Kind())
			}
		}
	}()
	if ctx.Err() != nil {
		return nil // Ctrl-C during start
	}
	if err != nil {
		return err
	}
	os.Setenv(emulator.Firestore.EnvVar(), fsEmu.Host())
	os.Setenv(emulator.PubSub.EnvVar(), psEmu.Host())
	con.say("firestore emulator at %s, pubsub emulator at %s", fsEmu.Host(), psEmu.Host())

	fake := webexfake.NewServer(webexfake.New())
	defer fake.Close()
	// A person approves on a page, as on Webex, so the console's
	// onboarding can be followed in a browser.
	fake.SetConsentPage(true)

	fs, err := gfs.NewClient(ctx, project)
	if err != nil {
		return fmt.Errorf("connect to firestore: %w", err)
	}
	defer fs.Close()
	ps, err := gps.NewClient(ctx, project)
	if err != nil {
		return fmt.Errorf("connect to pub/sub: %w", err)
	}
	defer ps.Close()

	apiPort := freePort(8080)
	workerPort := freePort(8081, apiPort)
	setupCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := createTopic(setupCtx, ps); err != nil {
		return err
	}
	seeded, err := seed(setupCtx, fs, fake, fmt.Sprintf("http://localhost:%d/callback", apiPort))
	if err != nil {
		return err
	}
	con.say("fake Webex at %s (client %s), topic %s with ordered subscription %s",
		fake.URL, demoClientID, topicID, subscriptionID)
	con.say("seeded tokens/%s: accessToken %s, %s left (the worker's first sweep refreshes it)",
		demoName, seeded, accessLeft)
	if err := seedServiceApp(setupCtx, fs, fake, fmt.Sprintf("http://localhost:%d/callback", apiPort)); err != nil {
		return err
	}
	con.say("seeded tokens/%s (manager, with %s) and tokens/%s (Service App of org %s, no tokens yet: the worker's first sweep mints it)",
		managerName, webexfake.ApplicationsTokenScope, serviceAppName, demoOrgID)

	stopEvents := printEvents(ctx, ps, con)
	defer stopEvents()

	env := append(os.Environ(),
		"GOOGLE_CLOUD_PROJECT="+project,
		"FIRESTORE_EMULATOR_HOST="+fsEmu.Host(),
		"PUBSUB_EMULATOR_HOST="+psEmu.Host(),
		"TOKENS_COLLECTION="+collection,
		"EVENTS_TOPIC="+topicID,
		"WEBEX_TOKEN_URL="+fake.TokenURL,
		"WEBEX_AUTHORIZE_URL="+fake.AuthorizeURL,
		"WEBEX_API_URL="+fake.URL,
		"TOKEN_PASSPHRASE="+tokenPassphrase,
		"ADMIN_PASSPHRASE="+adminPassphrase,
		"LEGACY_STATE=false",
		"LOG_LEVEL=info",
	)
	exited := make(chan *child, 2)
	var children []*child
	defer func() { stopChildren(children, con) }()
	for _, c := range []struct {
		name, bin string
		env       []string
	}{
		{"api", apiBin, []string{fmt.Sprintf("PORT=%d", apiPort)}},
		{"worker", workerBin, []string{fmt.Sprintf("PORT=%d", workerPort), "SWEEP_INTERVAL=30s"}},
	} {
		ch, err := startChild(c.name, c.bin, slices.Concat(env, c.env), con, exited)
		if err != nil {
			return err
		}
		children = append(children, ch)
	}

	ready := make(chan error, 1)
	go func() { ready <- waitHealthy(ctx, apiPort, workerPort) }()
	for {
		select {
		case <-ctx.Done():
			con.say("stopping...")
			return nil
		case c := <-exited:
			// Ctrl-C in a terminal reaches the children too; one of them
			// may exit before our own signal handler has run.
			select {
			case <-ctx.Done():
				con.say("stopping...")
				return nil
			case <-time.After(300 * time.Millisecond):
			}
			return fmt.Errorf("%s exited unexpectedly (%s): stopped everything", c.name, c.exit())
		case err := <-ready:
			ready = nil
			if err != nil {
				con.say("warning: %v", err)
				continue
			}
			printTryThis(con, apiPort, workerPort, fsEmu.Host(), psEmu.Host(), fake.URL)
		}
	}
}

// checkPrerequisites reports every missing tool at once, with how to
// install it.
func checkPrerequisites() error {
	var missing []string
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		missing = append(missing, "gcloud (the Google Cloud CLI) is not on PATH")
	} else {
		components := []struct{ dir, what string }{
			{"cloud-firestore-emulator", "the Firestore emulator (component cloud-firestore-emulator)"},
			{"pubsub-emulator", "the Pub/Sub emulator (component pubsub-emulator)"},
		}
		root := sdkRoot(gcloud)
		for _, c := range components {
			if _, err := os.Stat(filepath.Join(root, "platform", c.dir)); err != nil {
				missing = append(missing, fmt.Sprintf("%s is not installed in %s", c.what, root))
			}
		}
	}
	if _, err := exec.LookPath("java"); err != nil {
		missing = append(missing, "java is not on PATH (the emulators run on Java)")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf(`missing prerequisites:
  - %s
Install them on Debian or Ubuntu (with Google's apt repository, see
https://cloud.google.com/sdk/docs/install#deb):
  sudo apt-get install google-cloud-cli google-cloud-cli-firestore-emulator google-cloud-cli-pubsub-emulator openjdk-17-jre-headless
or, with a gcloud installed from Google's archive (and a Java runtime on PATH):
  gcloud components install beta cloud-firestore-emulator pubsub-emulator`,
		strings.Join(missing, "\n  - "))
}

// sdkRoot is the Cloud SDK directory of the gcloud at path: the parent of
// its bin directory once symlinks are resolved (/usr/bin/gcloud →
// /usr/lib/google-cloud-sdk/bin/gcloud), else what gcloud itself says.
func sdkRoot(gcloud string) string {
	resolved, err := filepath.EvalSymlinks(gcloud)
	if err != nil {
		resolved = gcloud
	}
	guess := filepath.Dir(filepath.Dir(resolved))
	if _, err := os.Stat(filepath.Join(guess, "platform")); err == nil {
		return guess
	}
	out, _ := exec.Command(gcloud, "info", "--format=value(installation.sdk_root)").Output()
	if root := strings.TrimSpace(string(out)); root != "" {
		return root
	}
	return guess
}

// binaries returns the paths of bin/api and bin/worker.
func binaries() (api, worker string, err error) {
	for _, p := range []string{"bin/api", "bin/worker"} {
		if _, err := os.Stat(p); err != nil {
			wd, _ := os.Getwd()
			return "", "", fmt.Errorf("%s not found in %s: run `make build` first, from the repository root (`make run` does both)", p, wd)
		}
	}
	return "bin/api", "bin/worker", nil
}

// startEmulators starts both emulators in parallel. A Process is returned
// whenever it started, even if the other did not, so the caller stops it.
func startEmulators(ctx context.Context) (fs, ps *emulator.Process, err error) {
	ctx, cancel := context.WithTimeout(ctx, emulator.StartTimeout)
	defer cancel()
	var fsErr, psErr error
	var wg sync.WaitGroup
	wg.Go(func() { fs, fsErr = emulator.Start(ctx, emulator.Firestore) })
	wg.Go(func() { ps, psErr = emulator.Start(ctx, emulator.PubSub) })
	wg.Wait()
	return fs, ps, errors.Join(fsErr, psErr)
}

// createTopic creates the events topic and an ordered subscription on it.
func createTopic(ctx context.Context, c *gps.Client) error {
	topic := "projects/" + project + "/topics/" + topicID
	_, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create topic %s: %w", topicID, err)
	}
	_, err = c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:                  "projects/" + project + "/subscriptions/" + subscriptionID,
		Topic:                 topic,
		EnableMessageOrdering: true,
		AckDeadlineSeconds:    60,
	})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create subscription %s: %w", subscriptionID, err)
	}
	return nil
}

// seed registers the demo client and refresh token with the fake Webex and
// writes tokens/demo with exactly the Node sample's eight fields (times as
// integer milliseconds). It returns the seeded access token.
func seed(ctx context.Context, c *gfs.Client, fake *webexfake.Server, redirectURI string) (string, error) {
	now := time.Now()
	accessToken, refreshToken := "demo-at-"+randomHex(8), "demo-rt-"+randomHex(8)
	fake.AddClient(demoClientID, demoClientSecret)
	fake.AddRefreshToken(demoClientID, refreshToken, now.Add(refreshLeft))
	_, err := c.Collection(collection).Doc(demoName).Set(ctx, map[string]any{
		"clientId":       demoClientID,
		"clientSecret":   demoClientSecret,
		"redirectUri":    redirectURI,
		"accessToken":    accessToken,
		"refreshToken":   refreshToken,
		"accessExpires":  now.Add(accessLeft).UnixMilli(),
		"refreshExpires": now.Add(refreshLeft).UnixMilli(),
		// As if Webex had issued the access token (12h) this long ago.
		"lastRefresh": now.Add(accessLeft - webexfake.DefaultExpiresIn).UnixMilli(),
	})
	if err != nil {
		return "", fmt.Errorf("seed %s/%s: %w", collection, demoName, err)
	}
	return accessToken, nil
}

// seedServiceApp registers the demo manager integration (its grants hold
// spark:applications_token) and the demo Service App with the fake Webex,
// and writes both documents: the manager with a current pair, the Service
// App with its config only, as PUT /admin/tokens/N leaves it before the
// mint.
func seedServiceApp(ctx context.Context, c *gfs.Client, fake *webexfake.Server, redirectURI string) error {
	now := time.Now()
	fake.AddClient(managerClientID, managerClientSecret)
	fake.SetClientScopes(managerClientID, webexfake.ApplicationsTokenScope, "spark:kms")
	accessToken := fake.IssueAccessToken(managerClientID, 10*time.Hour)
	refreshToken := fake.IssueRefreshToken(managerClientID, refreshLeft)
	fake.AddApp(serviceAppID, serviceAppClientID, serviceAppSecret, demoOrgID)
	docs := map[string]map[string]any{
		managerName: {
			"clientId": managerClientID, "clientSecret": managerClientSecret, "redirectUri": redirectURI,
			"accessToken": accessToken, "refreshToken": refreshToken,
			"accessExpires": now.Add(10 * time.Hour).UnixMilli(), "refreshExpires": now.Add(refreshLeft).UnixMilli(),
			"lastRefresh": now.Add(-2 * time.Hour).UnixMilli(),
			"scopes":      []any{webexfake.ApplicationsTokenScope, "spark:kms"},
		},
		serviceAppName: {
			"kind": "service_app", "appId": serviceAppID, "clientId": serviceAppClientID, "clientSecret": serviceAppSecret,
			"redirectUri": "", "targetOrgId": demoOrgID, "manager": managerName, "accessToken": "", "refreshToken": "",
			"status": "pending",
		},
	}
	for name, doc := range docs {
		if _, err := c.Collection(collection).Doc(name).Set(ctx, doc); err != nil {
			return fmt.Errorf("seed %s/%s: %w", collection, name, err)
		}
	}
	return nil
}

// printEvents prints every message of the demo subscription until the
// returned stop function is called.
func printEvents(ctx context.Context, c *gps.Client, con *console) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := c.Subscriber(subscriptionID).Receive(ctx, func(_ context.Context, m *gps.Message) {
			m.Ack()
			var d pubsub.Data
			_ = json.Unmarshal(m.Data, &d)
			line := fmt.Sprintf("%s name=%s generation=%s trigger=%s",
				m.Attributes[pubsub.AttrType], m.Attributes[pubsub.AttrName], m.Attributes[pubsub.AttrGeneration], d.Trigger)
			if d.AccessExpires > 0 {
				line += " accessExpires=" + time.UnixMilli(d.AccessExpires).Format(time.RFC3339)
			}
			if d.Message != "" {
				line += fmt.Sprintf(" message=%q", d.Message)
			}
			con.line("[events]", line)
		})
		if err != nil && ctx.Err() == nil {
			con.say("receiving events stopped: %v", err)
		}
	}()
	return func() { cancel(); <-done }
}

// waitHealthy polls both binaries' /healthz until they answer 200.
func waitHealthy(ctx context.Context, ports ...int) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for _, port := range ports {
		url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
		for {
			resp, err := client.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s did not answer within 30s", url)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

func printTryThis(con *console, apiPort, workerPort int, fsHost, psHost, fakeURL string) {
	api, worker := fmt.Sprintf("localhost:%d", apiPort), fmt.Sprintf("localhost:%d", workerPort)
	con.say(`ready: api on %[1]s, worker on %[2]s
  TOKEN_PASSPHRASE=%[3]s  ADMIN_PASSPHRASE=%[4]s  (demo values)
Admin console: http://%[1]s/admin/  (sign in with the ADMIN_PASSPHRASE above)
  To onboard a second token there: New token, any name (say queue-stats), and the
  fake Webex integration's client config:
    Client ID      %[11]s
    Client secret  %[12]s
    Redirect URI   http://%[1]s/callback
    Scopes         spark:kms cjp:config_read
  then Authorize with Webex and Approve on the fake Webex page (%[13]s).
Try:
  curl -s -H 'x-token-passphrase: %[3]s' 'http://%[1]s/?name=%[5]s'
  curl -s -H 'x-token-passphrase: %[3]s' 'http://%[1]s/?name=%[14]s'   # the Service App, with its orgId
  curl -s -X POST %[2]s/run
  curl -s %[1]s/metrics | grep token_
  curl -s -H 'x-admin-passphrase: %[4]s' %[1]s/admin/tokens
  curl -s -H 'x-admin-passphrase: %[4]s' %[1]s/admin/status
To point other tools at the emulators:
  export GOOGLE_CLOUD_PROJECT=%[6]s FIRESTORE_EMULATOR_HOST=%[7]s PUBSUB_EMULATOR_HOST=%[8]s
Events on %[9]s arrive below as [events] lines (subscription %[10]s). Ctrl-C stops everything.`,
		api, worker, tokenPassphrase, adminPassphrase, demoName, project, fsHost, psHost, topicID, subscriptionID,
		demoClientID, demoClientSecret, fakeURL, serviceAppName)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails, see crypto/rand
	return hex.EncodeToString(b)
}
