// Command localstack runs the whole token service on one machine; it is
// what `make run` starts. It checks the prerequisites (gcloud, the Firestore
// and Pub/Sub emulator components, java), then starts:
//
//   - the Firestore and Pub/Sub emulators on free loopback ports, Firestore
//     with the data the last run left in .localstack/firestore (exported
//     every minute and when localstack stops; rm -rf .localstack to start
//     afresh);
//   - a fake Webex token and authorize endpoint with a demo client, whose
//     authorize page a person approves with one click;
//   - the topic token-events with an ordered subscription token-events-demo;
//   - on a first run (no kept data): a token "demo" in collection tokens,
//     written as the Node sample writes it, whose access token has 2h05m
//     left, so the first sweep (threshold 2h + lead 30m) refreshes it,
//     with a week of history in the activity record (tokenActivity) for
//     the console's chart of it; a
//     manager integration "demo-manager" whose grants hold
//     spark:applications_token, and a Service App "demo-serviceapp"
//     without tokens, which the first sweep mints;
//   - bin/api (port 8080, or the first free one after it);
//   - bin/worker on a loopback port, behind a local imitation of Cloud
//     Run's front end (shared/testing/cloudrun) on port 8081 or the next
//     free one, the worker's only way in, as Cloud Run's ingress: the
//     worker runs with RUN_BEHIND_CLOUD_RUN_IAM=true and no in-process
//     schedule, and a local Cloud Scheduler posts /run through the front
//     end every 30s with an ID token minted as Cloud Scheduler's.
//
// Everything listens on 127.0.0.1 unless LOCALSTACK_BIND names another
// address (0.0.0.0: every interface) for the api and the front end: the
// demo passphrases it prints are public. The addresses taken are written
// to bin/localstack.env (shell syntax; `. bin/localstack.env`), removed
// again when localstack stops. Log lines are prefixed [api], [worker],
// [front] (the front end's request log), [scheduler] and [events] (every
// event arriving on token-events-demo).
//
// Ctrl-C (SIGINT or SIGTERM to localstack, or to the make that started
// it, see parentwatch.go) stops the children (SIGTERM, SIGKILL after 10s),
// exports Firestore, stops the emulators' whole process groups, and exits
// 0. If a child exits by itself, localstack reports how, stops everything
// and exits 1.
//
//	make build && go run ./shared/devtools/localstack
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	gfs "cloud.google.com/go/firestore"
	gps "cloud.google.com/go/pubsub/v2"

	"github.com/wxcc/tokenservice/shared/testing/cloudrun"
	"github.com/wxcc/tokenservice/shared/testing/emulator"
	"github.com/wxcc/tokenservice/shared/testing/webexfake"
)

// The demo deployment. The passphrases are demo values, printed on purpose.
const (
	project    = emulator.DefaultProject // demo-tokens
	collection = "tokens"
	// The activity record: the demo token's week of history goes here.
	activityCollection = "tokenActivity"
	activityRetention  = 2160 * time.Hour
	topicID            = "token-events"
	subscriptionID     = "token-events-demo"
	demoName           = "demo"
	tokenPassphrase    = "demo-passphrase-123456"
	adminPassphrase    = "demo-admin-passphrase"
	demoClientID       = "demo-client"
	demoClientSecret   = "demo-client-secret"
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

	// schedulerSA is the service account of the local Cloud Scheduler
	// job, the only invoker of the worker's service.
	schedulerSA = "token-scheduler@" + project + ".iam.gserviceaccount.com"
	// scheduleEvery is the local Cloud Scheduler job's period.
	scheduleEvery = 30 * time.Second

	// bindVar names the address the api and the front end listen on.
	bindVar = "LOCALSTACK_BIND"
	// envFile is where the addresses taken are written.
	envFile = "bin/localstack.env"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(ctx)
	con := newConsole(os.Stdout)
	go watchParent(ctx, func(why string) {
		con.say("%s: stopping", why)
		cancel()
	})
	err := run(ctx, con)
	interrupted := ctx.Err() != nil
	cancel()
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
	bind, err := bindAddr()
	if err != nil {
		return err
	}

	var fsFlags []string
	kept := latestExport(dataDir)
	if kept != "" {
		abs, err := filepath.Abs(kept)
		if err != nil {
			return err
		}
		fsFlags = append(fsFlags, "--import-data="+abs)
		con.say("starting the Firestore and Pub/Sub emulators, Firestore with the data kept in %s (this takes a few seconds)...", dataDir)
	} else {
		con.say("starting the Firestore and Pub/Sub emulators (this takes a few seconds)...")
	}
	fsEmu, psEmu, err := startEmulators(ctx, fsFlags...)
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
		if kept != "" {
			return fmt.Errorf("%w\n(if the data kept in %s is what the emulator cannot read, move it away and start again)", err, dataDir)
		}
		return err
	}
	os.Setenv(emulator.Firestore.EnvVar(), fsEmu.Host())
	os.Setenv(emulator.PubSub.EnvVar(), psEmu.Host())
	con.say("firestore emulator at %s, pubsub emulator at %s", fsEmu.Host(), psEmu.Host())
	// Runs after the children have stopped (deferred later, so run
	// earlier) and before the emulators stop.
	defer func() {
		if err := exportFirestore(context.Background(), fsEmu.Host(), dataDir); err != nil {
			con.say("warning: Firestore data NOT kept: %v", err)
		} else {
			con.say("Firestore data exported to %s: the next `make run` starts from it", dataDir)
		}
	}()

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

	host := urlHost(bind)
	apiPort := freePort(bind, 8080)
	frontPort := freePort(bind, 8081, apiPort)
	workerPort := freePort("127.0.0.1", 0)
	apiMetrics, workerMetrics := freePort("127.0.0.1", 0), freePort("127.0.0.1", 0)
	apiURL := fmt.Sprintf("http://%s:%d", host, apiPort)
	callback := apiURL + "/callback"

	setupCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := createTopic(setupCtx, ps); err != nil {
		return err
	}
	if err := createNotifySubscription(setupCtx, ps); err != nil {
		return err
	}
	fake.AddBot(botToken, roomID)
	signIn := teachSignIn(fake)
	con.say("fake Webex at %s (client %s), topic %s with ordered subscription %s",
		fake.URL, demoClientID, topicID, subscriptionID)
	n, err := keptTokens(setupCtx, fs)
	if err != nil {
		return err
	}
	if n > 0 {
		taught, err := reteach(setupCtx, fs, fake)
		if err != nil {
			return err
		}
		con.say("kept from the last run: %d tokens (the fake Webex was taught the clients and tokens of %d); rm -rf .localstack to start afresh",
			n, taught)
	} else {
		seeded, err := seed(setupCtx, fs, fake, callback)
		if err != nil {
			return err
		}
		con.say("seeded tokens/%s: accessToken %s, %s left (the first sweep refreshes it)", demoName, seeded, accessLeft)
		if err := seedServiceApp(setupCtx, fs, fake, callback); err != nil {
			return err
		}
		con.say("seeded tokens/%s (manager, with %s) and tokens/%s (Service App of org %s, no tokens yet: the first sweep mints it)",
			managerName, webexfake.ApplicationsTokenScope, serviceAppName, demoOrgID)
	}
	go exportEveryMinute(ctx, fsEmu.Host(), con)

	stopEvents := printEvents(ctx, ps, con)
	defer stopEvents()

	// The worker's Cloud Run service: the front end's listener first, so
	// that its URL (the audience) is known before the worker starts.
	iss, err := cloudrun.NewIssuer("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer iss.Close()
	frontLn, err := listen(bind, frontPort)
	if err != nil {
		return err
	}
	workerURL := cloudrun.URLOf(frontLn)

	env := append(os.Environ(),
		"GOOGLE_CLOUD_PROJECT="+project,
		"FIRESTORE_EMULATOR_HOST="+fsEmu.Host(),
		"PUBSUB_EMULATOR_HOST="+psEmu.Host(),
		"TOKENS_COLLECTION="+collection,
		"ACTIVITY_COLLECTION="+activityCollection,
		"ACTIVITY_RETENTION="+activityRetention.String(),
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
		{"api", apiBin, []string{
			"PORT=" + hostPort(bind, apiPort),
			"CONSOLE_URL=" + apiURL,
			"CONSOLE_OIDC_ISSUER=" + fake.IssuerURL,
			"CONSOLE_OIDC_CLIENT_ID=" + signIn.clientID,
			"CONSOLE_OIDC_CLIENT_SECRET=" + signIn.clientSecret,
			"CONSOLE_OPERATORS=" + signIn.operator,
			"CONSOLE_VIEWERS=" + signIn.viewers,
			fmt.Sprintf("METRICS_ADDR=127.0.0.1:%d", apiMetrics), // not on the port that serves tokens
			"CORS_ALLOW_ORIGINS=" + apiURL,                       // the console's own origin, not *
			"TRUSTED_PROXY_HOPS=0",                               // reached directly
		}},
		{"worker", workerBin, []string{
			fmt.Sprintf("PORT=127.0.0.1:%d", workerPort), // the front end is the only way in
			fmt.Sprintf("METRICS_ADDR=127.0.0.1:%d", workerMetrics),
			"SWEEP_INTERVAL=0", // sweeps come from the Scheduler, through the front end
			"RUN_BEHIND_CLOUD_RUN_IAM=true",
			"RUN_OIDC_AUDIENCE=" + workerURL,
			"RUN_OIDC_SERVICE_ACCOUNT=" + schedulerSA,
			"TRUSTED_PROXY_HOPS=1", // the front end appends one X-Forwarded-For entry
			"NOTIFY_WEBEX_BOT_TOKEN=" + botToken,
			"NOTIFY_WEBEX_ROOM_ID=" + roomID,
			"CONSOLE_URL=" + apiURL,
		}},
	} {
		ch, err := startChild(c.name, c.bin, slices.Concat(env, c.env), con, exited)
		if err != nil {
			frontLn.Close()
			return err
		}
		children = append(children, ch)
	}
	front, err := cloudrun.Serve(frontLn, iss, cloudrun.Service{
		Upstream: fmt.Sprintf("http://127.0.0.1:%d", workerPort),
		// Cloud Scheduler and the Pub/Sub push subscription use one
		// account, as the deployment does.
		Invokers: []string{schedulerSA},
		Log:      con.logger("[front]"),
	})
	if err != nil {
		frontLn.Close()
		return err
	}
	defer front.Close()

	ready := make(chan error, 1)
	go func() {
		ready <- waitHealthy(ctx, apiURL+"/healthz", fmt.Sprintf("http://127.0.0.1:%d/healthz", workerPort))
	}()
	st := stackInfo{
		bind: bind, apiURL: apiURL, workerURL: workerURL, webexURL: fake.URL, issuerURL: iss.URL,
		fsHost: fsEmu.Host(), psHost: psEmu.Host(),
		apiMetrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", apiMetrics), workerMetrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", workerMetrics),
	}
	defer removeEnvFile(envFile, con)
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
			if err := writeEnvFile(envFile, st.vars(iss)); err != nil {
				con.say("warning: %v", err)
			}
			printTryThis(con, st)
			if parentIgnoresInterrupt() {
				con.say("note: the process that started localstack (pid %d) ignores SIGINT, as make started in the background of a script does: stop it with kill -TERM %d, or use set -m in the script",
					os.Getppid(), os.Getppid())
			}
			go schedule(ctx, iss, workerURL, con)
			go refreshEnvFile(ctx, envFile, st, iss, con)
			go pushToNotify(ctx, ps, iss, workerURL, con)
			go printMessages(ctx, fake, con)
		}
	}
}

// bindAddr is the address the api and the front end listen on:
// LOCALSTACK_BIND, 127.0.0.1 by default.
func bindAddr() (string, error) {
	v := os.Getenv(bindVar)
	if v == "" {
		return "127.0.0.1", nil
	}
	if _, err := netip.ParseAddr(v); err != nil {
		return "", fmt.Errorf("%s=%q is not an IP address (0.0.0.0 for every interface)", bindVar, v)
	}
	return v, nil
}

// urlHost is the host of the URLs printed for bind.
func urlHost(bind string) string {
	a := netip.MustParseAddr(bind)
	switch {
	case a.IsUnspecified() && a.Is4():
		return "127.0.0.1"
	case a.IsUnspecified():
		return "[::1]"
	case a.Is6():
		return "[" + bind + "]"
	}
	return bind
}

func hostPort(host string, port int) string {
	a := netip.MustParseAddr(host)
	return netip.AddrPortFrom(a, uint16(port)).String()
}

// waitHealthy polls each URL until it answers 200.
func waitHealthy(ctx context.Context, urls ...string) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for _, url := range urls {
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

// exportEveryMinute exports Firestore every exportEvery until ctx ends, so
// a hard kill loses at most that much.
func exportEveryMinute(ctx context.Context, fsHost string, con *console) {
	t := time.NewTicker(exportEvery)
	defer t.Stop()
	warned := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := exportFirestore(ctx, fsHost, dataDir); err != nil && !warned && !errors.Is(err, context.Canceled) {
			con.say("warning: %v (retrying every %s)", err, exportEvery)
			warned = true
		}
	}
}
