package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/go-co-op/gocron/v2"

	"github.com/wxcc/tokenservice/shared/bootstrap"
	"github.com/wxcc/tokenservice/shared/config"
	"github.com/wxcc/tokenservice/shared/httpserve"
	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/logging"
	"github.com/wxcc/tokenservice/shared/metrics"
)

// run starts the worker and blocks until ctx ends, or, with -once, until
// one sweep is done (its summary goes to stdout as JSON), or, with
// -reseal, until every token is sealed under the primary key (the counts
// go to stdout as JSON). When ready is not
// nil it receives the listening address.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, logOut io.Writer, ready chan<- string) error {
	fl := flag.NewFlagSet("worker", flag.ContinueOnError)
	fl.SetOutput(logOut)
	once := fl.Bool("once", false, "run one sweep, print its summary and exit (non-zero only if the sweep itself failed)")
	resealAll := fl.Bool("reseal", false, "seal every token's secrets under the primary key of TOKEN_ENCRYPTION_KEYS now, print the counts and exit (non-zero if the walk failed or any token could not be re-sealed)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *once && *resealAll {
		return fmt.Errorf("-once and -reseal cannot be combined")
	}
	cfg, err := config.Load(config.Worker, getenv)
	if err != nil {
		return err
	}
	log := logging.New(logOut, logging.ParseLevel(getenv("LOG_LEVEL")))

	core, err := bootstrap.Open(ctx, cfg, bootstrap.Options{Kind: "worker", Metrics: metrics.New(metrics.Worker, metrics.TokenNames(cfg.MetricsAddr != "")), Logger: log, Getenv: getenv})
	if err != nil {
		return err
	}
	defer core.Close()
	if *resealAll {
		return reseal(ctx, core.Store, stdout, log)
	}

	sw := newSweeperFor(cfg, core, log, time.Now)
	notifier, err := newNotifier(cfg, core, log, time.Now)
	if err != nil {
		return err
	}
	sw.reminders = &reminders{n: notifier, log: log}
	if !*once && cfg.SweepInterval == 0 {
		// Nothing scheduled sweeps right away: publish what earlier
		// instances left in the outbox now, not at the first /run.
		go sw.drain(ctx)
	}
	if *once {
		sum, err := sw.Run(ctx)
		writeJSON(stdout, sum)
		if err != nil {
			return fmt.Errorf("sweep failed: %w", err)
		}
		return nil
	}

	guard, err := newTriggerGuard(ctx, cfg, log)
	if err != nil {
		return err
	}
	if guard.open() {
		log.Warn("POST /run is unauthenticated: set RUN_AUTH_SECRET or RUN_OIDC_AUDIENCE with RUN_OIDC_SERVICE_ACCOUNT, or protect the service with Cloud Run IAM")
	}
	if cfg.MetricsAddr == "" {
		log.Warn("/metrics is served on the public port to every address: sweep, refresh and event counts and the soonest expiries, " +
			"no token names (those appear only on METRICS_ADDR); set METRICS_ADDR=127.0.0.1:9090 (scraped by a sidecar)")
	}
	if cfg.SweepInterval > 0 {
		stop, err := schedule(ctx, sw, cfg.SweepInterval)
		if err != nil {
			return err
		}
		defer stop()
		log.Info("sweeping on schedule", "interval", cfg.SweepInterval.String())
	}
	publicMetrics := core.Metrics.Handler()
	private, err := httpserve.ListenMetrics(cfg.MetricsAddr, publicMetrics)
	if err != nil {
		return err
	}
	if private != nil {
		publicMetrics = nil // served on METRICS_ADDR only
	}
	ln, err := httpserve.Listen(cfg.Port)
	if err != nil {
		if private != nil {
			private.Listener.Close()
		}
		return err
	}
	return httpserve.Serve(ctx, ln, newHandler(sw, guard, notifier, publicMetrics, log), log,
		httpserve.Options{Ready: ready, WriteTimeout: cfg.SweepTimeout + 30*time.Second, Metrics: private})
}

// newSweeperFor builds the sweeper over the parts both binaries share.
func newSweeperFor(cfg *config.Config, core *bootstrap.Core, log *slog.Logger, now func() time.Time) *sweeper {
	var relay eventRelay
	if core.Relay != nil { // a nil *Relay in the interface would not be nil
		relay = core.Relay
	}
	sw := newSweeper(cfg, core.Store, core.Service, relay, log, core.Metrics)
	sw.now = now
	return sw
}

// newSweeper builds the sweeper from the configuration.
func newSweeper(cfg *config.Config, store sweepStore, svc *lifecycle.Service, ob eventRelay, log *slog.Logger, m *metrics.Metrics) *sweeper {
	return &sweeper{
		store: store, service: svc, relay: ob, log: log, now: time.Now, metrics: m,
		lead: cfg.RefreshLead, concurrency: cfg.RefreshConcurrency, timeout: cfg.SweepTimeout,
		expiryWarning: cfg.ExpiryWarning, brakeAfter: brakeAfter, pageSize: sweepPageSize, jitter: sweepJitter,
	}
}

// schedule runs a sweep every interval in singleton mode: a slow sweep is
// never overlapped by the next one, which is rescheduled instead.
func schedule(ctx context.Context, sw *sweeper, interval time.Duration) (stop func(), err error) {
	s, err := gocron.NewScheduler()
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	_, err = s.NewJob(gocron.DurationJob(interval),
		gocron.NewTask(func() { _, _ = sw.Run(ctx) }),
		gocron.WithSingletonMode(gocron.LimitModeReschedule),
		gocron.WithStartAt(gocron.WithStartImmediately()),
	)
	if err != nil {
		return nil, fmt.Errorf("schedule sweep: %w", err)
	}
	s.Start()
	return func() { _ = s.Shutdown() }, nil
}

func writeJSON(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintln(w, string(b))
}
