package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	gfs "cloud.google.com/go/firestore"
	gps "cloud.google.com/go/pubsub/v2"

	"github.com/wxcc/tokenservice/shared/sealing"
	"github.com/wxcc/tokenservice/shared/testing/emulator"
	"github.com/wxcc/tokenservice/shared/testing/netfault"
	"github.com/wxcc/tokenservice/shared/testing/webexfake"
)

// campaign is one profile's run: its processes, its data and everything
// observed.
type campaign struct {
	s    settings
	p    profile
	bins binaries
	emu  *emulators
	dir  string // this profile's logs
	say  func(format string, args ...any)
	// stalls measures how long the machine gave no CPU (shared by the profiles).
	stalls *stallClock

	project, coll, topic, sub string
	fs                        *gfs.Client
	ps                        *gps.Client
	fake                      *webexfake.Server
	fsProxy, psProxy          *netfault.Proxy
	keySpec                   string
	keys                      *sealing.Keyring
	tokenPassphrase           string
	adminPassphrase           string
	client                    *http.Client
	rng                       *mrand.Rand // setup only (one goroutine)
	secrets                   *secretSet

	tokens       []*soakToken
	plan         []plannedFault
	procs        []*proc // s.APIs apis, then the workers
	adminRefresh bool
	revokedMu    sync.Mutex
	grantCut     grantCut

	t0, tEnd time.Time
	// settled is when the final state was recorded, before the
	// processes were stopped.
	settled  time.Time
	stopping bool
	stopMu   sync.Mutex

	reqs        records[request]
	adminBodies records[string]
	sample      sampleWrites
	faults      faultLog
	tl          *timeline
	events      records[event]
	resources   records[resourceSample]
	health      records[healthSample]
	// final is the documents at the end of the load, before shutdown.
	final map[string]docState
	// metricsPages are the processes' /metrics at the end, by name.
	metricsPages map[string]map[string]float64
	ledger       map[string]webexfake.RefreshTokenUse
	stats        webexfake.Stats
	logs         logFacts

	results []result
	err     error // the campaign could not run
}

func (c *campaign) apis() []*proc    { return c.procs[:c.s.APIs] }
func (c *campaign) workers() []*proc { return c.procs[c.s.APIs:] }

func newCampaign(s settings, p profile, bins binaries, emu *emulators, dir string, stalls *stallClock, say func(string, ...any)) *campaign {
	tag := fmt.Sprintf("soak-%s-%d-%s", p.Name, s.Seed, randomText(4))
	c := &campaign{
		s: s, p: p, bins: bins, emu: emu, dir: dir, say: say, stalls: stalls,
		project: emulator.Project(), coll: tag, topic: tag + "-events", sub: tag + "-sub",
		tokenPassphrase: "soak-flows-" + randomText(12),
		adminPassphrase: "soak-admin-" + randomText(12),
		client: &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: flowClients, IdleConnTimeout: 30 * time.Second, DisableCompression: true,
		}},
		rng:     mrand.New(mrand.NewPCG(s.Seed, p.Index)),
		secrets: newSecretSet(),
		tl:      newTimeline(),
	}
	c.secrets.add(c.tokenPassphrase, c.adminPassphrase)
	if p.Encrypted {
		key := make([]byte, sealing.KeySize)
		_, _ = rand.Read(key)
		b64 := base64.StdEncoding.EncodeToString(key)
		c.keySpec = "soak1:" + b64
		c.keys, _ = sealing.ParseKeys(c.keySpec)
		c.secrets.add(b64)
	}
	return c
}

func randomText(n int) string {
	return strings.ToLower(rand.Text()[:n])
}

// env is the configuration of every process of the profile (DESIGN
// section 6 names), time compressed. The binaries reach the emulators
// through the fault proxies, never directly.
func (c *campaign) env() []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"GOOGLE_CLOUD_PROJECT=" + c.project,
		"FIRESTORE_EMULATOR_HOST=" + c.fsProxy.Addr(),
		"PUBSUB_EMULATOR_HOST=" + c.psProxy.Addr(),
		"TOKENS_COLLECTION=" + c.coll,
		"EVENTS_TOPIC=" + c.topic,
		"WEBEX_TOKEN_URL=" + c.fake.TokenURL,
		"WEBEX_AUTHORIZE_URL=" + c.fake.AuthorizeURL,
		"WEBEX_API_URL=" + c.fake.URL,
		"WEBEX_TIMEOUT=" + webexTimeout.String(),
		"REFRESH_THRESHOLD=" + refreshThreshold.String(),
		"REFRESH_LEAD=" + refreshLead.String(),
		"SWEEP_INTERVAL=" + sweepInterval.String(),
		"SWEEP_TIMEOUT=" + sweepTimeout.String(),
		"MIN_TOKEN_VALIDITY=" + minValidity.String(),
		"CACHE_MAX_AGE=" + cacheMaxAge.String(),
		"INLINE_REFRESH_TIMEOUT=" + inlineTimeout.String(),
		"REFRESH_EXPIRY_WARNING=" + expiryWarning.String(),
		"TOKEN_PASSPHRASE=" + c.tokenPassphrase,
		"ADMIN_PASSPHRASE=" + c.adminPassphrase,
		"CORS_ALLOW_ORIGINS=https://desktop.example.com",
		"LOG_LEVEL=debug",
	}
	if c.keySpec != "" {
		env = append(env, "TOKEN_ENCRYPTION_KEYS="+c.keySpec)
	}
	if c.s.Race {
		env = append(env, "GORACE=halt_on_error=0")
	}
	return env
}

// run runs the profile and evaluates it; c.err is set if it could not run.
func (c *campaign) run(ctx context.Context) {
	if err := c.runPhases(ctx); err != nil {
		c.err = err
		c.say("%s: %v", c.p.Name, err)
		return
	}
	c.results = c.evaluate()
}

func (c *campaign) runPhases(ctx context.Context) error {
	var err error
	c.fake = webexfake.NewServer(webexfake.New())
	defer c.fake.Close()
	c.fake.OnGrant(c.onGrant)
	c.setFakeLifetimes()
	if c.fsProxy, err = netfault.Start(c.emu.Firestore); err != nil {
		return fmt.Errorf("firestore proxy: %w", err)
	}
	defer c.fsProxy.Close()
	if c.psProxy, err = netfault.Start(c.emu.PubSub); err != nil {
		return fmt.Errorf("pub/sub proxy: %w", err)
	}
	defer c.psProxy.Close()
	if c.fs, err = gfs.NewClient(ctx, c.project); err != nil {
		return fmt.Errorf("firestore client: %w", err)
	}
	defer c.fs.Close()
	if c.ps, err = gps.NewClient(ctx, c.project); err != nil {
		return fmt.Errorf("pub/sub client: %w", err)
	}
	defer c.ps.Close()
	if err := createTopic(ctx, c.ps, c.topic, c.sub); err != nil {
		return err
	}

	faultFrom, faultTo := c.faultWindow()
	c.tokens = planPopulation(c.rng, c.s.Duration, faultFrom, faultTo)
	c.plan = planFaults(c.s.Seed, c.p.Index, c.s.Duration, c.fleet())
	setupCtx, cancelSetup := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelSetup()
	if err := c.seedBefore(setupCtx); err != nil {
		return err
	}

	// Observers run until the checks have what they need.
	obsCtx, stopObs := context.WithCancel(context.WithoutCancel(ctx))
	var obs sync.WaitGroup
	defer func() { stopObs(); obs.Wait() }()
	c.watchDocs(obsCtx, &obs)
	c.receiveEvents(obsCtx, &obs)

	if err := c.startProcs(setupCtx); err != nil {
		c.stopProcs()
		return err
	}
	c.sampleResources(obsCtx, &obs)
	c.watchHealth(obsCtx, &obs)
	if err := c.seedAfterStart(setupCtx); err != nil {
		c.stopProcs()
		return err
	}
	c.adminRefresh = c.probeAdminRefresh(setupCtx, c.tokens[0])
	c.probePassphrases(setupCtx)

	c.t0 = time.Now()
	if err := c.seedAtT0(setupCtx, c.t0); err != nil {
		c.stopProcs()
		return err
	}
	c.say("%s: %d tokens, %d faults planned; running for %v (t0 %s)", c.p.Name, len(c.tokens), len(c.plan), c.s.Duration, c.t0.Format(time.TimeOnly))
	loadCtx, stopLoad := context.WithDeadline(ctx, c.t0.Add(c.s.Duration))
	var load sync.WaitGroup
	c.runFlows(loadCtx, &load)
	c.runAdmin(loadCtx, &load)
	if c.p.Sample {
		c.runSample(loadCtx, &load)
	}
	c.runFaults(loadCtx, c.t0, &load)
	c.runRevocations(loadCtx, c.t0, &load)
	c.runLateOnboarding(loadCtx, c.t0, &load)
	<-loadCtx.Done()
	stopLoad()
	load.Wait()
	c.tEnd = time.Now()
	interrupted := ctx.Err() != nil

	c.settle(context.WithoutCancel(ctx))
	c.settled = time.Now()
	c.stopProcs()
	c.ledger = c.fake.RefreshTokenUses()
	c.stats = c.fake.Stats()
	c.secrets.add(c.fake.Issued()...)
	stopObs()
	obs.Wait()
	if interrupted {
		return errors.New("interrupted")
	}
	return nil
}

// faultWindow is when faults may happen, after t0.
func (c *campaign) faultWindow() (from, to time.Duration) {
	plan := planFaults(c.s.Seed, c.p.Index, c.s.Duration, c.fleet())
	to = c.s.Duration / 2
	if n := len(plan); n > 0 {
		to = plan[n-1].At + plan[n-1].For
	}
	return faultWarmup, max(to, faultWarmup+time.Second)
}

// startProcs starts every instance at once and waits until all serve.
func (c *campaign) startProcs(ctx context.Context) error {
	env := c.env()
	for i := range c.s.APIs + c.s.Workers {
		kind, bin, n := "api", c.bins.API, i+1
		if i >= c.s.APIs {
			kind, bin, n = "worker", c.bins.Worker, i-c.s.APIs+1
		}
		p, err := newProc(kind, fmt.Sprintf("%s-%d", kind, n), bin, c.dir, env, c.exited)
		if err != nil {
			return err
		}
		c.procs = append(c.procs, p)
	}
	errs := make([]error, len(c.procs))
	var wg sync.WaitGroup
	for i, p := range c.procs {
		wg.Go(func() { _, errs[i] = p.Start(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// exited is told about every life that ends. One the campaign did not
// end is restarted (and fails invariant 7).
func (c *campaign) exited(l *life) {
	c.stopMu.Lock()
	stopping := c.stopping
	c.stopMu.Unlock()
	if l.Told != "" || stopping {
		return
	}
	c.say("%s: %s-%d exited unexpectedly (%s); restarting it", c.p.Name, l.Proc, l.N, l.Exit)
	for _, p := range c.procs {
		if p.Name == l.Proc {
			go func() {
				time.Sleep(time.Second)
				// It may have exited because its port was taken: a new
				// one, so it cannot loop on a port someone else answers.
				if err := p.movePort(); err != nil {
					c.say("%s: %s: %v", c.p.Name, p.Name, err)
				}
				_, _ = p.Start(context.Background())
			}()
		}
	}
}

// stopProcs sends SIGTERM to every instance at once; a process still
// running after Cloud Run's 10 s (plus a little) is killed.
func (c *campaign) stopProcs() {
	c.stopMu.Lock()
	c.stopping = true
	c.stopMu.Unlock()
	var wg sync.WaitGroup
	for _, p := range c.procs {
		wg.Go(func() {
			if l := p.Current(); l != nil && p.snapshot(l).Ended.IsZero() {
				p.Signal(syscall.SIGTERM, 12*time.Second)
			}
		})
	}
	wg.Wait()
}

// settle waits, at most settleTimeout, until the outbox is empty and every
// generation in Firestore has its token.rotated received, then records
// the final documents and every process's /metrics.
func (c *campaign) settle(ctx context.Context) {
	const settleTimeout = 45 * time.Second
	deadline := time.Now().Add(settleTimeout)
	for {
		docs, err := listDocs(ctx, c.fs, c.coll)
		if err == nil {
			c.final = map[string]docState{}
			for name, d := range docs {
				c.final[name] = c.decodeDoc(name, time.Now(), d)
			}
			h := c.healthNow(ctx)
			if len(h.Outbox) == 0 && !h.OutboxErr && len(c.missingRotations()) == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			c.say("%s: events still missing %v after the load stopped; the checks say which", c.p.Name, settleTimeout)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	c.metricsPages = map[string]map[string]float64{}
	client := &http.Client{Timeout: 5 * time.Second}
	for _, p := range c.procs {
		if !p.Up() {
			continue
		}
		if m, err := scrape(ctx, client, p.URL()+"/metrics"); err == nil {
			c.metricsPages[p.Name] = m
		}
	}
}
