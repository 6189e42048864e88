package main

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/wxcc/tokenservice/shared/bootstrap"
	"github.com/wxcc/tokenservice/shared/config"
	"github.com/wxcc/tokenservice/shared/httpserve"
	"github.com/wxcc/tokenservice/shared/logging"
	"github.com/wxcc/tokenservice/shared/metrics"
)

// run starts the api and blocks until ctx ends. It logs JSON to logOut.
// When ready is not nil it receives the listening address (tests use port 0).
func run(ctx context.Context, getenv func(string) string, logOut io.Writer, ready chan<- string) error {
	cfg, err := config.Load(config.API, getenv)
	if err != nil {
		return err
	}
	log := logging.New(logOut, logging.ParseLevel(getenv("LOG_LEVEL")))

	core, err := bootstrap.Open(ctx, cfg, bootstrap.Options{Kind: "api", Metrics: metrics.New(metrics.API), Logger: log, Getenv: getenv})
	if err != nil {
		return err
	}
	defer core.Close()

	srv := newAPI(cfg, core, log, time.Now)
	for _, w := range srv.startWarnings {
		log.Warn(w)
	}
	// Stopped before core.Close (deferred calls run last first).
	defer srv.startFollowing(ctx, core.Store)()

	private, err := httpserve.ListenMetrics(cfg.MetricsAddr, core.Metrics.Handler())
	if err != nil {
		return err
	}
	ln, err := httpserve.Listen(cfg.Port)
	if err != nil {
		if private != nil {
			private.Listener.Close()
		}
		return err
	}
	return httpserve.Serve(ctx, ln, srv, log, httpserve.Options{Ready: ready, Metrics: private})
}

// newAPI builds the api over the parts both binaries share.
func newAPI(cfg *config.Config, core *bootstrap.Core, log *slog.Logger, now func() time.Time) *server {
	return newServer(deps{cfg: cfg, store: core.Store, service: core.Service,
		authorizeURL: core.Webex.AuthorizeURL, logger: log, metrics: core.Metrics, now: now})
}
